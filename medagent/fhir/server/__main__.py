"""``python -m medagent.fhir.server``: the lean entry point the bench and test subprocesses start.

It imports only what the server serves (the store, the app, uvicorn), not the whole ``medagent`` CLI
with its agent, tools and scenario generators; ``medagent fhir serve`` remains the user-facing command
and takes the same options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medagent.config import UserError, get_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m medagent.fhir.server", description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--host", default=None)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--allow-reset", action="store_true")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument(
        "--token", default=None, help="bearer token every request must carry (required beyond loopback)"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        help="Host header accepted besides loopback names (repeatable; '*': any)",
    )
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when the starting process dies")
    parser.add_argument("--query-seconds", type=float, default=None, help="time limit of one database query")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes accepting on the one port, over the same database (default 1)",
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=0,
        help="serve this many task databases over --db (read-only), at /slots/0 ... (default: none)",
    )
    parser.add_argument("--slots-dir", type=Path, default=None, help="where the task databases are kept")
    parser.add_argument(
        "--port-file",
        type=Path,
        default=None,
        help="listen on a free port the OS chooses (not --port) and write its number to this file",
    )
    parser.add_argument("--smart-issuer", default=None, help="require SMART JWT access tokens from this issuer")
    parser.add_argument("--smart-audience", default=None, help="the tokens' audience (default http://HOST:PORT)")
    parser.add_argument("--smart-jwks-url", default=None, help="the issuer's JWKS (default: its discovery)")
    parser.add_argument("--smart-leeway", type=float, default=None, help="clock skew allowed on expiry, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from medagent.fhir.server.serve import access_token_policy, serve

    try:
        settings = get_settings(
            port=args.port,
            db=args.db,
            host=args.host,
            strict_search=args.strict or None,
            allow_reset=args.allow_reset or None,
            fhir_server_issuer=args.smart_issuer,
            fhir_server_audience=args.smart_audience,
            fhir_server_jwks_url=args.smart_jwks_url,
            fhir_server_leeway=args.smart_leeway,
        )
        serve(
            settings.db_path,
            host=settings.host,
            port=settings.port,
            strict=settings.strict_search,
            allow_reset=settings.allow_reset,
            load_default=not args.no_load,
            report=lambda message: print(message, file=sys.stderr, flush=True),
            token=args.token,
            allowed_hosts=args.allowed_host,
            exit_with_parent=args.exit_with_parent,
            query_seconds=args.query_seconds,
            workers=args.workers,
            access_tokens=access_token_policy(settings),
            slots=args.slots,
            slots_dir=args.slots_dir,
            port_file=args.port_file,
        )
    except (UserError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
