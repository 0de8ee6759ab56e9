"""Hostile input, fuzzed: seeded random mutations of the shipped configs and of the files a run
reads (a data file, a checkpoint, a run's config.yaml and metrics), plus odd command lines, each
through the real CLI (`fewlabels.cli.main` in this process). Every case must end in exit code 0
or 2 with no traceback; a failure names the mutation so it can be replayed.

Cheap configs (2D GAN and diffusion, tabular RL, CartPole) train for 2 steps with small
evaluations; the expensive ones (images, Atari, MuJoCo) are mutated at config-validation level
only (`config.load`, the CLI's first step), where the same rule holds: a config or UserError.
"""

from __future__ import annotations

import copy
import io
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fewlabels import config as configlib
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.run import RunDir

SEED = 20240611
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SMALL_2D = ["eval.samples=100", "eval.emd_points=50"]
# Configs cheap enough to train for 2 steps, with the --set keys that keep their evaluation small.
TRAINABLE = {
    "gan/ring8_best.yaml": SMALL_2D,
    "gan/grid25_wgan_gp.yaml": SMALL_2D,
    "gan/circle_gan.yaml": SMALL_2D,
    "diffusion/swissroll.yaml": SMALL_2D + ["schedule.T=20"],  # the report samples the whole chain
    "rl/cliff_q_learning.yaml": ["eval.episodes=1"],
    "rl/taxi_q_learning.yaml": ["eval.episodes=1"],
    "rl/cartpole_ppo.yaml": ["eval.episodes=1"],
    "rl/cartpole_dqn.yaml": ["eval.episodes=1"],
    "rl/cartpole_reinforce.yaml": ["eval.episodes=1"],
}
VALIDATION_ONLY = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml")
                         if str(p.relative_to(CONFIGS)) not in TRAINABLE)
# Values a hostile (or careless) user might put anywhere. Huge numbers are astronomically huge, so
# that they fail at once rather than allocate for minutes.
JUNK_VALUES = ["junk", "", "1e-3", "-1", None, True, False, 0, -1, -7.5, 0.5, 10**30, -(10**30), 1e308, -1e308,
               math.inf, -math.inf, math.nan, [], [1, 2, 3], ["a"], {}, {"x": 1}]


