"""Learning Q(s, a) in a table from experience: Q-learning and SARSA (`methods`), their config,
their experiment for the generic loop (`trainer`) and their report."""
