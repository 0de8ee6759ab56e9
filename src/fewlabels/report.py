"""One self-contained HTML page per run (images inlined), and an index page for demos."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from fewlabels import config as configlib


@dataclass
class Section:
    title: str
    image: Path | None = None  # a PNG, inlined
    html: str = ""             # trusted markup made by fewlabels itself
    text: str = ""             # plain text, escaped


def img_tag(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    mime = "image/gif" if Path(path).suffix == ".gif" else "image/png"
    return f'<img src="data:{mime};base64,{data}" style="max-width:100%">'


def table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    """An HTML table; floats rounded, missing cells blank."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))

    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
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
                        + table([summary.get("metrics", {})]))]
    sections += exp.report_sections(run)
    sections.append(Section("Config", html=f"<pre>{html.escape(configlib.dump(cfg))}</pre>"))
    title = f"fewlabels run: {cfg.name or cfg.family}"
    run.report_path.write_text(page(title, sections, subtitle=str(run.root)))
    return run.report_path


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")
