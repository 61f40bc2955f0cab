"""The kubelet API: the HTTPS port (10250) through which the API server reaches this node.

    kubectl ──► API server (pods/log, pods/exec, pods/attach, pods/portforward, nodes/proxy)
                    │ TLS with its kubelet-client certificate (controlplane/apiserver/proxy.py)
                    ▼
              this package ──► RuntimeService (nodeagent/cri/api.py): log paths, exec/attach
                               sessions (open fds), port-forward sockets, container stats

One module per concept: `app` (routes, TLS, start/stop), `tls`, `pods` (URL names → runtime ids),
`logs` (CRI log files), `remotecommand` (exec/attach over WebSocket channels), `portforward` and
`spdy` (SPDY streams, tunnelled in a WebSocket or over a raw upgrade), `stats` (/stats/summary,
/metrics), `fdio` (non-blocking fd reads/writes, taking over an upgraded connection).

The server depends on two narrow things only — a RuntimeService and a *pods provider* (a callable
returning the agent's pods as API objects) — so tests drive it with a fake runtime whose exec is a
local subprocess.

May import: nodeagent.cri.api, nodeagent.errors, the standard library, aiohttp, psutil; and
controlplane.apiserver.certs, only to sign an all-in-one node's serving certificate.
"""

from nodeagent.server.app import KubeletServer, serve_kubelet_api
from nodeagent.server.tls import KubeletTLS, kubelet_tls

__all__ = ["KubeletServer", "KubeletTLS", "kubelet_tls", "serve_kubelet_api"]
