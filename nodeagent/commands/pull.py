"""`nodeagent pull IMAGE`: fetch an image from a registry into the image store (runtime/images)."""

from __future__ import annotations

import argparse

from nodeagent.commands._images import add_registry_options, add_store_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="pull an image from a registry",
                       description="Pull IMAGE (e.g. busybox:1.36, ghcr.io/o/app@sha256:...) into "
                                   "the image store, verifying every blob and layer.")
    p.add_argument("image")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    add_store_option(p)
    add_registry_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from nodeagent.commands._images import ProgressView, open_store, registry_settings
    from runtime.images.pull import Puller

    store = open_store(args)
    view = None if args.quiet else ProgressView(sys.stderr)
    puller = Puller(store, progress=view or (lambda ev: None), **registry_settings(args))
    rec = asyncio.run(puller.pull(args.image))
    if not args.quiet:
        print(f"Digest: {rec.manifest_digest}", file=sys.stderr)
    print(rec.name)
    return 0
