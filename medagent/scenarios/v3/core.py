"""v2's core tier carried into v3: the same questions and tasks, v3 ids, named JSON answers after writes.

- Every id takes the v3 tag (``v2-...`` -> ``v3-...``); setup resources keep their ids.
- Numbers (top level or record fields) are ``single_number``: an answer with a second number (a code, another
  value) fails instead of being read as its first number.
- Items whose answer rests on more than 40 records (a chemotherapy patient's 96 orders) are left out: the agent
  reads about 25 rows a call and makes 11 calls at most. Yes/no questions stay (one record answers "yes"), so
  their answers stay balanced 1:1 as in v2.
- The conditional agentic tasks whose answer followed writes as one number or date (potassium, influenza vaccine,
  discontinue) state it as a JSON object with a named field (``ANSWER_KEYS``).
(potassium_replacement has its own v3 declaration: ``agentic/potassium_replacement.py``; magnesium_replacement is
rebuilt with a renal check in ``v3/magnesium.py`` and writes v3 ids and its JSON answer itself; medication_current
asks for the active list only with two or more active orders: ``ehrqa/medication_current.py``.)
"""

from __future__ import annotations

import re

from medagent.scenarios.models import ExpectedAnswer, Scenario
from medagent.scenarios.v3.common import TAG

ANSWER_KEYS = {
    "potassium_replacement": "potassium",
    "influenza_vaccine_due": "last_flu_shot",
    "discontinue_medication": "last_order_date",
}
_FORMAT = re.compile(r"\n\nAnswer format: Answer with (.+?)\.?$", re.S)


def strict_numbers(answer: ExpectedAnswer) -> ExpectedAnswer:
    """The same answer with every number (and every number field) held to one number."""
    if answer.type == "number":
        return answer.model_copy(update={"single_number": True})
    if answer.type == "record":
        return answer.model_copy(update={"fields": {k: strict_numbers(v) for k, v in answer.fields.items()}})
    return answer


MAX_PROVENANCE = 40  # an answer resting on more records than an agent reads within its limits is not asked


def carry(scenario: Scenario) -> Scenario | None:
    """One scenario of a category carried from v2 (it has a v2 id) as v3 states it, or None when v3 leaves it out
    (an answer other than yes/no resting on more than ``MAX_PROVENANCE`` records); v3's own are unchanged."""
    if not scenario.id.startswith("v2-"):
        return scenario
    if scenario.answer.type != "boolean" and len(scenario.provenance) > MAX_PROVENANCE:
        return None  # a yes rests on any one of its records, and dropping it would unbalance the yes/no questions
    update: dict[str, object] = {
        "id": f"{TAG}-{scenario.id.split('-', 1)[1]}",
        "answer": strict_numbers(scenario.answer),
    }
    key = ANSWER_KEYS.get(scenario.category) if scenario.suite == "agentic" else None
    if key is not None:
        match = _FORMAT.search(scenario.question)
        if match is None:
            raise ValueError(f"{scenario.id}: no 'Answer format: Answer with ...' to restate as JSON")
        what = match.group(1).replace("'none'", '"none"')
        question = scenario.question[: match.start()] + (
            f'\n\nAnswer format: After any writes, answer as JSON: {{"{key}": <{what}>}}.'
        )
        update |= {
            "question": question,
            "answer": ExpectedAnswer(type="record", fields={key: update["answer"]}),
            "meta": {**scenario.meta, "answer_key": key},
        }
    return scenario.model_copy(update=update)
