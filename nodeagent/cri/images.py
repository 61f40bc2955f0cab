"""The ImageService (api.py) over runtime.images: pull, status, list, remove.

imagePullPolicy is the kubelet side's decision (it asks image_status, then pull_image when it must),
as in the real kubelet's image manager. Credentials come with each pull as AuthConfigs that the
kubelet side decoded from the pod's imagePullSecrets; the node's own docker config files
(Keychain.default()) are consulted after them, as the kubelet's credential provider does.

Blocking store reads (JSON records on disk) run in a worker thread; the pull itself is asyncio
(aiohttp) and its unpacking already runs in threads (runtime/images/pull.py).
"""

from __future__ import annotations

import asyncio
import base64

from nodeagent.cri.api import AuthConfig, CRIError, Image, ImagePullError, InvalidImageName


def _invalid(ref: str, e: BadReference) -> InvalidImageName:
    # the kubelet's parsers.ParseImageName words it, around distribution/reference's error
    return InvalidImageName(f'couldn\'t parse image name "{ref}": invalid reference format: {e.why}')


def _keychain(auth: tuple[AuthConfig, ...]):
    from runtime.images.auth import Credentials, Keychain

    kc = Keychain()
    try:
        kc = kc.merge(Keychain.default())
    except Exception:  # noqa: BLE001 - an unreadable docker config must not stop a pull with secrets
        pass
    for a in auth:
        user, password = a.username, a.password
        if a.auth and not user:
            try:
                user, _, password = base64.b64decode(a.auth).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ImagePullError(f"credentials for {a.server}: auth is not base64 of "
                                     "user:password") from None
        kc.add(a.server, Credentials(user, password, a.identity_token))
    return kc


def to_image(rec) -> Image:
    from runtime.images.reference import parse_reference

    ref = parse_reference(rec.name)
    digests = (f"{ref.name}@{rec.manifest_digest}",)
    tags = (rec.name,) if not ref.digest else ()
    uid, username = None, ""
    user = rec.config.user.partition(":")[0]
    if user.isdigit():
        uid = int(user)
    elif user:
        username = user
    size = sum(lr.size for lr in rec.layers)
    return Image(id=rec.id, repo_tags=tags, repo_digests=digests, size=size, uid=uid,
                 username=username)


class Images:
    def __init__(self, store, registry_config=None):
        self.store = store                # runtime.images.ImageStore
        self.registry_config = registry_config

    async def pull_image(self, ref: str, auth: tuple[AuthConfig, ...] = ()) -> str:
        from runtime.images import ImageError
        from runtime.images.errors import BadReference
        from runtime.images.pull import Puller
        from runtime.images.reference import parse_reference

        try:
            parsed = parse_reference(ref)
        except BadReference as e:
            raise _invalid(ref, e) from None
        try:
            rec = await Puller(self.store, keychain=_keychain(auth),
                               config=self.registry_config).pull(parsed)
        except ImageError as e:
            raise ImagePullError(f"pulling {ref}: {e}") from None
        except OSError as e:
            raise ImagePullError(f"pulling {ref}: {e}") from None
        return rec.id

    async def image_status(self, ref: str) -> Image | None:
        rec = await asyncio.to_thread(self._get, ref)
        return to_image(rec) if rec is not None else None

    def _get(self, ref: str):
        from runtime.images import ImageError
        from runtime.images.errors import BadReference

        try:
            return self.store.get(ref)
        except BadReference as e:
            raise _invalid(ref, e) from None
        except ImageError:
            return None

    async def list_images(self) -> list[Image]:
        records = await asyncio.to_thread(self.store.list)
        return [to_image(r) for r in records]

    async def remove_image(self, ref: str) -> None:
        from runtime.images import ImageError

        def remove() -> None:
            if self._get(ref) is None:
                return            # CRI: removing an image that is not there succeeds
            try:
                self.store.remove(ref)
            except ImageError as e:
                raise CRIError(f"removing image {ref}: {e}") from None
        await asyncio.to_thread(remove)
