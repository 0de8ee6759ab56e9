"""Reinforcement learning: MDPs and exact planning (`mdp`, `planning`), the Grid World
(`envs.gridworld`, registered with Gymnasium as `fewlabels/GridWorld-v0` on import), and tabular
Q-learning and SARSA (`tabular`) trained by the generic loop (`trainer`)."""

from fewlabels.rl.envs import GRIDWORLD_ID, make_env, register_envs

register_envs()

__all__ = ["GRIDWORLD_ID", "make_env", "register_envs"]
