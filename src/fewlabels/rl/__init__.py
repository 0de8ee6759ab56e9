"""Reinforcement learning, split by what the agent knows:

- `planning/`: the model is known. The MDP (S, A, R, P, γ), exact dynamic programming (`dp`), the
  lecture's Grid World (`gridworld`, registered with Gymnasium as `fewlabels/GridWorld-v0` on
  import), and `fewlabels plan`.
- `tabular/`: the model is unknown, the states are few. Q-learning and SARSA, one table entry per
  (s, a), trained by the generic loop.
- `deep/`: the states are many (vectors, pixels). Vector environments, networks, DQN, and the
  policy-gradient family (REINFORCE, A2C, PPO).
"""

from fewlabels.rl.envs import GRIDWORLD_ID, make_env, register_envs

register_envs()

__all__ = ["GRIDWORLD_ID", "make_env", "register_envs"]
