"""The one exception type for bad input: the CLI prints its message as one line and exits 2."""


class UserError(Exception):
    """Input a person can fix (a config key, a file, a run directory); the message says how."""
