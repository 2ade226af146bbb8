"""Date arguments relative to the run's "now".

Absolute (2019, 2019-05, 2019-05-02, 2019-05-02T08:00) or relative (-24h, -30d, +1d, tomorrow 08:00);
never the wall clock.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from medagent.fhir.ids import InvalidFhirId, split_reference
from medagent.vocabulary import parse_instant

_ABSOLUTE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?)?$"
)
_RELATIVE = re.compile(r"^(?:now\s*)?(?P<sign>[+-])\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>h|d|w|mo|y)$")
_NAMED = re.compile(r"^(?P<day>now|today|tomorrow|yesterday)(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2}))?$")
_UNITS = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "mo": timedelta(days=30.4375),
    "y": timedelta(days=365.25),
}
DATE_EXAMPLES = "2019-05-02, 2019-05, 2019, 2019-05-02T08:00, -24h, -30d, -2y, +1d, tomorrow 08:00"
# The forms above as the JSON schema's pattern (schema only: check_date_arg validates, and takes a few looser
# spellings too). A backend decoding under the action grammar cannot write "-1" or "2019-01-" (the 270M adapter
# did, and repeated the refused call until the run had to answer); every date argument the oracle writes fits it.
DATE_PATTERN = (
    r"^(?:\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?)?)?)?"
    r"|[+-]\d{1,4}(?:h|d|w|mo|y)|(?:now|today|tomorrow|yesterday)(?: \d{2}:\d{2})?"
    r"|[A-Z][A-Za-z]{1,40}/[A-Za-z0-9\-.]{1,64})$"
)


def is_record_reference(value: str | None) -> bool:
    """'MedicationRequest/abc': a date argument anchored at a record's own time."""
    if not value or "/" not in str(value):
        return False
    try:
        split_reference(str(value).strip())
    except InvalidFhirId:
        return False
    return True


def check_date_arg(value: str) -> str:
    """Validate the form of a date argument (pydantic validator); resolution needs "now" (see :func:`resolve`)."""
    if is_record_reference(value):
        return str(value).strip()
    text = " ".join(str(value).strip().lower().split())
    if _RELATIVE.match(text) or _NAMED.match(text):
        return text
    match = _ABSOLUTE.match(text.upper().replace(" ", "T", 1) if "t" in text or ":" in text else text)
    if not match:
        raise ValueError(f"not a date: {value!r}; use one of: {DATE_EXAMPLES}")
    g = match.groupdict()
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    if not 1 <= month <= 12:
        raise ValueError(f"impossible date {value!r}: month {month} (use 01-12), e.g. {year}-12-01")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ValueError(
            f"impossible date {value!r}: {calendar.month_name[month]} {year} has {last} days, "
            f"e.g. {year}-{month:02d}-{last:02d}"
        )
    if g["H"] is not None and (int(g["H"]) > 23 or int(g["M"]) > 59 or int(g["S"] or 0) > 59):
        raise ValueError(f"impossible time in {value!r}; e.g. {year}-{month:02d}-{day:02d}T08:00")
    return str(value).strip()


DateArg = Annotated[
    str,
    AfterValidator(check_date_arg),
    Field(
        description=f"A date or time: {DATE_EXAMPLES} (relative forms count from now), or a record reference "
        "such as MedicationRequest/<id> (that record's own time). Bounds are inclusive; a date without "
        "a time covers the whole day",
        json_schema_extra={"pattern": DATE_PATTERN},
    ),
]


