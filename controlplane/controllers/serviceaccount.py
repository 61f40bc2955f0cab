"""Two per-namespace fixtures every cluster has:

  * serviceaccount: a ServiceAccount `default` in every active namespace, re-created if deleted
    (pods that name no account get this one, through the ServiceAccount admission plugin);
  * root-ca-cert-publisher: a ConfigMap `kube-root-ca.crt` holding `ca.crt`, the CA that signed
    the API server's certificate, so a pod can verify `https://kubernetes.default.svc`
    (projected service account volumes mount it).

Where the CA comes from: kube-controller-manager is given `--root-ca-file`; we use the CA our API
client already trusts for this server — the kubeconfig's `certificate-authority(-data)`, which for
our API server is `<data-dir>/pki/ca.crt` — so the CA pods get is the one that verifies the server.
A plain-HTTP server has none, and then the publisher does nothing.

Neither touches a terminating namespace (its content is being removed).
"""

from __future__ import annotations

from apiclient import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS, AlreadyExists, Forbidden, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import is_deleting

ROOT_CA_NAME = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
                       "internal endpoints such as the internal service IP or kubernetes.default.svc. "
                       "No other usage is guaranteed across distributions of Kubernetes clusters.")


class _PerNamespace(Controller):
    """Keys are namespace names; the watched object (`res`, `obj_name`) brings its namespace back."""

    res = SERVICEACCOUNTS
    obj_name = ""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.objects = ctx.informers.get(self.res)
        self.namespaces.add_handler(lambda t, ns, old: self.queue.add(ns["metadata"]["name"]))
        self.objects.add_handler(self._object_event)

    def _object_event(self, type_: str, obj: dict, old: dict | None) -> None:
        if obj["metadata"].get("name") == self.obj_name and (type_ == "DELETED" or obj != old):
            self.queue.add(obj["metadata"].get("namespace", ""))

    def active(self, ns_name: str) -> dict | None:
        ns = self.namespaces.get("", ns_name)
        if ns is None or is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        return ns


class ServiceAccountsController(_PerNamespace):
    name = "serviceaccount"
    res = SERVICEACCOUNTS
    obj_name = "default"

    async def sync(self, key: str) -> None:
        if self.active(key) is None or self.objects.get(key, "default") is not None:
            return
        try:
            await self.api.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                    "metadata": {"name": "default", "namespace": key}}, key)
        except (AlreadyExists, NotFound, Forbidden):
            pass  # exists already, or the namespace went away / started terminating meanwhile


class RootCACertPublisher(_PerNamespace):
    name = "root-ca-cert-publisher"
    res = CONFIGMAPS
    obj_name = ROOT_CA_NAME

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        ca = ctx.api.config.ca_pem
        self.ca = ca.decode() if ca else None

    async def sync(self, key: str) -> None:
        if self.ca is None or self.active(key) is None:
            return
        want = {"ca.crt": self.ca}
        cur = self.objects.get(key, ROOT_CA_NAME)
        if cur is None:
            try:
                await self.api.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_NAME, "namespace": key,
                                 "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                    "data": want}, key)
            except (AlreadyExists, NotFound, Forbidden):
                pass
            return
        ann = cur["metadata"].get("annotations") or {}
        if cur.get("data") == want and not cur.get("binaryData") and \
                ann.get("kubernetes.io/description") == ROOT_CA_DESCRIPTION:
            return
        fixed = {**cur, "data": want, "metadata": {**cur["metadata"], "annotations": {
            **ann, "kubernetes.io/description": ROOT_CA_DESCRIPTION}}}
        fixed.pop("binaryData", None)
        await self.api.update(CONFIGMAPS, fixed, key)
