"""The one exception type for bad input (the CLI prints its message as one line and exits 2), and
the one for a run stopped by a signal inside a longer command."""


class UserError(Exception):
    """Input a person can fix (a config key, a file, a run directory); the message says how."""

    # True where every process of a torchrun raises the same error at the same step (a divergence
    # seen in the losses they agreed on): rank 0 alone says it
    on_every_rank = False


class Interrupted(Exception):
    """A run stopped by SIGINT or SIGTERM, after saving its checkpoint. `train(..., stop_raises=True)`
    raises it so that a caller running several stages (the demo) stops with the run."""

    def __init__(self, summary: dict):
        super().__init__(f"interrupted at step {summary['steps']}")
        self.summary = summary
