"""The v2 validity rules, each with hand-made near misses, and the v2 set's shape.

Hand-made cases are small charts or facts built here (not read from the generator's output); the
frozen-set checks recompute what they need from the raw bundles (``raw_bundles``) or from the rule
as stated in the task text.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from medagent.scenarios.agentic import average_glucose, hba1c_reorder
from medagent.scenarios.build import SET_VERSION, load_charts
from medagent.scenarios.category import ChartInput, categories, category, category_of
from medagent.scenarios.chart import Chart, Coded, ConditionFact, MedicationFact, ObservationFact
from medagent.scenarios.clock import season_start
from medagent.scenarios.codes import RXNORM, SNOMED
from medagent.scenarios.ehrqa import medication_prescriber
from medagent.scenarios.grading import grade
from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.population import population_of
from medagent.scenarios.sampling import sample_ehrqa

T0 = datetime(2020, 1, 1, 9, tzinfo=UTC)


def chart(**fields: object) -> Chart:
    base = dict(patient_id="p-hand-made", mrn="MRN1", given="Ann", family="Test", birth_date=date(1960, 5, 5),
                gender="female", deceased=None, encounter_starts=[T0], record_end=T0 + timedelta(days=2000))
    base.update(fields)
    return Chart(**base)  # type: ignore[arg-type]


def order(oid: str, code: str, when: datetime, who: str, reasons: tuple[str, ...] = ()) -> MedicationFact:
    return MedicationFact(oid, Coded(RXNORM, code, f"drug {code} 10 MG"), "stopped", when, who, reasons)


def weight(oid: str, when: datetime, value: float) -> ObservationFact:
    return ObservationFact(oid, "29463-7", "Body Weight", when, value, "kg")


def generate(name: str, c: Chart, seed: int = 2026) -> list[Scenario]:
    """One category's scenarios for one chart (a dev-split patient), through its registered generator."""
    generator = category(name, 2).generate
    assert generator is not None
    return generator(ChartInput(c, population_of([c]), seed, "dev"))


# ---------- influenza: one dose per season (season begins 1 August) ----------

@pytest.mark.parametrize(("now", "start"), [
    (datetime(2020, 7, 31, 23, tzinfo=UTC), date(2019, 8, 1)),  # the day before the season: last season
    (datetime(2020, 8, 1, 0, 15, tzinfo=UTC), date(2020, 8, 1)),  # its first day: this season
    (datetime(2021, 1, 15, tzinfo=UTC), date(2020, 8, 1)),  # January belongs to the season begun in August
])
def test_flu_season_starts_on_1_august(now: datetime, start: date) -> None:
    assert season_start(now) == start


def test_flu_v2_follows_the_season_not_365_days(v2: list[Scenario], raw_bundles: dict) -> None:
    """Act branches with a dose from last season inside 365 days exist (the v1 rule would skip them) and fail
    without the order; every clock lies in the vaccination months; the season date is in the text."""
    flu = [s for s in v2 if s.category == "influenza_vaccine_due"]
    assert flu and all(datetime.fromisoformat(s.now).month in {9, 10, 11, 12, 1, 2, 3} for s in flu)
    near_misses = 0
    for s in flu:
        begun = season_start(datetime.fromisoformat(s.now)).isoformat()
        assert f"{begun}" in s.question and s.meta["season_start"] == begun, s.id
        shots = sorted(i["occurrenceDateTime"] for i in raw_bundles[s.patient].get("Immunization", [])
                       if i["vaccineCode"]["coding"][0]["code"] == "140" and i["occurrenceDateTime"] <= s.now)
        if s.branch == "act" and shots and datetime.fromisoformat(s.now) - datetime.fromisoformat(shots[-1]) \
                < timedelta(days=365):
            near_misses += 1
            assert shots[-1][:10] < begun
            verdict = grade(s, shots[-1][:10], [])  # right date, no order (what the 365-day rule does)
            assert not verdict.passed and verdict.failure_cause == "missing_write", s.id
    assert near_misses >= 5


