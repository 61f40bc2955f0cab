"""Making sure a container's image is on the node (the kubelet's images/image_manager.go).

    imagePullPolicy  Always        pull every time a container starts (the registry is asked;
                                   unchanged layers are not fetched again)
                     IfNotPresent  pull only when the store does not have it
                     Never         never pull; absent → ErrImageNeverPull
    default          Always for `:latest` or no tag, else IfNotPresent (the API server's rule)

A failed pull is ErrImagePull, its message the runtime's error; the next attempts within the
back-off (10 s doubling to 300 s, per pod and image) are ImagePullBackOff without asking the
registry, their message 'Back-off pulling image "<image>": ErrImagePull: <that error>' (upstream
keeps the last pull error per back-off key, prevPullErrMsg, so the status still says why). Each
failure is also the event Failed "Error: <reason>", as kuberuntime's startContainer records it.

Credentials come from the pod's imagePullSecrets (kubernetes.io/dockerconfigjson or the older
kubernetes.io/dockercfg), decoded here and handed to the image service as AuthConfigs — the
runtime never reads Secrets.
"""

from __future__ import annotations

import base64
import json
import time

from nodeagent.backoff import Backoff
from nodeagent.cri.api import AuthConfig, CRIError, ImageService, InvalidImageName
from nodeagent.envvars import Lookup
from nodeagent.events import NORMAL, WARNING, EventRecorder


class ImageError(Exception):
    """Why a container's image is not there; `reason` is its waiting reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def default_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


async def pull_secrets(pod: dict, lookup: Lookup) -> tuple[AuthConfig, ...]:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: list[AuthConfig] = []
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        secret = await lookup("secrets", ns, ref.get("name", ""))
        if secret is None:
            continue       # the kubelet goes on without it (and the pull may then fail)
        data = secret.get("data") or {}
        try:
            if ".dockerconfigjson" in data:
                auths = json.loads(base64.b64decode(data[".dockerconfigjson"])).get("auths") or {}
            elif ".dockercfg" in data:
                auths = json.loads(base64.b64decode(data[".dockercfg"]))
            else:
                continue
        except ValueError:
            continue
        for server, a in auths.items():
            out.append(AuthConfig(server=server, username=a.get("username", ""),
                                  password=a.get("password", ""), auth=a.get("auth", ""),
                                  identity_token=a.get("identitytoken", "")))
    return tuple(out)


class ImagePuller:
    def __init__(self, images: ImageService, recorder: EventRecorder, backoff: Backoff | None = None):
        self.images, self.recorder = images, recorder
        self.backoff = backoff or Backoff()
        self._last_error: dict[str, str] = {}   # back-off key → "ErrImagePull: <error>"

    async def ensure(self, pod: dict, container: dict, field_path: str, lookup: Lookup):
        """The image's Image record once it is present; raises ImageError."""
        try:
            return await self._ensure(pod, container, field_path, lookup)
        except ImageError as e:
            self.recorder.event(pod, WARNING, "Failed", f"Error: {e.reason}", field_path)
            raise

    def forget(self, uid: str) -> None:
        """The pod has gone: its back-off and last errors with it (keys start with its uid)."""
        self.backoff.forget(uid)
        for k in [k for k in self._last_error if k.startswith(uid)]:
            del self._last_error[k]

    async def _ensure(self, pod: dict, container: dict, field_path: str, lookup: Lookup):
        image = container.get("image") or ""
        policy = container.get("imagePullPolicy") or default_policy(image)
        try:
            present = await self.images.image_status(image)
        except InvalidImageName as e:
            self.recorder.event(pod, WARNING, "InspectFailed",
                                f'Failed to apply default image tag "{image}": {e.message}', field_path)
            raise ImageError("InvalidImageName", f'Failed to apply default image tag "{image}": '
                                                 f'{e.message}') from e
        except CRIError:
            present = None
        if present is not None and policy != "Always":
            self.recorder.event(pod, NORMAL, "Pulled",
                                f'Container image "{image}" already present on machine', field_path)
            return present
        if policy == "Never":
            msg = f'Container image "{image}" is not present with pull policy of Never'
            self.recorder.event(pod, WARNING, "ErrImageNeverPull", msg, field_path)
            raise ImageError("ErrImageNeverPull", msg)
        key = f"{pod['metadata']['uid']}_{image}"
        if self.backoff.in_backoff_since_update(key):
            msg = f'Back-off pulling image "{image}"'
            self.recorder.event(pod, NORMAL, "BackOff", msg, field_path)
            if key in self._last_error:
                msg = f"{msg}: {self._last_error[key]}"
            raise ImageError("ImagePullBackOff", msg)
        self._last_error.pop(key, None)
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', field_path)
        t0 = time.monotonic()
        try:
            await self.images.pull_image(image, await pull_secrets(pod, lookup))
            pulled = await self.images.image_status(image)
        except InvalidImageName as e:
            self.recorder.event(pod, WARNING, "InspectFailed", e.message, field_path)
            raise ImageError("InvalidImageName", e.message) from e
        except CRIError as e:
            self.backoff.next(key)
            self.recorder.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {e.message}',
                                field_path)
            self._last_error[key] = f"ErrImagePull: {e.message}"
            raise ImageError("ErrImagePull", e.message) from e
        if pulled is None:
            raise ImageError("ErrImagePull", f'image "{image}" is not in the store after its pull')
        took = time.monotonic() - t0
        self.recorder.event(pod, NORMAL, "Pulled",
                            f'Successfully pulled image "{image}" in {took:.3f}s '
                            f'({took:.3f}s including waiting). Image size: {pulled.size} bytes.',
                            field_path)
        return pulled

    def retry_at(self, pod: dict, container: dict) -> float | None:
        key = f"{pod['metadata']['uid']}_{container.get('image') or ''}"
        at = self.backoff.update_time(key)
        return None if at is None else at + self.backoff.delay(key)
