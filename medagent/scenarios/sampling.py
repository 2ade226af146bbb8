"""From all generated candidates to the frozen sets: the patient split and balanced samples.

- Split by patient, never by question: the 19% of patients with the lowest SHA-256 of their id
  form the test split (19 of the 100 default patients, as in the MedGemma report). The split
  does not depend on the seed, so rebuilding with another seed never leaks test patients.
- EHRQA: per patient and category at most ``per_category`` questions; yes/no questions enter in
  (yes, no) pairs, so every boolean category is exactly balanced; forms (e.g. "latest" and "on a
  day") take turns.
- Agentic: per split and task type, every branch (conditional tasks) or variant (e.g. found /
  not found) gets the same number of scenarios, the size of the smallest one.
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


def _units(candidates: list[Scenario], rng: random.Random) -> dict[str, list[list[Scenario]]]:
    """Group into units by form: a boolean unit is a (yes, no) pair, others are single questions."""
    by_form: dict[str, dict[str, list[Scenario]]] = defaultdict(lambda: defaultdict(list))
    for scenario in candidates:
        by_form[str(scenario.meta.get("form"))][str(scenario.meta.get("polarity", "-"))].append(scenario)
    units: dict[str, list[list[Scenario]]] = {}
    for form, by_polarity in sorted(by_form.items()):
        for items in by_polarity.values():
            rng.shuffle(items)
        if set(by_polarity) <= {"yes", "no"}:
            units[form] = [list(pair) for pair in zip(by_polarity.get("yes", []), by_polarity.get("no", []))]
        else:
            units[form] = [[s] for s in by_polarity["-"]]
    return units


def sample_ehrqa(candidates: list[Scenario], seed: int, per_category: int = 6) -> list[Scenario]:
    """Balanced sample per (patient, category), forms in turn, yes/no in pairs."""
    grouped: dict[tuple[str, str], list[Scenario]] = defaultdict(list)
    for scenario in candidates:
        grouped[(scenario.patient, scenario.category)].append(scenario)
    chosen: list[Scenario] = []
    for (patient, category), items in sorted(grouped.items()):
        rng = rng_for(seed, "sample-ehrqa", patient, category)
        queues = _units(sorted(items, key=lambda s: s.id), rng)
        taken: list[Scenario] = []
        while any(queues.values()):
            progressed = False
            for form in sorted(queues):
                if queues[form] and len(taken) + len(queues[form][0]) <= per_category:
                    taken.extend(queues[form].pop(0))
                    progressed = True
            if not progressed:
                break
        chosen.extend(taken)
    return chosen


def balance_key(scenario: Scenario) -> str:
    return scenario.branch or str(scenario.meta.get("variant", "-"))


def sample_agentic(candidates: list[Scenario], seed: int, split: str) -> list[Scenario]:
    """Per task type, the same number of scenarios on every branch/variant."""
    grouped: dict[str, dict[str, list[Scenario]]] = defaultdict(lambda: defaultdict(list))
    for scenario in candidates:
        grouped[scenario.category][balance_key(scenario)].append(scenario)
    chosen: list[Scenario] = []
    for category, by_key in sorted(grouped.items()):
        size = min(len(items) for items in by_key.values())
        for key, items in sorted(by_key.items()):
            rng = rng_for(seed, "sample-agentic", split, category, key)
            ordered = sorted(items, key=lambda s: s.id)
            chosen.extend(rng.sample(ordered, size))
    return chosen