# ---------- same-moment duplicates in the glucose average ----------

def test_a_result_recorded_twice_at_one_moment_counts_once() -> None:
    a = ObservationFact("a", "2339-0", "Glucose", T0, 100.0, "mg/dL")
    twin = ObservationFact("a2", "2339-0", "Glucose", T0, 100.0, "mg/dL")
    same_value_later = ObservationFact("b", "2339-0", "Glucose", T0 + timedelta(minutes=1), 100.0, "mg/dL")
    assert [f.id for f in average_glucose.distinct_results([a, twin, same_value_later])] == ["a", "b"]
    other_value = ObservationFact("c", "2339-0", "Glucose", T0, 180.0, "mg/dL")
    assert len(average_glucose.distinct_results([a, other_value])) == 2  # not a duplicate: such charts are skipped


def test_average_glucose_states_the_duplicate_rule(v2: list[Scenario]) -> None:
    tasks = [s for s in v2 if s.category == "average_glucose"]
    assert tasks and all(average_glucose.DEDUP_NOTE in s.question for s in tasks)


# ---------- prescriber questions the usual prescriber does not answer ----------

def test_prescriber_questions_need_two_prescribers_or_an_unusual_latest_one() -> None:
    orders = [
        order("o1", "111", T0, "dr-usual"), order("o2", "111", T0 + timedelta(days=30), "dr-usual"),
        order("o3", "222", T0 + timedelta(days=1), "dr-usual"),  # one prescriber, the usual one: not asked
        order("o4", "333", T0 + timedelta(days=2), "dr-other"),  # the latest is not the usual one: asked
        order("o5", "444", T0 + timedelta(days=3), "dr-other"),
        order("o6", "444", T0 + timedelta(days=40), "dr-usual"),  # two prescribers: asked (usual is latest)
    ]
    c = chart(medications=orders, practitioners={"dr-usual": "Una Usual", "dr-other": "Otto Other"})
    assert medication_prescriber.usual_prescribers(orders) == {"dr-usual"}
    asked = {s.meta["key"][1]: s.answer.value for s in generate("medication_prescriber", c, 1)}
    assert asked == {"333": ["Otto Other"], "444": ["Una Usual"]}


def test_a_tie_for_most_frequent_prescriber_counts_both_as_usual() -> None:
    orders = [order("o1", "111", T0, "a"), order("o2", "222", T0, "b")]
    assert medication_prescriber.usual_prescribers(orders) == {"a", "b"}


# ---------- "at the time of": at most 90 days before the event ----------

@pytest.mark.parametrize(("days_before", "asked"), [(90, True), (91, False), (0, True)])
def test_dependent_value_lies_at_most_90_days_before_the_event(days_before: int, asked: bool) -> None:
    onset = T0 + timedelta(days=400)
    c = chart(conditions=[ConditionFact("c1", Coded(SNOMED, "38341003", "Hypertension"), onset, None)],
              observations=[weight("w0", T0, 70.0), weight("w1", onset - timedelta(days=days_before), 81.0)])
    got = generate("observation_dependent", c, 1)
    assert [s.answer.value for s in got] == ([81.0] if asked else [])


# ---------- HbA1c re-order only with diabetes or prediabetes; adult doses for adults only ----------

def _real_chart(predicate) -> Chart:  # type: ignore[no-untyped-def]
    return next(c for c in load_charts() if predicate(c))


def test_hba1c_reorder_needs_a_diabetes_or_prediabetes_diagnosis() -> None:
    def indicated(c: Chart) -> bool:
        return bool(generate("hba1c_reorder", c))

    real = _real_chart(indicated)
    without = dataclasses.replace(real, conditions=[x for x in real.conditions
                                                    if x.code.code not in hba1c_reorder.HBA1C_INDICATIONS])
    assert generate("hba1c_reorder", without) == []
    tasks = generate("hba1c_reorder", real)
    assert all("problem list includes" in s.question and "so HbA1c is monitored" in s.question for s in tasks)


