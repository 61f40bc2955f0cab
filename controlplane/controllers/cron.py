"""Running a cron schedule: the times at which a CronJob fires (robfig/cron's semantics).

The API server only checks that a schedule parses (controlplane/apiserver/cron.py, with the
library's error words); here it is turned into sets of allowed values and walked forward in time.
Five fields — minute, hour, day of month, month, day of week — each `*`, `?`, a number or name, a
range `a-b`, a step `*/n` / `a-b/n`, or a comma list; or a descriptor (`@hourly` ... `@yearly`,
`@every 1h30m`). As in cron (and robfig), when both day fields are restricted a day matches if
*either* does; if one is `*`, both must.

Times are walked in the schedule's zone (spec.timeZone, or a `CRON_TZ=`/`TZ=` prefix; UTC by
default) in wall-clock time: "0 9 * * *" in Asia/Tokyo is 00:00 UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                          "oct", "nov", "dec"))}
DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 6, DAYS))
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_DUR = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class CronError(ValueError):
    pass


def _value(s: str, names: dict) -> int:
    return names[s.lower()] if s.lower() in names else int(s)


def _field(text: str, low: int, high: int, names: dict) -> tuple[set[int], bool]:
    """(allowed values, is it a star)."""
    out: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step = part.partition("/")
        if rng in ("*", "?"):
            a, b = low, high
            star = star or not step
        elif "-" in rng:
            x, y = rng.split("-", 1)
            a, b = _value(x, names), _value(y, names)
        else:
            a = b = _value(rng, names)
            if step:
                b = high
        n = int(step) if step else 1
        if a < low or b > high or a > b or n <= 0:
            raise CronError(f"value out of range in {text!r}")
        out.update(range(a, b + 1, n))
    return out, star


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset
    hours: frozenset
    dom: frozenset
    months: frozenset
    dow: frozenset
    dom_star: bool
    dow_star: bool
    tz: ZoneInfo | timezone
    every: float = 0.0  # @every: a constant delay instead of fields

    def _day_ok(self, d: datetime) -> bool:
        dom = d.day in self.dom
        dow = (d.isoweekday() % 7) in self.dow
        return dom and dow if self.dom_star or self.dow_star else dom or dow

    def next(self, after: datetime) -> datetime | None:
        """The first firing time strictly after `after` (aware), in UTC; None within 5 years."""
        if self.every:
            secs = max(1, int(self.every))
            return (after + timedelta(seconds=secs)).replace(microsecond=0).astimezone(timezone.utc)
        t = after.astimezone(self.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t + timedelta(minutes=1)
                continue
            return t.astimezone(timezone.utc)
        return None


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    text = schedule.strip()
    tzname = time_zone
    m = re.match(r"^(CRON_TZ|TZ)=(\S+)\s+(.*)$", text)
    if m:
        tzname, text = m.group(2), m.group(3)
    try:
        tz = ZoneInfo(tzname) if tzname else timezone.utc
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"unknown time zone {tzname}") from e
    if text.startswith("@every "):
        parts = _DUR.findall(text[7:].strip())
        if not parts:
            raise CronError(f"failed to parse duration {text[7:]}")
        every = sum(float(n) * _UNIT[u] for n, u in parts)
        full = frozenset()
        return Schedule(full, full, full, full, full, True, True, tz, every)
    text = DESCRIPTORS.get(text, text)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    try:
        parsed = [_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, FIELDS)]
    except (KeyError, ValueError) as e:
        raise CronError(f"cannot parse {text!r}: {e}") from None
    (mi, _), (h, _), (dom, dom_star), (mo, _), (dow, dow_star) = parsed
    return Schedule(frozenset(mi), frozenset(h), frozenset(dom), frozenset(mo), frozenset(dow),
                    dom_star, dow_star, tz)
