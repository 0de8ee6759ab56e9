"""Atomic checkpoints: one safetensors file per checkpoint, nothing ever unpickled.

A training state is a nested structure of dicts, lists, numbers, strings and tensors (model
and optimiser state dicts, RNG states, the step). `save` splits it into the tensors, stored
as safetensors, and the rest, stored as JSON in the safetensors header, where each tensor
leaf is replaced by {"__tensor__": key}. `load` reverses it. The file is written to a
temporary name, fsynced and renamed, so a crash never leaves a half-written checkpoint
under a real name.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from fewlabels import files
from fewlabels.errors import UserError

FORMAT = "fewlabels-checkpoint-1"


def _split(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = path or "root"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return _split(torch.from_numpy(np.ascontiguousarray(obj)), tensors, path)
    if isinstance(obj, dict):
        return {"__dict__": [[k, _split(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_split(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        return {k: _join(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def save(path: str | Path, state: dict, info: dict) -> Path:
    """Write `state` atomically to `path`. `info` (family, model signature, step) is stored
    beside it in the header so a checkpoint can be checked before it is used."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, tensors, "")
    meta = {"format": FORMAT, "info": json.dumps(info), "tree": json.dumps(tree)}
    blob = st_save(tensors, metadata=meta)
    return files.write_bytes_atomic(path, blob, "checkpoint", "free disk space or choose another --out; "
                                    "the previous checkpoints are kept", durable=True)


def read_info(path: str | Path) -> dict:
    """The header info of a checkpoint; UserError if it is not a readable fewlabels checkpoint."""
    return _open(Path(path))[0]


def _open(path: Path) -> tuple[dict, dict, dict]:
    with files.user_file(path, "checkpoint"), open(path, "rb"):
        pass  # missing, a folder, no permission: one sentence from files, before safetensors words it its way
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise UserError(f"checkpoint {str(path)!r} is not a fewlabels checkpoint (no {FORMAT!r} header); "
                                "point to a file written by `fewlabels train`")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info, tree = json.loads(meta["info"]), json.loads(meta["tree"])
        if not isinstance(info, dict):
            raise ValueError("its info is not a mapping")
        return info, tree, tensors
    except UserError:
        raise
    except Exception as e:  # safetensors raises several types for truncated or garbled files
        raise _corrupt(path, e) from e


def _corrupt(path: Path, e: Exception) -> UserError:
    return UserError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(e).__name__}); "
                     "delete it (older checkpoints beside it are used instead) or start a new --out")


def load(path: str | Path, expect: dict | None = None) -> tuple[dict, dict]:
    """Return (state, info). `expect` holds info keys that must match (family, signature):
    a checkpoint of another model is refused in one sentence naming what differs."""
    path = Path(path)
    info, tree, tensors = _open(path)
    for key, want in (expect or {}).items():
        got = info.get(key)
        if got != want:
            raise UserError(f"checkpoint {str(path)!r} belongs to another model: its {key} is {_short(got)}, "
                            f"this config needs {_short(want)}; use a new --out or the config that wrote it")
    try:
        return _join(tree, tensors), info
    except (KeyError, TypeError, ValueError) as e:  # a header that parses but does not describe its tensors
        raise _corrupt(path, e) from e


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else repr(v)
    return s if len(s) < 120 else s[:117] + "..."


def model_signature(*modules: torch.nn.Module | None) -> str:
    """A readable description of parameter names and shapes: equal iff architectures match."""
    parts = []
    for i, m in enumerate(modules):
        if m is None:
            continue
        for name, t in m.state_dict().items():
            parts.append(f"{i}.{name}:{'x'.join(map(str, t.shape))}")
    return ";".join(parts)


def rng_state() -> dict:
    """Every random number generator a run draws from, so a resumed run is bitwise equal."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": keys, "numpy_rest": [int(pos), int(has_gauss), float(gauss)],
             "python": list(internal), "python_gauss": gauss_next}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss, gauss = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
