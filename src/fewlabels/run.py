"""The run directory: everything needed to resume, sample, evaluate and report.

    DIR/config.yaml      the resolved config
    DIR/metrics.jsonl    one JSON object per log step, each with `step`, `kind` ("train": losses;
                         "eval": an evaluation) and `wall_seconds`
    DIR/summary.json     written at the end: status, steps, wall_seconds, metrics
    DIR/data.json        the training data's shape (GANs, diffusion): a run samples without its data
    DIR/checkpoints/     step_XXXXXXXXX.safetensors, newest last (see checkpoint.py)
    DIR/samples/         snapshots the report draws from
    DIR/tb/              TensorBoard events mirroring metrics.jsonl
    DIR/report.html      one self-contained page
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fewlabels import config as configlib
from fewlabels import files
from fewlabels.errors import UserError

_CKPT = re.compile(r"^step_(\d{9})\.safetensors$")
KEEP_CHECKPOINTS = 3
# Keys that may change when a run is resumed: its length, how often it reports, its schedules' horizon.
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.eval_every", "train.checkpoint_every",
                     "train.schedule_steps", "train.max_minutes")


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def write_json_atomic(path: Path, obj: Any, what: str = "JSON file") -> None:
    files.write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default) + "\n", what)


class RunDir:
    """A run directory; `check` says whether a config may train in it, `create` writes it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"
        self.samples = self.root / "samples"
        self.metrics_path = self.root / "metrics.jsonl"
        self.summary_path = self.root / "summary.json"
        self.config_path = self.root / "config.yaml"
        self.report_path = self.root / "report.html"
        self._tb = None
        self.wall_offset = 0.0  # wall seconds already spent before a resume
        self._t0 = time.perf_counter()

    def create(self, cfg: Any) -> RunDir:
        """Make the run's folders and write `cfg` as its config.yaml (after `check` accepted it)."""
        valid = "choose an --out in a folder you can write to"
        files.make_dir(self.root, "run folder", valid)
        files.make_dir(self.checkpoints, "run folder", valid)
        files.make_dir(self.samples, "run folder", valid)
        files.write_text_atomic(self.config_path, configlib.dump(cfg), "run config", valid)
        return self

    def check(self, cfg: Any) -> RunDir:
        """Refuse `cfg` if this directory holds a started run of another config; writes nothing
        (every rank under torchrun calls it).

        A run has started once it has a checkpoint. A directory without one holds a run that
        failed before its first step (a typo in data.path, say), and the corrected config simply
        replaces it. A started run may change only RESUMABLE_CHANGES; if `train.steps` grows and
        `train.schedule_steps` is not given, `cfg` keeps the run's horizon (LoopConfig): resuming
        longer extends training at the schedules' final values, it does not restart them."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"--out {str(self.root)!r} is a file; give a directory for the run")
        if not self.config_path.exists() or self.latest_checkpoint() is None:
            return self
        try:
            old = configlib.read_yaml(self.config_path)
        except UserError:
            return self
        old_train = old.get("train") if isinstance(old.get("train"), dict) else {}
        horizon = old_train.get("schedule_steps") or old_train.get("steps")
        inherit = cfg.train.schedule_steps == 0 and isinstance(horizon, int) and horizon != cfg.train.steps
        if inherit:
            cfg.train.schedule_steps = horizon
        resolved = configlib.to_dict(cfg)
        changed = [k for k in configlib.differences(old, resolved) if k not in RESUMABLE_CHANGES]
        if changed:
            k = changed[0]
            raise UserError(
                f"--out {str(self.root)!r} holds a run of another config ({k} is {_get(old, k)!r} there, "
                f"{_get(resolved, k)!r} now); choose a new --out, "
                f"or only change {', '.join(RESUMABLE_CHANGES)} to resume")
        return self

    def completed(self, steps: int, max_minutes: float = 0.0) -> dict | None:
        """The summary of a run that finished at least `steps` steps, or trained `max_minutes`
        of its time budget (so training it further has nothing to do), else None."""
        summary = self.read_summary()
        if summary is None or summary.get("status") != "completed" or self.latest_checkpoint() is None:
            return None
        done, trained = summary.get("steps"), summary.get("training_seconds")
        if isinstance(done, int) and done >= steps:
            return summary
        if max_minutes and isinstance(trained, (int, float)) and trained >= max_minutes * 60:
            return summary
        return None

    # ---- checkpoints -------------------------------------------------------------------
    def checkpoint_paths(self) -> list[Path]:
        if not self.checkpoints.is_dir():
            return []
        return sorted(p for p in self.checkpoints.iterdir() if _CKPT.match(p.name))

    def latest_checkpoint(self) -> Path | None:
        paths = self.checkpoint_paths()
        return paths[-1] if paths else None

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:09d}.safetensors"

    def prune_checkpoints(self, keep: int = KEEP_CHECKPOINTS) -> None:
        for p in self.checkpoint_paths()[:-keep]:
            p.unlink(missing_ok=True)

    # ---- metrics -----------------------------------------------------------------------
    def wall_seconds(self) -> float:
        return self.wall_offset + time.perf_counter() - self._t0

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop log lines written after the checkpoint so no step appears twice."""
        rows = self.read_metrics()
        kept = [r for r in rows if r["step"] <= step]
        if kept:
            self.wall_offset = max(number(r, "wall_seconds") for r in kept)
        files.write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept), "metrics file")

    def log(self, step: int, values: dict[str, float], kind: str = "train") -> dict:
        """Append one metrics row: `kind` "train" (the losses the loop logs) or "eval" (an evaluation)."""
        row = {"step": int(step), "kind": kind, "wall_seconds": round(self.wall_seconds(), 4)}
        row.update({k: _finite_or_none(v) for k, v in values.items()})
        files.append_text(self.metrics_path, json.dumps(row, default=_json_default) + "\n", "metrics file")
        tb = self._tensorboard()
        if tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    tb.add_scalar(k, v, step)
        return row

    def read_metrics(self) -> list[dict]:
        """The logged rows: JSON objects with an integer `step`. Other lines (one cut by a crash,
        bytes garbled on disk) are skipped, as a log reader should."""
        if not self.metrics_path.exists():
            return []
        text = files.read_bytes(self.metrics_path, "metrics file").decode("utf-8", errors="replace")
        rows = []
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool):
                rows.append(row)
        return rows

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but metrics.jsonl is the contract
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.root / "tb"))
        return self._tb or None

    def write_summary(self, status: str, steps: int, metrics: dict, **extra: Any) -> dict:
        summary = {"status": status, "steps": int(steps), "wall_seconds": round(self.wall_seconds(), 3),
                   **extra, "metrics": {k: _finite_or_none(v) for k, v in metrics.items()}}
        write_json_atomic(self.summary_path, summary, "run summary")
        return summary

    def read_summary(self) -> dict | None:
        """summary.json, or None when it is missing or unreadable (a run that has not ended)."""
        try:
            summary = json.loads(self.summary_path.read_bytes())
        except (OSError, ValueError):  # ValueError: bad JSON or bytes that are not UTF-8
            return None
        return summary if isinstance(summary, dict) else None

    def write_data_shape(self, shape: dict) -> None:
        """data.json: the training data's shape (data.config.shape_of), so that the run can be
        rebuilt and sampled without its data files."""
        if shape:
            write_json_atomic(self.root / "data.json", shape, "data shape")

    def read_data_shape(self) -> dict | None:
        try:
            shape = json.loads((self.root / "data.json").read_bytes())
        except (OSError, ValueError):
            return None  # a run from before data.json, or a garbled one: the data is loaded instead
        ok = isinstance(shape, dict) and all(
            k in ("dim", "shape") and (isinstance(v, int) or isinstance(v, list) and all(isinstance(x, int) for x in v))
            for k, v in shape.items())
        return shape if ok and shape else None

    def close(self) -> None:
        if self._tb:
            self._tb.close()


