"""The HTML report in a real headless Chromium (Debian's system binary): tables with intervals, plots, the paired
comparison of two runs, a trajectory, no errors."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from medagent.bench.report import write_report
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.trajectory import RunOutcome, Step

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _run(folder: Path, agent: str, passed: list[bool]) -> Path:
    folder.mkdir(parents=True)
    log = ResultsLog(folder / "results.jsonl")
    for index, ok in enumerate(passed):
        log.append(TaskRecord(
            scenario_id=f"ehrqa-observation_value-{index}", suite="ehrqa", category="observation_value", split="test",
            agent=agent, model="test-model", passed=ok, latency_s=1.5 + index,
            outcome=RunOutcome(status="answered", answer="7.1 %" if ok else "6.0 %", citations=["Observation/abc"],
                               steps=2, trace=[
                Step(step=1, tool="search_observations", arguments={"code": "4548-4"}, prompt_tokens=450,
                     completion_tokens=20, model_output='{"tool": "search_observations"}',
                     result="2019-01-01 HbA1c 7.1 % <b>x</b>"),
                Step(step=2, tool="final_answer", model_output="{}", arguments={"answer": "7.1 %"}, prompt_tokens=450,
                     completion_tokens=20)]),
            verdict={"scenario_id": "x", "passed": ok, "score": float(ok), "checks": [
                {"name": "answer", "passed": ok, "expected": "7.1 %", "got": "7.1 %" if ok else "6.0 %"}]},
        ))
    return folder


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium not installed (apt-get install chromium); CI installs it and never skips")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "chromium is required in CI"

    agent_run = _run(tmp_path / "agent", "agent", [True, True, False])
    baseline = _run(tmp_path / "baseline", "whole-record", [True, False, False])
    report = write_report([agent_run, baseline])
    page_text = report.read_text()
    assert "http://" not in page_text.replace("http://www.w3.org/2000/svg", "")  # self-contained: no CDN

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        assert page.locator("table.summary").count() == 2
        overall = page.locator("table.summary tr.overall td").nth(2).inner_text()
        assert re.fullmatch(r"66\.7% \[(\d+\.\d), (\d+\.\d)\]", overall), overall
        low, high = (float(x) for x in re.findall(r"\d+\.\d", overall)[1:])
        assert 0.0 <= low < 66.7 < high <= 100.0
        assert page.locator("svg.chart").count() == 3
        assert page.locator("svg.chart line.whisker").count() == 2  # one interval per run on the accuracy chart
        paired = page.locator("#comparison table.paired tr.overall td")
        # A: right, right, wrong; B: right, wrong, wrong -> 3 pairs, 1 both right, 1 only A, 0 only B, 1 both wrong
        assert [paired.nth(i).inner_text() for i in range(6)] == ["overall", "3", "1", "1", "0", "1"]
        assert paired.nth(8).inner_text().startswith("+33.3 pts [")
        assert paired.nth(9).inner_text() == "1"  # McNemar: one discordant pair
        assert "3 shared (scenario, trial) pairs" in page.locator("#comparison").inner_text()
        assert page.locator("#shown").inner_text() == "6"
        first = page.locator("details.trajectory").first
        first.locator("summary").click()
        assert first.locator("li.step").count() == 2
        assert "search_observations" in first.inner_text()
        assert "<b>x</b>" in first.inner_text()  # tool output is escaped, shown as text
        page.select_option("#status-filter", "fail")
        assert page.locator("#shown").inner_text() == "3"
        page.select_option("#status-filter", "all")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        browser.close()
    assert errors == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
