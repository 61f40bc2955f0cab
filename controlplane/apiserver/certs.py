"""The cluster's PKI and the admin credentials, created on the first start.

    <data-dir>/pki/ca.crt, ca.key                 the cluster CA (clients trust it)
    <data-dir>/pki/apiserver.crt, apiserver.key   the serving certificate, signed by the CA
    <data-dir>/pki/admin.token                    the admin bearer token (mode 0600)

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
    if not p.token_file.exists():
        fd = os.open(p.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return p
