"""Mutation testing of the critical modules with mutmut: one scratch copy per target, a killed/total table.

Usage (via tools/mutation.sh):
    tools/mutation.sh                         # every target in tools/mutation_targets.toml
    tools/mutation.sh medagent/tools/compact.py scenarios/writes
    tools/mutation.sh --tests-at dcb33c6 ...  # the same mutants against the tests of an older commit

Each target is copied (tracked and untracked-but-not-ignored files of this checkout) to
``OUT/<target>/``, given a ``[tool.mutmut]`` section naming its module and its own fast test files,
and mutated there, so the checkout is never touched and targets do not share a ``mutants/`` folder.
A per-target time budget bounds each run; mutants not reached in time are counted as "not checked".
Survivors (with their diffs) are written to ``OUT/<target>.survivors.txt``; the table to ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS_FILE = ROOT / "tools" / "mutation_targets.toml"
DETECTED = ("killed", "timeout")  # a mutant a test run noticed (a hang is noticed by the timeout)
PYTEST_ARGS = ["-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", "-p", "no:randomly"]


@dataclass
class Target:
    name: str
    module: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    def selects(self, mutant: str) -> bool:
        if not mutant.startswith(self.dotted + "."):
            return False
        if not self.functions:
            return True
        local = mutant[len(self.dotted) + 1:]
        return any(fnmatch.fnmatchcase(local, mutant_pattern(fn)) for fn in self.functions)


def mutant_pattern(function: str) -> str:
    """mutmut 3's mutant names: ``x_<function>__mutmut_<n>`` for a function, ``xǁ<Class>ǁ<method>__mutmut_<n>``
    for a method (written ``Class.method`` in the targets file)."""
    if "." in function:
        owner, method = function.split(".", 1)
        return f"x\u01c1{owner}\u01c1{method}__mutmut_*"
    return f"x_{function}__mutmut_*"


def load_targets() -> dict[str, Target]:
    data = tomllib.loads(TARGETS_FILE.read_text())
    return {name: Target(name=name, **spec) for name, spec in data["targets"].items()}


def pick(targets: dict[str, Target], wanted: list[str]) -> list[Target]:
    if not wanted:
        return list(targets.values())
    picked = []
    for item in wanted:
        matches = [t for t in targets.values() if item in (t.name, t.module)]
        if not matches:
            known = ", ".join(f"{t.name} ({t.module})" for t in targets.values())
            raise SystemExit(f"unknown mutation target {item!r}; known: {known}")
        picked.extend(m for m in matches if m not in picked)
    return picked


def copy_checkout(dest: Path, tests_at: str | None) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout
    with open(dest / ".checkout.tar", "wb") as tar:
        subprocess.run(["tar", "--null", "-T", "-", "-cf", "-"], cwd=ROOT, input=files, check=True, stdout=tar)
    subprocess.run(["tar", "-xf", ".checkout.tar"], cwd=dest, check=True)
    (dest / ".checkout.tar").unlink()
    if tests_at:
        shutil.rmtree(dest / "tests")
        archive = subprocess.run(["git", "archive", tests_at, "tests"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-xf", "-"], cwd=dest, input=archive, check=True)


def write_config(dest: Path, target: Target, tests: list[str]) -> None:
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    if "[tool.mutmut]" in text:
        raise SystemExit("pyproject.toml already has a [tool.mutmut] section; the targets file is the config")
    lines = [
        "", "[tool.mutmut]",
        'source_paths = ["medagent"]',
        f"only_mutate = [{target.module!r}]".replace("'", '"'),
        "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
        "pytest_add_cli_args = [" + ", ".join(f'"{a}"' for a in PYTEST_ARGS) + "]",
        "",
    ]
    pyproject.write_text(text + "\n".join(lines))


def run_target(target: Target, out: Path, tests_at: str | None, budget: int, children: int,
               report_only: bool = False, keep: bool = False) -> dict[str, object]:
    scratch = out / (target.name.replace("/", "-") + (f"@{tests_at}" if tests_at else ""))
    keep = keep and (scratch / "mutants").exists()
    if not report_only and not keep:
        copy_checkout(scratch, tests_at)
    tests = [t for t in target.tests if (scratch / t).exists()]
    row: dict[str, object] = {"target": target.name, "module": target.module,
                              "functions": ",".join(target.functions) or "all", "tests": tests}
    if not tests:
        row["note"] = "no test files of this target exist" + (f" at {tests_at}" if tests_at else "")
        return row
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    env["MEDAGENT_HOME"] = str(scratch / ".home")
    mutmut = [sys.executable, "-m", "mutmut"]
    if not report_only:
        if not keep:
            write_config(scratch, target, tests)
        names = [f"{target.dotted}.{mutant_pattern(fn)}" for fn in target.functions]
        started = time.monotonic()
        with open(scratch / "mutmut.log", "a" if keep else "w") as log:
            try:
                run = subprocess.run([*mutmut, "run", "--max-children", str(children), *names], cwd=scratch,
                                     env=env, stdout=log, stderr=subprocess.STDOUT, timeout=budget, check=False)
                row["rc"] = run.returncode
            except subprocess.TimeoutExpired:
                row["rc"] = "budget"
                row["note"] = f"stopped at the {budget} s budget"
        row["seconds"] = round(time.monotonic() - started)
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=scratch, env=env, capture_output=True,
                             text=True, check=False)
    statuses: dict[str, str] = {}
    for line in listing.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and target.selects(name):
            statuses[name] = status.strip()
    counts = Counter(statuses.values())
    row.update(total=len(statuses), counts=dict(counts))
    detected = sum(counts[s] for s in DETECTED)
    row["score"] = round(100 * detected / len(statuses), 1) if statuses else None
    survivors = [n for n, s in statuses.items() if s not in DETECTED]
    report = out / f"{scratch.name}.survivors.txt"
    # one process for all diffs (a `mutmut show` per survivor costs a second or more each)
    script = ("import sys\nfrom mutmut.__main__ import find_mutant, get_diff_for_mutant\n"
              "for name in sys.argv[1:]:\n"
              "    print(get_diff_for_mutant(name, path=find_mutant(name).path), end='\\x00')\n")
    diffs = subprocess.run([sys.executable, "-c", script, *survivors], cwd=scratch, env=env, capture_output=True,
                           text=True, check=False).stdout.split("\x00") if survivors else []
    with open(report, "w") as fh:
        for name, diff in zip(survivors, diffs + [""] * len(survivors)):
            fh.write(f"## {name}: {statuses[name]}\n{diff}\n")
    row["survivors_file"] = str(report)
    if listing.returncode != 0 and not statuses:
        row["note"] = f"mutmut results failed: {listing.stderr.strip()[-300:]}"
    return row


def table(rows: list[dict[str, object]], tests_at: str | None) -> str:
    head = (f"tests at {tests_at}" if tests_at else "tests of this checkout")
    lines = [f"mutation score ({head}; killed = killed + timeout)", "",
             "| target | functions | mutants | killed | survived | no tests | not checked | score |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        counts: dict[str, int] = row.get("counts", {})  # type: ignore[assignment]
        if "total" not in row:
            lines.append(f"| {row['target']} | {row['functions']} | - | - | - | - | - | {row.get('note', '')} |")
            continue
        killed = sum(counts.get(s, 0) for s in DETECTED)
        score = f"{row['score']}%" if row["score"] is not None else "-"
        if row.get("note"):
            score += f" ({row['note']})"
        lines.append(f"| {row['target']} | {row['functions']} | {row['total']} | {killed} | "
                     f"{counts.get('survived', 0)} | {counts.get('no tests', 0)} | "
                     f"{counts.get('not checked', 0)} | {score} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="target names or module paths (default: all)")
    parser.add_argument("--tests-at", help="git ref whose tests/ to run instead of this checkout's")
    parser.add_argument("--budget", type=int, default=900, help="seconds per target (default 900)")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut workers (default 1: shared machine)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "medagent-mutation")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="re-read the results of an earlier run in OUT (no copy, no mutation run)")
    parser.add_argument("--keep", action="store_true",
                        help="continue an earlier run in OUT (same copy; mutants already tested are not rerun)")
    args = parser.parse_args()
    targets = load_targets()
    if args.list:
        for t in targets.values():
            print(f"{t.name}: {t.module} [{','.join(t.functions) or 'all'}] <- {' '.join(t.tests)}")
        return 0
    chosen = pick(targets, args.targets)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for target in chosen:
        print(f"mutating {target.module} ({','.join(target.functions) or 'all functions'}) ...", flush=True)
        rows.append(run_target(target, args.out, args.tests_at, args.budget, args.max_children,
                               args.report_only, args.keep))
        print(table(rows[-1:], args.tests_at).splitlines()[-1], flush=True)
    text = table(rows, args.tests_at)
    suffix = f"@{args.tests_at}" if args.tests_at else ""
    for row in rows:  # one file per target, so the full table adds up across separate invocations
        (args.out / f"{row['target'].replace('/', '-')}{suffix}.row.json").write_text(json.dumps(row))  # type: ignore[union-attr]
    order = {name: i for i, name in enumerate(targets)}
    everything = [json.loads(p.read_text()) for p in args.out.glob(f"*{suffix}.row.json")
                  if p.name.endswith(f"{suffix}.row.json") and (suffix or "@" not in p.name)]
    everything.sort(key=lambda r: order.get(r["target"], len(order)))
    (args.out / f"table{suffix}.md").write_text(table(everything, args.tests_at) + "\n")
    print()
    print(text)
    print(f"\nall targets measured so far: {args.out}/table{suffix}.md")
    print(f"\nsurvivor diffs: {args.out}/<target>{suffix}.survivors.txt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
