"""Cron schedules as a CronJob's `spec.schedule` states them: validation with upstream's words.

The kube-apiserver checks a schedule with robfig/cron's ParseStandard: five fields (minute, hour,
day of month, month, day of week), each `*`, `?` (day fields), a number, a name (`jan`, `mon`),
a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; or a descriptor (`@hourly`,
`@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually`, `@every <duration>`). The
error text below is that library's, so `kubectl` shows what a real cluster shows.

Only validation lives here: running the schedule is the CronJob controller's business.
"""

from __future__ import annotations

import re

# (name, low, high, names) per field, in order.
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("dom", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
    ("dow", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


class ScheduleError(ValueError):
    """The schedule cannot be parsed; the message is robfig/cron's."""


def _int(expr: str, text: str) -> int:
    try:
        n = int(expr)
    except ValueError:
        raise ScheduleError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": '
                            f'invalid syntax') from None
    if n < 0:
        raise ScheduleError(f"negative number ({n}) not allowed: {text}")
    return n


def _value(expr: str, names: dict, text: str) -> int:
    return names[expr.lower()] if expr.lower() in names else _int(expr, text)


def _range(expr: str, low: int, high: int, names: dict) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    if low_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _value(low_high[0], names, expr)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _value(low_high[1], names, expr)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 2:
        step = _int(range_and_step[1], expr)
        if single and low_high[0] not in ("*", "?"):
            end = high  # "N/step" means N-max/step
        if step <= 0:
            raise ScheduleError(f"step of range should be a positive number: {expr}")
    elif len(range_and_step) > 2:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ScheduleError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")


def check(schedule: str) -> None:
    """Raise ScheduleError if robfig/cron's ParseStandard would reject `schedule`."""
    spec = schedule.strip()
    if not spec:
        raise ScheduleError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        spec = spec.split(None, 1)[1] if " " in spec else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return
        if spec.startswith("@every "):
            dur = spec[len("@every "):]
            if not _DURATION.match(dur):
                raise ScheduleError(f'failed to parse duration {spec}: time: invalid duration "{dur}"')
            return
        raise ScheduleError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    for value, (_, low, high, names) in zip(fields, _FIELDS):
        for part in value.split(","):
            _range(part, low, high, names)


def has_time_zone(schedule: str) -> bool:
    return schedule.strip().startswith(("TZ=", "CRON_TZ="))
