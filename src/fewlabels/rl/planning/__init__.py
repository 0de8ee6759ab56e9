"""Planning with a known model: the MDP (`mdp`), dynamic programming (`dp`), the Grid World
(`gridworld`, drawn by `layouts`) and the `fewlabels plan` command (`plan`)."""
