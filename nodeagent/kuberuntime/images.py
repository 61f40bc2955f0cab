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
import re
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


# distribution/reference's grammar (regexp.go), which the kubelet's parsers.ParseImageName uses
_ALNUM = r"[a-z0-9]+"
_PATH = rf"{_ALNUM}(?:(?:[._]|__|[-]+){_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])"
_REFERENCE = re.compile(
    rf"^((?:{_HOST}(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*)(?::([\w][\w.-]{{0,127}}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


def image_name_error(image: str) -> str | None:
    """Why the kubelet cannot use `image` as a reference (InvalidImageName), in its words, or
    None: ParseNormalizedNamed's checks, in its order."""
    def bad(why: str) -> str:
        return f'couldn\'t parse image name "{image}": {why}'
    if _HEX64.match(image):
        return bad(f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings")
    first, slash, rest = image.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"
                     and first.lower() == first):
        domain, remainder = "docker.io", image
    else:
        domain, remainder = first, rest
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return bad(f"invalid reference format: repository name ({remote}) must be lowercase")
    m = _REFERENCE.match(f"{domain}/{remainder}")
    if m is None:
        return bad("invalid reference format")
    if len(m.group(1)) > 255:
        return bad("invalid reference format: repository name must not be more than 255 characters")
    digest = m.group(3)
    if digest and digest.startswith("sha256:") and len(digest) != len("sha256:") + 64:
        return bad("invalid checksum digest length")
    return None


def go_millis(seconds: float) -> str:
    """Go's Duration.String of `seconds` truncated to milliseconds (the Pulled event's form)."""
    ms = int(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") + "s"
    return f"{h}h{m}m{sec}" if h else f"{m}m{sec}" if m else sec


def default_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


async def pull_secrets(pod: dict, lookup: Lookup,
                       missing: list[str] | None = None) -> tuple[AuthConfig, ...]:
    """The pod's imagePullSecrets as AuthConfigs; the names of those that cannot be read are
    appended to `missing` (entries with an empty name are skipped, as the kubelet skips them)."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: list[AuthConfig] = []
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        if not ref.get("name"):
            continue
        secret = await lookup("secrets", ns, ref["name"])
        if secret is None:
            if missing is not None:
                missing.append(ref["name"])
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
        # back-off key → the last pull's error, which the ImagePullBackOff message carries
        # (image_manager.go's prevPullErrMsg); forgotten with the key's back-off entry
        self._prev_error: dict[str, str] = {}

    async def ensure(self, pod: dict, container: dict, field_path: str, lookup: Lookup):
        """The image's Image record once it is present; raises ImageError — after the Warning
        `Failed` event "Error: <reason>" that startContainer records for every such failure."""
        try:
            return await self._ensure(pod, container, field_path, lookup)
        except ImageError as e:
            self.recorder.event(pod, WARNING, "Failed", f"Error: {e.reason}", field_path)
            raise

    def forget(self, uid: str) -> None:
        """The pod has gone: its back-off and last errors with it (keys start with its uid)."""
        self.backoff.forget(uid)
        for k in [k for k in self._prev_error if k.startswith(uid)]:
            del self._prev_error[k]

    async def _ensure(self, pod: dict, container: dict, field_path: str, lookup: Lookup):
        image = container.get("image") or ""
        policy = container.get("imagePullPolicy") or default_policy(image)
        why = image_name_error(image)
        if why is not None:                # applyDefaultImageTag, before the runtime is asked
            msg = f'Failed to apply default image tag "{image}": {why}'
            self.recorder.event(pod, WARNING, "InspectFailed", msg, field_path)
            raise ImageError("InvalidImageName", msg)
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
                                f'Container image "{image}" already present on machine and can be '
                                'accessed by the pod', field_path)
            return present
        if policy == "Never":
            msg = f'Container image "{image}" is not present with pull policy of Never'
            self.recorder.event(pod, WARNING, "ErrImageNeverPull", msg, field_path)
            raise ImageError("ErrImageNeverPull", msg)
        key = f"{pod['metadata']['uid']}_{image}"
        if self.backoff.in_backoff_since_update(key):
            msg = f'Back-off pulling image "{image}"'
            self.recorder.event(pod, NORMAL, "BackOff", msg, field_path)
            prev = self._prev_error.get(key)
            raise ImageError("ImagePullBackOff", f"{msg}: {prev}" if prev else msg)
        self._prev_error.pop(key, None)
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', field_path)
        t0 = time.monotonic()
        try:
            missing: list[str] = []
            auth = await pull_secrets(pod, lookup, missing)
            if missing:
                self.recorder.event(pod, WARNING, "FailedToRetrieveImagePullSecret",
                                    f"Unable to retrieve some image pull secrets "
                                    f"({', '.join(missing)}); attempting to pull the image may "
                                    "not succeed.")
            await self.images.pull_image(image, auth)
            pulled = await self.images.image_status(image)
        except InvalidImageName as e:
            self.recorder.event(pod, WARNING, "InspectFailed", e.message, field_path)
            raise ImageError("InvalidImageName", e.message) from e
        except CRIError as e:
            self.backoff.next(key)
            self.recorder.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {e.message}',
                                field_path)
            # the waiting message is the runtime's error alone (evalCRIPullErr's fallback)
            if len(self._prev_error) >= 1024:
                self._prev_error.pop(next(iter(self._prev_error)))   # oldest first
            self._prev_error[key] = f"ErrImagePull: {e.message}"
            raise ImageError("ErrImagePull", e.message) from e
        if pulled is None:
            raise ImageError("ErrImagePull", f'image "{image}" is not in the store after its pull')
        took = go_millis(time.monotonic() - t0)
        self.recorder.event(pod, NORMAL, "Pulled",
                            f'Successfully pulled image "{image}" in {took} '
                            f'({took} including waiting). Image size: {pulled.size} bytes.',
                            field_path)
        return pulled

    def retry_at(self, pod: dict, container: dict) -> float | None:
        key = f"{pod['metadata']['uid']}_{container.get('image') or ''}"
        at = self.backoff.update_time(key)
        return None if at is None else at + self.backoff.delay(key)
