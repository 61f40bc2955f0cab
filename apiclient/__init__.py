"""apiclient — an asyncio client for the Kubernetes API (ours or any real one).

Place in the layer map (DEVELOPERS.md):

    nodeagent, controlplane ──► apiclient ──► HTTP

It speaks the real Kubernetes REST protocol (paths, watch streams, Status errors) and nothing else.

May import: the standard library, aiohttp, pyyaml. Never nodeagent, runtime, network, cni,
controlplane.
"""