def number(row: dict, key: str) -> float:
    """row[key] if it is a finite number, else 0 (a metrics line edited or garbled by hand)."""
    v = row.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return 0.0


def _finite_or_none(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _get(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


class StopSignals:
    """Turns SIGINT/SIGTERM into a flag the training loop checks after each step, so the run
    saves a checkpoint and exits cleanly instead of dying mid-write."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # a second signal: the user insists
            raise KeyboardInterrupt
        self.received = signum
        print(f"\nfewlabels: received {signal.Signals(signum).name}; saving a checkpoint and stopping "
              "(send it again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Progress:
    """A tqdm bar with live losses on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, total: int, start: int, desc: str, every_seconds: float = 10.0):
        self.interactive = sys.stderr.isatty() and not os.environ.get("CI")
        self.total, self.step, self.desc = total, start, desc
        self.every, self._last = every_seconds, time.perf_counter()
        self.bar = None
        if self.interactive:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, leave=True)

    def update(self, step: int, values: dict[str, float] | None = None) -> None:
        if self.bar is not None:
            self.bar.update(step - self.step)
            if values:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
        elif values is not None and time.perf_counter() - self._last >= self.every:
            self._last = time.perf_counter()
            shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"{self.desc} step {step}/{self.total} {shown}", file=sys.stderr, flush=True)
        self.step = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
