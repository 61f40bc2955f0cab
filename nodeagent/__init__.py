"""nodeagent — the node agent (our kubelet) and its command line.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► runtime, network, cni, apiclient      (through narrow interfaces)

The agent watches the API for pods bound to its node, runs one worker per pod, reports status, runs
probes and serves the kubelet API. It is the only package that knows both pods and processes.
Nothing imports nodeagent; controlplane in particular never does.

May import: runtime, network, cni, apiclient, the standard library, third-party libraries.
"""
