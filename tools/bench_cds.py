#!/usr/bin/env python3
"""Latency of the CDS Hooks services of ``medagent serve`` (the specification asks for about 500 ms).

Drives the real service over a real embedded FHIR server (a temporary copy of the loaded database): for each of
N patients (the first N by id), one patient-view call and one order-sign call (an amoxicillin draft), each
reading the chart through ``fhirServer`` (no prefetch), then the same calls with every template prefetched.
Prints p50/p95/max per hook and mode, and the cards per call.

    python tools/bench_cds.py [--patients 20]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from medagent.bench.servers import template_db
from medagent.config import get_settings
from medagent.fhir.server.process import EmbeddedServer
from medagent.models.scripted import ScriptedPolicy
from medagent.serve.cds_hooks.messages import PatientContext
from medagent.serve.cds_hooks.prefetch import render
from medagent.serve.cds_hooks.services import SERVICES
from medagent.serve.server import ServiceConfig, ServiceThread

AMOXICILLIN = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "308182",
               "display": "Amoxicillin 250 MG Oral Capsule"}


def body(hook: str, patient: str, fhir_url: str, prefetch: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/bench", "patientId": patient}
    if hook == "order-sign":
        context["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
            "medicationCodeableConcept": {"coding": [AMOXICILLIN]}, "subject": {"reference": f"Patient/{patient}"}}}]}
    request: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context}
    if prefetch is None:
        request["fhirServer"] = fhir_url
    else:
        request["prefetch"] = prefetch
    return request


def prefetch_for(service_id: str, patient: str, fhir: httpx.Client) -> dict[str, Any]:
    """What an EHR would send: every template rendered and read from its FHIR server (all pages)."""
    context = PatientContext.model_validate({"userId": "Practitioner/bench", "patientId": patient})
    found: dict[str, Any] = {}
    for item in SERVICES[service_id].prefetch:
        url = render(item.template, context)
        result = fhir.get(url).raise_for_status().json()
        if result["resourceType"] == "Bundle":
            entries = list(result.get("entry", []))
            while nxt := next((l["url"] for l in result.get("link", []) if l["relation"] == "next"), None):
                result = fhir.get(nxt).raise_for_status().json()
                entries += result.get("entry", [])
            result = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        found[item.key] = result
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cds-"))
    try:
        shutil.copyfile(template_db(get_settings().home), work / "fhir.sqlite")
        with EmbeddedServer(work / "fhir.sqlite") as fhir_server:
            fhir = httpx.Client(base_url=fhir_server.base_url, timeout=60)
            patients = [e["resource"]["id"] for e in fhir.get("Patient", params={"_sort": "_id", "_count": args.patients})
                        .raise_for_status().json()["entry"]]
            config = ServiceConfig(fhir_url=fhir_server.base_url, checkpoints=work / "checkpoints.sqlite", port=0)
            with ServiceThread(config, ScriptedPolicy([])) as service:
                http = httpx.Client(base_url=service.url, timeout=60)
                timings: dict[tuple[str, str], list[float]] = {}
                cards: dict[tuple[str, str], int] = {}
                for mode in ("fhirServer", "prefetch"):
                    for service_id, hook in (("chart-summary", "patient-view"), ("medication-safety-sign", "order-sign")):
                        for patient in patients:
                            prefetch = prefetch_for(service_id, patient, fhir) if mode == "prefetch" else None
                            started = time.perf_counter()
                            response = http.post(f"/cds-services/{service_id}",
                                                 json=body(hook, patient, fhir_server.base_url, prefetch))
                            elapsed = (time.perf_counter() - started) * 1000
                            response.raise_for_status()
                            timings.setdefault((hook, mode), []).append(elapsed)
                            cards[(hook, mode)] = cards.get((hook, mode), 0) + len(response.json()["cards"])
        print(f"{'hook':<12} {'data':<11} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cards/call':>10}")
        for (hook, mode), values in timings.items():
            print(f"{hook:<12} {mode:<11} {len(values):>5} {percentile(values, 0.5):>8.1f} {percentile(values, 0.95):>8.1f}"
                  f" {max(values):>8.1f} {cards[(hook, mode)] / len(values):>10.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
