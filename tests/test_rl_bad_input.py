"""Bad input to planning and tabular RL: one sentence on stderr, exit code 2."""

import numpy as np
import pytest
import yaml

from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.rl.planning.gridworld import Grid, GridWorldEnv
from fewlabels.rl.planning.mdp import MDP


def one_sentence_error(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewlabels: error: "), err
    return lines[0]


def two_state_P():
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = 1.0  # state 0 moves to the terminal state 1
    return P


@pytest.mark.parametrize("flags,expected", [
    (["--rows", "0"], "grid rows is 0"),
    (["--rows", "2", "--cols", "1", "--terminals", "0,0;1,0"], "every cell"),
    (["--terminals", "4,4"], "terminal (4, 4) is outside the 4x4 grid"),
    (["--terminals", "1;2"], "is not a (row, column) pair"),
    (["--terminals", ""], "no terminal cell"),
    (["--rows", "3", "--cols", "3", "--terminals", "0,0", "--walls", "0,1;1,1;1,0"], "cannot reach a terminal"),
    (["--terminals", "1,1", "--walls", "1,1"], "both a terminal and a wall"),
    (["--gamma", "1.5"], "gamma is 1.5; valid values are 0 <= gamma <= 1"),
    (["--slip", "-0.1"], "slip is -0.1"),
    (["--tol", "0"], "--tol is 0.0; give a positive tolerance"),
    (["--env", "NoSuchEnv-v0"], "--env 'NoSuchEnv-v0' cannot be made"),
    (["--env", "CartPole-v1"], "Discrete"),
    (["--env", "FrozenLake-v1", "--terminals", "0,0"], "--terminals is for --env gridworld"),
])
def test_impossible_grids_and_unknown_environments_are_one_sentence(capsys, flags, expected):
    assert expected in one_sentence_error(capsys, "plan", *flags, "--json")


def test_probabilities_that_do_not_sum_to_one_are_refused():
    P = two_state_P()
    P[0, 0, 1] = 0.9
    with pytest.raises(UserError, match=r"state 0, action '0' sum to 0.9; they must sum to 1"):
        MDP.from_arrays(P, np.zeros((2, 1)), terminal=[1])


def test_negative_probabilities_are_refused():
    P = two_state_P()
    P[0, 0] = [-0.5, 1.5]
    with pytest.raises(UserError, match=r"probability of state 0, action '0' -> state 0 is -0.5; .* >= 0"):
        MDP.from_arrays(P, np.zeros((2, 1)), terminal=[1])


def test_gamma_outside_zero_one_is_refused():
    with pytest.raises(UserError, match="gamma is -0.1; valid values are 0 <= gamma <= 1"):
        MDP.from_arrays(two_state_P(), np.zeros((2, 1)), gamma=-0.1, terminal=[1])


def test_undiscounted_mdp_without_a_reachable_terminal_state_is_refused():
    P = np.zeros((3, 1, 3))
    P[0, 0, 0] = P[1, 0, 1] = P[2, 0, 2] = 1.0  # everyone stays put; state 2 is terminal but unreachable
    with pytest.raises(UserError, match="no terminal state is reachable"):
        MDP.from_arrays(P, -np.ones((3, 1)), terminal=[2], start=[1, 0, 0])
    assert MDP.from_arrays(P, -np.ones((3, 1)), gamma=0.9, terminal=[2], start=[1, 0, 0]).gamma == 0.9


def test_a_state_that_cannot_end_its_episode_is_named():
    P = np.zeros((3, 1, 3))
    P[0, 0, 2] = P[1, 0, 1] = 1.0  # state 1 loops forever
    with pytest.raises(UserError, match="state 1 can be reached and cannot reach any terminal state"):
        MDP.from_arrays(P, -np.ones((3, 1)), terminal=[2])


class TableEnv:
    """Just enough of a toy-text env to hold a hand-written P table."""

    def __init__(self, P, n_states=2, n_actions=1):
        import gymnasium as gym

        self.P, self.spec = P, None
        self.observation_space, self.action_space = gym.spaces.Discrete(n_states), gym.spaces.Discrete(n_actions)
        self.unwrapped = self


@pytest.mark.parametrize("table,expected", [
    ({0: {0: [(1.0, 1, -1.0, True)]}}, r"P\[1\] is missing"),
    ({0: {0: []}, 1: {0: [(1.0, 1, 0.0, True)]}}, r"P\[0\]\[0\] is missing or empty"),
    ({0: {0: [(1.0, 1)]}, 1: {0: [(1.0, 1, 0.0, True)]}}, "each outcome must be"),
    ({0: {0: [(0.5, 1, -1.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}, "sum to 0.5"),
    ({0: {0: [(1.0, 7, -1.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}, "next state 7, outside 0..1"),
    ({0: {0: [(1.0, 1, float("nan"), True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}, "rewards must be finite"),
])
def test_invalid_gym_P_tables_are_one_sentence(table, expected):
    with pytest.raises(UserError, match=expected):
        MDP.from_gym(TableEnv(table))


def test_gridworld_env_refuses_bad_cells_and_render_modes():
    with pytest.raises(UserError, match=r"wall \(9, 9\) is outside"):
        GridWorldEnv(walls=[(9, 9)])
    with pytest.raises(UserError, match="render_mode 'human' is not supported"):
        GridWorldEnv(render_mode="human")
    with pytest.raises(UserError, match="start .* is a terminal or wall cell"):
        Grid.make(start=(0, 0))


def write(tmp_path, **cfg):
    base = {"family": "tabular", "env": {"id": "CliffWalking-v1"}, "train": {"steps": 5}}
    base.update(cfg)
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.mark.parametrize("cfg,expected", [
    ({"env": {"id": "fewlabels/GridWorld-v0", "kwargs": {"rows": 4, "colz": 3}}},
     "env.kwargs.colz is not a grid world option"),
    ({"env": {"id": "fewlabels/GridWorld-v0", "kwargs": {"terminals": [[5, 5]]}}}, "terminal (5, 5) is outside"),
    ({"agent": {"epsilon": {"start": 1.0, "decay": "linear"}}}, "agent.epsilon.decay is 'linear' but"),
    ({"agent": {"alpha": {"start": 0}}}, "agent.alpha.start is 0"),
    ({"agent": {"name": "dqn"}}, "agent.name is 'dqn'; valid: 'q_learning', 'sarsa'"),
    ({"env": {"id": "CartPole-v1"}}, "tabular methods need Discrete"),
    ({"env": {"id": "FrozenLake-v1", "kwargs": {"slippery": True}}}, "do not fit FrozenLake-v1"),
])
def test_bad_rl_configs_are_one_sentence(tmp_path, capsys, cfg, expected):
    msg = one_sentence_error(capsys, "train", write(tmp_path, **cfg), "--out", tmp_path / "run")
    assert expected in msg


def test_a_refused_config_leaves_no_run_directory_behind(tmp_path, capsys):
    one_sentence_error(capsys, "train", write(tmp_path, env={"id": "CartPole-v1"}), "--out", tmp_path / "run")
    assert not (tmp_path / "run").exists()
