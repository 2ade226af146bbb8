"""Search value semantics shared by indexing and querying: date ranges, strings, numbers.

Dates become half-open UTC ranges [lo, hi) in epoch seconds, so partial dates (``2019``,
``2019-03``) and instants compare with FHIR's range semantics.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from medagent.fhir.server.outcome import FhirError

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def date_range(text: str) -> tuple[float, float]:
    """The half-open UTC epoch range [lo, hi) that a FHIR date/dateTime/instant covers."""
    match = _DATE_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    g = match.groupdict()
    year = int(g["y"])
    tz = _parse_tz(g["tz"])
    if g["m"] is None:
        start = datetime(year, 1, 1, tzinfo=tz)
        end = datetime(year + 1, 1, 1, tzinfo=tz)
    elif g["d"] is None:
        month = int(g["m"])
        start = datetime(year, month, 1, tzinfo=tz)
        end = start + timedelta(days=calendar.monthrange(year, month)[1])
    elif g["H"] is None:
        start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
        end = start + timedelta(days=1)
    else:
        second = int(g["S"] or 0)
        fraction = g["f"] or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        start = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), second, micro, tzinfo=tz)
        if g["S"] is None:
            step = timedelta(minutes=1)
        elif not fraction:
            step = timedelta(seconds=1)
        else:
            step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction), 6))))
        end = start + step
    return start.timestamp(), end.timestamp()


def _parse_tz(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def split_prefix(value: str) -> tuple[str, str]:
    """Split a FHIR search prefix (``ge2019``) from its value; default ``eq``."""
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-+."):
        return value[:2], value[2:]
    if len(value) > 2 and value[:2].isalpha() and value[:2] not in PREFIXES and value[2:3].isdigit():
        raise FhirError(400, f"unknown search prefix {value[:2]!r} in {value!r}; use one of {', '.join(PREFIXES)}")
    return "eq", value


def parse_date_param(name: str, value: str) -> tuple[str, float, float]:
    """Parse ``[prefix]date`` from a search URL into (prefix, lo, hi) or raise a 400."""
    prefix, text = split_prefix(value)
    try:
        lo, hi = date_range(text)
    except (ValueError, OverflowError):
        raise FhirError(
            400,
            f"search parameter {name!r}: {value!r} is not a valid [prefix]date; "
            "expected e.g. 2019, 2019-03, ge2019-03-01 or lt2019-03-01T10:00:00Z",
        ) from None
    return prefix, lo, hi


def normalize_string(text: str) -> str:
    """Case- and accent-insensitive form used by FHIR string search."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def parse_number(name: str, text: str) -> tuple[float, float, float]:
    """A decimal as (value, lo, hi) where [lo, hi) is the range its significant digits imply."""
    try:
        decimal = Decimal(text)
    except InvalidOperation:
        raise FhirError(400, f"search parameter {name!r}: {text!r} is not a number") from None
    if not decimal.is_finite():
        raise FhirError(400, f"search parameter {name!r}: {text!r} is not a finite number")
    try:
        exponent = decimal.as_tuple().exponent
        half = Decimal(5).scaleb(int(exponent) - 1)
        value, lo, hi = float(decimal), float(decimal - half), float(decimal + half)
    except (ArithmeticError, ValueError):
        raise FhirError(400, f"search parameter {name!r}: {text[:40]!r} is out of range") from None
    if not all(map(math.isfinite, (value, lo, hi))):
        raise FhirError(400, f"search parameter {name!r}: {text[:40]!r} is out of range")
    return value, lo, hi


def epoch_to_instant(epoch: float) -> str:
    """Epoch seconds as the instant text the store keeps in ``last_updated`` (UTC, milliseconds)."""
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        raise FhirError(400, f"instant {epoch!r} (epoch seconds) is outside years 1-9999") from None
