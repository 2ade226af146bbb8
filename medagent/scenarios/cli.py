"""`medagent scenarios ...`: a typer sub-app the main CLI mounts (app.add_typer(scenarios_app, name="scenarios"))."""

from __future__ import annotations

from pathlib import Path

import typer

from medagent.scenarios.build import DEFAULT_OUT, DEFAULT_SEED, build_scenarios, render_table

scenarios_app = typer.Typer(help="Generate and inspect the EHRQA and agentic scenario sets.", no_args_is_help=True)


@scenarios_app.command("build")
def build(
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of every random choice; same seed, same files."),
    patients: int | None = typer.Option(None, "--patients", min=1, help="Use only the first N patients (v2)."),
    out: Path | None = typer.Option(None, "--out", help="Folder of the set (default scenarios/<set>)."),
    hard: bool = typer.Option(True, "--hard/--no-hard", help="Include the hard tier (v2)."),
    set_name: str = typer.Option("v2", "--set", help="The set to build: v2 or v3 (v1 is frozen data)."),
) -> None:
    """Regenerate a scenario set (v2 or v3) deterministically and print its counts and content hash."""
    if set_name not in ("v2", "v3"):
        typer.echo(f"error: --set {set_name!r}: choose v2 or v3 (v1 is frozen data, not rebuilt)", err=True)
        raise typer.Exit(2)
    if set_name == "v3" and (patients is not None or not hard):
        typer.echo("error: --patients and --no-hard apply to v2 only (v3 is built from every patient)", err=True)
        raise typer.Exit(2)
    if set_name == "v3":
        from medagent.scenarios.v3.build import DEFAULT_OUT as V3_OUT
        from medagent.scenarios.v3.build import build_v3

        out = out or V3_OUT
        manifest = build_v3(seed=seed, out_dir=out)
    else:
        out = out or DEFAULT_OUT
        manifest = build_scenarios(seed=seed, patients=patients, out_dir=out, hard=hard)
    typer.echo(render_table(manifest))
    typer.echo(f"\nWrote {out}/ (manifest.json content_hash {manifest.content_hash})")


@scenarios_app.command("hash")
def show_hash(folder: Path = typer.Argument(DEFAULT_OUT, help="Folder holding manifest.json.")) -> None:
    """Recompute the content hash of a set from its files and compare it with its manifest."""
    from medagent.scenarios.scenario_files import read_manifest, recomputed_hash

    recorded = read_manifest(folder).content_hash
    actual = recomputed_hash(folder)
    typer.echo(actual)
    if actual != recorded:
        typer.echo(f"differs from manifest.json ({recorded})", err=True)
        raise typer.Exit(1)


@scenarios_app.command("rephrase")
def rephrase(
    source: Path = typer.Option(DEFAULT_OUT, "--from", help="The frozen set whose dev split is rephrased."),
    out: Path = typer.Option(..., "--out", help="Folder of the rephrased set (JSONL files, manifest.json)."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of every wording choice; same seed, same files."),
    variants: int = typer.Option(2, "--variants", min=1, help="Rephrased copies of each dev scenario."),
) -> None:
    """Write the dev split of a set asked as users ask (names, pronouns, abbreviations, no format line, typos):
    training data for medagent train sft, never a benchmark (medagent.scenarios.user_phrasings)."""
    from medagent.scenarios.scenario_files import ScenarioSetError, read_manifest
    from medagent.scenarios.user_phrasings import write_rephrased_set

    try:
        read_manifest(source)
    except (OSError, ScenarioSetError) as exc:
        typer.echo(f"error: --from {source}: {exc}", err=True)
        raise typer.Exit(2) from None
    manifest = write_rephrased_set(source, out, seed=seed, variants=variants)
    counts = ", ".join(f"{key} {count['dev']}" for key, count in sorted(manifest.counts.items()))
    typer.echo(
        f"{sum(c['dev'] for c in manifest.counts.values())} rephrased dev scenarios ({counts}); "
        f"wrote {out}/ (content_hash {manifest.content_hash})"
    )
