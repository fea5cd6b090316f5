"""The one exception type a user can act on."""


class PcopilotError(Exception):
    """Something the user can fix (a missing path, a bad value); the CLI prints the message without a traceback."""
