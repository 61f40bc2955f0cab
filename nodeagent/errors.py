"""The agent's error type. The CLI prints it as one line; it never becomes a traceback."""


class AgentError(Exception):
    """A problem the user can act on: bad input, a missing prerequisite, a failed operation."""
