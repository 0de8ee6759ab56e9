"""YAML -> typed, validated configs.

A family describes its config as nested dataclasses whose defaults are the visible defaults;
a YAML file is a small diff over them. Unknown keys, wrong types and out-of-range values are
reported in one sentence naming the file, the key, the value and what is valid.

Range limits live in field metadata: ``field(default=..., metadata={"ge": 0, "lt": 1})``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from fewlabels import files
from fewlabels.errors import UserError


@dataclasses.dataclass
class LoopConfig:
    """The keys the one training loop reads (fewlabels.train); each family's `train` section
    extends it, and may give a key its own default with `loop_default`."""

    steps: int = dataclasses.field(default=10000, metadata={"ge": 1})  # what one step is: the family says
    log_every: int = dataclasses.field(default=100, metadata={"ge": 1})
    eval_every: int = dataclasses.field(default=2000, metadata={"ge": 0})  # 0: only at the end
    snapshot_every: int = dataclasses.field(default=1000, metadata={"ge": 0})  # 0: only at the end
    checkpoint_every: int = dataclasses.field(default=2000, metadata={"ge": 1})
    threads: int = dataclasses.field(default=1, metadata={"ge": 0})  # torch threads; 0 = torch's default


def loop_default(name: str, value: int) -> Any:
    """A family's own default for a LoopConfig key, keeping the key's valid range."""
    base = {f.name: f for f in dataclasses.fields(LoopConfig)}[name]
    return dataclasses.field(default=value, metadata=base.metadata)


# family name -> "module:ConfigClass"; imported lazily so `fewlabels --version` stays fast.
FAMILIES: dict[str, str] = {
    "gan": "fewlabels.gan.config:GANConfig",
    "diffusion": "fewlabels.diffusion.config:DiffusionConfig",
    "tabular": "fewlabels.rl.tabular.config:TabularConfig",
    "dqn": "fewlabels.rl.deep.config:DQNConfig",
    "pg": "fewlabels.rl.deep.config:PGConfig",
}


def family_config_class(family: str, source: str) -> type:
    if family not in FAMILIES:
        raise UserError(f"{source}: family {family!r} is unknown; valid: {', '.join(sorted(FAMILIES))}.")
    module, name = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), name)


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}valid keys: {', '.join(valid)}"


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return value as type tp, or raise UserError naming `where` and what is valid."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0])
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise UserError(f"{where} is {value!r}; valid: {', '.join(map(repr, choices))}")
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} is {value!r}; expected a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{where} is {value!r}; expected a list of {len(args)} values")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where} is {value!r}; expected a mapping of keys")
        return _build(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} is {value!r}; expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"{where} is {value!r}; expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{where} is {value!r}; expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where} is {value!r}; expected a string")
    return value


_RANGES = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
           "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


# Every key named `seed` seeds NumPy's legacy generator somewhere (np.random.seed: 0 .. 2**32 - 1).
SEED_RANGE = {"ge": 0, "le": 2**32 - 1}


def _check_range(value: Any, f: dataclasses.Field, where: str) -> None:
    if value is None or not isinstance(value, (int, float)):
        return
    limits = f.metadata or (SEED_RANGE if f.name == "seed" else {})
    for key, (_, ok) in _RANGES.items():
        if key in limits and not ok(value, limits[key]):
            bounds = " and ".join(f"{s} {limits[k]}" for k, (s, _) in _RANGES.items() if k in limits)
            raise UserError(f"{where} is {value!r}; valid values are {bounds}")


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise UserError(f"unknown key {where!r}; {_suggest(str(key), list(fields))}")
        kwargs[key] = _coerce(value, hints[key], where)
        _check_range(kwargs[key], fields[key], where)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check()
    return obj


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r} is not of the form key=value (e.g. train.steps=2000)")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise UserError(f"--set {item!r}: the value is not valid YAML ({str(e).splitlines()[0]}); "
                            "quote a string, e.g. key='a: b'") from e
    return data


CONFIG_HINT = "give a UTF-8 YAML file such as configs/gan/grid25_best.yaml"


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file; one sentence naming the file for anything else."""
    path = Path(path)
    text = files.read_text(path, "config file", CONFIG_HINT)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"config file {str(path)!r} is not valid YAML ({str(e).splitlines()[0]})") from e
    except RecursionError as e:  # thousands of nested brackets
        raise UserError(f"config file {str(path)!r} is nested too deeply to be a config; {CONFIG_HINT}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data


def from_dict(data: dict, source: str = "config") -> Any:
    """Build the typed config of ``data['family']``; errors name ``source``."""
    family = data.get("family")
    if not isinstance(family, str):
        said = "is missing" if family is None else f"is {family!r}"
        raise UserError(f"{source}: the key 'family' {said}; valid: {', '.join(sorted(FAMILIES))}")
    cls = family_config_class(family, source)
    try:
        return _build(cls, data, "")
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


SHIPPED = Path(__file__).resolve().parents[2] / "configs"  # the configs/ folder of a checkout


def load_shipped(relative: str, overrides: list[str] | None = None) -> Any:
    """A shipped config by its path under configs/ (e.g. "gan/grid25_best.yaml")."""
    path = SHIPPED / relative
    if not path.is_file():
        raise UserError(f"shipped config {str(path)!r} is missing; run from a checkout of fewlabels")
    return load(path, overrides)


def load(path: str | Path, overrides: list[str] | None = None) -> Any:
    data = apply_overrides(read_yaml(path), overrides or [])
    return from_dict(data, str(path))


def to_dict(cfg: Any) -> dict:
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def dump(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        where = f"{prefix}.{key}" if prefix else key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, where)
        elif va != vb:
            out.append(where)
    return out
