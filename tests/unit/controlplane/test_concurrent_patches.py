"""Patches without a resourceVersion never fail with 409: the server applies each to the newest
object (upstream's patcher retries on a conflict), so concurrent writers all land. With a stale
resourceVersion in the patch, 409 — that one is the client's precondition."""

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def _patch(server, path: str, body: dict, ctype="application/merge-patch+json") -> int:
    req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="PATCH",
                                 headers={"Content-Type": ctype,
                                          "Authorization": f"Bearer {server.token}"})
    try:
        with urllib.request.urlopen(req, context=server.ssl_context(), timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_concurrent_patches_all_land_and_a_stale_precondition_is_409(server, kubectl):
    kubectl("create", "configmap", "race")
    path = "/api/v1/namespaces/default/configmaps/race"
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: _patch(server, path, {"data": {f"k{i}": str(i)}}), range(64)))
    assert codes == [200] * 64
    data = json.loads(kubectl("get", "configmap", "race", "-o", "json"))["data"]
    assert data == {f"k{i}": str(i) for i in range(64)}
    assert _patch(server, path, {"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}) == 409
    ops = [{"op": "add", "path": "/data/j", "value": "1"}]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _patch(server, path, ops, "application/json-patch+json"), range(16)))
    assert codes == [200] * 16
