"""The scheduler's one error type: bad data in an object it reads (a quantity, a selector)."""


class SchedulerError(Exception):
    """Something in an object the scheduler cannot interpret; the message names the field."""
