"""Search arguments a small model gets wrong (issue 28): stop words in a search text ("An appendectomy", "history
of asthma") are not required in the display; a code argument's schema pattern takes codes, never a date or words;
a search by a code the patient's record never carries names the codes it does carry. Displays are hand-made;
the server-side expectations come from the bundles (tools_expect), not from the tools."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from tools_expect import code, display, instant, of_type, record_end, records

from medagent.tools.search_args import (
    CODE_EXAMPLE,
    CODE_PATTERN,
    check_codes,
    search_text,
    text_matches,
    text_params,
    text_words,
)

# ---------- stop words in a search text ----------


@pytest.mark.parametrize(("text", "display", "matches"), [
    ("An appendectomy", "Appendectomy", True),
    ("history of asthma", "Asthma", True),
    ("hx of hypertension", "Hypertension", True),
    ("the flu shot", "Influenza seasonal injectable preservative free flu shot", True),
    ("pain in the chest", "Chest pain (finding)", True),
    ("Ortho Tri-Cyclen", "Ortho Tri-Cyclen 28 Day Pack", True),
    ("Ortho Tri-Cyclen", "Ortho Novum 7/7/7 28 Day Pack", False),  # a brand's hyphenated part still counts
    ("history of asthma", "Appendectomy", False),
    ("An appendectomy", "Laparoscopic cholecystectomy", False),
    ("serum albumin", "Albumin [Mass/volume] in Serum or Plasma", True),  # unchanged: every word, any order
    ("serum albumin zzqx", "Albumin [Mass/volume] in Serum or Plasma", False),  # one absent word finds nothing
])
def test_stop_words_are_not_required_in_the_display(text: str, display: str, matches: bool) -> None:
    assert text_matches(display, text) is matches


def test_stop_words_are_kept_when_nothing_else_remains_and_inside_hyphenated_words() -> None:
    assert text_words("the") == ["the"]
    assert text_words("An appendectomy") == ["appendectomy"]
    assert search_text("A-fib of the heart") == "a-fib heart"  # 'a' inside 'A-fib' is part of the name
    assert search_text("Ortho Tri-Cyclen") == "ortho tri-cyclen"
    # one word left: searched as a phrase (the server's :text), with the phrase as written as an alternative
    assert text_params("code", "An appendectomy") == [("code:text", "an appendectomy,appendectomy")]
    assert [v for _, v in text_params("code", "history of heart failure")] == ["heart", "failure"]


def _condition_case() -> tuple[str, str]:
    """(patient, a one-word condition display) from the bundles."""
    for pid in sorted(records()):
        for row in of_type(pid, "Condition"):
            name = display(row["code"])
            if re.fullmatch(r"[A-Za-z]{6,}", name):
                return pid, name
    raise AssertionError("no one-word condition display in the bundles")


async def test_a_condition_search_with_an_article_and_history_of_finds_the_condition(run: Any) -> None:
    pid, name = _condition_case()
    now = record_end(pid)
    expected = {f"Condition/{c['id']}" for c in of_type(pid, "Condition")
                if name.lower() in display(c["code"]).lower() and instant(c["onsetDateTime"]) <= now}
    assert expected
    for text in (f"A {name.lower()}", f"history of {name}", f"hx of the {name}"):
        result = await run("search_conditions", now, patient=pid, text=text, limit=100)
        assert result.error is None, result.error
        assert {r["ref"] for r in result.rows} == expected, (text, result.text[:300])


# ---------- the code argument's schema pattern ----------


def test_the_code_pattern_takes_every_documented_form() -> None:
    for form in [part.strip() for part in CODE_EXAMPLE.replace(" or ", ", ").split(", ")]:
        assert re.fullmatch(CODE_PATTERN, form), form
    for form in ("4548-4", "38341003", "140", "314076", "8480-6, 8462-4", "snomed|38341003", "cvx|140",
                 "http://snomed.info/sct|38341003", "ndc|0338-1715-40", "loinc|2951-2,loinc|2947-0"):
        assert re.fullmatch(CODE_PATTERN, form), form
        check_codes(form)  # and the validator reads it


@pytest.mark.parametrize("bad", ["2020-01-", "2000-09-30", "2019-01-26", "-1", "hemoglobin a1c", "A1c", "", "4548-",
                                 "4548-4,", "loinc|", "10000-12"])
def test_the_code_pattern_refuses_dates_and_words(bad: str) -> None:
    assert not re.fullmatch(CODE_PATTERN, bad), bad


def test_every_code_of_the_bundles_fits_the_pattern() -> None:
    """The codes the data itself holds (LOINC, SNOMED, RxNorm, CVX): a search by any of them can be written."""
    seen: set[str] = set()
    for pid in sorted(records())[:40]:
        for kind, element in (("Observation", "code"), ("Condition", "code"), ("Immunization", "vaccineCode"),
                              ("MedicationRequest", "medicationCodeableConcept"), ("Procedure", "code")):
            seen |= {code(r[element]) for r in of_type(pid, kind) if r.get(element)}
    assert len(seen) > 100
    assert not [c for c in seen if not re.fullmatch(CODE_PATTERN, c)]


# ---------- a code the record never carries ----------


def _observation_patient() -> str:
    return max(sorted(records())[:20], key=lambda pid: len(of_type(pid, "Observation")))


async def test_an_unknown_code_names_the_codes_the_record_holds(run: Any) -> None:
    pid = _observation_patient()
    now = record_end(pid)
    held = Counter(code(o["code"]) for o in of_type(pid, "Observation") if instant(o["effectiveDateTime"]) <= now)
    assert "10000-1" not in held
    result = await run("search_observations", now, patient=pid, code="10000-1")
    assert result.error is None and result.rows == []
    assert "no observations with code 10000-1" in result.text
    top = held.most_common(1)[0][0]
    assert f"LOINC {top})" in result.text
    listed = set(re.findall(r"\(LOINC ([0-9-]+)\) x\d+", result.text))
    assert listed and listed <= set(held)


async def test_a_held_code_outside_the_window_keeps_the_plain_none_found(run: Any) -> None:
    pid = _observation_patient()
    rows = sorted(of_type(pid, "Observation"), key=lambda o: instant(o["effectiveDateTime"]))
    first = rows[0]
    start = instant(first["effectiveDateTime"])
    later = [o for o in rows if code(o["code"]) == code(first["code"]) and instant(o["effectiveDateTime"]) > start]
    assert later  # the code is in the record: the window left it out
    until = (start - timedelta(days=1)).date().isoformat()
    result = await run("search_observations", record_end(pid), patient=pid, code=code(first["code"]), until=until)
    assert result.rows == [] and "codes include" not in result.text and "none found" in result.text


async def test_an_unknown_vaccine_code_names_the_vaccines_given(run: Any) -> None:
    pid = next(p for p in sorted(records()) if len({code(i["vaccineCode"]) for i in of_type(p, "Immunization")}) > 1)
    now = record_end(pid)
    given = {code(i["vaccineCode"]) for i in of_type(pid, "Immunization") if instant(i["occurrenceDateTime"]) <= now}
    absent = next(c for c in ("100", "999", "12345") if c not in given)
    result = await run("search_immunizations", now, patient=pid, code=absent)
    assert result.rows == [] and f"no immunizations with code {absent}" in result.text
    assert set(re.findall(r"\(CVX ([0-9]+)\) x\d+", result.text)) == given
