"""A failure on one rank under torchrun (issue 16): an exception, a NaN or SIGTERM on rank 1
alone stops both ranks at that step, rank 0 says what happened in one sentence, and every
checkpoint written before it stays intact. Rank 1's failure is injected by a wrapper around the
CLI (FAULTY below), so no test hook lives in fewlabels itself."""

import subprocess
import textwrap

import pytest

from conftest import PYTHON, cli_env, merge_into_yaml
from fewlabels import checkpoint
from fewlabels.run import RunDir

FAULTY = textwrap.dedent('''
    """fewlabels' CLI with rank FAULT_RANK failing as FAULT_KIND at step FAULT_STEP of FAULT_CLASS."""
    import importlib, os, signal, sys
    from fewlabels.cli import main

    module, name = os.environ["FAULT_CLASS"].split(":")
    cls = getattr(importlib.import_module(module), name)
    original = cls.train_step

    def train_step(self, step):
        if os.environ.get("RANK") == "1" and step == int(os.environ["FAULT_STEP"]):
            kind = os.environ["FAULT_KIND"]
            if kind == "raise":
                raise RuntimeError(f"injected failure at step {step}")
            if kind == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            if kind == "nan":
                logs = original(self, step)
                return {**logs, "loss": logs["loss"] * float("nan")}
        return original(self, step)

    cls.train_step = train_step
    sys.exit(main())
''')

FAMILIES = {
    "diffusion": ("fewlabels.diffusion.trainer:DiffusionExperiment", 50, {
        "family": "diffusion", "data": {"name": "swissroll"}, "schedule": {"T": 100},
        "model": {"width": 32, "depth": 2}, "sampler": {"name": "ddim", "steps": 20},
        "train": {"steps": 200, "batch_size": 64, "log_every": 10, "snapshot_every": 0, "checkpoint_every": 20,
                  "eval_every": 0}, "eval": {"samples": 100, "emd_points": 100}}),
    "ppo": ("fewlabels.rl.deep.pg:PGExperiment", 5 * 64, {
        "family": "pg", "env": {"id": "CartPole-v1", "num_envs": 4},
        "agent": {"algo": "ppo", "n_steps": 16, "epochs": 2, "minibatch_size": 32},
        "train": {"steps": 2048, "eval_every": 0, "log_every": 64, "checkpoint_every": 128}, "eval": {"episodes": 2}}),
    "go": ("fewlabels.rl.go.alphazero:AlphaZeroExperiment", 12, {
        "family": "go", "algo": "alphazero", "game": {"size": 5}, "net": {"channels": 8, "blocks": 1, "history": 2},
        "alphazero": {"simulations": 4, "parallel_games": 4, "batch_size": 32},
        "train": {"steps": 40, "eval_every": 0, "log_every": 4, "checkpoint_every": 4},
        "eval": {"games": 2, "simulations": 0, "network_alone": False}}),
    "ssl": ("fewlabels.ssl.trainer:SSLExperiment", 9, {
        "family": "ssl", "method": "ssl_gan", "data": {"name": "digits", "labels_per_class": 3},
        "model": {"name": "mlp", "d_hidden": [32], "g_hidden": [32], "z_dim": 8},
        "train": {"steps": 40, "batch_size": 32, "log_every": 2, "eval_every": 0, "checkpoint_every": 4}}),
}


def torchrun_with_a_fault(tmp_path, family: str, kind: str):
    cls, step, config = FAMILIES[family]
    (tmp_path / "faulty.py").write_text(FAULTY)
    cfg = merge_into_yaml(tmp_path / "c.yaml", config, {})
    env = cli_env()
    env.update(PYTHONPATH=f"{tmp_path}:{env['PYTHONPATH']}", FAULT_CLASS=cls, FAULT_STEP=str(step), FAULT_KIND=kind)
    done = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                           "faulty", "train", str(cfg), "--device", "cpu", "--out", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, timeout=300)
    rank0 = [line for line in done.stderr.splitlines() if not line.startswith("[rank1]")]
    return done, "\n".join(rank0), RunDir(tmp_path / "r"), step


@pytest.mark.slow(seconds=15)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_an_exception_on_one_rank_stops_both_in_one_sentence_and_keeps_the_checkpoints(tmp_path, family):
    done, rank0, run, step = torchrun_with_a_fault(tmp_path, family, "raise")
    assert done.returncode != 0
    assert "RuntimeError: injected failure" in done.stderr  # rank 1's own error, as it raised it
    assert "fewlabels: error: another process of this torchrun stopped during step" in rank0, rank0[-3000:]
    assert "[rank0]: Traceback" not in done.stderr
    kept = run.checkpoint_paths()
    assert kept and all(checkpoint.load(p)[1]["step"] < step for p in kept)  # each one loads


@pytest.mark.slow(seconds=15)
@pytest.mark.parametrize("kind", ["nan", "sigterm"])
def test_a_nan_or_sigterm_on_one_rank_stops_both_at_that_step(tmp_path, kind):
    done, rank0, run, step = torchrun_with_a_fault(tmp_path, "diffusion", kind)
    assert done.returncode != 0
    if kind == "nan":  # the losses are averaged over ranks: a NaN on one is a NaN on all
        assert f"fewlabels: error: training diverged at step {step}: loss is nan" in rank0
        assert done.stderr.count("training diverged") == 1  # rank 0 alone says it
        assert run.latest_checkpoint().name == "step_000000040.safetensors"
        assert run.read_summary()["status"] == "diverged"
    else:  # both ranks stop after the same step, checkpointed
        assert f"stopped at step {step}" in rank0
        assert checkpoint.load(run.latest_checkpoint())[1]["step"] == step
        assert run.read_summary()["status"] == "interrupted"
