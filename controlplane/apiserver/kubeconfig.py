"""Writing a kubeconfig: the file kubectl and client libraries read to find and trust a cluster.

    clusters:  the server URL and the CA that signed its certificate (inline, base64)
    users:     how to authenticate — here the admin bearer token
    contexts:  a (cluster, user, namespace) triple; current-context picks one

The file holds a credential, so it is written with mode 0600, atomically (temp file + rename) so
a reader never sees half a file.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

import localfs


def render(server: str, ca_pem: bytes, token: str, name: str = "nodeagent") -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                "namespace": "default"}}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: Path, server: str, pki) -> None:
    text = render(server, pki.ca_cert.read_bytes(), pki.token)
    path.parent.mkdir(parents=True, exist_ok=True)
    localfs.write_atomic(path, text, 0o600)
