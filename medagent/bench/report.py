"""A self-contained static HTML report of one or more runs: tables, SVG plots, a trajectory viewer.

No CDN, no external assets: plots are inline SVG, the viewer is HTML ``<details>`` with a few
lines of inline JavaScript for filtering. Several runs are shown side by side (e.g. the agent vs
the whole-record baseline on the same questions).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from medagent.bench.comparison import (
    PAIRED_COLUMNS,
    NoSharedTasks,
    PairedScore,
    RunComparison,
    TaskKey,
    compare_runs,
    paired_cells,
)
from medagent.bench.results import ResultsLog, TaskRecord
from medagent.bench.runner import RESULTS_FILE, RunDirError
from medagent.bench.summary import (
    checkpoint_cell,
    failure_cause,
    has_checkpoints,
    pass_at_1_cell,
    pass_hat_k_cell,
    summarize,
)

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#e53e3e", "#319795")
MAX_TRAJECTORIES = 400


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _run_label(run_dir: Path, records: list[TaskRecord]) -> str:
    agents = sorted({r.agent for r in records})
    models = sorted({r.model for r in records if r.model})
    return f"{run_dir.name}: {'/'.join(agents)}" + (f" ({'/'.join(models)})" if models else "")


def bar_chart(
    title: str,
    categories: list[str],
    series: list[tuple[str, list[float]]],
    unit: str = "",
    max_value: float | None = None,
    ranges: list[list[tuple[float, float] | None]] | None = None,
) -> str:
    """Grouped horizontal bars as inline SVG; ``ranges`` (per series, per category): an interval drawn as a
    whisker over the bar."""
    top = max_value or max([v for _, values in series for v in values] + [1e-9])
    row_h, bar_h, left, width = 8 + 14 * len(series), 12, 230, 420
    height = 40 + row_h * len(categories) + 20 * len(series)
    parts = [
        f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{left + width + 90}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" font-weight="bold">{_e(title)}</text>'
    ]
    for i, category in enumerate(categories):
        y = 30 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + bar_h}" text-anchor="end" font-size="12">{_e(category)}</text>')
        for j, (_, values) in enumerate(series):
            value = values[i]
            w = 0 if top <= 0 else width * value / top
            yy = y + j * 14
            parts.append(f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[j % 6]}"/>')
            label_x = left + w + 4
            if ranges and (span := ranges[j][i]) is not None and top > 0:
                x0, x1 = left + width * span[0] / top, left + width * span[1] / top
                label_x = max(label_x, x1 + 4)
                parts.append(
                    f'<line class="whisker" x1="{x0:.1f}" x2="{x1:.1f}" y1="{yy + 6}" y2="{yy + 6}" '
                    f'stroke="#1a202c" stroke-width="1.5"/>'
                )
            parts.append(f'<text x="{label_x:.1f}" y="{yy + 10}" font-size="11">{value:,.1f}{unit}</text>')
    y = 40 + row_h * len(categories)
    for j, (name, _) in enumerate(series):
        parts.append(
            f'<rect x="{left}" y="{y + 20 * j - 10}" width="12" height="12" fill="{PALETTE[j % 6]}"/>'
            f'<text x="{left + 18}" y="{y + 20 * j}" font-size="12">{_e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(label: str, summary: dict[str, Any]) -> str:
    checkpoints = has_checkpoints(summary)
    head = (
        "category",
        "n",
        "pass@1 [95% CI]",
        "pass^k [95% CI]",
        *(("checkpoints",) if checkpoints else ()),
        "mean steps",
        "tool calls",
        "prompt tokens",
        "completion tokens",
        "p50 s",
        "p95 s",
        "failures",
    )
    rows = []
    groups = [*summary["by_category"].items(), ("overall", summary["overall"])]
    for name, group in groups:
        cells = (
            name,
            group["n"],
            pass_at_1_cell(group),
            pass_hat_k_cell(group),
            *((checkpoint_cell(group),) if checkpoints else ()),
            f"{group['mean_steps']:.1f}",
            f"{group['mean_tool_calls']:.1f}",
            f"{group['prompt_tokens']:,}",
            f"{group['completion_tokens']:,}",
            f"{group['latency_p50_s']:.2f}",
            f"{group['latency_p95_s']:.2f}",
            ", ".join(f"{c}: {n}" for c, n in sorted(group["failures"].items())) or "-",
        )
        cls = ' class="overall"' if name == "overall" else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return (
        f'<h3>{_e(label)}</h3><table class="summary"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _pass_at_1_range(group: dict[str, Any]) -> tuple[float, float] | None:
    found = (group.get("intervals") or {}).get("pass_at_1") or {}
    low, high = found.get("low"), found.get("high")
    return None if low is None or high is None else (low, high)


def _method_note(summary: dict[str, Any]) -> str:
    method = summary.get("uncertainty")
    if not method:
        return ""
    return (
        f'<p class="method">Intervals: {round(100 * method["confidence"])}% {_e(method["method"])}; '
        f"{method['resamples']:,} resamples, seed {method['seed']}; cluster: {_e(method['cluster_unit'])}.</p>"
    )


def _paired_row(name: str, score: PairedScore, cls: str = "") -> str:
    return f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in (name, *paired_cells(score))) + "</tr>"


def _left_out(keys: list[TaskKey], run: str) -> str:
    if not keys:
        return ""
    items = "".join(
        f"<li><code>{_e(k.scenario_id)}</code>{f' trial {k.trial}' if k.trial else ''}</li>"
        for k in keys[:MAX_TRAJECTORIES]
    )
    more = f"<li>and {len(keys) - MAX_TRAJECTORIES} more</li>" if len(keys) > MAX_TRAJECTORIES else ""
    return f"<details><summary>{len(keys)} only in {_e(run)}</summary><ul>{items}{more}</ul></details>"


def comparison_html(comparison: RunComparison) -> str:
    """The paired comparison of two runs: counts, pass rates, A - B with its interval, McNemar's p, left-outs."""
    head = ("category", *PAIRED_COLUMNS)
    rows = [_paired_row(name, score) for name, score in comparison.by_category.items()]
    rows.append(_paired_row("overall", comparison.overall, ' class="overall"'))
    return (
        f'<div class="comparison"><h3>A = {_e(comparison.run_a)} · B = {_e(comparison.run_b)}</h3>'
        f"<p>{_e(comparison.shared_line())}.</p>"
        f'<table class="paired"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + _left_out(comparison.only_in_a, "A")
        + _left_out(comparison.only_in_b, "B")
        + "</div>"
    )


