"""The kubelet API's TLS: who we are (a serving certificate) and whom we let in (client CA).

Only the API server talks to this port. It presents a client certificate (its kubelet-client
certificate, signed by the cluster CA); we refuse every connection without one signed by that CA
— the handshake itself fails, before any HTTP. That is the kubelet's `--client-ca-file` with
anonymous access off.

Our own serving certificate comes from one of two places:
  - all-in-one (`nodeagent up`): the API server's CA signs one for us (controlplane certs.py
    `kubelet_serving`), written into the agent's directory;
  - joining a remote server (`nodeagent agent`): a self-signed certificate made here, which is
    what the kubelet does by default (`<cert-dir>/kubelet.crt`, CN `<node>@<unix time>`); the
    kube-apiserver does not verify kubelet serving certificates unless told to.
Certificates are made with the `openssl` command, once, before the event loop serves.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nodeagent.errors import AgentError


@dataclass(frozen=True)
class KubeletTLS:
    cert: Path
    key: Path
    client_ca: Path     # the cluster CA: clients must present a certificate it signed


def server_context(tls: KubeletTLS) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.cert, tls.key)
    ctx.load_verify_locations(cafile=str(tls.client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def kubelet_tls(cert_dir: Path, node_name: str, addresses: list[str], cluster_ca: Path,
                cluster_ca_key: Path | None = None) -> KubeletTLS:
    """The agent's TLS settings (blocking: call before serving).

    cluster_ca      the CA that signed the API server's kubelet-client certificate — the CA in
                    the agent's kubeconfig; the only clients we accept
    cluster_ca_key  given when the control plane shares this machine (`nodeagent up`): our
                    serving certificate is then signed by the cluster CA; without it we make a
                    self-signed one, as a kubelet does by default
    """
    if cluster_ca_key is not None and cluster_ca_key.exists():
        from controlplane.apiserver.certs import PKIError, kubelet_serving  # all-in-one only
        try:
            cert, key = kubelet_serving(cluster_ca, cluster_ca_key, cert_dir, node_name, addresses)
        except PKIError as e:
            raise AgentError(f"kubelet serving certificate: {e.message}") from e
    else:
        cert, key = self_signed(cert_dir, node_name, addresses)
    return KubeletTLS(cert, key, cluster_ca)


def self_signed(cert_dir: Path, node_name: str, addresses: list[str]) -> tuple[Path, Path]:
    """<cert_dir>/kubelet.crt and kubelet.key, made once (blocking: call before serving)."""
    cert, key = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    if cert.exists() and key.exists():
        return cert, key
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sans = [f"DNS:{node_name}", "DNS:localhost", "IP:127.0.0.1"]
    for a in addresses:
        try:
            ipaddress.ip_address(a)
            sans.append(f"IP:{a}")
        except ValueError:
            sans.append(f"DNS:{a}")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "365",
                        "-subj", f"/CN={node_name}@{int(time.time())}",
                        "-addext", f"subjectAltName={','.join(dict.fromkeys(sans))}",
                        "-addext", "extendedKeyUsage=serverAuth"],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise AgentError("openssl not found: install the `openssl` package") from None
    except subprocess.CalledProcessError as e:
        raise AgentError(f"openssl could not make the kubelet serving certificate: {e.stderr.strip()}") from e
    os.chmod(key, 0o600)
    return cert, key
