"""Tabular RL on the spine: run directories, bitwise resume, `evaluate --episodes`, the
Gymnasium environment `fewlabels/GridWorld-v0`, and the demo's grid-world part."""

import json
import os
import signal

import gymnasium as gym
import numpy as np
import yaml
from gymnasium.utils.env_checker import check_env

from fewlabels import checkpoint
from fewlabels.cli import main
from fewlabels.rl import GRIDWORLD_ID
from fewlabels.rl.planning.gridworld import GridWorldEnv
from fewlabels.rl.tabular.trainer import TabularExperiment
from fewlabels.run import RunDir


def rl_config(tmp_path, name="rl.yaml", **sections):
    cfg = {"family": "tabular", "name": "t", "env": {"id": "FrozenLake-v1"},
           "agent": {"gamma": 0.99, "epsilon": {"start": 0.5}, "alpha": {"start": 0.1}},
           "train": {"steps": 300, "log_every": 25, "checkpoint_every": 100}, "eval": {"episodes": 20}}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def final_state(out):
    state, info = checkpoint.load(RunDir(out).latest_checkpoint())
    return state["experiment"], info["step"]


def test_sigterm_mid_run_then_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path, capsys, monkeypatch):
    cfg = rl_config(tmp_path, agent={"epsilon": {"start": 1.0, "end": 0.1, "decay": "linear"}})
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main(["train", str(cfg), "--out", str(straight)]) == 0

    original = TabularExperiment.train_step

    def interrupted(self, step):
        if step == 130:  # mid-window (log_every 25) and between checkpoints (every 100)
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, step)

    monkeypatch.setattr(TabularExperiment, "train_step", interrupted)
    assert main(["train", str(cfg), "--out", str(broken)]) == 128 + signal.SIGTERM
    assert final_state(broken)[1] == 130 and RunDir(broken).read_summary()["status"] == "interrupted"
    monkeypatch.setattr(TabularExperiment, "train_step", original)
    assert main(["train", str(cfg), "--out", str(broken)]) == 0
    assert "resuming" in capsys.readouterr().err
    a, step_a = final_state(straight)
    b, step_b = final_state(broken)
    assert step_a == step_b == 300
    assert np.array_equal(a["q"].numpy(), b["q"].numpy()) and a["rng"] == b["rng"] and a["env_rng"] == b["env_rng"]
    rows = lambda out: [(r["step"], r["return_mean"]) for r in RunDir(out).read_metrics() if "return_mean" in r]
    assert rows(straight) == rows(broken)


def test_evaluate_with_episodes_prints_the_rl_contract(tmp_path, capsys):
    cfg = rl_config(tmp_path, train={"steps": 20})
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), "--episodes", "7"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"mean_return", "std_return", "episodes"} and result["episodes"] == 7
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 20  # eval.episodes from the config


def test_run_directory_holds_metrics_summary_and_a_report(tmp_path):
    cfg = rl_config(tmp_path, train={"steps": 50, "log_every": 10, "eval_every": 25, "snapshot_every": 25})
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    run = RunDir(tmp_path / "run")
    rows = run.read_metrics()
    assert {"step", "wall_seconds", "return", "return_mean", "length", "epsilon", "alpha"} <= set(rows[0])
    assert any("mean_return" in r for r in rows)
    assert run.read_summary()["status"] == "completed"
    assert sorted(p.name for p in run.samples.glob("q_*.npy")) == ["q_000000025.npy", "q_000000050.npy"]
    report = run.report_path.read_text()
    for title in ("Learning curve", "Greedy policy", "Compared with planning"):
        assert title in report


def test_sample_on_an_rl_run_points_to_evaluate(tmp_path, capsys):
    cfg = rl_config(tmp_path, train={"steps": 5})
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 2
    assert "is an RL run; `fewlabels sample` is for generative models" in capsys.readouterr().err


def test_gridworld_env_is_registered_passes_gymnasium_checks_and_renders():
    env = gym.make(GRIDWORLD_ID, rows=3, cols=4, terminals=[[0, 3]], walls=[[1, 1]], render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=True)
    s, _ = env.reset(seed=0)
    assert env.render().count("\n") == 3 and "#" in env.render() and "T" in env.render()
    image = gym.make(GRIDWORLD_ID, render_mode="rgb_array")
    image.reset(seed=0)
    frame = image.render()
    assert frame.shape == (4 * GridWorldEnv.CELL_PIXELS, 4 * GridWorldEnv.CELL_PIXELS, 3) and frame.dtype == np.uint8


def test_gridworld_env_samples_its_own_mdp():
    env = gym.make(GRIDWORLD_ID, rows=3, cols=3, terminals=[[0, 0]], slip=0.2, start=[1, 1]).unwrapped
    mdp = env.mdp
    env.reset(seed=0)
    counts = np.zeros(mdp.n_states)
    for _ in range(20_000):
        env.s = 4  # the centre, moving right
        s2, r, *_ = env.step(1)
        counts[s2] += 1
        assert r == -1.0
    nxt, prob, _ = mdp.outcomes(4, 1)
    expected = np.zeros(mdp.n_states)
    np.add.at(expected, nxt, prob)
    assert np.abs(counts / counts.sum() - expected).max() < 0.01  # right 0.8, up 0.1, down 0.1


def test_gridworld_episodes_end_on_terminal_cells_with_reward_minus_one_per_move():
    env = gym.make(GRIDWORLD_ID, rows=1, cols=4, terminals=[[0, 0]], start=[0, 3])
    env.reset(seed=0)
    steps = [env.step(3) for _ in range(3)]  # left, left, left
    assert [s[:3] for s in steps] == [(2, -1.0, False), (1, -1.0, False), (0, -1.0, True)]