def resolve(value: str, now: datetime, *, end: bool = False) -> datetime:
    """The instant a date argument means at ``now``; ``end=True`` gives the end of a partial date (inclusive)."""
    text = " ".join(value.strip().lower().split())
    rel = _RELATIVE.match(text)
    if rel:
        step = _UNITS[rel["unit"]] * float(rel["n"])
        return now + step if rel["sign"] == "+" else now - step
    named = _NAMED.match(text)
    if named:
        if named["day"] == "now" and named["H"] is None:
            return now
        offset = {"now": 0, "today": 0, "tomorrow": 1, "yesterday": -1}[named["day"]]
        on = (now + timedelta(days=offset)).date()
        if named["H"] is None:
            start = datetime.combine(on, time(0, 0), tzinfo=now.tzinfo)
            return start + timedelta(days=1) - timedelta(seconds=1) if end else start
        return datetime.combine(on, time(int(named["H"]), int(named["M"])), tzinfo=now.tzinfo)
    match = _ABSOLUTE.match(value.strip().upper().replace(" ", "T", 1))
    if not match:
        raise ValueError(f"not a date: {value!r}; use one of: {DATE_EXAMPLES}")
    g = match.groupdict()
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    if g["H"] is not None:
        tz = _tz(g["tz"]) if g["tz"] else now.tzinfo
        moment = datetime(year, month, day, int(g["H"]), int(g["M"]), int(g["S"] or 0), tzinfo=tz)
        if end and g["S"] is None:
            moment += timedelta(seconds=59)
        return moment
    start = datetime(year, month, day, tzinfo=now.tzinfo)
    if not end:
        return start
    if g["m"] is None:
        stop = datetime(year + 1, 1, 1, tzinfo=now.tzinfo)
    elif g["d"] is None:
        stop = start + timedelta(days=calendar.monthrange(year, month)[1])
    else:
        stop = start + timedelta(days=1)
    return stop - timedelta(seconds=1)


def _tz(text: str) -> Any:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    from datetime import timezone

    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_fhir(value: str | None) -> datetime | None:
    """A FHIR date/dateTime as an aware datetime (date-only: midnight UTC); None if absent or unparsable."""
    if not value:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def fhir_instant(moment: datetime) -> str:
    """ISO 8601 with seconds and offset, as FHIR writes it."""
    return moment.isoformat(timespec="seconds")


def age_in_years(born: date, on: date) -> int:
    """Completed years on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def ago(moment: datetime, now: datetime) -> str:
    """'3h ago', '12d ago', '2.5y ago' (or 'in 2d' for future moments)."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 3600:
        text = f"{int(seconds // 60)}min"
    elif seconds < 2 * 86400:
        text = f"{seconds / 3600:.0f}h"
    elif seconds < 365.25 * 86400:
        text = f"{seconds / 86400:.0f}d"
    else:
        text = f"{seconds / (365.25 * 86400):.1f}y"
    return f"in {text}" if future else f"{text} ago"


class Window:
    """A [since, until] window clipped at now; builds the FHIR date search parameters."""

    def __init__(self, now: datetime, since: str | None = None, until: str | None = None) -> None:
        self.now = now
        self.since = resolve(since, now) if since else None
        upper = resolve(until, now, end=True) if until else now
        self.until = min(upper, now)
        if self.since is not None and self.since > now:
            raise WindowError(
                f"since={since!r} is after now ({fhir_instant(now)}): nothing is known yet; "
                f"use a past date such as '-30d'"
            )
        if self.since is not None and self.since > self.until:
            raise WindowError(f"since={since!r} is after until={until!r}; swap them")

    def params(self, name: str) -> list[tuple[str, str]]:
        out = [(name, up_to(self.until))]
        if self.since is not None:
            out.append((name, "ge" + fhir_instant(self.since)))
        return out

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return True
        return (self.since is None or moment >= self.since) and moment <= self.until

    def describe(self) -> str:
        if self.since is None:
            return f"up to {fhir_instant(self.until)} (inclusive)"
        return f"{fhir_instant(self.since)} to {fhir_instant(self.until)} (both inclusive)"


def up_to(moment: datetime) -> str:
    """A FHIR date search value for "starts at or before ``moment``" (second precision).

    ``lt`` on the next second: a resource dated exactly at now, or an encounter that started at now,
    is included; one dated a second later is not (``le`` would drop periods starting at now).
    """
    return "lt" + fhir_instant(moment.replace(microsecond=0) + timedelta(seconds=1))


class WindowError(ValueError):
    """since/until make no sense at this now."""
