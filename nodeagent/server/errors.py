"""The kubelet API's one error type: an HTTP status and a message a user can act on.

Messages copy the real kubelet's wording (pkg/kubelet/kubelet_pods.go validateContainerLogStatus,
server/server.go) because kubectl users read them through the API server verbatim.
"""

from __future__ import annotations

from nodeagent.errors import AgentError


class KubeletAPIError(AgentError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str) -> KubeletAPIError:
    return KubeletAPIError(404, message)


def bad_request(message: str) -> KubeletAPIError:
    return KubeletAPIError(400, message)
