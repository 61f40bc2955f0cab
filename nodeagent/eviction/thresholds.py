"""Eviction thresholds: the signals, the flags that set thresholds on them, and their values.

The kubelet's flags, parsed as the kubelet parses them (cmd/kubelet flags, pkg/kubelet/eviction/
helpers.go ParseThresholdConfig):

    --eviction-hard                memory.available<100Mi,nodefs.available<10%   (SIGNAL<VALUE,...)
    --eviction-soft                memory.available<1.5Gi                        (likewise)
    --eviction-soft-grace-period   memory.available=1m30s                        (SIGNAL=DURATION,...)
    --eviction-minimum-reclaim     memory.available=500Mi                        (SIGNAL=VALUE,...)

A VALUE is a quantity ("100Mi", "1000") or a percentage of the signal's capacity ("10%"). Each
map flag may be repeated; the first one replaces the defaults (the kubelet's
LangleSeparatedMapStringString). "0%" and "100%" mean "no threshold". Every soft threshold needs
a grace period; a threshold with a grace period of 0 is hard.

The signal names what is measured and is "available" (or "Free"): a threshold is met when the
observed amount is *below* it (the only operator the kubelet has, LessThan).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from nodeagent.errors import AgentError
from nodeagent.resources import QuantityError, bytes_of, format_quantity, is_binary

# signal → (the resource it is about, the node condition it sets)   (helpers.go's two maps)
SIGNALS = {
    "memory.available": ("memory", "MemoryPressure"),
    "nodefs.available": ("ephemeral-storage", "DiskPressure"),
    "nodefs.inodesFree": ("inodes", "DiskPressure"),
    "imagefs.available": ("ephemeral-storage", "DiskPressure"),
    "imagefs.inodesFree": ("inodes", "DiskPressure"),
    "pid.available": ("pids", "PIDPressure"),
}
# pkg/kubelet/eviction/defaults_linux.go
DEFAULT_HARD = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%"
DEFAULT_TRANSITION_PERIOD = 300.0    # --eviction-pressure-transition-period 5m0s


def _float32(x: float) -> float:
    """The kubelet keeps a percentage in a float32: 10% is 0.100000001490116..., not 0.1."""
    return struct.unpack("f", struct.pack("f", x))[0]


@dataclass(frozen=True)
class Value:
    """A quantity, or a fraction of the signal's capacity (evictionapi.ThresholdValue)."""
    quantity: int | None = None
    binary: bool = True                # printed with Ki/Mi/... (the quantity's own format)
    fraction: float | None = None      # a float32, as the kubelet holds it

    def amount(self, capacity: int) -> int:
        """GetThresholdQuantity: the quantity, or int64(capacity * percentage)."""
        if self.quantity is not None:
            return self.quantity
        return int(float(capacity) * self.fraction)

    def text(self, capacity: int) -> str:
        """As resource.Quantity prints it; a percentage's amount is a BinarySI quantity."""
        if self.quantity is not None:
            return format_quantity(self.quantity, self.binary)
        return format_quantity(self.amount(capacity), True)


@dataclass(frozen=True)
class Threshold:
    signal: str
    value: Value
    grace_period: float = 0.0          # seconds; 0: a hard threshold
    min_reclaim: Value | None = None

    @property
    def hard(self) -> bool:
        return self.grace_period == 0

    @property
    def resource(self) -> str:
        return SIGNALS[self.signal][0]

    @property
    def condition(self) -> str:
        return SIGNALS[self.signal][1]


@dataclass(frozen=True)
class EvictionConfig:
    thresholds: tuple[Threshold, ...]
    max_pod_grace_period: int = 0                    # --eviction-max-pod-grace-period (seconds)
    pressure_transition_period: float = DEFAULT_TRANSITION_PERIOD


class ThresholdError(AgentError):
    """A bad eviction flag; the message names the flag."""


# --- the flags --------------------------------------------------------------------------------------
def _pairs(flag: str, values: list[str] | None, sep: str) -> dict[str, str] | None:
    """A map flag, given any number of times: "a<1,b<2" (sep "<") or "a=1,b=2" (sep "=")."""
    if values is None:
        return None
    out: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item:
                continue
            key, found, val = item.partition(sep)
            if not found:
                raise ThresholdError(f"{flag}: malformed pair {item!r}, expect string{sep}string")
            out[key.strip()] = val.strip()
    return out


def _signal(flag: str, name: str) -> str:
    if name not in SIGNALS:
        raise ThresholdError(f"{flag}: unsupported eviction signal {name} "
                             f"(supported: {', '.join(SIGNALS)})")
    return name


