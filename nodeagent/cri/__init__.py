"""nodeagent.cri — the kubelet/runtime boundary (api.py, shaped like Kubernetes' CRI) and its
implementation over our own runtime, networking and image store.

    api.py      the data and the two services (RuntimeService, ImageService): read this first

May import: runtime, cni, network (through their public faces), the standard library. Never
apiclient: the runtime side of a node does not talk to the API server — the kubelet side does.
"""
