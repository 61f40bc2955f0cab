"""`nodeagent pull` and `nodeagent image ...` as a user runs them: a separate process, real registry.

Includes the acceptance case "a pull killed halfway resumes without re-downloading finished blobs":
the big layer is throttled by a FrontDoor so that we can SIGKILL the CLI while it is half way
through, then pull again and read, in the front door's log, exactly what was asked for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.childproc import REPO
from tests.registryfix import FrontDoor

IMG = "test/busybox"


def cli(store, *args, check=True, timeout=120):
    env = dict(os.environ, NODEAGENT_IMAGE_STORE=str(store))
    proc = subprocess.run([sys.executable, "-m", "nodeagent", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"nodeagent {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_pull_prints_plain_progress_lines_and_the_name(registry, tmp_path):
    p = cli(tmp_path / "s", "pull", "--insecure-registry", registry.host, f"{registry.host}/{IMG}:two")
    assert p.stdout == f"{registry.host}/{IMG}:two\n"
    lines = p.stderr.splitlines()
    assert any(line.endswith(": pull complete") for line in lines)
    assert "\x1b[" not in p.stderr                          # no terminal codes when not a tty
    assert lines[-1].startswith("Digest: sha256:")
    again = cli(tmp_path / "s", "pull", "--insecure-registry", registry.host, f"{registry.host}/{IMG}:two")
    assert again.stderr.count("already exists") == 2


def test_image_ls_inspect_rm_prune_df(registry, tmp_path):
    s = tmp_path / "s"
    for tag in ("two", "big"):
        cli(s, "pull", "-q", "--insecure-registry", registry.host, f"{registry.host}/{IMG}:{tag}")
    ls = cli(s, "image", "ls").stdout.splitlines()
    assert ls[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "PLATFORM", "SIZE"]
    assert sorted(line.split()[1] for line in ls[1:]) == ["big", "two"]
    [doc] = json.loads(cli(s, "image", "inspect", f"{registry.host}/{IMG}:two").stdout)
    assert doc["config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert len(doc["lowerdirs"]) == 2 and all(os.path.isdir(d) for d in doc["lowerdirs"])
    short = doc["id"][7:19]
    assert json.loads(cli(s, "image", "inspect", short).stdout)[0]["name"] == doc["name"]
    rm = cli(s, "image", "rm", f"{registry.host}/{IMG}:big")
    assert f"Untagged: {registry.host}/{IMG}:big" in rm.stdout and "Deleted 1 layers" in rm.stdout
    df = cli(s, "image", "df").stdout
    assert "images       1" in df and "reclaimable  0 B" in df
    bad = cli(s, "image", "rm", "nosuch:image", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("nodeagent: error: image docker.io/library/nosuch:image")
    assert "Traceback" not in bad.stderr


def test_corrupted_or_missing_images_are_one_line_errors(registry, tmp_path):
    p = cli(tmp_path / "s", "pull", "--insecure-registry", registry.host,
            f"{registry.host}/{IMG}:nope", check=False)
    assert p.returncode == 2 and "not found" in p.stderr and "Traceback" not in p.stderr
    p = cli(tmp_path / "s", "pull", "Not/A/Valid:ref:", check=False)
    assert p.returncode == 2 and "invalid image reference" in p.stderr


def test_killed_pull_resumes_without_refetching_finished_blobs(registry, servers, store, test_images):
    base_blob, big_blob = test_images.big_layers
    big_size = next(lr for lr in _layers(test_images, registry) if lr["digest"] == big_blob)["size"]
    front = servers(FrontDoor(upstream=registry.host, throttle={big_blob: 1_000_000}))
    ref = f"{front.host}/{IMG}:big"
    env = dict(os.environ, NODEAGENT_IMAGE_STORE=str(store.root))
    proc = subprocess.Popen([sys.executable, "-m", "nodeagent", "pull", "--insecure-registry",
                             front.host, ref], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    partial = store.ingest_path(big_blob)
    base_diff = test_images.diff_ids[base_blob]
    deadline = time.monotonic() + 60
    try:
        while not (store.has_layer(base_diff) and partial.exists()
                   and partial.stat().st_size >= big_size // 3):
            assert time.monotonic() < deadline, "the pull never got half way"
            assert proc.poll() is None, "the pull finished before we could kill it"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)       # the process we started, by pid
        proc.wait()
    have = partial.stat().st_size
    assert 0 < have < big_size
    assert store.list() == []                  # no image record for a half-pulled image

    front.throttle.clear()
    mark = len(front.requests)
    rec = cli(store.root, "pull", "--insecure-registry", front.host, ref)
    assert rec.stdout.strip() == ref
    blob_gets = [r for r in front.requests[mark:] if "/blobs/" in r["path"]]
    assert [(r["path"].rsplit("/", 1)[1], r["range"]) for r in blob_gets] == [
        (big_blob, f"bytes={have}-")]          # only the unfinished blob, from where it stopped
    assert not partial.exists()
    assert store.get(ref).layers[1].digest == big_blob


def _layers(test_images, registry):
    raw = (test_images.layout / "blobs/sha256" / test_images.big.digest[7:]).read_text()
    return json.loads(raw)["layers"]
