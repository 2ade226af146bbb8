"""From all generated candidates to the frozen sets: the patient split and balanced samples.

- Split by patient, never by question: the 19% of patients with the lowest SHA-256 of their id
  form the test split (19 of the 100 default patients, as in the MedGemma report). The split
  does not depend on the seed, so rebuilding with another seed never leaks test patients.
- EHRQA: per patient and category at most ``per_category`` questions, forms (e.g. "latest" and "on
  a day") in turn; every "yes" is matched with a "no" about the same entity from another patient of the
  same split (v2), so every boolean form is exactly balanced entity by entity and the entity asked about
  carries no information about the answer.
- Agentic: per split and task type, every branch of a conditional task gets the same number of
  scenarios (1:1); variants of read tasks take the shares their category declares (``Category.variant_shares``,
  e.g. found 3 : not found 1, so answering "none" is no strategy), every other variant the same number.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable

from medagent.scenarios.identity import rng_for
from medagent.scenarios.models import Scenario

TEST_FRACTION = 0.19


def test_patients(patients: Iterable[str], fraction: float = TEST_FRACTION) -> list[str]:
    ordered = sorted(patients, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    count = max(1, round(len(ordered) * fraction)) if len(ordered) > 1 else 0
    return sorted(ordered[:count])


def _units(candidates: list[Scenario], rng: random.Random) -> dict[str, list[Scenario]]:
    """Questions by form, shuffled: non-boolean forms all, boolean forms only their "yes" questions."""
    by_form: dict[str, list[Scenario]] = defaultdict(list)
    for scenario in candidates:
        if scenario.meta.get("polarity") != "no":
            by_form[str(scenario.meta.get("form"))].append(scenario)
    for items in by_form.values():
        rng.shuffle(items)
    return dict(sorted(by_form.items()))


def _cost(scenario: Scenario) -> int:
    return 2 if scenario.meta.get("polarity") == "yes" else 1  # a "yes" brings its "no" twin


def sample_ehrqa(candidates: list[Scenario], seed: int, per_category: int = 6) -> list[Scenario]:
    """Per (patient, category) at most ``per_category`` questions, forms in turn; every "yes" then gets a "no"
    about the same entity (code, group, drug/condition pair) in the same form and split, from a patient who does
    not have it, so that across the set each entity is asked about as often with answer yes as with no.

    Candidates are one split's. A "yes" without any possible "no" is dropped. Among the possible "no"s, hard
    ones (``meta.hard``: a stopped order for "currently taking") come first, then the patient with the fewest
    questions of that category so far; ties are broken by the seeded stream."""
    grouped: dict[tuple[str, str], list[Scenario]] = defaultdict(list)
    negatives: dict[tuple[str, str, str], list[Scenario]] = defaultdict(list)
    for scenario in candidates:
        if scenario.meta.get("polarity") == "no":
            negatives[(scenario.category, str(scenario.meta.get("form")), str(scenario.meta.get("entity")))].append(
                scenario
            )
        else:
            grouped[(scenario.patient, scenario.category)].append(scenario)
    chosen: list[Scenario] = []
    for (patient, category), items in sorted(grouped.items()):
        rng = rng_for(seed, "sample-ehrqa", patient, category)
        queues = _units(sorted(items, key=lambda s: s.id), rng)
        taken: list[Scenario] = []
        spent = 0
        while any(queues.values()):
            progressed = False
            for form in sorted(queues):
                if queues[form] and spent + _cost(queues[form][0]) <= per_category:
                    spent += _cost(queues[form][0])
                    taken.append(queues[form].pop(0))
                    progressed = True
            if not progressed:
                break
        chosen.extend(taken)
    twins = _match_negatives(chosen, negatives, seed)
    kept = [s for s in chosen if s.meta.get("polarity") != "yes" or s.id in twins]
    return kept + list(twins.values())


def _match_negatives(
    chosen: list[Scenario], negatives: dict[tuple[str, str, str], list[Scenario]], seed: int
) -> dict[str, Scenario]:
    """ "yes" id -> its "no" twin; a "yes" whose entity has no possible "no" left gets none (and is dropped)."""
    load: dict[tuple[str, str], int] = defaultdict(int)  # (patient, category) -> questions so far
    for scenario in chosen:
        load[(scenario.patient, scenario.category)] += 1
    used: set[str] = set()
    out: dict[str, Scenario] = {}
    for scenario in sorted((s for s in chosen if s.meta.get("polarity") == "yes"), key=lambda s: s.id):
        key = (scenario.category, str(scenario.meta.get("form")), str(scenario.meta.get("entity")))
        pool = [n for n in negatives.get(key, []) if n.id not in used and n.patient != scenario.patient]
        if not pool:
            continue
        rng = rng_for(seed, "match-no", scenario.id)
        pool.sort(key=lambda n: n.id)
        rng.shuffle(pool)
        pick = min(pool, key=lambda n: (not n.meta.get("hard"), load[(n.patient, n.category)]))
        used.add(pick.id)
        load[(pick.patient, pick.category)] += 1
        out[scenario.id] = pick
    return out


def balance_key(scenario: Scenario) -> str:
    return scenario.branch or str(scenario.meta.get("variant", "-"))


def sample_agentic(
    candidates: list[Scenario], seed: int, split: str, shares: dict[str, dict[str, int]] | None = None
) -> list[Scenario]:
    """Per task type, scenarios on every branch/variant in the stated shares (default: the same number)."""
    grouped: dict[str, dict[str, list[Scenario]]] = defaultdict(lambda: defaultdict(list))
    for scenario in candidates:
        grouped[scenario.category][balance_key(scenario)].append(scenario)
    chosen: list[Scenario] = []
    for category, by_key in sorted(grouped.items()):
        share = (shares or {}).get(category, {})
        unit = min(len(items) // share.get(key, 1) for key, items in by_key.items())
        for key, items in sorted(by_key.items()):
            rng = rng_for(seed, "sample-agentic", split, category, key)
            ordered = sorted(items, key=lambda s: s.id)
            chosen.extend(rng.sample(ordered, unit * share.get(key, 1)))
    return chosen
