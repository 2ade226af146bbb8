"""The pieces under the CDS Hooks service, without HTTP: the JSON schema written from the CDS Hooks 2.0 text (the
specification's own examples pass, broken variants fail), the runtime check that drops a bad card, reading
ingredients from RxNorm drug names, and drug-class membership of allergies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from medagent.serve.cds_hooks.medications import allergy_classes, ingredient_names
from medagent.serve.cds_hooks.messages import Card, HookRequest
from medagent.serve.cds_hooks.routes import _valid_card
from medagent.serve.cds_hooks.schema import problems
from medagent.serve.cds_hooks.services import SERVICES
from tests.serve.cds_requests import SNOMED

# ---- the specification's examples (CDS Hooks 2.0.1, written out from its text) ------------------

SPEC_DISCOVERY = {"services": [
    {"hook": "patient-view", "title": "Static CDS Service Example",
     "description": "An example of a CDS Service that returns a static set of cards", "id": "static-patient-greeter",
     "prefetch": {"patientToGreet": "Patient/{{context.patientId}}"}},
    {"hook": "order-select", "title": "Order Echo CDS Service",
     "description": "An example of a CDS Service that simply echoes the order(s) being placed", "id": "order-echo",
     "prefetch": {"patient": "Patient/{{context.patientId}}",
                  "medications": "MedicationRequest?patient={{context.patientId}}"}},
    {"hook": "order-sign", "title": "Pharmacogenomics CDS Service",
     "description": "An example of a more advanced, precision medicine CDS Service", "id": "pgx-on-order-sign",
     "usageRequirements": "Note: functionality of this CDS Service is degraded without access to a FHIR Restful "
                          "API as part of CDS recommendation generation."},
]}
SPEC_REQUEST = {
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "fhirServer": "http://hooks.smarthealthit.org:9080",
    "hook": "patient-view",
    "fhirAuthorization": {"access_token": "some-opaque-fhir-access-token", "token_type": "Bearer", "expires_in": 300,
                          "scope": "user/Patient.read user/Observation.read", "subject": "cds-service4"},
    "context": {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89284"},
    "prefetch": {"patientToGreet": {"resourceType": "Patient", "gender": "male", "birthDate": "1925-12-23",
                                    "id": "1288992", "active": True}},
}
SPEC_RESPONSE = {"cards": [
    {"uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "summary": "Example Card", "indicator": "info",
     "detail": "This is an example card.",
     "source": {"label": "Static CDS Service Example", "url": "https://example.com",
                "icon": "https://example.com/img/icon-100px.png"},
     "links": [{"label": "Google", "url": "https://google.com", "type": "absolute"},
               {"label": "Github", "url": "https://github.com", "type": "absolute"},
               {"label": "SMART Example App", "url": "https://smart.example.com/launch", "type": "smart",
                "appContext": "{\"session\":3456356,\"settings\":{\"module\":4235}}"}]},
    {"summary": "Another card", "indicator": "warning", "source": {"label": "Static CDS Service Example"},
     "overrideReasons": [
         {"code": "reason-code-provided-by-service",
          "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons", "display": "Patient refused"},
         {"code": "12354", "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons",
          "display": "Contraindicated"}]},
]}
SPEC_FEEDBACK = [
    {"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "accepted",
                   "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                   "outcomeTimestamp": "2021-12-11T10:05:31Z"}]},
    {"feedback": [{"card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb", "outcome": "overridden",
                   "outcomeTimestamp": "2020-12-11T00:00:00Z"}]},
    {"feedback": [{"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
                   "overrideReason": {"reason": {"code": "d7ecf885",
                                                 "system": "https://example.com/cds-hooks/override-reason-system"},
                                      "userComment": "A comment entered by the clinician."},
                   "outcomeTimestamp": "2020-12-11T00:00:00Z"}]},
]


def test_the_specification_examples_are_valid() -> None:
    assert problems("Discovery", SPEC_DISCOVERY) == []
    assert problems("Request", SPEC_REQUEST) == []
    assert problems("Response", SPEC_RESPONSE) == []
    assert problems("Response", {"cards": []}) == []
    for feedback in SPEC_FEEDBACK:
        assert problems("FeedbackRequest", feedback) == []
    HookRequest.model_validate(SPEC_REQUEST)  # the request model takes it too


def _card(**changes: Any) -> dict[str, Any]:
    card = copy.deepcopy(SPEC_RESPONSE["cards"][1])
    card.update(changes)
    return card


DELETE = {"type": "delete", "description": "Remove the inappropriate order", "resourceId": "ServiceRequest/x"}
BROKEN_CARDS = [
    pytest.param(_card(summary="x" * 140), "summary", id="summary-of-140-characters"),
    pytest.param(_card(indicator="urgent"), "indicator", id="unknown-indicator"),
    pytest.param({k: v for k, v in _card().items() if k != "source"}, "source", id="no-source"),
    pytest.param(_card(suggestions=[{"label": "Remove", "actions": [DELETE]}]), "selectionBehavior",
                 id="suggestions-without-selection-behavior"),
    pytest.param(_card(selectionBehavior="at-most-one",
                       suggestions=[{"label": "a", "isRecommended": True}, {"label": "b", "isRecommended": True}]),
                 "suggestions", id="two-recommended-at-most-one"),
    pytest.param(_card(overrideReasons=[{"code": "x", "system": "urn:x"}]), "display", id="override-without-display"),
    pytest.param(_card(links=[{"label": "x", "url": "https://x.org", "type": "absolute", "appContext": "a"}]),
                 "links", id="app-context-on-an-absolute-link"),
    pytest.param(_card(suggestions=[{"label": "x", "actions": [{"type": "create", "description": "c"}]}],
                       selectionBehavior="any"), "resource", id="create-without-resource"),
    pytest.param(_card(links=[]), "links", id="empty-array"),
    pytest.param(_card(detail=""), "detail", id="empty-string"),
]


@pytest.mark.parametrize("card, mention", BROKEN_CARDS)
def test_the_schema_refuses_what_the_specification_forbids(card: dict[str, Any], mention: str) -> None:
    found = problems("Card", card)
    assert found and any(mention in p for p in found), found


def test_a_card_that_fails_the_schema_is_dropped_at_runtime() -> None:
    service = SERVICES["medication-safety-sign"]
    good = Card.model_validate({"summary": "ok", "indicator": "info", "source": {"label": "s"}})
    bad = Card.model_validate({"summary": "ok", "indicator": "info", "source": {"label": "s"},
                               "links": [{"label": "x", "url": "https://x.org", "type": "absolute", "appContext": "a"}]})
    assert _valid_card(service, good) and not _valid_card(service, bad)


def test_discovery_entries_are_valid_services() -> None:
    for service in SERVICES.values():
        assert problems("Service", service.discovery()) == []


# ---- ingredients and classes -----------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", {"metformin"}),
    ("Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", {"amoxicillin", "clavulanate"}),
    ("Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG [Vicodin]", {"acetaminophen", "hydrocodone"}),
    ("Naproxen sodium 220 MG Oral Tablet", {"naproxen"}),
    ("Penicillin V Potassium 250 MG Oral Tablet", {"penicillin v"}),
    ("10 ML Furosemide 10 MG/ML Injection", {"furosemide"}),
    ("NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector", {"epinephrine"}),
    ("Potassium Chloride 20 MEQ Extended Release Oral Tablet", {"potassium chloride"}),
    ("12 HR Cefaclor 500 MG Extended Release Oral Tablet", {"cefaclor"}),
])
def test_ingredients_read_from_rxnorm_drug_names(name: str, expected: set[str]) -> None:
    assert ingredient_names(name) == expected


@pytest.mark.parametrize("allergy, classes", [
    ({"coding": [{"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}]}, ["penicillins"]),
    ({"coding": [{"system": SNOMED, "code": "91936005"}]}, ["penicillins"]),  # by the code alone
    ({"text": "Amoxicillin allergy"}, ["penicillins"]),  # a member names its class
    ({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7984"}]}, ["penicillins"]),
    ({"text": "Sulfa drugs"}, ["sulfonamide-antibacterials"]),
    ({"text": "NSAID intolerance"}, ["nsaids"]),
    ({"coding": [{"system": SNOMED, "code": "418689008", "display": "Allergy to grass pollen"}]}, []),
    ({"text": "Allergy to penicillamine"}, []),  # a word that starts like a class is not the class
])
def test_allergy_classes(allergy: dict[str, Any], classes: list[str]) -> None:
    assert [c.id for c in allergy_classes({"code": allergy})] == classes
