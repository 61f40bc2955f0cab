"""Pull + unpack of a ~100 MB image from a loopback registry: `nodeagent pull` versus the peer
`skopeo copy docker://... oci:DIR` followed by `umoci unpack` (both Debian packages), in one run.

    .venv/bin/python bench/image_pull.py [--runs 5] [--size-mb 100]

The image: busybox plus real files of this machine (/usr/lib/python3.11, /usr/share/perl and some
shared libraries) up to --size-mb of uncompressed tar, in 3 gzip layers, pushed with skopeo into
Debian's docker-registry on 127.0.0.1. Each run starts from an empty store / empty OCI directory, so
every byte is downloaded, verified and unpacked each time; the two tools alternate. Both are run as
commands (process start-up included), as a user would run them. Needs root (layers keep owners and
device nodes), docker-registry, skopeo and umoci (scripts/deps/apt-test.txt).

Prints wall time median and p99 for each, throughput in MB/s of uncompressed image, and the ratio
ours/peer (lower is better; the target is <= 1.0).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.imagekit import OciLayout, base_layer  # noqa: E402
from tests.registryfix import Registry, registry_available  # noqa: E402


def tree_layer(roots: list[str], budget: int) -> bytes:
    """A tar of real files under `roots`, stopping near `budget` bytes of content."""
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                if total >= budget:
                    break
                tf.add(dirpath, arcname=dirpath.lstrip("/"), recursive=False)
                for name in sorted(filenames):
                    p = os.path.join(dirpath, name)
                    if total >= budget:
                        break
                    try:
                        size = os.lstat(p).st_size
                        if total + size > budget:
                            continue        # one huge library would overshoot the budget
                        tf.add(p, arcname=p.lstrip("/"), recursive=False)
                        total += size
                    except OSError:
                        continue
    return buf.getvalue()


def pctl(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))
    return xs[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (layers keep owners and device nodes)")
    why = registry_available()
    if why or not shutil.which("umoci"):
        sys.exit(why or "umoci is not installed (scripts/deps/apt-test.txt)")

    work = Path(tempfile.mkdtemp(prefix=f"bench-image-pull-{os.getpid()}-"))
    reg = None
    try:
        budget = args.size_mb << 20
        print(f"building a ~{args.size_mb} MB image from this machine's files ...", flush=True)
        layers = [base_layer(),
                  tree_layer(["/usr/lib/python3.11"], budget // 2),
                  tree_layer(["/usr/share/perl", "/usr/lib/x86_64-linux-gnu"], budget // 2)]
        tar_bytes_total = sum(len(x) for x in layers)
        lay = OciLayout(work / "layout")
        desc = lay.image(layers, tag="bench")
        blob_bytes = sum(p.stat().st_size for p in (work / "layout/blobs/sha256").iterdir())
        reg = Registry(work / "registry", work / "storage")
        reg.push(work / "layout", "bench", "bench/image")
        ref = f"{reg.host}/bench/image:bench"
        print(f"image {desc.digest[:19]}: {len(layers)} layers, {tar_bytes_total / 1e6:.1f} MB "
              f"uncompressed, {blob_bytes / 1e6:.1f} MB of blobs, from docker-registry at {reg.host}")

        def ours(i: int) -> float:
            store = work / f"store-{i}"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nodeagent", "pull", "-q", "--store", str(store),
                            "--insecure-registry", reg.host, ref], check=True, cwd=REPO,
                           stdout=subprocess.DEVNULL)
            dt = time.perf_counter() - t
            shutil.rmtree(store)
            return dt

        def peer(i: int) -> float:
            oci, bundle = work / f"oci-{i}", work / f"bundle-{i}"
            t = time.perf_counter()
            subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                            f"docker://{ref}", f"oci:{oci}:bench"], check=True)
            subprocess.run(["umoci", "unpack", "--image", f"{oci}:bench", str(bundle)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = time.perf_counter() - t
            shutil.rmtree(oci)
            shutil.rmtree(bundle)
            return dt

        ours(-1), peer(-1)              # warm-up: page cache, registry caches
        t_ours, t_peer = [], []
        for i in range(args.runs):
            t_ours.append(ours(i))
            t_peer.append(peer(i))
        mb = tar_bytes_total / 1e6
        print(f"\n{'':28}{'median s':>10}{'p99 s':>10}{'MB/s':>10}")
        for name, ts in (("nodeagent pull", t_ours), ("skopeo copy + umoci unpack", t_peer)):
            med = statistics.median(ts)
            print(f"{name:28}{med:10.3f}{pctl(ts, 0.99):10.3f}{mb / med:10.1f}")
        ratio = statistics.median(t_ours) / statistics.median(t_peer)
        print(f"\nratio ours/peer (median wall time): {ratio:.2f}  (target <= 1.0; runs={args.runs})")
        return 0
    finally:
        if reg:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