def _comparisons(runs: list[tuple[str, list[TaskRecord]]]) -> str:
    """The first run (A) against each later run (B), paired on the tasks they share."""
    if len(runs) < 2:
        return ""
    (first, first_records), parts = runs[0], []
    for label, records in runs[1:]:
        try:
            parts.append(comparison_html(compare_runs(first_records, records, run_a=first, run_b=label)))
        except NoSharedTasks as exc:
            parts.append(f'<p class="no-pairs">{_e(exc)}</p>')
    return f'<section id="comparison"><h2>Paired comparison</h2>{"".join(parts)}</section>'


def _trajectory(record: TaskRecord, run_index: int) -> str:
    status = "pass" if record.passed else "fail"
    checks = "".join(
        f'<tr class="{"ok" if c.passed else "bad"}"><td>{_e(c.name)}</td><td>{_e(c.passed)}</td>'
        f"<td><code>{_e(json.dumps(c.expected, default=str))}</code></td>"
        f"<td><code>{_e(json.dumps(c.got, default=str))}</code></td><td>{_e(c.detail)}</td></tr>"
        for c in (record.verdict.checks if record.verdict else [])
    )
    outcome = record.outcome
    steps = "".join(
        f'<li class="step"><div><b>step {_e(s.step)}</b> '
        f"{'tool <code>' + _e(s.tool) + '</code>' if s.tool else 'no tool'}"
        f"{' · approval: ' + _e(s.approval) if s.approval else ''}</div>"
        f'<div class="label">model output</div><pre>{_e(s.model_output)}</pre>'
        + (
            f'<div class="label">arguments</div><pre>{_e(json.dumps(s.arguments, indent=1))}</pre>'
            if s.arguments is not None
            else ""
        )
        + (
            f'<div class="label">record in the prompt</div><pre>{s.context.kept} of {s.context.resources} resources '
            f"({s.context.cut} cut)</pre>"
            if s.context
            else ""
        )
        + (f'<div class="label">tool result</div><pre>{_e(s.result)}</pre>' if s.result else "")
        + (f'<div class="label error">error</div><pre>{_e(s.error)}</pre>' if s.error else "")
        + "</li>"
        for s in outcome.trace
    )
    audit = "".join(
        f"<li><code>{_e(a.tool)}</code> {_e(a.reference)} by {_e(a.actor)}: {_e(a.reason)}"
        f"{'' if a.created else ' (already written)'}</li>"
        for a in outcome.audit
    )
    writes = "".join(f"<li><code>{_e(c.action)} {_e(c.resourceType)}/{_e(c.id)}</code></li>" for c in record.changes)
    return (
        f'<details class="trajectory {status}" data-run="{run_index}" data-status="{status}">'
        f'<summary><span class="badge {status}">{status}</span> {_e(record.scenario_id)} · {_e(record.category)} · '
        f"{_e(outcome.status)} · {outcome.steps} steps · answer: <i>{_e((outcome.answer or '')[:80])}</i></summary>"
        f'<div class="body"><p><b>Answer:</b> {_e(outcome.answer)}<br><b>Citations:</b> {_e(", ".join(outcome.citations))}'
        f"<br><b>Failure cause:</b> {_e(failure_cause(record))}{'<br><b>Error:</b> ' + _e(outcome.error) if outcome.error else ''}</p>"
        f'<table class="checks"><thead><tr><th>check</th><th>passed</th><th>expected</th><th>got</th><th>detail</th></tr>'
        f"</thead><tbody>{checks}</tbody></table>"
        f"<p><b>Server changes:</b></p><ul>{writes or '<li>none</li>'}</ul>"
        f'{"<p><b>Audit trail:</b></p><ul>" + audit + "</ul>" if audit else ""}<ol class="steps">{steps}</ol></div></details>'
    )


CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1a202c}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #cbd5e0;padding:3px 8px;font-size:13px}
th{background:#edf2f7}tr.overall td{font-weight:bold;background:#f7fafc}
.chart{margin:10px 20px 10px 0}.charts{display:flex;flex-wrap:wrap}
details.trajectory{border:1px solid #cbd5e0;border-radius:4px;margin:4px 0;padding:4px 8px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;color:white;font-size:12px}
.badge.pass{background:#38a169}.badge.fail{background:#e53e3e}
pre{background:#f7fafc;padding:6px;white-space:pre-wrap;max-height:260px;overflow:auto;font-size:12px}
.label{font-size:11px;color:#4a5568;margin-top:4px}.label.error{color:#c53030}
tr.bad td{background:#fff5f5}tr.ok td{background:#f0fff4}
.method{font-size:12px;color:#4a5568}
"""

SCRIPT = """
function filterTrajectories(){
  const run=document.getElementById('run-filter').value, status=document.getElementById('status-filter').value;
  let shown=0;
  document.querySelectorAll('details.trajectory').forEach(d=>{
    const ok=(run==='all'||d.dataset.run===run)&&(status==='all'||d.dataset.status===status);
    d.style.display=ok?'':'none'; if(ok) shown++;});
  document.getElementById('shown').textContent=shown;
}
document.addEventListener('DOMContentLoaded',()=>{
  document.getElementById('run-filter').addEventListener('change',filterTrajectories);
  document.getElementById('status-filter').addEventListener('change',filterTrajectories);
  filterTrajectories();
});
"""


def render_report(runs: list[tuple[str, list[TaskRecord]]]) -> str:
    summaries = [(label, summarize(records)) for label, records in runs]
    categories = sorted({c for _, s in summaries for c in s["by_category"]})

    def series(metric: str) -> list[tuple[str, list[float]]]:
        return [
            (label, [float(s["by_category"].get(c, {}).get(metric, 0.0)) for c in categories]) for label, s in summaries
        ]

    tokens = [
        (label, [float(s["by_category"].get(c, {}).get("mean_prompt_tokens", 0.0)) for c in categories])
        for label, s in summaries
    ]
    ranges = [[_pass_at_1_range(s["by_category"].get(c, {})) for c in categories] for _, s in summaries]
    charts = (
        bar_chart("Accuracy by category (95% CI)", categories, series("accuracy"), "%", 100.0, ranges)
        + bar_chart("Prompt tokens per task (mean)", categories, tokens)
        + bar_chart("Latency p50 per task", categories, series("latency_p50_s"), " s")
    )
    tables = "".join(_summary_table(label, summary) for label, summary in summaries) + _method_note(summaries[0][1])
    trajectories = []
    for index, (_, records) in enumerate(runs):
        trajectories += [_trajectory(r, index) for r in records[:MAX_TRAJECTORIES]]
    options = "".join(f'<option value="{i}">{_e(label)}</option>' for i, (label, _) in enumerate(runs))
    headline = " · ".join(
        f"{_e(label)}: <b>{_e(pass_at_1_cell(s['overall']))}</b> (n={s['overall']['n']})" for label, s in summaries
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>medagent report</title>'
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>"
        f"<h1>medagent benchmark report</h1><p>{headline}</p>"
        f'<section id="summary"><h2>Summary</h2>{tables}</section>{_comparisons(runs)}'
        f'<section id="plots"><h2>Plots</h2><div class="charts">{charts}</div></section>'
        f'<section id="trajectories"><h2>Trajectories (<span id="shown">0</span> shown)</h2>'
        f'<label>run <select id="run-filter"><option value="all">all</option>{options}</select></label> '
        f'<label>status <select id="status-filter"><option value="all">all</option><option value="pass">pass</option>'
        f'<option value="fail">fail</option></select></label>{"".join(trajectories)}</section></body></html>'
    )


def load_run(run_dir: Path) -> tuple[str, list[TaskRecord]]:
    """A run folder's label and records (a folder without a results log is the user's mistake)."""
    log = ResultsLog(run_dir / RESULTS_FILE)
    if not log.path.exists():
        raise RunDirError(f"{run_dir} holds no {RESULTS_FILE}")
    records = log.load()
    return _run_label(run_dir, records), records


def write_report(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Render the report of one or more run folders into ``<first run>/report.html`` (or ``out``); each run after
    the first is compared with it, task by task."""
    runs = [load_run(run_dir) for run_dir in run_dirs]
    target = out or run_dirs[0] / "report.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(render_report(runs), encoding="utf-8")
    tmp.replace(target)
    return target
