"""The stated-JSON answer pattern through the embedded backend's own grammar construction (llguidance) and the real
Gemma 3 tokenizer: the answer string, escaped inside the action's JSON, must hold the object; a bare date
is refused. (The pattern itself: tests/agent/test_answer_format.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from medagent.agent.actions import final_answer_schema
from medagent.agent.answer_format import answer_pattern
from tests.agent.test_answer_format import MEDS

pytest.importorskip("llguidance")
pytest.importorskip("transformers")

from medagent.models.embedded import schema_matcher  # noqa: E402


@pytest.fixture(scope="module")
def tokenizers() -> tuple[Any, Any]:
    import llguidance.hf
    from transformers import AutoTokenizer

    from medagent.models.embedded import prepare_model

    tokenizer = AutoTokenizer.from_pretrained(str(prepare_model("gemma3-270m")))
    return tokenizer, llguidance.hf.from_tokenizer(tokenizer)


def _accepted(tokenizers: tuple[Any, Any], schema: dict[str, Any], answer: str) -> bool:
    tokenizer, ll_tokenizer = tokenizers
    matcher = schema_matcher(ll_tokenizer, schema)
    action = {"tool": "final_answer", "arguments": {"answer": answer, "citations": ["MedicationRequest/a1"]}}
    ids = tokenizer(json.dumps(action, separators=(",", ":")), add_special_tokens=False)["input_ids"]
    return bool(matcher.consume_tokens(ids)) and not matcher.is_error() and matcher.is_accepting()


def _viable(tokenizers: tuple[Any, Any], schema: dict[str, Any], answer_prefix: str) -> bool:
    """Whether the grammar's per-token mask lets a model write this much of an answer (the decoder only ever
    samples tokens the mask allows; a pattern checked only when the string closes would let it run on)."""
    import numpy as np

    tokenizer, ll_tokenizer = tokenizers
    matcher = schema_matcher(ll_tokenizer, schema)
    text = '{"tool":"final_answer","arguments":{"answer":' + json.dumps(answer_prefix)[:-1]  # the string still open
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        mask = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
        if not mask[token] or not matcher.consume_token(token):
            return False
    return True


def test_the_mask_stops_an_answer_that_leaves_the_object(tokenizers: tuple[Any, Any]) -> None:
    # seen with a negated class ([^"\\]) for the strings: the model wrote on past the date and the reply was refused
    shaped = final_answer_schema([], answer_pattern(MEDS))
    assert _viable(tokenizers, shaped, '{"medications": ["Acetaminophen 325 MG [Tylenol]"], "first_ordered": "2019-08')
    assert not _viable(tokenizers, shaped, '{"medications": ["Acetaminophen 325 MG"], "first_ordered": "2019-08-15"] |')
    assert not _viable(tokenizers, shaped, '{"first_ordered": ')


def test_the_grammar_takes_the_stated_object_and_refuses_a_bare_value(tokenizers: tuple[Any, Any]) -> None:
    shaped = final_answer_schema(["MedicationRequest/a1"], answer_pattern(MEDS))
    stated = json.dumps({"medications": ["insulin human, isophane 70 UNT/ML [Humulin]"], "first_ordered": "2019-09-20"})
    assert _accepted(tokenizers, shaped, stated)
    assert not _accepted(tokenizers, shaped, "2019-09-20")
    run_on = json.dumps({"medications": ["x" * 500], "first_ordered": "2019-09-20"})
    assert not _accepted(tokenizers, shaped, run_on)  # the answer's length bound still holds beside the pattern
    assert _accepted(tokenizers, final_answer_schema(["MedicationRequest/a1"]), "2019-09-20")  # no pattern: free


def test_a_yes_no_question_decodes_yes_or_no_first(tokenizers: tuple[Any, Any]) -> None:
    """The yes/no pattern (agent.answer_format.YES_NO_PATTERN) in the embedded backend's grammar: the mask lets a
    model begin Yes/No and go on with a sentence, and stops a name or a date before it is written."""
    shaped = final_answer_schema(["MedicationRequest/a1"], answer_pattern("Has Mrs. Kutch ever been on metformin?"))
    for answer in ("yes", "No", "No, it is not in the record.", "Yes, since 2015-03-02."):
        assert _accepted(tokenizers, shaped, answer), answer
    for answer in ("Jane Doe", "2019-09-20", "None", "Nope"):
        assert not _accepted(tokenizers, shaped, answer), answer
    assert _viable(tokenizers, shaped, "Yes, it is")
    assert not _viable(tokenizers, shaped, "Dr. Jane")
    assert not _viable(tokenizers, shaped, "Metformin")


@pytest.mark.parametrize(("question", "answer", "accepted"), [
    ("When did he get his last flu shot?", "It was in the record data.", False),
    ("When did he get his last flu shot?", "It was given on 2014-06-02.", True),
    ("When did he get his last flu shot?", "Not recorded.", True),
    ("What was his last potassium level?", "It was in the record data.", False),
    ("What was his last potassium level?", "4.1 mmol/L", True),
    ("What was his last potassium level?", "None", True),
])
def test_a_date_or_value_question_holds_the_answer_to_a_date_or_a_number(
        tokenizers: tuple[Any, Any], question: str, answer: str, accepted: bool) -> None:
    shaped = final_answer_schema(["MedicationRequest/a1"], answer_pattern(question))
    assert _accepted(tokenizers, shaped, answer) is accepted
    assert _viable(tokenizers, shaped, "It was ")  # a sentence may lead up to the value
