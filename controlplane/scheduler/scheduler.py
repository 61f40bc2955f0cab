"""The scheduler's loop: watch pods and nodes, take pending pods one at a time, bind them.

    informers ──► cache (nodes, bound + assumed pods)      handlers run on this event loop
             ├──► queue (pending pods of ours)
             └──► namespaces' labels (affinity), PodDisruptionBudgets (preemption's victims)
    loop: pop a pod ─► algorithm (filter, score) ─► assume onto the node ─► bind in a task
                                   │ no node fits
                                   └─► preemption? ─► PodScheduled=False + FailedScheduling,
                                                     back to the queue

A cycle is synchronous CPU work on the cache; only binding talks to the API, in its own task
(at most BIND_CONCURRENCY at a time), so the next pod is tried while earlier bindings are on the
wire. That is safe because the chosen pod is assumed into the cache first (cache.py). Binding
errors forget the assumption and send the pod back to the queue with backoff.

Which pods are ours (upstream's filters): spec.schedulerName equal to our name, no
spec.nodeName, not being deleted. Pods with schedulingGates wait in the queue untried and show
PodScheduled=False reason SchedulingGated, as upstream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from apiclient import NAMESPACES, NODES, PODS, ApiClient, ApiError, Conflict, Informer, NotFound, Resource
from controlplane.scheduler import binder
from controlplane.scheduler.algorithm import Algorithm, FitError, Nominator
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.errors import SchedulerError
from controlplane.scheduler.events import EventRecorder
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.framework.plugin import NODE_ADD, NODE_CHANGE, POD_CHANGE, POD_GONE
from controlplane.scheduler.framework.runtime import default_plugins
from controlplane.scheduler.podinfo import PodInfo, pod_info
from controlplane.scheduler.preemption import Budget, budget, preempt
from controlplane.scheduler.queue import SchedulingQueue

log = logging.getLogger("nodeagent.scheduler")

BIND_CONCURRENCY = 64
PDBS = Resource("policy", "v1", "poddisruptionbudgets", True)
GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def _node_shape(node: dict) -> tuple:
    """The parts of a node that filters read (a heartbeat that changes none wakes nobody)."""
    md, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return (md.get("labels"), spec.get("taints"), spec.get("unschedulable"), status.get("allocatable"),
            status.get("capacity"), len(status.get("images") or ()))


class Scheduler:
    def __init__(self, api: ApiClient, name: str = "default-scheduler"):
        self.api, self.name = api, name
        self.cache = Cache()
        self.nominator = Nominator()
        self.framework = Framework(default_plugins(self.cache))
        self.algorithm = Algorithm(self.framework, self.cache, self.nominator)
        self.queue = SchedulingQueue({p.name: p.events for p in self.framework.plugins})
        self.recorder = EventRecorder(api, name)
        self.pods = Informer(api, PODS)
        self.nodes = Informer(api, NODES)
        self.namespaces = Informer(api, NAMESPACES)  # labels, for affinity namespaceSelectors
        self.namespace_labels: dict[str, dict] = {}
        self.pdbs = Informer(api, PDBS)  # preemption prefers victims whose eviction breaks none
        self.budgets: dict[tuple[str, str], Budget] = {}
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        self.namespaces.add_handler(self._on_namespace)
        self.pdbs.add_handler(self._on_pdb)
        self._binds = asyncio.Semaphore(BIND_CONCURRENCY)
        self._tasks: set[asyncio.Task] = set()
        self.scheduled = 0  # pods sent to binding (metrics, tests)

    # ---- informer handlers ----
    def _ours(self, p: PodInfo) -> bool:
        return p.scheduler_name == self.name and not p.node_name and not p.deleting

    def _on_pod(self, type_: str, obj: dict, old: dict | None) -> None:
        uid = (obj.get("metadata") or {}).get("uid", "")
        if type_ == "DELETED":
            self.queue.delete(uid)
            self.nominator.remove(uid)
            self.recorder.forget(uid)
            if self.cache.node_of(uid) is not None:
                self.cache.remove_pod(uid)
                self.queue.move(POD_GONE)
            return
        try:
            p = self._parse(obj, uid)
        except SchedulerError as e:
            # Data the server let through but we cannot read: say so on the pod, once per
            # version (it is not retried until the pod changes).
            md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
            log.warning("pod %s/%s: %s", md.get("namespace"), md.get("name"), e)
            self.queue.delete(uid)
            cond = next((c for c in (obj.get("status") or {}).get("conditions") or ()
                         if c.get("type") == "PodScheduled"), {})
            if ((spec.get("schedulerName") or "default-scheduler") == self.name and not spec.get("nodeName")
                    and cond.get("message") != str(e)):
                self._spawn(binder.mark_unschedulable(self.api, obj, "SchedulerError", str(e)))
                self.recorder.emit(obj, "Warning", "FailedScheduling", "Scheduling", str(e))
            return
        if p.node_name:
            self.queue.delete(uid)
            self.nominator.remove(uid)
            before = self.cache.pod(uid)
            was_assumed = self.cache.is_assumed(uid)
            self.cache.set_pod(p)
            if before is None:
                if not was_assumed:
                    self.queue.move(POD_CHANGE)
            elif p.terminal and not before.terminal:
                self.queue.move(POD_GONE)
            elif p.labels != before.labels:
                self.queue.move(POD_CHANGE)
            return
        if self._ours(p):
            if self.cache.is_assumed(uid):
                return  # its binding is on the wire (upstream skips assumed pods' updates too)
            if p.nominated_node:  # also after a restart: the room preemption made stays reserved
                self.nominator.add(p, p.nominated_node)
            if p.gated and uid not in self.queue:
                self._spawn(binder.mark_unschedulable(self.api, p.raw, "SchedulingGated", GATED_MESSAGE))
            self.queue.add(p)
        else:
            self.queue.delete(uid)

    def _parse(self, obj: dict, uid: str) -> PodInfo:
        """pod_info, unless the pod as we hold it (assumed or bound) changed only in what the
        scheduler does not read: the echo of our own binding (spec.nodeName set) and the node
        agent's status updates reuse the PodInfo we have rather than parse the pod again."""
        known = self.cache.pod(uid)
        if known is not None:
            spec, md = obj.get("spec") or {}, obj.get("metadata") or {}
            node = spec.get("nodeName") or ""
            if (node and bool(md.get("deletionTimestamp")) == known.deleting
                    and (md.get("labels") or {}) == known.labels
                    and ((obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")) == known.terminal
                    and {**spec, "nodeName": None} == {**(known.raw.get("spec") or {}), "nodeName": None}):
                return dataclasses.replace(known, raw=obj, node_name=node, start_time=(
                    (obj.get("status") or {}).get("startTime") or known.start_time))
        return pod_info(obj, self.namespace_labels)

    def _on_namespace(self, type_: str, obj: dict, old: dict | None) -> None:
        name, labels = obj["metadata"]["name"], obj["metadata"].get("labels") or {}
        if type_ == "DELETED":
            self.namespace_labels.pop(name, None)
        elif self.namespace_labels.get(name) != labels:
            self.namespace_labels[name] = labels
            self.queue.move(POD_CHANGE)  # a namespaceSelector may match (or stop matching) now

    def _on_pdb(self, type_: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        if type_ == "DELETED":
            self.budgets.pop(key, None)
        else:
            self.budgets[key] = budget(obj)

    def _on_node(self, type_: str, obj: dict, old: dict | None) -> None:
        name = obj["metadata"]["name"]
        if type_ == "DELETED":
            self.cache.remove_node(name)
            return
        try:
            known = name in self.cache.nodes and self.cache.nodes[name].node is not None
            self.cache.set_node(obj)
        except SchedulerError as e:
            log.warning("node %s: %s", name, e)
            return
        if not known:
            self.queue.move(NODE_ADD)
        elif old is None or _node_shape(old) != _node_shape(obj):
            self.queue.move(NODE_CHANGE)

    # ---- the loop ----
    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None and not isinstance(t.exception(), ApiError):
            log.error("scheduler task failed: %r", t.exception())

    async def run(self) -> None:
        informers = [asyncio.ensure_future(i.run()) for i in (self.namespaces, self.pdbs, self.nodes, self.pods)]
        events = asyncio.ensure_future(self.recorder.run())
        try:
            for informer in (self.namespaces, self.pdbs, self.nodes, self.pods):
                await informer.wait_synced()
            log.info("%s: %d nodes, %d pods pending", self.name, len(self.cache.node_list()), len(self.queue.pods))
            while True:
                qp = await self.queue.pop()
                self.schedule_one(qp)
                await asyncio.sleep(0)  # let bindings and informers run between cycles
        finally:
            for t in [*informers, events, *self._tasks]:
                t.cancel()
            await asyncio.gather(*informers, events, *self._tasks, return_exceptions=True)

    def schedule_one(self, qp) -> None:
        pod = qp.pod
        try:
            placement = self.algorithm.schedule(pod)
        except FitError as fe:
            self._unschedulable(qp, fe)
            return
        except SchedulerError as e:
            self.queue.failed(qp, frozenset())
            self._spawn(binder.mark_unschedulable(self.api, pod.raw, "SchedulerError", str(e)))
            self.recorder.emit(pod.raw, "Warning", "FailedScheduling", "Scheduling", str(e))
            return
        self.cache.assume(pod, placement.node)
        self.queue.done(pod.uid)
        self.nominator.remove(pod.uid)
        self.scheduled += 1
        self._spawn(self._bind(pod, placement.node))

    def _unschedulable(self, qp, fe: FitError) -> None:
        pod = qp.pod
        post, nominated = "", None
        if fe.num_nodes:
            cand, msg = preempt(self.framework, self.cache, pod, fe.statuses, list(self.budgets.values()))
            if cand is not None:
                nominated = cand.node
                self.nominator.add(pod, cand.node)
                self._spawn(self._preempt(pod, cand))
            else:
                post = "preemption: " + msg
                if pod.nominated_node:
                    nominated = ""
                    self.nominator.remove(pod.uid)
        message = fe.message(post)
        self.queue.failed(qp, frozenset(st.plugin for st in fe.statuses.values()) or frozenset({"NoNodes"}))
        log.debug("%s: %s", pod.key, message)  # the pod's condition and event carry it
        self._spawn(binder.mark_unschedulable(self.api, pod.raw, "Unschedulable", message, nominated))
        self.recorder.emit(pod.raw, "Warning", "FailedScheduling", "Scheduling", message)

    async def _preempt(self, pod: PodInfo, cand) -> None:
        for v in cand.victims:
            self.recorder.emit(v.raw, "Normal", "Preempted", "Preempting",
                               f"Preempted by pod {pod.uid} on node {cand.node}")
        await asyncio.gather(*(binder.evict(self.api, v, self.name) for v in cand.victims),
                             return_exceptions=True)

    async def _bind(self, pod: PodInfo, node: str) -> None:
        t0 = time.monotonic()
        async with self._binds:
            try:
                await binder.bind(self.api, pod, node)
            except (NotFound, Conflict) as e:
                # deleted, or bound by someone else meanwhile: the informer will say which
                self.cache.forget(pod)
                log.info("binding %s to %s: %s", pod.key, node, e)
                return
            except ApiError as e:
                self.cache.forget(pod)
                log.warning("binding %s to %s: %s", pod.key, node, e)
                self.recorder.emit(pod.raw, "Warning", "FailedScheduling", "Scheduling", f"Binding rejected: {e}")
                # A timeout may hide a binding that did happen: retry only a pod the informer
                # still shows pending (a bound or deleted one has already left our hands).
                current = self.pods.get(pod.name, pod.namespace)
                if current is not None and not (current.get("spec") or {}).get("nodeName"):
                    self.queue.add_after_error(pod)
                return
        log.debug("bound %s to %s in %.1f ms", pod.key, node, (time.monotonic() - t0) * 1000)
        self.recorder.emit(pod.raw, "Normal", "Scheduled", "Binding",
                           f"Successfully assigned {pod.namespace}/{pod.name} to {node}")
