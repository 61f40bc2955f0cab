"""The runtime's errors: one base class, subclasses named after what the user meets.

Every error the runtime raises for a *user's* reason (a bad config.json, a name in use, a
container in the wrong state, a step of creation that failed) is a ContainerError, and its message
is one line a person can act on. The CLI prints it as such. A broken invariant inside the runtime
is a bug and stays an ordinary exception with its traceback (xv6's "panic" versus "return -1").
"""

from __future__ import annotations


class ContainerError(Exception):
    """Base of every error the runtime reports to its user."""


class SpecError(ContainerError):
    """The spec (config.json, or flags that build one) is wrong; the message names the field."""

    def __init__(self, field: str, problem: str, source: str | None = None):
        self.field, self.problem, self.source = field, problem, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}")


class ContainerNotFound(ContainerError):
    def __init__(self, cid: str):
        self.id = cid
        super().__init__(f"container {cid!r} does not exist")


class ContainerExists(ContainerError):
    def __init__(self, cid: str):
        self.id = cid
        super().__init__(f"container name {cid!r} is already in use")


class InvalidState(ContainerError):
    """The verb does not apply in the container's current state (start a running container ...)."""

    def __init__(self, cid: str, status: str, wanted: str):
        self.id, self.status = cid, status
        super().__init__(f"container {cid!r} is {status}; {wanted}")


class StepError(ContainerError):
    """A step of creating or starting a container failed. `step` names it ("mount /proc");
    everything made before it has been undone by the time the caller sees this."""

    def __init__(self, step: str, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"{step}: {reason}")
