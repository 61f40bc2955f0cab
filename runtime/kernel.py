"""What the running kernel offers: namespaces, filesystems, and features built in or as modules.

Three sources, in the order we trust them:

1. What the kernel says now: /proc/self/ns/<type> (namespace types it knows), /proc/sys/user/
   max_<type>_namespaces (0 means switched off), /proc/filesystems (filesystems it can mount right
   now), /sys/module/<name> (a loaded module, or a built-in one that has parameters).
2. The kernel's build configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC) or
   /boot/config-<release>, where CONFIG_X=y is built in and CONFIG_X=m is a loadable module.
3. The module tree: /lib/modules/<release>/modules.builtin and modules.dep list what is built in
   and what can be loaded with modprobe.

A feature that is a module but not loaded is fine for us: the kernel loads veth, bridge and vxlan on
demand when netlink asks for that link type, and overlay when it is first mounted.

Every function takes a `HostPaths`, so unit tests point it at a fake /proc and /sys tree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from runtime.sys.consts import NAMESPACE_FLAGS


@dataclass(frozen=True)
class HostPaths:
    """Where the host's pseudo-filesystems are; tests substitute a temporary tree."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    boot: Path = Path("/boot")
    modules: Path = Path("/lib/modules")

    @classmethod
    def under(cls, root: Path) -> "HostPaths":
        """All four paths below `root` (root/proc, root/sys, ...): the layout of a fake tree."""
        return cls(root / "proc", root / "sys", root / "boot", root / "lib/modules")


class Availability(enum.Enum):
    BUILTIN = "built in"
    LOADED = "module, loaded"
    MODULE = "module, loads on demand"
    MISSING = "missing"
    UNKNOWN = "unknown"

    @property
    def present(self) -> bool:
        return self in (Availability.BUILTIN, Availability.LOADED, Availability.MODULE)


@dataclass(frozen=True)
class Feature:
    """A kernel feature: how it is available, and which source told us."""

    name: str
    availability: Availability
    source: str


def release(paths: HostPaths) -> str:
    return (paths.proc / "sys/kernel/osrelease").read_text().strip()


def _read_config(paths: HostPaths) -> tuple[dict[str, str], str] | None:
    """The kernel build config as {CONFIG_X: "y"|"m"|value}, and the file it came from."""
    # Only `nodeagent doctor` asks; every container start imports this module (for HostPaths,
    # through the cgroup layout), and gzip with zlib would cost each of them ~0.5 ms.
    import gzip

    candidates = [paths.proc / "config.gz"]
    try:
        candidates.append(paths.boot / f"config-{release(paths)}")
    except OSError:
        pass
    for path in candidates:
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, gzip.BadGzipFile, EOFError):
            continue
        config = {}
        for line in raw.decode(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("CONFIG_"):
                config[key] = value
        return config, str(path)
    return None


class Kernel:
    """A snapshot of what the kernel at `paths` offers; reads are cached for one doctor run."""

    def __init__(self, paths: HostPaths = HostPaths()):
        self.paths = paths
        self._config = _read_config(paths)
        try:
            self.release = release(paths)
        except OSError:
            self.release = "unknown"

    # --- namespaces ------------------------------------------------------------------------------
    def namespaces(self) -> dict[str, bool]:
        """{type: usable} for every namespace type; usable means the kernel knows the type and its
        max_<type>_namespaces limit is not 0."""
        result = {}
        for ns in NAMESPACE_FLAGS:
            known = (self.paths.proc / "self/ns" / ns).exists()
            limit_file = self.paths.proc / f"sys/user/max_{ns}_namespaces"
            try:
                enabled = int(limit_file.read_text()) > 0
            except (OSError, ValueError):
                enabled = known  # older kernels (or no such limit): the ns file is the evidence
            result[ns] = known and enabled
        return result

    # --- filesystems -----------------------------------------------------------------------------
    def filesystems(self) -> set[str]:
        """Filesystem types the kernel can mount now (/proc/filesystems)."""
        try:
            text = (self.paths.proc / "filesystems").read_text()
        except OSError:
            return set()
        return {line.split()[-1] for line in text.splitlines() if line.strip()}

    # --- features ---------------------------------------------------------------------------------
    def feature(self, name: str, config_symbol: str, module: str | None = None,
                filesystem: str | None = None) -> Feature:
        """How `name` is available. `module` is the .ko's name (default: `name`); `filesystem`,
        when given, makes /proc/filesystems count as proof that it is usable now."""
        module = module or name
        if filesystem and filesystem in self.filesystems():
            return Feature(name, Availability.BUILTIN if self._config_value(config_symbol) == "y"
                           else Availability.LOADED, "/proc/filesystems")
        sys_module = self.paths.sys / "module" / module
        if sys_module.is_dir():
            loaded = (sys_module / "initstate").exists()  # only loadable modules have initstate
            return Feature(name, Availability.LOADED if loaded else Availability.BUILTIN,
                           str(sys_module))
        if self._config is not None:
            config, source = self._config
            value = config.get(config_symbol)
            if value == "y":
                return Feature(name, Availability.BUILTIN, f"{source}: {config_symbol}=y")
            if value == "m":
                if self._module_listed("modules.dep", module):
                    return Feature(name, Availability.MODULE, f"{source}: {config_symbol}=m")
                return Feature(name, Availability.MISSING,
                               f"{source}: {config_symbol}=m but {module}.ko is not installed")
            return Feature(name, Availability.MISSING, f"{source}: {config_symbol} is not set")
        if self._module_listed("modules.builtin", module):
            return Feature(name, Availability.BUILTIN, "modules.builtin")
        if self._module_listed("modules.dep", module):
            return Feature(name, Availability.MODULE, "modules.dep")
        return Feature(name, Availability.UNKNOWN, "no kernel config and no module lists found")

    def _config_value(self, symbol: str) -> str | None:
        return self._config[0].get(symbol) if self._config else None

    def _module_listed(self, listing: str, module: str) -> bool:
        try:
            text = (self.paths.modules / self.release / listing).read_text()
        except OSError:
            return False
        # Lines look like "kernel/drivers/net/veth.ko: ..." or "kernel/fs/overlayfs/overlay.ko.xz";
        # module names treat '-' and '_' as the same character.
        want = module.replace("-", "_")
        for line in text.splitlines():
            base = line.split(":", 1)[0].rsplit("/", 1)[-1]
            if base.split(".ko", 1)[0].replace("-", "_") == want:
                return True
        return False
