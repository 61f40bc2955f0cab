"""apiclient — an asyncio client for the Kubernetes API (ours or any real one).

Place in the layer map (DEVELOPERS.md):

    nodeagent, controlplane ──► apiclient ──► HTTP

It speaks the real Kubernetes REST protocol (paths, watch streams, Status errors) and nothing else:

    config.py     read a kubeconfig → ClientConfig (server, CA, token)
    client.py     ApiClient: get/list/create/update/patch/delete/watch, CAS retry loop
    informer.py   Informer: list + watch with resume, bookmarks and 410 re-list; a local cache
    errors.py     ApiError and one subclass per Status reason (NotFound, Conflict, Expired, ...)

May import: the standard library, aiohttp, pyyaml. Never nodeagent, runtime, network, cni,
controlplane.
"""

from apiclient.client import (
    CONFIGMAPS, DAEMONSETS, DEPLOYMENTS, ENDPOINTS, ENDPOINTSLICES, EVENTS, LEASES, NAMESPACES,
    NODES, PODS, REPLICASETS, SECRETS, SERVICEACCOUNTS, SERVICES, ApiClient, Resource, WatchEvent)
from apiclient.config import ClientConfig, load_kubeconfig
from apiclient.errors import (
    AlreadyExists, ApiError, BadRequest, Conflict, Expired, Forbidden, Invalid, NotFound,
    ServerError, Unauthorized, Unreachable)
from apiclient.informer import Informer

__all__ = ["ApiClient", "ClientConfig", "Informer", "Resource", "WatchEvent", "load_kubeconfig",
           "ApiError", "AlreadyExists", "BadRequest", "Conflict", "Expired", "Forbidden", "Invalid",
           "NotFound", "ServerError", "Unauthorized", "Unreachable",
           "CONFIGMAPS", "DAEMONSETS", "DEPLOYMENTS", "ENDPOINTS", "ENDPOINTSLICES", "EVENTS",
           "LEASES", "NAMESPACES", "NODES", "PODS", "REPLICASETS", "SECRETS", "SERVICEACCOUNTS",
           "SERVICES"]
