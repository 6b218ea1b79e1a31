"""The longest gap between two runs of a cron schedule: how old a backup may be when it is due."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

# (lowest, highest) of minute, hour, day of month, month, day of week (0 and 7: Sunday).
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: Four weeks repeat every pattern of the time and day-of-week fields; a year covers schedules
#: that name days of the month or months.
_WEEKS, _YEAR = timedelta(days=28), timedelta(days=366)


def _values(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        first, last = (low, high) if body == "*" else (int(body.split("-")[0]), int(body.split("-")[-1]))
        if step and body != "*" and "-" not in body:
            last = high  # 'a/n': from a to the end
        values.update(range(first, last + 1, int(step or 1)))
    return values


def longest_gap_s(schedule: str) -> int:
    """Seconds of the longest wait between consecutive runs of a validated 5-field schedule,
    from 2026-01-01 on (standard cron: day of month OR day of week when both are set)."""
    fields = schedule.split()
    minutes, hours, days, months, weekdays = (_values(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True))
    weekdays = {d % 7 for d in weekdays}
    restrict_day, restrict_weekday = fields[2] != "*", fields[4] != "*"
    horizon = _YEAR if fields[2] != "*" or fields[3] != "*" else _WEEKS
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs: list[datetime] = []
    day = start
    while day < start + horizon:
        cron_weekday = (day.weekday() + 1) % 7  # cron: 0 is Sunday
        if restrict_day and restrict_weekday:
            day_ok = day.day in days or cron_weekday in weekdays
        else:
            day_ok = day.day in days and cron_weekday in weekdays
        if day.month in months and day_ok:
            runs += [day.replace(hour=h, minute=m) for h in sorted(hours) for m in sorted(minutes)]
        day += timedelta(days=1)
    if len(runs) < 2:
        return int(horizon.total_seconds())
    return int(max((b - a).total_seconds() for a, b in pairwise(runs)))
