"""The scheduler's cache: nodes and the pods on them, including pods it has *assumed*.

Binding is a network round trip, and the informer shows the bound pod later still. If the cache
waited for that, the next cycle would see the node as it was and place a second pod into the same
free space. So the moment a node is chosen the pod is *assumed* onto it: counted in the node's
totals at once. Then one of:

    bound      the informer shows the pod with spec.nodeName → the assumption is confirmed
               (replaced by the stored pod, on whatever node the server says)
    failed     the binding call failed → `forget` takes the pod back off the node
    deleted    the informer shows the pod deleted → removed, assumed or not

(upstream pkg/scheduler/backend/cache: AssumePod, FinishBinding, ForgetPod, AddPod.) Upstream also
expires assumptions whose bind never showed up; here the binding outcome is always known — the
call returns or raises — so nothing expires.

Terminal pods (Succeeded, Failed) hold nothing and are not counted. Owned by the scheduler's
event loop: informer handlers and the cycle run on the same loop, so nothing is locked.
"""

from __future__ import annotations

from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, PodInfo] = {}  # uid → pod as counted (its node_name is where)
        self._where: dict[str, str] = {}  # uid → node name it is counted on
        self.assumed: set[str] = set()
        self._list: list[NodeInfo] | None = None  # the real nodes, in a stable order
        self.image_nodes: dict[str, int] = {}  # image → how many nodes have it (ImageLocality)
        # Cluster-wide counts that let a cycle skip whole plugins (framework hints, see runtime.py)
        self.tainted_nodes = 0
        self.unschedulable_nodes = 0
        self.affinity_pods = 0  # placed pods with any pod (anti-)affinity term
        self.anti_affinity_pods = 0  # placed pods with a required anti-affinity term

    # ---- nodes ----
    def _info(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        return ni

    def set_node(self, node: dict) -> None:
        ni = self._info(node["metadata"]["name"])
        if ni.node is None:
            self._list = None
        self._count_images(ni, -1)
        ni.set_node(node)
        self._count_images(ni, 1)

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        self._count_images(ni, -1)
        self._list = None
        if ni.pods:
            ni.node = None  # its pods still exist; keep counting them until they are deleted
        else:
            del self.nodes[name]

    def _count_images(self, ni: NodeInfo, sign: int) -> None:
        if ni.node is None:
            return
        self.tainted_nodes += sign * bool(ni.taints)
        self.unschedulable_nodes += sign * ni.unschedulable
        for img in ni.images:
            n = self.image_nodes.get(img, 0) + sign
            if n > 0:
                self.image_nodes[img] = n
            else:
                self.image_nodes.pop(img, None)

    def hints(self) -> dict:
        """What the whole cluster has none of: plugins with nothing to check are skipped."""
        return {"taints": self.tainted_nodes > 0, "unschedulable": self.unschedulable_nodes > 0,
                "affinity_pods": self.affinity_pods > 0, "anti_affinity_pods": self.anti_affinity_pods > 0}

    def node_list(self) -> list[NodeInfo]:
        if self._list is None:
            self._list = [ni for _, ni in sorted(self.nodes.items()) if ni.node is not None]
        return self._list

    # ---- pods ----
    def _place(self, p: PodInfo, node: str) -> None:
        self._unplace(p.uid)
        self._pods[p.uid] = p
        self._where[p.uid] = node
        self._info(node).add_pod(p)
        self._count_affinity(p, 1)

    def _count_affinity(self, p: PodInfo, sign: int) -> None:
        if p.affinity or p.anti_affinity or p.preferred_affinity or p.preferred_anti_affinity:
            self.affinity_pods += sign
        if p.anti_affinity:
            self.anti_affinity_pods += sign

    def _unplace(self, uid: str) -> None:
        old = self._pods.pop(uid, None)
        node = self._where.pop(uid, None)
        if old is None or node is None:
            return
        self._count_affinity(old, -1)
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(old)
            if ni.node is None and not ni.pods:
                del self.nodes[node]

    def assume(self, p: PodInfo, node: str) -> None:
        self._place(p, node)
        self.assumed.add(p.uid)

    def forget(self, p: PodInfo) -> None:
        if p.uid in self.assumed:
            self.assumed.discard(p.uid)
            self._unplace(p.uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def set_pod(self, p: PodInfo) -> None:
        """A bound pod as the informer shows it (added or changed)."""
        self.assumed.discard(p.uid)
        if p.terminal or not p.node_name:
            self._unplace(p.uid)
        else:
            self._place(p, p.node_name)

    def remove_pod(self, uid: str) -> None:
        self.assumed.discard(uid)
        self._unplace(uid)

    def pod(self, uid: str) -> PodInfo | None:
        return self._pods.get(uid)

    def node_of(self, uid: str) -> str | None:
        return self._where.get(uid)
