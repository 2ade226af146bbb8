"""mkdocs hook: every module of the package must be on some API page (a module left out is a missing page)."""

from __future__ import annotations

import logging
import pkgutil
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.medagent")
PACKAGE = Path(__file__).resolve().parents[1] / "medagent"


def _modules() -> set[str]:
    names = {"medagent"}
    for info in pkgutil.walk_packages([str(PACKAGE)], "medagent."):
        if not info.name.endswith("__main__"):  # an entry point, no API
            names.add(info.name)
    return names


def on_files(files: Any, config: Any) -> Any:
    """Warn (an error under --strict) about each module no ``::: medagent...`` directive covers."""
    pages = Path(config["docs_dir"])
    covered = {m for page in pages.rglob("*.md") for m in re.findall(r"^::: (medagent[\w.]*)", page.read_text(), re.M)}
    missing = sorted(m for m in _modules() if not any(m == c or (m.startswith(c + ".") and c != "medagent")
                                                     for c in covered))
    for module in missing:
        log.warning("module %s is on no API page (.docs/pages/api)", module)
    return files
