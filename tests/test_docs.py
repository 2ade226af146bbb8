"""The documentation's contracts: a short top-level README (its two set-up commands, a layer picture true to
tests/test_layers.py), a README in every package folder, and every relative link of every Markdown file in the
repository resolving to a file and, where it names one, to a heading of that file."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_DIRS = {"node_modules", "__pycache__", "build", "runs", "test-artifacts", "site", "scenario_sets"}
SETUP_COMMANDS = ("bash tools/quickstart.sh", "bash tools/run_tests.sh")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repository but the mkdocs pages (mkdocs --strict checks those) and the frozen
    scenario data; hidden folders other than .github, dependencies and build output are left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and (not d.startswith(".") or d == ".github"))
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".md")]
    return found


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links and headings there are not links or headings)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-', repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def broken_links(path: Path) -> list[str]:
    """'file: target (why)' for each relative link of a Markdown file that does not resolve."""
    out = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            out.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {target} (no such file)")
            continue
        if linked.is_dir():
            linked = linked / "README.md"
        if anchor and (linked.suffix != ".md" or not linked.exists() or anchor not in anchors(linked)):
            out.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {target} (no such heading)")
    return out


def layer_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_table", ROOT / "tests" / "test_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_keeps_its_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for command in SETUP_COMMANDS:
        assert re.search(rf"^{re.escape(command)}\s", text, re.M), command  # a line of a shell block, run as is
        assert (ROOT / command.split()[1]).is_file(), command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash tools/run_tests.sh" in ci  # CI runs the README's test command


def test_the_layer_picture_is_true_to_the_layer_table() -> None:
    """Every part of tests/test_layers.py's table is in the picture, and no row lets a part import more than the
    table allows (a row naming "neutral only" allows no other part)."""
    table = layer_table()
    allowed: dict[str, set[str]] = table.ALLOWED
    parts = set(allowed) - {"__init__"}
    block = README.read_text(encoding="utf-8").split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith((" ", "```", "part "))]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    named = set()
    for row in rows:
        sources = [p.strip() for p in row[0].split(",")]
        named.update(sources)
        if row[0] == "neutral":
            continue
        may = row[1]
        mentioned = set(re.findall(r"\b\w+\b", may)) & parts
        for source in sources:
            assert source in allowed, source
            if may.startswith("every part"):
                excluded = set(re.findall(r"\b\w+\b", may.partition(" but ")[2])) & parts
                assert not (excluded & allowed[source]), (source, excluded)
                assert parts - excluded - {source} - {"__main__"} <= allowed[source] | {"cli"}, source
            elif "neutral only" in may:
                assert allowed[source] <= table.NEUTRAL, source
            else:
                assert mentioned <= allowed[source] | {source}, (source, mentioned - allowed[source])
    neutral_text = block.split("\nneutral", 1)[1]
    assert set(re.findall(r"\b\w+\b", neutral_text)) >= table.NEUTRAL
    assert named | table.NEUTRAL >= parts, parts - named - table.NEUTRAL


def test_every_package_folder_has_a_readme_that_starts_by_saying_what_it_is_for() -> None:
    package = ROOT / "medagent"
    folders = [
        package,
        *(p for p in package.iterdir() if (p / "__init__.py").exists() and not p.is_symlink()),
        ROOT / "tools",
        ROOT / "tests",
        ROOT / "scenarios",
    ]
    for folder in folders:
        readme = folder / "README.md"
        assert readme.is_file(), folder
        first = readme.read_text(encoding="utf-8").splitlines()[0]
        assert first.strip() and not first.startswith(("|", "```", "<!--")), readme


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Set-up (`bash x.sh`)\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#set-up-bash-xsh) [self](#page) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](other.md#setup) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert [line.split(": ", 1)[1] for line in broken_links(page)] == [
        "missing.md (no such file)",
        "other.md#setup (no such heading)",
    ]
    assert markdown_files(tmp_path) == [tmp_path / "other.md", page]
