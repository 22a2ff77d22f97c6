"""``repic build``, ``repic inspect`` and ``repic export``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from curate.errors import UserError


def _console() -> Console:
    return Console(highlight=False)


def build(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    out: Path = typer.Option(
        Path("builds"), "--out", "-o", help="Output root; the build goes to OUT/<name>/<version>/."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        help="Worker processes, or the CPUs of a private local Ray (default: the recipe's runtime.workers).",
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        "-e",
        help="Where crop and shard jobs run: local (process pool) or ray (default: the recipe's runtime.executor).",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster to run on (implies --executor ray; default: RAY_ADDRESS, else a private local Ray).",
    ),
) -> None:
    """Build the instruction mixture RECIPE describes (resumable; rerun to continue an interrupted build)."""
    from curate.materialize.executor import EXECUTORS
    from curate.materialize.pipeline import build as run_build

    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if executor is not None and executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if ray_address and executor == "local":
        raise UserError("--ray-address needs --executor ray")
    if ray_address:
        executor = "ray"
    build_dir = run_build(recipe, out, workers=workers, executor=executor, ray_address=ray_address)
    console = _console()
    table = shortfall_table(build_dir)
    if table is not None:
        console.print(table)
    console.print(f"build: {build_dir}")


def shortfall_table(build_dir: Path) -> Table | None:
    """Tasks that got fewer examples than the recipe asked for (task, asked, built), from the manifest; None if none."""
    from curate.materialize.guards import shortfalls
    from curate.materialize.manifest import read_manifest

    manifest = read_manifest(build_dir)
    short = shortfalls((manifest.get("plan") or {}).get("task_requested") or {}, manifest["counts"]["by_task"])
    if not short:
        return None
    t = Table(title="Shortfalls: tasks with fewer examples than the recipe asked for")
    for col in ("task", "asked", "built", "built share"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for task, asked, got in short:
        t.add_row(task, str(asked), str(got), f"{got / asked:.1%}")
    return t


def composition_tables(comp: dict) -> list[Table]:
    sources = sorted({s for counts in comp["task_source"].values() for s in counts})
    t = Table(title=f"Examples by task x source ({comp['total']} total)")
    t.add_column("task")
    for s in sources:
        t.add_column(s, justify="right")
    t.add_column("total", justify="right")
    for task, counts in comp["task_source"].items():
        t.add_row(task, *[str(counts.get(s, 0)) for s in sources], str(sum(counts.values())))
    yn = comp["oct_answers"]
    balance = Table(title="OCT answers")
    balance.add_column("yes", justify="right")
    balance.add_column("no", justify="right")
    balance.add_column("yes share", justify="right")
    n = yn["yes"] + yn["no"]
    balance.add_row(str(yn["yes"]), str(yn["no"]), f"{yn['yes'] / n:.1%}" if n else "-")
    per = Table(title="Per example")
    for col in (
        "task",
        "names per example",
        "images per example",
        "image width min/mean/max",
        "image height min/mean/max",
    ):
        per.add_column(col)
    for task in comp["task_source"]:
        names = ", ".join(f"{k}:{v}" for k, v in comp["names_per_example"][task].items())
        imgs = ", ".join(f"{k}:{v}" for k, v in comp["images_per_example"][task].items())
        size = comp["image_sizes"].get(task)
        w = "/".join(map(str, size["width"])) if size else "-"
        h = "/".join(map(str, size["height"])) if size else "-"
        per.add_row(task, names, imgs, w, h)
    return [t, balance, per]


def inspect(
    build_dir: Path = typer.Argument(..., help="A build folder (OUT/<name>/<version>)."),
    sheet: Path = typer.Option(None, "--sheet", help="Contact sheet PNG to write (default: BUILD/preview.png)."),
    per_task: int = typer.Option(3, "--per-task", help="Examples per task on the contact sheet."),
) -> None:
    """Print a build's composition and write a contact sheet of examples per task."""
    from curate.materialize.lock import refuse_if_in_use
    from curate.materialize.manifest import verify_build
    from curate.report.inspect import composition, write_contact_sheet

    if not build_dir.is_dir():
        raise UserError(f"not a folder: {build_dir}")
    refuse_if_in_use(build_dir)
    if per_task < 1:
        raise UserError(f"--per-task must be at least 1, got {per_task}")
    console = _console()
    for table in composition_tables(composition(build_dir)):
        console.print(table)
    problems = verify_build(build_dir)
    console.print(
        "manifest: matches the files" if not problems else f"manifest: {len(problems)} problem(s), first: {problems[0]}"
    )
    path = write_contact_sheet(build_dir, sheet or build_dir / "preview.png", per_task=per_task)
    console.print(f"contact sheet: {path}")


def export(
    build_dir: Path = typer.Argument(..., help="A build folder (OUT/<name>/<version>)."),
    out: Path = typer.Argument(
        ..., help="Output .json file, or a folder (then OUT/train.json); images go to images/ next to it."
    ),
    fmt: str = typer.Option(
        "repic-json", "--format", "-f", help="Export format: repic-json (official RePIC / VLM-R1 JSON)."
    ),
) -> None:
    """Export a build in another trainer's format."""
    from curate.materialize.lock import refuse_if_in_use
    from curate.report.export import export_build

    if not build_dir.is_dir():
        raise UserError(f"not a folder: {build_dir}")
    refuse_if_in_use(build_dir)
    path = export_build(build_dir, out, fmt=fmt)
    _console().print(f"exported: {path}")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("inspect")(inspect)
    app.command("export")(export)
