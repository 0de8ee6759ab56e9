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

from fewlabels.errors import UserError

# family name -> "module:ConfigClass"; imported lazily so `fewlabels --version` stays fast.
FAMILIES: dict[str, str] = {
    "gan": "fewlabels.gan.config:GANConfig",
    "diffusion": "fewlabels.diffusion.config:DiffusionConfig",
    "tabular": "fewlabels.rl.config:TabularConfig",
    "dqn": "fewlabels.rl.config:DQNConfig",
    "pg": "fewlabels.rl.config:PGConfig",
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


def _check_range(value: Any, f: dataclasses.Field, where: str) -> None:
    if value is None or not isinstance(value, (int, float)):
        return
    for key, (_, ok) in _RANGES.items():
        if key in f.metadata and not ok(value, f.metadata[key]):
            bounds = " and ".join(f"{s} {f.metadata[k]}" for k, (s, _) in _RANGES.items() if k in f.metadata)
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
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist; "
                        "pass a YAML file such as configs/gan/grid25_best.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"config file {str(path)!r} is not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data


def from_dict(data: dict, source: str = "config") -> Any:
    """Build the typed config of ``data['family']``; errors name ``source``."""
    family = data.get("family")
    if family is None:
        raise UserError(f"{source}: the key 'family' is missing; valid: {', '.join(sorted(FAMILIES))}")
    cls = family_config_class(family, source)
    try:
        return _build(cls, data, "")
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


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
