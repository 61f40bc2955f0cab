"""nodeagent.kuberuntime — the kubelet side of the CRI: pod spec in, runtime calls out
(pkg/kubelet/kuberuntime).

    config.py    pod spec → PodSandboxConfig / ContainerConfig (env, resources, securityContext)
    images.py    imagePullPolicy, imagePullSecrets, pull back-off
    lifecycle.py postStart / preStop hooks (exec, httpGet, sleep) and their grace accounting
    manager.py   SyncPod (sandbox, init containers, app containers, restarts with back-off),
                 KillPod, removal — what a pod worker (podworkers.py) calls

Reads the API only through the `lookup` it is given (ConfigMaps, Secrets); talks to the runtime
only through nodeagent/cri/api.py.
"""

from nodeagent.kuberuntime.config import NodeFacts
from nodeagent.kuberuntime.manager import PodRuntimeState, RuntimeManager, SyncResult

__all__ = ["NodeFacts", "PodRuntimeState", "RuntimeManager", "SyncResult"]
