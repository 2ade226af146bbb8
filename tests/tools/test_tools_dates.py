"""Dates relative to the run's now: absolute and relative forms, impossible dates, windows clipped at now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from medagent.tools.dates import Window, WindowError, ago, check_date_arg, resolve

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize("text,start,end", [
    ("2019", datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("2019-02", datetime(2019, 2, 1, tzinfo=UTC), datetime(2019, 2, 28, 23, 59, 59, tzinfo=UTC)),
    ("2019-05-01", datetime(2019, 5, 1, tzinfo=UTC), datetime(2019, 5, 1, 23, 59, 59, tzinfo=UTC)),
    ("2019-05-01T08:00", datetime(2019, 5, 1, 8, tzinfo=UTC), datetime(2019, 5, 1, 8, 0, 59, tzinfo=UTC)),
    ("2019-05-01T08:00:00+02:00", datetime(2019, 5, 1, 6, tzinfo=UTC), datetime(2019, 5, 1, 6, tzinfo=UTC)),
    ("-24h", NOW - timedelta(hours=24), NOW - timedelta(hours=24)),
    ("-30d", NOW - timedelta(days=30), NOW - timedelta(days=30)),
    ("+1d", NOW + timedelta(days=1), NOW + timedelta(days=1)),
    ("now", NOW, NOW),
    ("tomorrow 08:00", datetime(2019, 5, 3, 8, tzinfo=UTC), datetime(2019, 5, 3, 8, tzinfo=UTC)),
    ("today", datetime(2019, 5, 2, tzinfo=UTC), datetime(2019, 5, 2, 23, 59, 59, tzinfo=UTC)),
])
def test_resolve(text: str, start: datetime, end: datetime) -> None:
    assert check_date_arg(text)
    assert resolve(text, NOW) == start
    assert resolve(text, NOW, end=True) == end


def test_naive_times_take_the_zone_of_now() -> None:
    now = datetime(2019, 5, 2, 10, 15, tzinfo=timezone(timedelta(hours=-5)))
    assert resolve("2019-05-03T08:00", now) == datetime(2019, 5, 3, 8, tzinfo=timezone(timedelta(hours=-5)))
    assert resolve("tomorrow 08:00", now).utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize("text,message", [
    ("2019-02-30", "February 2019 has 28 days"),
    ("2019-13-01", "month 13"),
    ("2019-05-01T25:00", "impossible time"),
    ("last tuesday", "not a date"),
    ("05/01/2019", "not a date"),
])
def test_impossible_or_unreadable_dates(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_date_arg(text)


def test_window_is_clipped_at_now_and_checked() -> None:
    window = Window(NOW, "-30d", "2030-01-01")
    assert window.until == NOW and window.since == NOW - timedelta(days=30)
    assert window.params("date") == [("date", "lt2019-05-02T10:15:01+00:00"), ("date", "ge2019-04-02T10:15:00+00:00")]
    assert window.contains(NOW - timedelta(days=1)) and not window.contains(NOW + timedelta(seconds=1))
    with pytest.raises(WindowError, match="after now"):
        Window(NOW, "2020-01-01")
    with pytest.raises(WindowError, match="swap"):
        Window(NOW, "2019-01-01", "2018-01-01")


def test_ago() -> None:
    assert ago(NOW - timedelta(hours=5), NOW) == "5h ago"
    assert ago(NOW - timedelta(days=43), NOW) == "43d ago"
    assert ago(NOW - timedelta(days=800), NOW) == "2.2y ago"
    assert ago(NOW + timedelta(days=3), NOW) == "in 3d"


def test_the_schema_pattern_takes_every_documented_form_and_no_unreadable_one() -> None:
    """DATE_PATTERN (the JSON schema's, for constrained decoding) takes each form DATE_EXAMPLES names and a record
    reference, each of which the validator reads; the forms a small model wrote and the validator refused, it
    does not."""
    import re

    from medagent.tools.dates import DATE_EXAMPLES, DATE_PATTERN, check_date_arg

    for form in [*DATE_EXAMPLES.split(", "), "MedicationRequest/abc-1", "2019-05-02T08:00:00Z", "now", "-3mo"]:
        assert re.fullmatch(DATE_PATTERN, form), form
        assert check_date_arg(form)
    for form in ("-1", "2019-01-", "last year", "2019/05/02", ""):
        assert not re.fullmatch(DATE_PATTERN, form), form
