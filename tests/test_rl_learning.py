"""Tabular learning learns: CliffWalking (Sutton & Barto Example 6.6), FrozenLake, the grid world.
Fixed seeds, the shipped configs, small budgets (each run is well under two seconds)."""

import json

import numpy as np
import pytest

from conftest import ROOT
from fewlabels import config as configlib
from fewlabels.cli import main
from fewlabels.loop import open_run, train
from fewlabels.rl.planning import dp as pl
from fewlabels.rl.planning.gridworld import GridMDP
from fewlabels.rl.planning.mdp import MDP
from fewlabels.rl.tabular.methods import policy_path
from fewlabels.rl.tabular.trainer import TabularExperiment

CONFIGS = ROOT / "configs" / "rl"
ALONG_THE_CLIFF = [36, 24, *range(25, 36), 47]  # up, eleven steps right along the edge, down


def trained(name, tmp_path, overrides=()):
    cfg = configlib.load(CONFIGS / f"{name}.yaml", list(overrides))
    summary = train(cfg, str(tmp_path / name), device="cpu")
    _, run, exp = open_run(str(tmp_path / name), "cpu")
    return summary, run, exp


def cliff_cells_beside_the_edge(path):
    row, col = np.divmod(path, 12)
    return [s for s, r, c in zip(path, row, col) if r == 2 and 0 < c < 11]


@pytest.fixture(scope="module")
def cliff_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("cliff")
    return {name: trained(name, out) for name in ("cliff_q_learning", "cliff_sarsa")}


def test_q_learning_greedy_path_is_the_optimal_13_steps_along_the_cliff(cliff_runs):
    summary, _, exp = cliff_runs["cliff_q_learning"]
    assert policy_path(exp.eval_env, exp.greedy_policy(), seed=0, max_steps=100) == ALONG_THE_CLIFF
    assert summary["metrics"]["mean_return"] == -13


def test_sarsa_with_epsilon_01_learns_the_longer_safe_path(cliff_runs):
    summary, _, exp = cliff_runs["cliff_sarsa"]
    path = policy_path(exp.eval_env, exp.greedy_policy(), seed=0, max_steps=100)
    assert path[-1] == 47 and len(path) - 1 > 13
    assert cliff_cells_beside_the_edge(path) == []  # never walks next to the cliff
    assert summary["metrics"]["mean_return"] == -(len(path) - 1)


def test_sarsa_earns_more_online_than_q_learning_and_both_curves_are_in_the_report(cliff_runs):
    online = {}
    for name, (_, run, _) in cliff_runs.items():
        rows = [r for r in run.read_metrics() if "return_mean" in r]
        assert [r["step"] for r in rows] == list(range(10, 501, 10))  # one point per 10 episodes
        online[name] = np.mean([r["return_mean"] for r in rows[len(rows) // 2:]])
        report = run.report_path.read_text()
        assert "Learning curve" in report and (run.samples / "returns.png").is_file()
    assert online["cliff_sarsa"] > online["cliff_q_learning"] + 5  # the textbook: about -25 vs -50


def test_frozenlake_q_learning_greedy_policy_succeeds_in_70_percent_of_10000_episodes(tmp_path, capsys):
    summary, _, exp = trained("frozenlake_q_learning", tmp_path)  # 3,000 episodes
    mdp = MDP.from_gym(exp.env, gamma=1.0)
    exact = pl.policy_evaluation(mdp, pl.deterministic_policy(mdp, exp.greedy_policy()), tol=0, max_sweeps=100)
    assert mdp.start @ exact.values >= 0.70  # P(goal within FrozenLake's 100-step limit), exactly
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "frozenlake_q_learning"), "--episodes", "10000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 10000 and result["mean_return"] >= 0.70


def test_q_learning_on_the_grid_world_finds_an_optimal_action_in_every_cell(tmp_path):
    _, _, exp = trained("gridworld_q_learning", tmp_path)
    mdp = exp.env.unwrapped.mdp
    assert isinstance(mdp, GridMDP)
    optimal = pl.value_iteration(mdp).greedy
    live = ~mdp.inert
    assert optimal[np.flatnonzero(live), exp.greedy_policy()[live]].all()


def test_schedules_decay_epsilon_and_alpha_over_the_episodes():
    cfg = configlib.load(CONFIGS / "frozenlake_q_learning.yaml", ["train.steps=11"])
    exp = TabularExperiment(cfg)
    logs = [exp.train_step(step) for step in range(1, 12)]
    assert logs[0]["epsilon"] == 1.0 and np.isclose(logs[-1]["epsilon"], 0.01 + 0.99 / 11)
    assert np.all(np.diff([x["alpha"] for x in logs]) < 0)
