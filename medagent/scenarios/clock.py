"""FHIR date/time parsing and formatting; every scenario time is explicit and timezone-aware.

Nothing here reads the wall clock: "now" always comes from the scenario.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

# the one instant parser (a neutral module: it imports nothing from the FHIR, tool or agent layers)
from medagent.vocabulary import PARTIAL_DATE as _PARTIAL
from medagent.vocabulary import parse_instant

__all__ = ["at_clock", "day_of", "iso", "parse_instant", "parse_span", "round_to_quarter_hour", "whole_years_between"]


def parse_span(value: str) -> tuple[datetime, datetime]:
    """The interval a FHIR date/dateTime denotes: a date-only value covers its whole day (month, year)."""
    text = value.strip()
    match = _PARTIAL.match(text)
    if not match:
        instant = parse_instant(text)
        return instant, instant
    year, month, day = match.groups()
    start = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    if day:
        end = start + timedelta(days=1)
    elif month:
        end = datetime(int(year) + (int(month) == 12), int(month) % 12 + 1, 1, tzinfo=UTC)
    else:
        end = datetime(int(year) + 1, 1, 1, tzinfo=UTC)
    return start, end - timedelta(microseconds=1)


def iso(moment: datetime) -> str:
    """ISO 8601 with seconds and offset, as FHIR writes it (2020-05-01T10:15:00+00:00)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def whole_years_between(born: date, on: date) -> int:
    """Age in completed years on a date (birthday not yet reached this year counts one less)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def at_clock(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def round_to_quarter_hour(moment: datetime) -> datetime:
    """Scenario clocks look like real ones (10:15:00), not like Synthea's odd seconds."""
    base = moment.replace(second=0, microsecond=0)
    return base - timedelta(minutes=base.minute % 15)


SEASON_START_MONTH = 8  # the influenza season (and its vaccine) starts on 1 August (northern hemisphere)


def season_start(now: datetime) -> date:
    """The first day of the influenza season that ``now`` falls in: 1 August (of this year, or of last year
    before August). One dose per season: a dose from last season does not count."""
    year = now.year if now.month >= SEASON_START_MONTH else now.year - 1
    return date(year, SEASON_START_MONTH, 1)
