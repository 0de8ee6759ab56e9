"""Deep RL: vector environments (`vector`), networks (`nets`), normalisation and replay, DQN
(`dqn`) and the policy-gradient family REINFORCE/A2C/PPO (`pg`, with the hand-written MLP
gradient in `mlp_grad`), sharing one agent base (`agent`) and one report."""
