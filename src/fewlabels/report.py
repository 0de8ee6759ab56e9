"""One self-contained HTML page per run (images inlined), and an index page for demos."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from fewlabels import config as configlib
from fewlabels import files


@dataclass
class Section:
    title: str
    image: Path | None = None  # a PNG, inlined
    html: str = ""             # trusted markup made by fewlabels itself
    text: str = ""             # plain text, escaped


def img_tag(path: Path) -> str:
    data = base64.b64encode(files.read_bytes(path, "report image")).decode()
    mime = "image/gif" if Path(path).suffix == ".gif" else "image/png"
    return f'<img src="data:{mime};base64,{data}" style="max-width:100%">'


def read_snapshots(folder: Path) -> list[dict]:
    """The run's snapshot_*.npz files in step order; one cut by a crash is skipped, not fatal."""
    return [s for s in map(files.read_npz, sorted(Path(folder).glob("snapshot_*.npz"))) if s is not None]


def images_html(paths) -> str:
    """Inline images, skipping those that were not made."""
    return "".join(img_tag(p) for p in paths if p is not None)


def table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    """An HTML table; floats rounded, missing cells blank."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c), digits)}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def key_value_table(values: dict, pairs_per_row: int = 3, digits: int = 4) -> str:
    """A dict as rows of `key | value` pairs, so a run with many metrics stays inside the page
    instead of one row of dozens of columns running off it."""
    items = list(values.items())
    rows = []
    for i in range(0, len(items), pairs_per_row):
        chunk = items[i:i + pairs_per_row]
        rows.append("<tr>" + "".join(f"<th>{html.escape(str(k))}</th><td>{_cell(v, digits)}</td>" for k, v in chunk)
                    + "</tr>")
    return f"<table class='kv'>{''.join(rows)}</table>" if rows else ""


def _cell(v, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape("" if v is None else str(v))


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;overflow-wrap:anywhere}
table.kv th{text-align:left;font-weight:normal}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:85%}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}.muted{color:#777}"""


def page(title: str, sections: list[Section], subtitle: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p class='muted'>{html.escape(subtitle)}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.html:
            parts.append(s.html)
        if s.image is not None and Path(s.image).exists():
            parts.append(img_tag(s.image))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run, cfg, exp) -> Path:
    """report.html of a run: summary, the family's figures, the resolved config."""
    summary = run.read_summary() or {}
    sections = [Section("Summary", html=table([{k: v for k, v in summary.items() if k != "metrics"}])
                        + key_value_table(summary.get("metrics", {})))]
    t = cfg.train
    if t.horizon != t.steps:  # extended (or shortened) after it started: say what its schedules did
        sections[0].text = (f"Schedules (learning rate, ε, clip) run over the first {t.horizon} steps, the length this "
                            f"run started with, and hold their final values after it (train.schedule_steps); "
                            f"the run now has {t.steps} steps.")
    sections += exp.report_sections(run)
    sections.append(Section("Config", html=f"<pre>{html.escape(configlib.dump(cfg))}</pre>"))
    title = f"fewlabels run: {cfg.name or cfg.family}"
    return files.write_text_atomic(run.report_path, page(title, sections, subtitle=str(run.root)), "run report")


def write_json(path: Path, obj) -> None:
    files.write_text_atomic(path, json.dumps(obj, indent=2) + "\n", "JSON file")
