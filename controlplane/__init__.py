"""controlplane — the bundled API server, its storage, the scheduler and the controllers.

Place in the layer map (DEVELOPERS.md):

    controlplane ──► apiclient          controlplane never imports the agent or the node's machinery.

It talks to nodes only through the API, as the real control plane does: a node agent is just
another client that watches pods and writes their status.

May import: apiclient, the standard library, aiohttp, pyyaml. Never nodeagent, runtime, network, cni.
"""
