"""YAML -> typed, validated configs.

A family describes its config as nested dataclasses whose defaults are the visible defaults;
a YAML file is a small diff over them. Unknown keys, wrong types and out-of-range values are
reported in one sentence naming the file, the key, the value and what is valid.

Range limits live in field metadata: ``field(default=..., metadata={"ge": 0, "lt": 1})``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from fewlabels import files
from fewlabels.errors import UserError


@dataclasses.dataclass
class LoopConfig:
    """The keys the one training loop reads (fewlabels.loop); each family's `train` section
    extends it, and may give a key its own default with `loop_default`."""

    steps: int = dataclasses.field(default=10000, metadata={"ge": 1})  # what one step is: the family says
    log_every: int = dataclasses.field(default=100, metadata={"ge": 1})
    eval_every: int = dataclasses.field(default=2000, metadata={"ge": 0})  # 0: only at the end
    snapshot_every: int = dataclasses.field(default=1000, metadata={"ge": 0})  # 0: only at the end
    checkpoint_every: int = dataclasses.field(default=2000, metadata={"ge": 1})
    threads: int = dataclasses.field(default=1, metadata={"ge": 0})  # torch threads; 0 = torch's default
    # The horizon of every schedule (learning-rate decay, PPO's clip, DQN's and tabular ε and α);
    # 0: train.steps. Fixed when a run starts: a run extended with a larger train.steps keeps it,
    # so its schedules hold their final values beyond it instead of jumping back (run.py).
    schedule_steps: int = dataclasses.field(default=0, metadata={"ge": 0})
    # A budget of training time (wall time less evaluation), for comparisons at equal time; 0: none.
    # The run ends at the first step past it, as if train.steps had been reached there.
    max_minutes: float = dataclasses.field(default=0.0, metadata={"ge": 0})

    @property
    def horizon(self) -> int:
        """The steps over which schedules run: `schedule_steps`, or `steps` when that is 0."""
        return self.schedule_steps or self.steps


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
    "go": "fewlabels.rl.go.config:GoConfig",
    "ssl": "fewlabels.ssl.config:SSLConfig",
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
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"config file {str(path)!r} is not valid YAML{where}: {what}") from e
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


SHIPPED = Path(__file__).resolve().parent / "configs"  # packaged with the library (configs/ in a checkout)


def shipped_configs() -> dict[str, str]:
    """Every shipped config by name ("gan/grid25_best") with the first sentence of its leading comment."""
    out = {}
    for path in sorted(SHIPPED.glob("*/*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        comment = " ".join(line.lstrip("#").strip() for line in lines[:next(
            (i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))])
        # the first sentence: up to a full stop before a capital ("et al. 2017" goes on)
        out[f"{path.parent.name}/{path.stem}"] = re.split(r"\.\s+(?=[A-Z])", comment, maxsplit=1)[0].rstrip(".")
    return out


def find_config(name: str | Path) -> Path:
    """A config file's path: `name` itself if it is a file, else the shipped config of that name
    ("gan/grid25_best", with or without .yaml). One sentence otherwise."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = SHIPPED / (str(name) if str(name).endswith(".yaml") else f"{name}.yaml")
    if not path.is_absolute() and ".." not in path.parts and shipped.is_file():
        return shipped
    if path.is_dir():
        raise UserError(f"config {str(name)!r} is a folder; give a YAML file in it, or a shipped config "
                        "(`fewlabels configs` lists them)")
    close = difflib.get_close_matches(str(name).removesuffix(".yaml"), list(shipped_configs()), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if path.suffix in (".yaml", ".yml") or path.is_absolute():
        raise UserError(f"config file {str(name)!r} does not exist; {hint}give a YAML file, or a shipped config "
                        "by name (`fewlabels configs` lists them)")
    raise UserError(f"config {str(name)!r} is neither a file nor a shipped config; {hint}"
                    "`fewlabels configs` lists the shipped ones (e.g. gan/grid25_best)")


def load_shipped(relative: str, overrides: list[str] | None = None) -> Any:
    """A shipped config by its name under configs/ (e.g. "gan/grid25_best.yaml")."""
    return load(find_config(relative), overrides)


def resolve_paths(cls: type, data: dict, base: Path) -> dict:
    """Make the relative file and folder names in `data` (fields with metadata {"path": True})
    absolute against `base`, in place, so that a run keeps working from any directory."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = data.get(f.name)
        if isinstance(value, dict) and dataclasses.is_dataclass(hints[f.name]):
            resolve_paths(hints[f.name], value, base)
        elif f.metadata.get("path") and isinstance(value, str) and value:
            path = Path(value).expanduser()
            data[f.name] = str(path if path.is_absolute() else Path(os.path.normpath(base / path)))
    return data


def load(path: str | Path, overrides: list[str] | None = None) -> Any:
    """The typed config of a YAML file with `overrides` (KEY=VALUE) applied. Relative paths in the
    file are taken from the file's folder, those given in `overrides` from the current directory
    (where they were typed); the config holds them absolute."""
    path = find_config(path)
    data = read_yaml(path)
    family = data.get("family")
    cls = family_config_class(family, str(path)) if isinstance(family, str) and family in FAMILIES else None
    if cls is not None:
        resolve_paths(cls, data, Path(path).resolve().parent)
    if not overrides:
        return from_dict(data, str(path))
    as_written = copy.deepcopy(data)
    apply_overrides(data, overrides)
    if cls is not None:
        resolve_paths(cls, data, Path.cwd())
    try:
        return from_dict(data, str(path))
    except UserError:
        from_dict(as_written, str(path))  # the file's own error, if it has one, names the file
        # Valid as written: name the first --set after which it is not.
        for i, item in enumerate(overrides):
            data = apply_overrides(copy.deepcopy(as_written), overrides[:i + 1])
            if cls is not None:
                resolve_paths(cls, data, Path.cwd())
            from_dict(data, f"--set {item!r}")
        raise


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
