"""Where the API is and how to authenticate: read from a kubeconfig (the file kubectl uses).

Supports what our clusters issue: a server URL, the CA as `certificate-authority(-data)`, and a
bearer `token` (or `tokenFile`), or a client certificate (`client-certificate(-data)` and key).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from apiclient.errors import ApiError


class ConfigError(ApiError):
    def __init__(self, message: str):
        super().__init__(0, "ConfigError", message)


@dataclass(frozen=True)
class ClientConfig:
    server: str
    ca_pem: bytes | None = None
    token: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    insecure_skip_verify: bool = False
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https"):
            return None
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            # load_cert_chain wants files: write them to a private temp dir just for the call.
            with tempfile.TemporaryDirectory() as d:
                cert, key = Path(d, "c.pem"), Path(d, "k.pem")
                cert.write_bytes(self.client_cert_pem)
                fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
                os.write(fd, self.client_key_pem)
                os.close(fd)
                ctx.load_cert_chain(cert, key)
        return ctx


def _data(entry: dict, key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        p = Path(entry[key])
        return (p if p.is_absolute() else base / p).read_bytes()
    return None


def load_kubeconfig(path: str | Path | None = None, context: str | None = None) -> ClientConfig:
    path = Path(path or os.environ.get("KUBECONFIG", "").split(":")[0] or Path.home() / ".kube/config")
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read kubeconfig: {e}") from e
    name = context or doc.get("current-context")
    ctx = next((c["context"] for c in doc.get("contexts") or [] if c.get("name") == name), None)
    if ctx is None:
        raise ConfigError(f"{path}: context {name!r} not found")
    cluster = next((c["cluster"] for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
    user = next((u["user"] for u in doc.get("users") or [] if u.get("name") == ctx.get("user")), {}) or {}
    if cluster is None or not cluster.get("server"):
        raise ConfigError(f"{path}: cluster {ctx.get('cluster')!r} not found or has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    base = path.parent
    return ClientConfig(server=cluster["server"].rstrip("/"), ca_pem=_data(cluster, "certificate-authority", base),
                        token=token, client_cert_pem=_data(user, "client-certificate", base),
                        client_key_pem=_data(user, "client-key", base),
                        insecure_skip_verify=bool(cluster.get("insecure-skip-tls-verify")),
                        namespace=ctx.get("namespace") or "default")