# ---- mutations of a config -------------------------------------------------------------------------
def _paths(node, prefix=()) -> list[tuple]:
    """Every key path in a nested dict, sections and leaves alike."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    return out


def _parent(data: dict, path: tuple) -> dict:
    for k in path[:-1]:
        data = data[k]
    return data


def mutate_tree(data: dict, rng: random.Random) -> tuple[object, str]:
    """A structurally hostile copy of a config (and its description)."""
    data = copy.deepcopy(data)
    paths = _paths(data)
    # "edge" gives values of the right type at the edges of what may be valid, so that many
    # mutations get past validation and into training, where a traceback would hide.
    op = rng.choice(["delete", "rename", "retype", "retype", "scale", "edge", "edge", "edge", "section", "add", "top"])
    path = rng.choice(paths)
    parent, key = _parent(data, path), path[-1]
    where = ".".join(map(str, path))
    if op == "delete":
        del parent[key]
        return data, f"delete {where}"
    if op == "rename":
        new = rng.choice([key + "s", key[:-1], key.upper(), f"{key}_", 7])
        parent[new] = parent.pop(key)
        return data, f"rename {where} -> {new!r}"
    if op == "retype":
        parent[key] = rng.choice(JUNK_VALUES)
        return data, f"set {where} = {parent[key]!r}"
    if op == "edge":
        numbers = [p for p in paths if type(_parent(data, p)[p[-1]]) in (int, float, bool)]
        if numbers:
            path = rng.choice(numbers)
            parent, key, where = _parent(data, path), path[-1], ".".join(map(str, path))
        value = parent[key]
        if isinstance(value, bool):
            parent[key] = not value
        elif isinstance(value, int):
            parent[key] = rng.choice([0, 1, 2, 3, value * 2, max(1, value // 10)])
        else:
            parent[key] = rng.choice([0.0, 1.0, 1e-12, 0.999999, value * 10, value / 10])
        return data, f"set {where} = {parent[key]!r} (edge)"
    if op == "scale":
        numbers = [p for p in paths if isinstance(_parent(data, p)[p[-1]], (int, float))]
        if numbers:
            path = rng.choice(numbers)
            parent, key, where = _parent(data, path), path[-1], ".".join(map(str, path))
        factor = rng.choice([-1, 0, 1e9, -1e9, 1.5])
        value = parent[key] if isinstance(parent[key], (int, float)) else 1
        parent[key] = value * factor
        return data, f"scale {where} by {factor} -> {parent[key]!r}"
    if op == "section":
        sections = [p for p in paths if isinstance(_parent(data, p)[p[-1]], dict)] or [path]
        path = rng.choice(sections)
        value = rng.choice([[], "x", 5, None, [{"a": 1}]])
        _parent(data, path)[path[-1]] = value
        return data, f"section {'.'.join(map(str, path))} = {value!r}"
    if op == "add":
        parent[f"unknown_{rng.randrange(100)}"] = rng.choice(JUNK_VALUES)
        return data, f"add an unknown key beside {where}"
    value = rng.choice([[1, 2], "gan", 3, None, [data]])
    return value, f"the whole file = {str(value)[:40]}"


def mutate_bytes(text: str, rng: random.Random) -> tuple[bytes, str]:
    """A textually hostile copy of a YAML file (and its description)."""
    raw = text.encode()
    op = rng.choice(["truncate", "junk", "flip", "latin1", "utf16", "nul", "tab", "bom", "empty", "deep"])
    if op == "truncate":
        k = rng.randrange(len(raw))
        return raw[:k], f"truncate to {k} bytes"
    if op == "junk":
        k, junk = rng.randrange(len(raw)), bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        return raw[:k] + junk + raw[k:], f"insert {junk!r} at byte {k}"
    if op == "flip":
        out = bytearray(raw)
        spots = [rng.randrange(len(raw)) for _ in range(3)]
        for i in spots:
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), f"flip bits at bytes {spots}"
    if op == "latin1":
        return raw + "\n# réglage café\n".encode("latin-1"), "a Latin-1 comment (not UTF-8)"
    if op == "utf16":
        return text.encode("utf-16"), "the file in UTF-16"
    if op == "nul":
        k = rng.randrange(len(raw))
        return raw[:k] + b"\x00" + raw[k:], f"a NUL byte at {k}"
    if op == "tab":
        return raw.replace(b"\n", b"\n\t", 1), "a tab indenting a line"
    if op == "bom":
        return b"\xef\xbb\xbf" + raw, "a UTF-8 byte-order mark"
    if op == "empty":
        return b"", "an empty file"
    return b"a: " + b"[" * 1000, "1000 nested brackets"


def _config_cases(names: list[str], count: int, rng: random.Random) -> list[tuple[str, str, bytes]]:
    cases = []
    for _ in range(count):
        name = rng.choice(names)
        text = (CONFIGS / name).read_text()
        if rng.random() < 0.6:
            tree, what = mutate_tree(yaml.safe_load(text), rng)
            raw = yaml.safe_dump(tree, allow_unicode=True).encode()
        else:
            raw, what = mutate_bytes(text, rng)
        cases.append((name, what, raw))
    return cases


_rng = random.Random(SEED)
TRAIN_CASES = _config_cases(sorted(TRAINABLE), 36, _rng)
VALIDATION_CASES = _config_cases(VALIDATION_ONLY, 40, _rng)


# ---- running the CLI ---------------------------------------------------------------------------------
def run_cli(capsys, argv: list, what: str) -> int:
    """main(argv) must return 0 or 2 without a traceback; anything else fails naming `what`."""
    argv = [str(a) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    except BaseException as e:  # noqa: BLE001 - the point of the test: nothing may escape
        pytest.fail(f"{what}: `fewlabels {' '.join(argv)}` raised {type(e).__name__}: {e}")
    finally:
        torch.set_num_threads(1)  # a mutated train.threads must not slow the cases after it
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err, f"{what}: exit {code}, stderr:\n{err}"
    if code == 2:
        assert err.strip().splitlines()[-1].startswith(("fewlabels: error: ", "fewlabels: ")) or "usage:" in err, \
            f"{what}: exit 2 without a one-line error:\n{err}"
    return code


def train_argv(cfg: Path, out: Path, name: str) -> list:
    argv = ["train", str(cfg), "--out", str(out), "--device", "cpu", "--set", "train.steps=2"]
    for item in TRAINABLE[name]:
        argv += ["--set", item]
    return argv


@pytest.mark.parametrize("case", range(len(TRAIN_CASES)))
def test_mutated_config_trains_or_is_refused_in_one_sentence(case, tmp_path, capsys):
    name, what, raw = TRAIN_CASES[case]
    cfg = tmp_path / Path(name).name
    cfg.write_bytes(raw)
    run_cli(capsys, train_argv(cfg, tmp_path / "run", name), f"{name}: {what}")


@pytest.mark.parametrize("case", range(len(VALIDATION_CASES)))
def test_mutated_expensive_config_loads_or_is_refused_in_one_sentence(case, tmp_path):
    name, what, raw = VALIDATION_CASES[case]
    cfg = tmp_path / Path(name).name
    cfg.write_bytes(raw)
    try:
        configlib.load(cfg)
    except UserError as e:
        assert "\n" not in str(e), f"{name}: {what}: a multi-line error: {e}"
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{name}: {what}: config.load raised {type(e).__name__}: {e}")


# ---- mutations of the files a run reads ----------------------------------------------------------
def _points_cases(rng: random.Random) -> list[tuple[str, str, bytes]]:
    pts = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, pts)
    good_npy = buf.getvalue()
    good_csv = "\n".join(f"{a},{b}" for a, b in pts).encode()
    cases = []
    for _ in range(14):
        suffix = rng.choice([".npy", ".csv"])
        raw = good_npy if suffix == ".npy" else good_csv
        op = rng.choice(["truncate", "flip", "junk", "empty", "text", "shape", "latin1"])
        if op == "truncate":
            k = rng.randrange(len(raw))
            raw, what = raw[:k], f"truncated to {k} bytes"
        elif op == "flip":
            out, spots = bytearray(raw), [rng.randrange(min(len(raw), 140)) for _ in range(2)]
            for i in spots:
                out[i] ^= 1 << rng.randrange(8)
            raw, what = bytes(out), f"bits flipped at {spots}"
        elif op == "junk":
            raw, what = bytes(rng.randrange(256) for _ in range(300)), "300 random bytes"
        elif op == "empty":
            raw, what = b"", "empty"
        elif op == "text":
            raw, what = b"x,y\n" + raw if suffix == ".csv" else b"hello", "text where numbers belong"
        elif op == "shape":
            buf = io.BytesIO()
            np.save(buf, rng.choice([pts[:, 0], pts[None], pts[:5], pts.astype(str)]))
            raw, what = (buf.getvalue() if suffix == ".npy" else b"1,2,3\n4,5\n"), "a wrong shape"
        else:
            raw, what = (raw + "\n# café".encode("latin-1")), "a Latin-1 byte at the end"
        cases.append((suffix, what, raw))
    return cases


POINT_CASES = _points_cases(random.Random(SEED + 1))


@pytest.mark.parametrize("case", range(len(POINT_CASES)))
def test_mutated_data_file_trains_or_is_refused(case, tmp_path, capsys):
    suffix, what, raw = POINT_CASES[case]
    data = tmp_path / f"points{suffix}"
    data.write_bytes(raw)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"family": "gan", "data": {"name": "file", "path": str(data)},
                                   "model": {"width": 16, "depth": 1}, "train": {"batch_size": 16}}))
    run_cli(capsys, train_argv(cfg, tmp_path / "run", "gan/ring8_best.yaml"), f"data file {suffix}: {what}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(config, run directory) of a 2-step ring8 run with one checkpoint."""
    folder = tmp_path_factory.mktemp("fuzz_run")
    cfg = folder / "c.yaml"
    cfg.write_text(yaml.safe_dump({"family": "gan", "data": {"name": "ring8"}, "model": {"width": 16, "depth": 1},
                                   "train": {"batch_size": 16, "snapshot_every": 0}}))
    assert main(train_argv(cfg, folder / "run", "gan/ring8_best.yaml")) == 0
    return cfg, folder / "run"


