"""Exact planning: the grid world of the lecture (Sutton & Barto Example 4.1), value and policy
iteration, and MDPs read from Gymnasium's toy-text P tables."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from fewlabels.cli import main
from fewlabels.rl import make_env
from fewlabels.rl.planning import dp as pl
from fewlabels.rl.planning.gridworld import Grid, GridMDP
from fewlabels.rl.planning.mdp import MDP
from fewlabels.rl.tabular.methods import run_policy

SUTTON_BARTO_RANDOM = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]


def plan_json(capsys, *flags):
    assert main(["plan", *flags, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def manhattan_to_nearest(rows, cols, terminals):
    r, c = np.mgrid[:rows, :cols]
    return np.min([np.abs(r - tr) + np.abs(c - tc) for tr, tc in terminals], axis=0)


def random_mdp(S, A, gamma, seed):
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.5)
    P[:, :, 0] += 1e-3  # every row has some mass
    P /= P.sum(axis=2, keepdims=True)
    return MDP.from_arrays(P, rng.normal(size=(S, A)), gamma)


def test_random_policy_values_match_sutton_barto_figure_4_1(capsys):
    out = plan_json(capsys, "--env", "gridworld", "--policy", "random")
    assert out["values"] == SUTTON_BARTO_RANDOM  # exactly: -14.0 == -14 after the JSON round trip
    assert all(isinstance(v, float) and v.is_integer() for row in out["values"] for v in row)
    assert len(out["policy"]) == 4
    # sweeps: iterative policy evaluation's synchronous sweeps to --tol 1e-10, as the docs state
    assert out["sweeps"] == pl.policy_evaluation(GridMDP(Grid.make()), pl.random_policy(GridMDP(Grid.make())),
                                                 tol=1e-10).sweeps == 426
    in_place = plan_json(capsys, "--env", "gridworld", "--policy", "random", "--in-place")
    assert in_place["values"] == SUTTON_BARTO_RANDOM and in_place["sweeps"] == 272


def test_optimal_values_are_minus_the_distance_to_the_nearest_terminal_and_all_ties_are_listed(capsys):
    out = plan_json(capsys, "--env", "gridworld", "--policy", "optimal")
    assert np.array_equal(out["values"], -manhattan_to_nearest(4, 4, [(0, 0), (3, 3)]))
    policy = out["policy"]
    assert policy[0][0] == [] and policy[3][3] == []
    assert policy[0][1] == ["left"] and policy[0][3] == ["down", "left"] and policy[3][0] == ["up", "right"]
    assert policy[1][2] == ["up", "right", "down", "left"]  # three steps from both corners, every way
    assert out["sweeps"] == 4  # v_3 is exact; the fourth sweep sees no change


def test_other_sizes_terminal_sets_and_gamma_work_through_the_flags(capsys):
    out = plan_json(capsys, "--rows", "3", "--cols", "5", "--terminals", "1,2", "--policy", "optimal")
    assert np.array_equal(out["values"], -manhattan_to_nearest(3, 5, [(1, 2)]))
    out = plan_json(capsys, "--rows", "2", "--cols", "3", "--terminals", "0,0;1,2", "--policy", "random",
                    "--gamma", "0.9")
    mdp = GridMDP(Grid.make(2, 3, [(0, 0), (1, 2)]), gamma=0.9)
    exact = pl.solve_policy_values(mdp, pl.random_policy(mdp)).reshape(2, 3)
    assert np.abs(np.array(out["values"]) - exact).max() < 1e-8


def test_figure_4_1_intermediate_sweeps_match_the_book():
    mdp = GridMDP(Grid.make(), gamma=1.0)
    ev = pl.policy_evaluation(mdp, pl.random_policy(mdp), record=(0, 1, 2, 3, 10))
    h = {k: v.reshape(4, 4) for k, v in ev.history.items()}
    assert np.all(h[0] == 0)
    assert np.allclose(h[1][0], [0, -1, -1, -1])
    assert np.allclose(h[2][0], [0, -1.75, -2, -2])
    assert np.allclose(h[3][0].round(1), [0, -2.4, -2.9, -3.0])
    assert np.allclose(h[10][0].round(1), [0, -6.1, -8.4, -9.0]) and np.isclose(h[10][1, 1].round(1), -7.7)


def test_in_place_evaluation_reaches_the_same_values_in_fewer_sweeps():
    mdp = GridMDP(Grid.make(), gamma=1.0)
    sync = pl.policy_evaluation(mdp, pl.random_policy(mdp), tol=1e-10)
    in_place = pl.policy_evaluation(mdp, pl.random_policy(mdp), tol=1e-10, in_place=True)
    assert np.abs(in_place.values - sync.values).max() < 1e-7
    assert in_place.sweeps < sync.sweeps


def test_policy_evaluation_equals_the_linear_solve_on_a_random_mdp():
    mdp = random_mdp(30, 4, 0.9, seed=1)
    pi = np.random.default_rng(2).dirichlet(np.ones(4), size=30)
    for in_place in (False, True):
        ev = pl.policy_evaluation(mdp, pi, tol=1e-12, in_place=in_place)
        assert np.abs(ev.values - pl.solve_policy_values(mdp, pi)).max() < 1e-9


def test_value_and_policy_iteration_find_the_best_of_all_deterministic_policies():
    mdp = random_mdp(5, 3, 0.8, seed=3)
    best = np.max([pl.solve_policy_values(mdp, pl.deterministic_policy(mdp, a))
                   for a in np.array(np.meshgrid(*[range(3)] * 5)).reshape(5, -1).T], axis=0)
    vi = pl.value_iteration(mdp, tol=1e-12)
    pi = pl.policy_iteration(mdp)
    assert np.abs(vi.values - best).max() < 1e-9 and np.abs(pi.values - best).max() < 1e-9
    assert np.array_equal(vi.greedy, pi.greedy)


def test_greedy_actions_list_every_tied_action_and_none_at_terminals():
    mdp = GridMDP(Grid.make(), gamma=1.0)
    tied = pl.greedy_actions(mdp, pl.q_values(mdp, -manhattan_to_nearest(4, 4, [(0, 0), (3, 3)]).ravel()))
    assert tied.sum(axis=1).tolist() == [0, 1, 1, 2, 1, 2, 4, 1, 1, 4, 2, 1, 2, 1, 1, 0]


@pytest.mark.parametrize("slip,gamma", [(0.0, 1.0), (0.0, 0.9), (0.3, 0.95), (1.0, 0.5)])
def test_grid_stencil_backups_equal_the_generic_sparse_backups(slip, gamma):
    grid = Grid.make(5, 7, [(0, 0), (4, 6), (2, 3)], walls=[(1, 1), (1, 2), (3, 5), (4, 5)], slip=slip,
                     step_reward=-0.5)
    mdp = GridMDP(grid, gamma)
    v = np.random.default_rng(0).normal(size=mdp.n_states)
    v[mdp.terminal | mdp.walls] = 0.0
    assert np.allclose(mdp.q_backup(v), MDP.q_backup(mdp, v))
    assert np.allclose(mdp.optimality_backup(v), MDP.optimality_backup(mdp, v))
    generic = MDP(mdp.n_states, 4, mdp.transitions, gamma, mdp.terminal, mdp.start)  # full validation
    assert np.allclose(pl.value_iteration(generic, tol=1e-12).values, pl.value_iteration(mdp, tol=1e-12).values)


def test_value_iteration_on_a_million_state_grid_is_exact():
    n = 1000
    sol = pl.value_iteration(GridMDP(Grid.make(n, n, [(0, 0), (n - 1, n - 1)])), tol=1e-6)
    assert sol.sweeps == 1000  # the farthest cells are 999 moves from a corner
    assert np.array_equal(sol.values.reshape(n, n), -manhattan_to_nearest(n, n, [(0, 0), (n - 1, n - 1)]))


def test_planning_benchmark_compares_with_a_python_double_loop(tmp_path):
    out = tmp_path / "planning.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "planning.py"), "--sizes", "30", "--json",
                          str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "python double loop" in run.stdout and "states x sweeps / s" in run.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {r["method"] for r in rows} == {"structured (GridMDP)", "sparse (generic MDP)", "python double loop"}
    assert all(r["max error"] == 0 for r in rows)


def test_frozenlake_value_iteration_policy_succeeds_in_73_percent_of_10000_episodes():
    env = make_env("FrozenLake-v1")
    mdp = MDP.from_gym(env, gamma=1.0)
    sol = pl.value_iteration(mdp, tol=1e-10)
    within_100 = pl.policy_evaluation(mdp, pl.deterministic_policy(mdp, sol.policy), tol=0, max_sweeps=100)
    assert mdp.start @ within_100.values >= 0.73  # exact: P(goal within the 100-step limit)
    returns, _ = run_policy(env, sol.policy, 10_000, seed=0, max_steps=100)
    assert returns.mean() >= 0.73


def test_cliffwalking_model_from_gym_has_optimum_minus_13():
    mdp = MDP.from_gym("CliffWalking-v1")
    assert mdp.terminal.sum() == 1 and mdp.terminal[47]
    assert pl.value_iteration(mdp).values[36] == -13


def test_taxi_value_iteration_policy_earns_the_optimum_in_the_real_environment():
    env = make_env("Taxi-v4")
    mdp = MDP.from_gym(env, gamma=1.0)
    optimum = mdp.start @ pl.value_iteration(mdp).values
    sol = pl.value_iteration(mdp.with_gamma(0.99), tol=1e-8)
    assert abs(pl.expected_return(mdp, pl.deterministic_policy(mdp, sol.policy)) - optimum) < 1e-9
    returns, _ = run_policy(env, sol.policy, 2000, seed=0, max_steps=200)
    assert abs(returns.mean() - optimum) < 0.25  # 7.93 exactly, over Taxi-v4's 300 start states
