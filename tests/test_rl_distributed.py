"""Policy gradients under torchrun (issue 16): each rank steps its share of the environments and
learns from its own rollout; gradients are averaged, advantages normalised over all ranks'
samples, normalisation statistics merged. Two gloo processes on the CPU must take the update one
process takes on both halves together, and must not without the averaging."""

import os
import socket

import numpy as np
import pytest
import torch

from conftest import PYTHON, cli_env, final_state, merge_into_yaml, one_and_two_processes
from fewlabels.cli import main


def ppo_config(path, **sections):
    base = {"family": "pg", "name": "t", "env": {"id": "CartPole-v1", "num_envs": 4, "normalize_obs": True},
            "agent": {"algo": "ppo", "n_steps": 16, "epochs": 3, "minibatch_size": 64, "lr": 3e-3},
            "train": {"steps": 256, "eval_every": 0, "log_every": 64, "checkpoint_every": 128},
            "eval": {"episodes": 2}}
    return merge_into_yaml(path, base, sections)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def global_batch(exp, n: int) -> dict:
    """A fixed batch of n transitions (the same on every rank): random observations and actions,
    the old log-probabilities and values of the (identical) initial network, random advantages."""
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(size=(n, *exp.obs_shape)), dtype=torch.float32)
    actions = torch.as_tensor(rng.integers(exp.action_dim, size=n))
    with torch.no_grad():
        logp, _, values = exp.net.evaluate_actions(obs, actions)
    adv = torch.as_tensor(rng.normal(size=n) * 3 + 1, dtype=torch.float32)
    return {"obs": obs, "actions": actions, "logp": logp, "values": values, "advantages": adv, "returns": values + adv}


def _rank(rank, world, port, cfg_path, out, averaging):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from fewlabels import checkpoint, config, distributed
    from fewlabels.loop import build_experiment
    from fewlabels.rl.deep import pg
    from fewlabels.rl.deep.normalize import RunningMeanStd

    if not averaging:
        pg.average_gradients = lambda params: None
    distributed.init(torch.device("cpu"))
    cfg = config.load(cfg_path)
    checkpoint.seed_everything(cfg.seed)
    exp = build_experiment(cfg, torch.device("cpu"))
    batch = global_batch(exp, 64)
    half = 64 // world
    mine = {k: v[rank * half:(rank + 1) * half] for k, v in batch.items()}
    exp.update(mine, clip=0.2)
    # Chan's parallel update: each rank's half of a stream merged = the whole stream at once
    stream = np.random.default_rng(1).normal(3, 2, size=(100, 4))
    stats = RunningMeanStd((4,), shared=world > 1)
    stats.update(stream[rank * 100 // world:(rank + 1) * 100 // world])
    stats.sync()
    stats = {k: torch.as_tensor(v) for k, v in stats.state_dict().items()}  # tensors: loadable with weights_only
    torch.save({"net": exp.net.state_dict(), "stats": stats}, os.path.join(out, f"rank{rank}.pt"))
    distributed.finish()


def update_on(world: int, tmp_path, averaging: bool = True) -> list[dict]:
    import torch.multiprocessing as mp

    out = tmp_path / f"w{world}{'' if averaging else '_no_avg'}"
    out.mkdir()
    cfg = ppo_config(tmp_path / "c.yaml")
    mp.start_processes(_rank, args=(world, free_port(), str(cfg), str(out), averaging), nprocs=world,
                       start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.mark.slow(seconds=20)
def test_two_processes_take_the_update_one_process_takes_on_both_rollouts(tmp_path):
    """One minibatch (64 transitions, 32 per rank), 3 PPO epochs, advantages normalised, the
    gradient norm clipped: rank 0 and rank 1 end with the weights of one process updating on all
    64. Without the gradient averaging they do not."""
    (one,) = update_on(1, tmp_path)
    two = update_on(2, tmp_path)
    for key, value in one["net"].items():
        for r in (0, 1):
            assert torch.allclose(value, two[r]["net"][key], atol=1e-6, rtol=1e-5), (r, key)
    # the merged normalisation statistics equal those of the whole stream, on every rank
    for r in (0, 1):
        assert float(two[r]["stats"]["count"]) == pytest.approx(float(one["stats"]["count"]))
        np.testing.assert_allclose(two[r]["stats"]["mean"].numpy(), one["stats"]["mean"].numpy(), rtol=1e-12)
        np.testing.assert_allclose(two[r]["stats"]["var"].numpy(), one["stats"]["var"].numpy(), rtol=1e-12)
    apart = update_on(2, tmp_path, averaging=False)
    assert not all(torch.allclose(v, apart[0]["net"][k], atol=1e-4) for k, v in one["net"].items())


@pytest.mark.slow(seconds=40)
def test_ppo_under_torchrun_trains_resumes_as_one_process_and_back(tmp_path):
    """torchrun with 2 processes: every rank's environments seeded apart, rank 0 writes one run,
    its checkpoint (format independent of the number of processes) resumes as one process, and a
    one-process checkpoint resumes under torchrun."""
    import subprocess

    from fewlabels.run import RunDir

    cfg = ppo_config(tmp_path / "c.yaml")
    single, double = one_and_two_processes(cfg, tmp_path)
    state, step = final_state(double)
    assert step == 256 and state["env_steps"] == 256  # steps count every rank's environment steps
    rows = [r for r in RunDir(double).read_metrics() if r.get("kind") == "train"]
    assert [r["step"] for r in rows] == [64, 128, 192, 256]
    # the two processes did not play the same episodes: their merged statistics differ from one process's
    assert not np.allclose(final_state(single)[0]["obs_norm"]["mean"], state["obs_norm"]["mean"])
    longer = ["--set", "train.steps=384"]
    base = [PYTHON, "-m", "fewlabels", "train", str(cfg), "--device", "cpu", *longer, "--out"]
    for cmd in ([*base, str(double)],  # two processes -> one
                [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *base[1:],
                 str(single)]):  # one -> two
        done = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "resuming" in done.stderr
    assert final_state(double)[1] == final_state(single)[1] == 384


@pytest.mark.parametrize("sections, words", [
    ({"agent": {"algo": "reinforce"}}, "agent.algo reinforce does not train under torchrun"),
    ({"env": {"num_envs": 3}}, "env.num_envs 3 is not divisible by the 2 processes; use a multiple of 2"),
    ({"agent": {"minibatch_size": 63}}, "agent.minibatch_size 63 is not divisible by the 2 processes"),
])
def test_what_cannot_split_across_processes_is_one_sentence(tmp_path, monkeypatch, capsys, sections, words):
    """As rank 0 of two would see it (the process group itself is not needed to refuse)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("fewlabels.distributed.init", lambda device: None)
    cfg = ppo_config(tmp_path / "c.yaml", **sections)
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_dqn_refuses_torchrun_in_one_sentence(tmp_path):
    """The real thing once: torchrun, two processes, one sentence, nothing written."""
    import subprocess

    cfg = merge_into_yaml(tmp_path / "d.yaml", {"family": "dqn", "env": {"id": "CartPole-v1"}}, {})
    done = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                           "fewlabels", "train", str(cfg), "--device", "cpu", "--out", str(tmp_path / "r")],
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "fewlabels: error: DQN does not train under torchrun" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "r" / "checkpoints").exists()
