"""The cluster's PKI and the admin credentials, created on the first start.

    <data-dir>/pki/ca.crt, ca.key                 the cluster CA (clients trust it)
    <data-dir>/pki/apiserver.crt, apiserver.key   the serving certificate, signed by the CA
    <data-dir>/pki/admin.token                    the admin bearer token (mode 0600)
    <data-dir>/pki/apiserver-kubelet-client.crt, .key   how the API server proves itself to kubelets
                                                  (logs, exec, port-forward: proxy.py)
    <data-dir>/pki/sa.key                         RSA key signing service-account tokens

The serving certificate names every address a client may use (its subjectAltNames): localhost,
127.0.0.1, the advertise address, the `kubernetes` service names and its ClusterIP. TLS clients
(kubectl, client-go, the Python client) check the name they dialled against this list, so when
the addresses change the certificate is re-issued from the same CA — existing kubeconfigs keep
working because they trust the CA, not the certificate.

We drive the `openssl` command (as "Kubernetes the hard way" does) instead of a crypto library:
the steps are the ones an administrator would type. This runs once before the server starts
serving, never on the event loop.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from controlplane.apiserver.errors import APIError


class PKIError(APIError):
    def __init__(self, message: str):
        super().__init__(500, "InternalError", message)


@dataclass(frozen=True)
class PKI:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    token_file: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    @property
    def sa_key(self) -> Path:
        return self.cert.parent / "sa.key"

    @property
    def kubelet_client_cert(self) -> Path:
        return self.cert.parent / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.cert.parent / "apiserver-kubelet-client.key"


def _openssl(*args: str) -> None:
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise PKIError("openssl not found: install the `openssl` package") from None
    except subprocess.CalledProcessError as e:
        raise PKIError(f"openssl {args[0]} failed: {e.stderr.strip()}") from e


def sans(advertise: list[str], service_ip: str) -> list[str]:
    names = ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
             "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", f"IP:{service_ip}"]
    for a in advertise:
        try:
            ipaddress.ip_address(a)
            entry = f"IP:{a}"
        except ValueError:
            entry = f"DNS:{a}"
        if entry not in names:
            names.append(entry)
    return names


def ensure(data_dir: Path, advertise: list[str], service_ip: str = "10.96.0.1") -> PKI:
    pki = data_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    p = PKI(pki / "ca.crt", pki / "ca.key", pki / "apiserver.crt", pki / "apiserver.key",
            pki / "admin.token")
    if not p.ca_cert.exists() or not p.ca_key.exists():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(p.ca_key), "-out", str(p.ca_cert), "-days", "3650",
                 "-subj", "/CN=nodeagent-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        os.chmod(p.ca_key, 0o600)
    want = ",".join(sans(advertise, service_ip))
    sans_file = pki / "apiserver.sans"
    if not p.cert.exists() or not sans_file.exists() or sans_file.read_text() != want:
        csr = pki / "apiserver.csr"
        ext = pki / "apiserver.ext"
        ext.write_text(f"subjectAltName={want}\nextendedKeyUsage=serverAuth\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(p.key), "-out", str(csr), "-subj", "/CN=kube-apiserver")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(p.ca_cert), "-CAkey", str(p.ca_key),
                 "-CAcreateserial", "-out", str(p.cert), "-days", "825", "-extfile", str(ext))
        os.chmod(p.key, 0o600)
        csr.unlink()
        ext.unlink()
        sans_file.write_text(want)
    if not p.kubelet_client_cert.exists() or not p.kubelet_client_key.exists():
        # kubeadm's apiserver-kubelet-client: a client certificate in group system:masters, which
        # kubelets trust because the cluster CA signed it (their --client-ca-file).
        _sign(p.ca_cert, p.ca_key, p.kubelet_client_cert, p.kubelet_client_key,
              "/O=system:masters/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth\n")
    if not p.sa_key.exists():
        # The service-account token signing key (serviceaccounts.py reads this PKCS #1 form).
        _openssl("genrsa", "-traditional", "-out", str(p.sa_key), "2048")
        os.chmod(p.sa_key, 0o600)
    if not p.token_file.exists():
        fd = os.open(p.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return p


def _sign(ca_cert: Path, ca_key: Path, cert: Path, key: Path, subject: str, ext_text: str) -> None:
    """A new EC key and a certificate for it, signed by the cluster CA."""
    csr, ext = cert.with_suffix(".csr"), cert.with_suffix(".ext")
    ext.write_text(ext_text + "keyUsage=critical,digitalSignature,keyEncipherment\n")
    try:
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(cert), "-days", "825", "-extfile", str(ext))
        os.chmod(key, 0o600)
    finally:
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)


def kubelet_serving(ca_cert: Path, ca_key: Path, out_dir: Path, node_name: str,
                    addresses: list[str]) -> tuple[Path, Path]:
    """A kubelet serving certificate signed by the cluster CA, for a node agent on the machine
    that holds the CA key (`nodeagent up`): <out_dir>/kubelet.crt, kubelet.key. Blocking (openssl)."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = out_dir / "kubelet.crt", out_dir / "kubelet.key"
    names = [f"DNS:{node_name}", "DNS:localhost", "IP:127.0.0.1"]
    for a in addresses:
        try:
            ipaddress.ip_address(a)
            names.append(f"IP:{a}")
        except ValueError:
            names.append(f"DNS:{a}")
    want = ",".join(dict.fromkeys(names))
    sans_file = out_dir / "kubelet.sans"
    if not cert.exists() or not key.exists() or not sans_file.exists() or sans_file.read_text() != want:
        _sign(ca_cert, ca_key, cert, key, f"/O=system:nodes/CN=system:node:{node_name}",
              f"subjectAltName={want}\nextendedKeyUsage=serverAuth\n")
        sans_file.write_text(want)
    return cert, key
