"""Go, the lecture's last RL example, on small boards: rules from OpenSpiel (`rules`), the
Gymnasium environment `fewlabels/Go-v0` (`env`), a policy-value network (`net`), batched PUCT
search (`mcts`), AlphaZero-style self-play (`alphazero`), players and the GTP protocol (`players`,
`gtp`), and the match runner with GNU Go as the yardstick (`match`)."""

from fewlabels.rl.go.env import GO_ID, register

register()

__all__ = ["GO_ID", "register"]
