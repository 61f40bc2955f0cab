"""Options and output shared by `nodeagent pull` and `nodeagent image ...` (not a command itself).

The store lives in /var/lib/nodeagent/images unless --store or $NODEAGENT_IMAGE_STORE says
otherwise. Registries are spoken to over https only; `--insecure-registry HOST:PORT` allows plain
http for that one registry, `--mirror docker.io=http://127.0.0.1:5001` tries a mirror first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from nodeagent.errors import AgentError


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=os.environ.get("NODEAGENT_IMAGE_STORE", "/var/lib/nodeagent/images"),
                   help="image store directory (default: %(default)s; env NODEAGENT_IMAGE_STORE)")


def add_registry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="use plain http for this registry (repeatable)")
    p.add_argument("--mirror", action="append", default=[], metavar="REGISTRY=URL",
                   help="try URL before REGISTRY, e.g. docker.io=http://127.0.0.1:5001 (repeatable)")
    p.add_argument("--auth-file", metavar="PATH",
                   help="docker-style config.json with credentials (default: ~/.docker/config.json, "
                        "$REGISTRY_AUTH_FILE)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="default: this machine")


def open_store(args):
    from runtime.images.store import ImageStore

    return ImageStore(args.store)


def registry_settings(args):
    from runtime.images.auth import Keychain
    from runtime.images.manifest import Platform
    from runtime.images.registry import RegistryConfig

    mirrors: dict[str, tuple[str, ...]] = {}
    for m in args.mirror:
        reg, sep, url = m.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise AgentError(f"--mirror {m!r}: want REGISTRY=http(s)://HOST[:PORT]")
        mirrors[reg] = mirrors.get(reg, ()) + (url,)
    keychain = Keychain.from_file(args.auth_file) if args.auth_file else Keychain.default()
    platform = Platform.parse(args.platform) if args.platform else None
    return dict(keychain=keychain, platform=platform,
                config=RegistryConfig(insecure=frozenset(args.insecure_registry), mirrors=mirrors))


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


class ProgressView:
    """Per-layer progress: redrawn bars on a terminal, one line per phase change otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.order: list[str] = []
        self.state: dict[str, tuple[str, int, int]] = {}
        self.drawn = 0
        self.last_draw = 0.0

    def __call__(self, ev) -> None:
        if ev.layer not in self.state:
            self.order.append(ev.layer)
        old = self.state.get(ev.layer)
        self.state[ev.layer] = (ev.phase, ev.done, ev.total)
        if self.tty:
            now = time.monotonic()
            if old is None or old[0] != ev.phase or now - self.last_draw > 0.1:
                self.last_draw = now
                self._draw()
        elif old is None or old[0] != ev.phase:
            if ev.phase not in ("waiting",):
                print(f"{ev.layer[7:19]}: {self._words(ev.phase, ev.done, ev.total)}",
                      file=self.stream, flush=True)

    @staticmethod
    def _words(phase: str, done: int, total: int) -> str:
        return {"exists": "already exists", "downloading": f"downloading {human(total)}",
                "verifying": "verifying", "extracting": "extracting", "done": "pull complete",
                "waiting": "waiting"}.get(phase, phase)

    def _draw(self) -> None:
        out = []
        if self.drawn:
            out.append(f"\x1b[{self.drawn}F")
        for layer in self.order:
            phase, done, total = self.state[layer]
            line = f"{layer[7:19]}: "
            if phase == "downloading" and total:
                width = 30
                filled = int(width * min(done, total) / total)
                line += f"downloading [{'=' * filled}{'>' if filled < width else ''}" \
                        f"{' ' * max(0, width - filled - 1)}] {human(done)}/{human(total)}"
            else:
                line += self._words(phase, done, total)
            out.append("\x1b[2K" + line + "\n")
        self.drawn = len(self.order)
        self.stream.write("".join(out))
        self.stream.flush()
