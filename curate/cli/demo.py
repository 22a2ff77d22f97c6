"""``repic demo``: generate the demo corpus and run the demo recipe on it end to end."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from curate.errors import UserError

DEMO_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"
TINY_TOTAL = 48  # the tiny corpus supplies every task of the demo proportions in full up to this total


def demo(
    out: Path = typer.Option(
        Path("repic-demo"), "--out", "-o", help="Folder for the corpus, the build and the export."
    ),
    workers: int = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: the demo recipe's runtime.workers)."
    ),
    size: str = typer.Option(
        "demo", "--size", help=f"Corpus size: demo or tiny (tiny builds {TINY_TOTAL} examples instead of 200)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated corpus."),
) -> None:
    """Generate a small corpus in all five native formats, then index, build, inspect and export it."""
    from curate.cli.build import composition_tables
    from curate.demo.corpus import generate_corpus
    from curate.materialize.pipeline import build
    from curate.report.export import export_build
    from curate.report.inspect import composition

    if size not in ("demo", "tiny"):
        raise UserError(f"--size must be demo or tiny, got {size!r}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if not DEMO_RECIPE.is_file():
        raise UserError(f"demo recipe not found at {DEMO_RECIPE}; run repic demo from a clone of the repository")
    from curate.materialize.guards import make_folder

    console = Console(highlight=False)
    out = make_folder(out.resolve())
    corpus = out / "corpus"
    console.print(f"[bold]1/4[/] generating the demo corpus in {corpus}")
    roots = generate_corpus(corpus, seed=seed, size=size)
    os.environ["REPIC_DEMO_CORPUS"] = str(corpus)
    console.print(f"[bold]2/4[/] building {DEMO_RECIPE.name} (index, plan, crops, shards)")
    overrides = None
    if size == "tiny":  # the demo total (200) would fall short on the tiny corpus: build what it supplies in full
        from curate.recipe import load_recipe

        mixture = load_recipe(DEMO_RECIPE, check_paths=False).mixture.model_dump()
        overrides = {"mixture": {**mixture, "total": TINY_TOTAL}}
    build_dir = build(DEMO_RECIPE, out / "builds", workers=workers, overrides=overrides)
    console.print("[bold]3/4[/] composition")
    for table in composition_tables(composition(build_dir)):
        console.print(table)
    console.print("[bold]4/4[/] exporting to the official RePIC JSON format")
    export_path = export_build(build_dir, out / "export-repic-json", fmt="repic-json")
    console.print()
    console.print(f"corpus:        {corpus}  ({', '.join(sorted(roots))})")
    console.print(f"build:         {build_dir}")
    console.print(f"contact sheet: {build_dir / 'preview.png'}")
    console.print(f"dataset card:  {build_dir / 'README.md'}")
    console.print(f"quarantine:    {build_dir / 'quarantine.parquet'}")
    console.print(f"export:        {export_path}")
    console.print(f"load it with:  datasets.load_dataset({str(build_dir)!r})")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