def _fresh_copy(trained, tmp_path) -> tuple[Path, Path]:
    cfg, run = trained
    shutil.copytree(run, tmp_path / "run")
    return cfg, tmp_path / "run"


COMMANDS = [
    lambda cfg, run, out: ["sample", run, "--n", 7, "--out", out / "s.npy", "--device", "cpu"],
    lambda cfg, run, out: ["eval", run, "--device", "cpu"],
    lambda cfg, run, out: train_argv(cfg, run, "gan/ring8_best.yaml") + ["--set", "train.steps=3"],
]


def _checkpoint_cases(rng: random.Random) -> list[tuple[str, int]]:
    ops = ["flip-header", "flip-header", "flip-body", "truncate", "empty", "junk", "folder", "tree"]
    return [(rng.choice(ops), rng.randrange(1 << 30)) for _ in range(12)]


CHECKPOINT_CASES = _checkpoint_cases(random.Random(SEED + 2))


def damage_checkpoint(path: Path, op: str, rng: random.Random) -> str:
    raw = path.read_bytes()
    header = 8 + int.from_bytes(raw[:8], "little")
    if op in ("flip-header", "flip-body"):
        lo, hi = (0, header) if op == "flip-header" else (header, len(raw))
        out, spots = bytearray(raw), [rng.randrange(lo, hi) for _ in range(2)]
        for i in spots:
            out[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(out))
        return f"checkpoint bits flipped at {spots} (header ends at {header})"
    if op == "truncate":
        k = rng.randrange(len(raw))
        path.write_bytes(raw[:k])
        return f"checkpoint truncated to {k} bytes"
    if op == "empty":
        path.write_bytes(b"")
        return "checkpoint empty"
    if op == "junk":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(1000)))
        return "checkpoint replaced by 1000 random bytes"
    if op == "folder":
        path.unlink()
        path.mkdir()
        return "checkpoint replaced by a folder"
    # A header that still parses but whose tree names a tensor that is not there.
    text = raw[8:header].decode()
    renamed = text.replace('{\\"__tensor__\\": \\"/experiment', '{\\"__tensor__\\": \\"/gone', 1)
    assert renamed != text
    blob = renamed.encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + raw[header:])
    return "checkpoint tree names a missing tensor"