@pytest.mark.parametrize("task", ["magnesium_replacement", "potassium_replacement"])
def test_replacement_doses_only_for_adults(task: str) -> None:
    real = _real_chart(lambda c: bool(generate(task, c)))
    end = real.record_end or T0
    child = dataclasses.replace(real, birth_date=(end - timedelta(days=365 * 10)).date())  # 10 at the record's end
    assert generate(task, child) == []


def test_replacement_tasks_in_v2_are_for_adults(v2: list[Scenario], raw_bundles: dict) -> None:
    for s in (s for s in v2 if s.category in ("magnesium_replacement", "potassium_replacement")):
        born = date.fromisoformat(raw_bundles[s.patient]["Patient"][0]["birthDate"])
        now = datetime.fromisoformat(s.now).date()
        assert (now.year - born.year - ((now.month, now.day) < (born.month, born.day))) >= 18, s.id


# ---------- no-action branches require the value found ----------

def test_stale_magnesium_no_action_needs_the_value_not_none(v2: list[Scenario]) -> None:
    stale = [s for s in v2 if s.category == "magnesium_replacement" and s.meta.get("variant") == "stale-low"]
    assert stale
    for s in stale:
        value = s.setup[0]["valueQuantity"]["value"]
        assert not grade(s, "none", []).passed, s.id
        assert not grade(s, f"{value + 0.2:.1f} mg/dL", []).passed, s.id  # a near miss
        assert grade(s, f"{value} mg/dL", []).passed, s.id


def test_no_no_action_branch_passes_with_none(v2: list[Scenario]) -> None:
    for s in (s for s in v2 if s.branch == "no-action"):
        assert not grade(s, "none", []).passed, s.id


# ---------- negatives matched to the positives, entity by entity ----------

def test_every_entity_is_asked_as_often_yes_as_no(v2: list[Scenario]) -> None:
    counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for s in v2:
        if s.answer.type == "boolean":
            counts[(s.split, s.category, s.meta["form"], s.meta["entity"])][s.meta["polarity"]] += 1
    assert len(counts) > 100
    for key, counter in counts.items():
        assert counter["yes"] == counter["no"], key


def test_treated_for_is_only_asked_about_conditions_the_patient_has(v2: list[Scenario], raw_bundles: dict) -> None:
    treated = [s for s in v2 if s.meta.get("form") == "treated"]
    assert {s.meta["polarity"] for s in treated} == {"yes", "no"}
    for s in treated:
        mine = {c["code"]["coding"][0]["code"] for c in raw_bundles[s.patient].get("Condition", [])}
        assert s.meta["key"][1] in mine, s.id


def _hand_made(pid: str, polarity: str, entity: str, hard: bool = False) -> Scenario:
    meta = {"form": "med_ever", "key": [polarity, entity], "polarity": polarity, "entity": entity}
    if hard:
        meta["hard"] = True
    return Scenario(id=f"{pid}-{polarity}-{entity}", suite="ehrqa", category="medication_existence", patient=pid,
                    now="2020-01-01T00:00:00+00:00", question="q", answer=ExpectedAnswer(type="boolean",
                                                                                        value=polarity == "yes"),
                    meta=meta)


def test_sampler_matches_each_yes_with_a_no_about_the_same_entity_from_another_patient() -> None:
    candidates = [
        _hand_made("p1", "yes", "X"), _hand_made("p1", "no", "Y"),
        _hand_made("p2", "no", "X"), _hand_made("p3", "no", "X", hard=True),  # the hard one is preferred
        _hand_made("p2", "yes", "Z"),  # nobody can be asked "no" about Z: dropped
    ]
    chosen = sample_ehrqa(candidates, seed=1)
    assert sorted(s.id for s in chosen) == ["p1-yes-X", "p3-no-X"]


# ---------- phrasings: >= 5 per form and task type, one test-only ----------

def test_at_least_five_phrasings_everywhere() -> None:
    every = [phrases for c in categories() for phrases in c.phrasings.values()]
    assert len(every) >= 40
    for phrases in every:
        assert len(phrases) >= 5 and len(set(phrases)) == len(phrases)


