"""Credentials from docker config.json and Kubernetes secrets; WWW-Authenticate challenges."""

from __future__ import annotations

import base64
import json

import pytest

from runtime.images.auth import Credentials, Keychain, parse_challenges
from runtime.images.errors import AuthError
from runtime.images.reference import parse_reference as ref


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_docker_config_keys_are_normalised_like_docker_does():
    kc = Keychain.from_docker_config({"auths": {
        "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")},
        "reg.example:5000": {"username": "u", "password": "p:with:colons"},
        "http://reg.example:5000/team": {"auth": _b64("team:secret")},
        "*.corp.example": {"auth": _b64("corp:pw")},
    }})
    assert kc.lookup(ref("busybox")) == Credentials("hubuser", "hubpass")
    assert kc.lookup(ref("reg.example:5000/other/app")) == Credentials("u", "p:with:colons")
    assert kc.lookup(ref("reg.example:5000/team/app")).username == "team"   # longest prefix wins
    assert kc.lookup(ref("a.corp.example/x")).username == "corp"
    assert kc.lookup(ref("a.b.corp.example/x")) is None                      # * is one DNS label
    assert kc.lookup(ref("ghcr.io/x/y")) is None


def test_kubernetes_dockerconfigjson_secret():
    inner = {"auths": {"127.0.0.1:5000": {"auth": _b64("k8s:pw"), "identitytoken": "refresh"}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
              "metadata": {"name": "regcred"},
              "data": {".dockerconfigjson": _b64(json.dumps(inner))}}
    creds = Keychain.from_secret(secret).lookup(ref("127.0.0.1:5000/app"))
    assert (creds.username, creds.password, creds.identity_token) == ("k8s", "pw", "refresh")


def test_legacy_dockercfg_secret():
    inner = {"reg.example": {"auth": _b64("old:pw")}}
    secret = {"type": "kubernetes.io/dockercfg", "metadata": {"name": "old"},
              "data": {".dockercfg": _b64(json.dumps(inner))}}
    assert Keychain.from_secret(secret).lookup(ref("reg.example/a")).username == "old"


@pytest.mark.parametrize("secret, fragment", [
    ({"type": "Opaque", "metadata": {"name": "s"}, "data": {}}, "want type"),
    ({"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "s"},
      "data": {".dockerconfigjson": "!!!"}}, "not base64"),
    ({"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "s"},
      "data": {".dockerconfigjson": _b64(json.dumps({"auths": {"r": {"auth": _b64("nocolon")}}}))}},
     "user:password"),
])
def test_bad_secrets_are_named(secret, fragment):
    with pytest.raises(AuthError, match=fragment):
        Keychain.from_secret(secret)


def test_config_file_errors_name_the_file(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(AuthError, match=str(p)):
        Keychain.from_file(p)


def test_bearer_challenge_with_commas_inside_quotes():
    [c] = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/busybox:pull,push"')
    assert c.scheme == "bearer"
    assert c.get("realm") == "https://auth.docker.io/token"
    assert c.get("scope") == "repository:library/busybox:pull,push"


def test_several_challenges_and_basic():
    cs = parse_challenges('Basic realm="basic-realm", Bearer realm="http://x/t", error="invalid_token"')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[1].get("error") == "invalid_token"