def _percent(flag: str, signal: str, text: str) -> float:
    try:
        return _float32(_float32(float(text.rstrip("%"))) / 100)
    except ValueError:
        raise ThresholdError(f"{flag}: {signal}: {text!r} is not a percentage") from None


def _quantity(flag: str, signal: str, text: str) -> int:
    try:
        return bytes_of(text)
    except QuantityError as e:
        raise ThresholdError(f"{flag}: {signal}: {e}") from None


def _threshold_value(flag: str, signal: str, text: str) -> Value | None:
    """parseThresholdStatement: None for 0% and 100% (ignored)."""
    if text.endswith("%"):
        if text in ("0%", "100%"):
            return None
        fraction = _percent(flag, signal, text)
        if fraction < 0:
            raise ThresholdError(f"{flag}: eviction percentage threshold {signal} must be >= 0%: {text}")
        if fraction > 1:
            raise ThresholdError(f"{flag}: eviction percentage threshold {signal} must be <= 100%: {text}")
        return Value(fraction=fraction)
    n = _quantity(flag, signal, text)
    if n <= 0:
        raise ThresholdError(f"{flag}: eviction threshold {signal} must be positive: {text}")
    return Value(quantity=n, binary=is_binary(text))


def _statements(flag: str, values: list[str] | None) -> list[tuple[str, Value]]:
    out = []
    for signal, text in (_pairs(flag, values, "<") or {}).items():
        value = _threshold_value(flag, _signal(flag, signal), text)
        if value is not None:
            out.append((signal, value))
    return out


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(flag: str, text: str) -> float:
    """A Go duration (time.ParseDuration: "1m30s", "90s", "0", "-1s"), in seconds."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if body == "0":
        return 0.0
    parts = _DURATION.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ThresholdError(f'{flag}: time: invalid duration "{text}"')
    return sign * sum(float(n) * _UNIT[u] for n, u in parts)


def parse_config(hard: list[str] | None = None, soft: list[str] | None = None,
                 soft_grace: list[str] | None = None, min_reclaim: list[str] | None = None,
                 max_pod_grace: int = 0, transition: str = "5m0s") -> EvictionConfig:
    """The four map flags (each a list of the values given, None: not given) and the two
    scalars, into thresholds (ParseThresholdConfig)."""
    hard_t = _statements("--eviction-hard", [DEFAULT_HARD] if hard is None else hard)
    soft_t = _statements("--eviction-soft", soft)
    graces = {}
    for signal, text in (_pairs("--eviction-soft-grace-period", soft_grace, "=") or {}).items():
        _signal("--eviction-soft-grace-period", signal)
        g = parse_duration("--eviction-soft-grace-period", text)
        if g < 0:
            raise ThresholdError(f"--eviction-soft-grace-period: invalid eviction grace period "
                                 f"specified: {text}, must be a positive value")
        graces[signal] = g
    reclaims = {}
    for signal, text in (_pairs("--eviction-minimum-reclaim", min_reclaim, "=") or {}).items():
        _signal("--eviction-minimum-reclaim", signal)
        if text.endswith("%"):
            fraction = _percent("--eviction-minimum-reclaim", signal, text)
            if fraction <= 0:
                raise ThresholdError(f"--eviction-minimum-reclaim: eviction percentage minimum "
                                     f"reclaim {signal} must be positive: {text}")
            reclaims[signal] = Value(fraction=fraction)
            continue
        n = _quantity("--eviction-minimum-reclaim", signal, text)
        if n < 0:
            raise ThresholdError(f"--eviction-minimum-reclaim: negative eviction minimum reclaim "
                                 f"specified for {signal}")
        reclaims[signal] = Value(quantity=n, binary=is_binary(text))
    thresholds = [Threshold(s, v) for s, v in hard_t]
    for signal, value in soft_t:
        if signal not in graces:
            raise ThresholdError(f"--eviction-soft-grace-period: grace period must be specified "
                                 f"for the soft eviction threshold {signal}")
        thresholds.append(Threshold(signal, value, graces[signal]))
    thresholds = [Threshold(t.signal, t.value, t.grace_period, reclaims.get(t.signal))
                  for t in thresholds]
    period = parse_duration("--eviction-pressure-transition-period", transition)
    if period < 0:
        raise ThresholdError(f"--eviction-pressure-transition-period: {transition} must not be negative")
    return EvictionConfig(tuple(thresholds), int(max_pod_grace), period)


def hard_reservation(config: EvictionConfig, resource: str, signal: str, capacity: int) -> int:
    """What a hard threshold keeps out of allocatable (cm's hardEvictionReservation): the
    memory.available threshold for memory, nodefs.available's for ephemeral-storage."""
    for t in config.thresholds:
        if t.hard and t.signal == signal and t.resource == resource:
            return t.value.amount(capacity)
    return 0
