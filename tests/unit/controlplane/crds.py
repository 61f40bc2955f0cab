"""CRDs and objects shared by the CRD tests (test_crd.py, test_crd_lifecycle.py): upstream's
CronTab example, an operator's CRD with status and scale subresources, a Helm chart's CRD that
keeps unknown fields; and small helpers over the official client and raw HTTPS."""

import json
import urllib.error
import urllib.request

from kubernetes import client, config, watch

CRONTAB = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              description: the schedule and what runs
              required: [cronSpec]
              properties:
                cronSpec:
                  type: string
                  description: when it runs, in cron syntax
                  pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
                  default: 1
                color:
                  type: string
                  enum: [red, blue]
                tags:
                  type: array
                  maxItems: 2
                  items: {type: string}
                  x-kubernetes-list-type: set
                note:
                  type: string
                  nullable: true
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        jsonPath: .spec.replicas
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
    - name: v1beta1
      served: true
      storage: false
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
"""

CRONTAB_OBJ = """
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
"""

OPERATOR = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "databases.ops.example.org"},
    "spec": {
        "group": "ops.example.org", "scope": "Namespaced",
        "names": {"plural": "databases", "singular": "database", "kind": "Database", "shortNames": ["db"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "engine": {"type": "string"},
                    "port": {"x-kubernetes-int-or-string": True},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "required": ["name"], "properties": {
                                  "name": {"type": "string"}, "port": {"type": "integer"}}}}}},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "selector": {"type": "string"},
                    "phase": {"type": "string"}}}}}},
        }],
    },
}

HELM = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.charts.example.net"},
    "spec": {
        "group": "charts.example.net", "scope": "Cluster",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True}}}},
        }],
    },
}


def api_client(server):
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def raw(server, method: str, path: str, body=None, ctype: str = "application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": ctype, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=server.ssl_context(), timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_gone(list_fn, name, *args):
    """True once no object `name` exists (a list, then a watch from that list)."""
    listed = list_fn(*args, field_selector=f"metadata.name={name}")
    items = listed["items"] if isinstance(listed, dict) else listed.items
    if not items:
        return True
    rv = listed["metadata"]["resourceVersion"] if isinstance(listed, dict) else \
        listed.metadata.resource_version
    w = watch.Watch()
    for ev in w.stream(list_fn, *args, field_selector=f"metadata.name={name}",
                       resource_version=rv, timeout_seconds=40):
        if ev["type"] == "DELETED":
            w.stop()
            return True
    return False


def create_crd(server, crd: dict):
    ext = client.ApiextensionsV1Api(api_client(server))
    return ext.create_custom_resource_definition(crd)