def test_test_only_phrasings_never_appear_in_dev(v2: list[Scenario]) -> None:
    by_group: dict[tuple[str, str], Counter[tuple[str, int]]] = defaultdict(Counter)
    phrasings = {}
    for s in v2:
        form = str(s.meta.get("form") or s.category)
        phrasings[form] = category_of(s).phrasings[form]
        by_group[(s.suite, form)][(s.split, int(s.meta["phrasing"]))] += 1
    for (suite, form), counts in by_group.items():
        last = len(phrasings[form]) - 1
        assert counts[("dev", last)] == 0, (suite, form)
        used = {index for split, index in counts if split == "dev"}
        assert len(used) >= min(4, sum(n for (split, _), n in counts.items() if split == "dev")) - 1, (suite, form)
    test_only = sum(n for counts in by_group.values() for (split, index), n in counts.items() if split == "test"
                    and index == max(i for _, i in counts))
    assert test_only > 50
    assert not [s.id for s in v2 if re.search(r"\{[a-z_]+\}", s.question)]  # every placeholder filled


def test_read_task_variants_take_their_shares(v2: list[Scenario]) -> None:
    shared = [c for c in categories(tier="core", suite="agentic", since=SET_VERSION) if c.variant_shares]
    assert len(shared) == 4
    for declared in shared:
        for split in ("dev", "test"):
            counts = Counter(s.meta["variant"] for s in v2 if s.category == declared.name and s.split == split)
            unit = min(counts[k] // n for k, n in declared.variant_shares.items())
            assert unit >= 1 and all(counts[k] == unit * n for k, n in declared.variant_shares.items()), (
                declared.name, split, counts)


# ---------- medication_for_condition: the drugs and the date of the first such order ----------

def test_meds_for_condition_needs_the_first_order_date_too(v2: list[Scenario]) -> None:
    import json

    asked = [s for s in v2 if s.category == "medication_for_condition"]
    assert asked and all(s.answer.type == "record" and s.meta["form"] == "meds_for_condition" for s in asked)
    for s in asked:
        drugs = s.answer.fields["medications"].value
        first = date.fromisoformat(str(s.answer.fields["first_ordered"].value))
        right = json.dumps({"medications": drugs, "first_ordered": first.isoformat()})
        day_off = json.dumps({"medications": drugs, "first_ordered": (first + timedelta(days=1)).isoformat()})
        assert grade(s, right, []).passed, s.id
        assert not grade(s, day_off, []).passed, s.id  # a near miss on the date
        assert not grade(s, "; ".join(drugs), []).passed, s.id  # the v1 answer (the list alone)


# ---------- negatives a clinician could ask: sex and age ----------

def test_negatives_are_plausible_for_the_patients_sex_and_age() -> None:
    from medagent.scenarios.population import Population

    pop = Population(sexes={"preg": {"female": 3}, "rare": {"female": 2}, "both": {"female": 2, "male": 1}},
                     youngest={"preg": 16, "rare": 30, "both": 60})
    assert not pop.plausible_for("preg", "male", 40)  # 3 patients, all female
    assert pop.plausible_for("preg", "female", 40)
    assert pop.plausible_for("rare", "male", 40)  # 2 patients are too few to call it sex-specific
    assert not pop.plausible_for("both", "female", 44) and pop.plausible_for("both", "female", 45)  # 3/4 of 60
    assert pop.plausible_for(["preg", "both"], "male", 50)  # a group: its codes counted together


def test_no_pregnancy_or_contraceptive_negatives_for_men(v2: list[Scenario], raw_bundles: dict) -> None:
    words = ("pregnancy", "Miscarriage", "Preeclampsia", "Mirena", "NuvaRing", "Camila", "Errin", "Jolivette")
    for s in v2:
        if s.meta.get("polarity") == "no" and raw_bundles[s.patient]["Patient"][0]["gender"] == "male":
            assert not any(w in s.question for w in words), s.id
