"""Real-vs-real floors: a metric scored on real data against other, disjoint real data, the best
a model can hope for. One draw is noise (grid25's EMD floor ranges 0.21-0.35 over 12 draws), so a
floor is the mean and standard deviation over FLOOR_DRAWS independent draws. Floors are computed
once per dataset and protocol and cached: in memory for the process, and as a small JSON file in
the user's cache folder (FEWLABELS_CACHE, else $XDG_CACHE_HOME/fewlabels, else ~/.cache/fewlabels),
keyed by a hash of the dataset's contents and the protocol (sample counts, feature extractor)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

FLOOR_DRAWS = 10
FLOOR_VERSION = 2  # part of every cache key: bump it when the floor protocol changes

_MEMORY: dict[str, dict[str, float]] = {}


def cache_dir() -> Path:
    """FEWLABELS_CACHE if set, else $XDG_CACHE_HOME/fewlabels, else ~/.cache/fewlabels."""
    if os.environ.get("FEWLABELS_CACHE"):
        return Path(os.environ["FEWLABELS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fewlabels"


def fingerprint(*arrays: np.ndarray | None) -> str:
    """A short hash of arrays' shapes, dtypes and bytes: a dataset's identity in cache keys."""
    h = hashlib.sha1()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:20]


def summarize(draws: list[dict[str, float]]) -> dict[str, float]:
    """Over the draws: every key's mean (same name) and population std (`<key>_std`), and `draws`."""
    out: dict[str, float] = {}
    for k in draws[0]:
        values = np.array([d[k] for d in draws], np.float64)
        out[k], out[f"{k}_std"] = float(values.mean()), float(values.std())
    out["draws"] = len(draws)
    return out


def cached_floor(identity: dict, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
    """compute() once per `identity` (a JSON-able dict naming the data and the protocol): from
    memory, else from the disk cache, else computed and written there. An unreadable or foreign
    cache file is ignored and rewritten; a cache folder that cannot be written is skipped."""
    identity = {**identity, "version": FLOOR_VERSION}
    text = json.dumps(identity, sort_keys=True)
    key = hashlib.sha1(text.encode()).hexdigest()[:24]
    if key in _MEMORY:
        return dict(_MEMORY[key])
    path = cache_dir() / "floors" / f"{key}.json"
    floor = _read(path, identity)
    if floor is None:
        floor = compute()
        _write(path, {"identity": identity, "floor": floor})
    _MEMORY[key] = floor
    return dict(floor)


def _read(path: Path, identity: dict) -> dict[str, float] | None:
    try:
        stored = json.loads(path.read_text())
        floor = stored["floor"]
        ok = stored["identity"] == json.loads(json.dumps(identity)) and isinstance(floor, dict) and floor and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in floor.values())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return floor if ok else None


def _write(path: Path, content: dict) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(content, indent=1))
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half
    except OSError:  # a cache that cannot be written only costs time
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def clear_memory() -> None:
    """Forget the in-memory floors (the disk cache stays)."""
    _MEMORY.clear()


def mean_std(row: dict, key: str, digits: int = 4) -> str:
    """'mean ± std (n draws)' for a floor key in a metrics row ('mean' alone for older runs)."""
    if row.get(key) is None:
        return ""
    text = f"{row[key]:.{digits}g}"
    if row.get(f"{key}_std") is not None:
        text += f" ± {row[f'{key}_std']:.2g}"
        if row.get("real_draws"):
            text += f" ({int(row['real_draws'])} draws)"
    return text