@pytest.mark.parametrize("case", range(len(CHECKPOINT_CASES)))
def test_damaged_checkpoint_is_used_or_refused_and_kept(case, trained, tmp_path, capsys):
    op, seed = CHECKPOINT_CASES[case]
    rng = random.Random(seed)
    cfg, run = _fresh_copy(trained, tmp_path)
    ckpt = RunDir(run).latest_checkpoint()
    what = damage_checkpoint(ckpt, op, rng)
    before = ckpt.read_bytes() if ckpt.is_file() else None
    command = rng.choice(COMMANDS)(cfg, run, tmp_path)
    code = run_cli(capsys, command, what)
    if code == 2:  # refused: the damaged file is left for the user to inspect, not replaced
        assert (ckpt.read_bytes() if ckpt.is_file() else None) == before, what


RUN_FILE_CASES = [(i, name) for i, name in enumerate(["config.yaml"] * 8 + ["metrics.jsonl"] * 3 + ["summary.json"])]


@pytest.mark.parametrize("case", range(len(RUN_FILE_CASES)))
def test_damaged_run_file_is_used_or_refused(case, trained, tmp_path, capsys):
    i, name = RUN_FILE_CASES[case]
    rng = random.Random(SEED + 3 + i)
    cfg, run = _fresh_copy(trained, tmp_path)
    path = run / name
    text = path.read_text()
    if name == "config.yaml" and rng.random() < 0.5:
        tree, what = mutate_tree(yaml.safe_load(text), rng)
        path.write_text(yaml.safe_dump(tree))
    elif name == "metrics.jsonl":
        path.write_bytes(text.encode() + rng.choice([b"[1, 2]\n", b'{"step": "x", "wall_seconds": "y"}\n',
                                                     b"\xff\xfe garbage\n", b'{"step": 1, "eval_seconds": "z"}\n']))
        what = "a hostile line appended"
    else:
        raw, what = mutate_bytes(text, rng)
        path.write_bytes(raw)
    command = rng.choice(COMMANDS)(cfg, run, tmp_path)
    run_cli(capsys, command, f"{name}: {what}")


ODD_COMMANDS = [
    ["sample", "{run}", "--n", "0", "--out", "{tmp}/s.npy"],
    ["sample", "{run}", "--n", "-3", "--out", "{tmp}/s.npy"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}/nodir/s.npy"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}/s.txt"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}/s.npy", "--seed", "-1"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}/s.npy", "--seed", str(2**70)],
    ["sample", "{run}", "--n", "five", "--out", "{tmp}/s.npy"],
    ["sample", "{run}", "--n", "5", "--out", "{tmp}/s.npy", "--device", "tpu"],
    ["sample", "{tmp}/no_run", "--n", "5", "--out", "{tmp}/s.npy"],
    ["eval", "{run}", "--set", "train.steps=5"],
    ["eval", "{run}", "--set", "eval.samples=-1"],
    ["eval", "{run}", "--set", "eval.samples=["],
    ["eval", "{run}", "--set", "novalue"],
    ["eval", "{run}", "--episodes", "-2"],
    ["train", "{cfg}", "--out", "{cfg}/run"],
    ["train", "{cfg}", "--out", "{tmp}/r", "--seed", str(2**70), "--set", "train.steps=2"] + [
        a for item in SMALL_2D for a in ("--set", item)],
    ["train", "{tmp}", "--out", "{tmp}/r"],
    ["train", "{cfg}", "--set", "train=3", "--out", "{tmp}/r"],
    ["train", "{cfg}", "--set", "seed=-1", "--out", "{tmp}/r"],
    ["train", "{cfg}", "--set", "train.steps=[[[", "--out", "{tmp}/r"],
    ["plan", "--rows", "0", "--json"],
    ["plan", "--terminals", "a,b", "--json"],
    ["plan", "--slip", "2", "--json"],
    ["plan", "--gamma", "-1", "--json"],
    ["plan", "--env", "NoSuchEnv-v0", "--json"],
    ["demo", "--out", "{cfg}/demo", "--quick"],
]


@pytest.mark.parametrize("case", range(len(ODD_COMMANDS)))
def test_odd_command_line_runs_or_is_refused(case, trained, tmp_path, capsys):
    cfg, run = _fresh_copy(trained, tmp_path)
    argv = [a.format(run=run, tmp=tmp_path, cfg=cfg) for a in ODD_COMMANDS[case]]
    run_cli(capsys, argv, "odd command line")
