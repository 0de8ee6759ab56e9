import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

os.environ.setdefault("CI", "true")  # quiet progress bars in tests
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the two cores: every run, BLAS call and subprocess keeps to one thread, or
    # their OpenMP threads spin against each other (a demo test took 975 s instead of 60).
    os.environ.setdefault("FEWLABELS_MAX_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
# Real-vs-real floors are cached on disk; tests keep theirs out of the user's ~/.cache/fewlabels.
os.environ.setdefault("FEWLABELS_CACHE", tempfile.mkdtemp(prefix="fewlabels-test-cache-"))
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items):
    """Longest tests first, by their `slow(seconds=...)` mark (measured on one core): with two
    pytest-xdist workers handed tests two at a time (`--maxschedchunk 2`, see the Makefile), the
    long ones start at once on both workers and the short ones fill in behind them, so the run
    does not end with one worker idle while the other finishes a long test it got last."""

    def seconds(item) -> float:
        mark = item.get_closest_marker("slow")
        return float(mark.kwargs.get("seconds", 30)) if mark else 0.0

    items.sort(key=seconds, reverse=True)  # stable: the rest keep their order


def merge_into_yaml(path: Path, base: dict, sections: dict) -> Path:
    """Write `base` with `sections` merged in key by key (dict sections update, others replace)."""
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_config(path: Path, **sections) -> Path:
    """A small GAN config; sections override the defaults below key by key."""
    base = {"family": "gan", "name": "test", "data": {"name": "ring8"},
            "model": {"width": 32, "depth": 2},
            "train": {"steps": 200, "batch_size": 64, "log_every": 50, "snapshot_every": 100,
                      "checkpoint_every": 100},
            "eval": {"samples": 500, "emd_points": 200}}
    return merge_into_yaml(path, base, sections)


def final_state(out):
    """(experiment state, step) of a run's newest checkpoint."""
    from fewlabels import checkpoint
    from fewlabels.run import RunDir

    state, info = checkpoint.load(RunDir(out).latest_checkpoint())
    return state["experiment"], info["step"]


def assert_bitwise_equal(a, b, path=""):
    """Nested states (dicts, lists, tensors, numbers) are identical, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_bitwise_equal(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_bitwise_equal(x, y, f"{path}/{i}")
    else:
        assert a == b, path


def train_cmd(cfg, out):
    return [PYTHON, "-m", "fewlabels", "train", str(cfg), "--out", str(out), "--device", "cpu"]


def interrupt_mid_run(cfg, out, log_lines: int = 8) -> int:
    """Start `fewlabels train`, send SIGTERM once `log_lines` metrics lines exist, check the
    run exits 128 + SIGTERM after checkpointing, and return the step it stopped at."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(train_cmd(cfg, out), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = Path(out) / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not metrics.exists() or metrics.read_text().count("\n") < log_lines):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    return final_state(out)[1]


def train_killed_at_step(monkeypatch, cls, step: int, argv: list[str]) -> None:
    """Run `fewlabels <argv>` in this process with SIGTERM raised as `cls.train_step` begins
    update `step`; check it exits 128 + SIGTERM, then resume the same command to its end."""
    import os
    import signal

    from fewlabels.cli import main

    original = cls.train_step

    def interrupted(self, at):
        if at == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, at)

    monkeypatch.setattr(cls, "train_step", interrupted)
    assert main(argv) == 128 + signal.SIGTERM
    monkeypatch.setattr(cls, "train_step", original)
    assert main(argv) == 0


def one_and_two_processes(cfg, tmp_path, extra: tuple[str, ...] = ()):
    """Train `cfg` as one process and under `torchrun --nproc_per_node=2` (gloo on the CPU);
    return both run directories, each checked to have finished."""
    import subprocess

    single, double = tmp_path / "single", tmp_path / "double"
    args = ["-m", "fewlabels", "train", str(cfg), "--device", "cpu", *extra, "--out"]
    one = subprocess.run([PYTHON, *args, str(single)], env=cli_env(), capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          *args, str(double)], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert not any(p.name.startswith("rank") for p in double.iterdir())  # one run directory, written by rank 0
    return single, double


def resume_across_process_counts(cfg, single, double, steps: int):
    """Train the two-process run on as one process and the one-process run on under torchrun,
    each to `steps` (the checkpoint does not depend on the number of processes); return their
    final states."""
    import subprocess

    longer = ["--set", f"train.steps={steps}"]
    for cmd in ([*train_cmd(cfg, double), *longer],
                [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                 *train_cmd(cfg, single)[1:], *longer]):
        done = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "resuming" in done.stderr, done.stderr[-2000:]
    (a, step_a), (b, step_b) = final_state(single), final_state(double)
    assert step_a == step_b == steps
    return a, b


@pytest.fixture
def small_config(tmp_path):
    return write_config(tmp_path / "small.yaml")


def cli_env() -> dict:
    env = dict(os.environ, CI="true", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable
