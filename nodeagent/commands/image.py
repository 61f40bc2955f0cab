"""`nodeagent image ls|inspect|rm|prune|df|import`: manage the image store (runtime/images)."""

from __future__ import annotations

import argparse

from nodeagent.commands._images import add_store_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="list, inspect, remove, prune and import images",
                       description="Manage the node's image store.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("ls", help="list images")
    v.add_argument("-q", "--quiet", action="store_true", help="names only")
    v.set_defaults(func=run_ls)

    v = verbs.add_parser("inspect", help="show an image's record, config defaults and layers (JSON)")
    v.add_argument("image", nargs="+")
    v.set_defaults(func=run_inspect)

    v = verbs.add_parser("rm", help="remove image names, then unused layers")
    v.add_argument("image", nargs="+")
    v.add_argument("--no-prune", action="store_true", help="keep layers no image uses any more")
    v.set_defaults(func=run_rm)

    v = verbs.add_parser("prune", help="delete blobs and layers no image uses")
    v.set_defaults(func=run_prune)

    v = verbs.add_parser("df", help="disk usage of the image store")
    v.set_defaults(func=run_df)

    v = verbs.add_parser("import", help="import a `docker save` tarball or an OCI layout/archive")
    v.add_argument("path", metavar="FILE|DIR")
    v.add_argument("--repo", help="repository for images the archive names only by tag "
                                  "(default: localhost/<file name>)")
    v.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="for multi-arch layouts")
    v.set_defaults(func=run_import)

    for v in verbs.choices.values():
        add_store_option(v)


def run_ls(args) -> int:
    from nodeagent.commands._images import human, open_store
    from runtime.images.reference import parse_reference

    store = open_store(args)
    rows = []
    for rec in store.list():
        ref = parse_reference(rec.name)
        size = sum(store.layer_usage(lr.diff_id) for lr in rec.layers)
        rows.append((ref.familiar_name, ref.tag or "<none>", rec.id[7:19], rec.platform, human(size)))
    if args.quiet:
        for rec in store.list():
            print(rec.name)
        return 0
    header = ("REPOSITORY", "TAG", "IMAGE ID", "PLATFORM", "SIZE")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def run_inspect(args) -> int:
    import json

    from nodeagent.commands._images import open_store

    store = open_store(args)
    out = []
    for name in args.image:
        rec = store.get(name)
        doc = rec.to_json()
        doc["id"] = rec.id
        doc["config"] = rec.config.defaults()
        doc["lowerdirs"] = [str(p) for p in rec.lowerdirs]
        doc["size"] = sum(store.layer_usage(lr.diff_id) for lr in rec.layers)
        out.append(doc)
    print(json.dumps(out, indent=2))
    return 0


def _gc(store):
    import asyncio

    from runtime.images.inuse import layers_in_use

    async def go():
        async with store.gc_lock(shared=False):
            return store.gc(keep_layers=layers_in_use(store))
    return asyncio.run(go())


def run_rm(args) -> int:
    from nodeagent.commands._images import human, open_store

    store = open_store(args)
    for name in args.image:
        rec = store.remove(name)
        print(f"Untagged: {rec.name}")
    if not args.no_prune:
        report = _gc(store)
        print(f"Deleted {report.layers} layers, {report.blobs} blobs; freed {human(report.freed_bytes)}")
    return 0


def run_prune(args) -> int:
    from nodeagent.commands._images import human, open_store

    report = _gc(open_store(args))
    print(f"Deleted {report.layers} layers, {report.blobs} blobs, {report.partials} partial "
          f"downloads; freed {human(report.freed_bytes)}")
    return 0


def run_df(args) -> int:
    from nodeagent.commands._images import human, open_store

    u = open_store(args).usage()
    print(f"images       {u.images}\nlayers       {u.layers}  {human(u.layer_bytes)}\n"
          f"blobs        {human(u.blob_bytes)}\npartial      {human(u.ingest_bytes)}\n"
          f"reclaimable  {human(u.reclaimable_bytes)}")
    return 0


def run_import(args) -> int:
    import asyncio

    from nodeagent.commands._images import open_store
    from runtime.images.archive import import_archive
    from runtime.images.manifest import Platform

    platform = Platform.parse(args.platform) if args.platform else None
    for rec in asyncio.run(import_archive(open_store(args), args.path, repo=args.repo,
                                          platform=platform)):
        print(rec.name)
    return 0
