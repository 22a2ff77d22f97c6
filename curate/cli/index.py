"""``repic index``: read a recipe's sources into normalized tables and summarize them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from curate import progress
from curate.recipe import load_recipe
from curate.sources.index import bad_fraction, default_cache_dir, index_source, supply_warnings
from curate.sources.tables import SourceTables


def summary_table(tables: dict[str, SourceTables]) -> Table:
    t = Table(title="Index summary")
    for col in ("source", "kind", "images", "objects", "other tables", "quarantined", "bad fraction"):
        t.add_column(col, justify="right" if col not in ("source", "kind", "other tables") else "left")
    for name, st in tables.items():
        other = ", ".join(
            f"{k}={df.height}" for k, df in sorted(st.tables.items()) if k not in ("images", "objects", "quarantine")
        )
        t.add_row(
            name,
            st.kind,
            str(st.images.height),
            str(st.objects.height),
            other,
            str(st.quarantine.height),
            f"{bad_fraction(st):.2%}",
        )
    return t


def reasons_table(tables: dict[str, SourceTables]) -> Table | None:
    rows = []
    for name, st in tables.items():
        q = st.quarantine
        if q.height:
            for reason, n in q.group_by("reason").len().sort("reason").iter_rows():
                rows.append((name, reason, n))
    if not rows:
        return None
    t = Table(title="Quarantine by reason")
    for col in ("source", "reason", "records"):
        t.add_column(col)
    for r in rows:
        t.add_row(r[0], r[1], str(r[2]))
    return t


def index(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    cache_dir: Path = typer.Option(
        None, help="Index cache folder (default: runtime.cache_dir, $REPIC_CACHE_DIR or ~/.cache/repic/index)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Re-read every source."),
    quarantine_out: Path = typer.Option(None, "--quarantine", help="Write all quarantine rows to this Parquet file."),
) -> None:
    """Read RECIPE's sources into normalized tables (cached) and print a summary."""
    r = load_recipe(recipe)
    cache = cache_dir or default_cache_dir(r)
    tables = {}
    for name, spec in progress.track(list(r.sources.items()), "Indexing sources"):
        tables[name] = index_source(name, spec, cache_dir=cache, use_cache=not no_cache)
    console = Console()
    console.print(summary_table(tables))
    rt = reasons_table(tables)
    if rt is not None:
        console.print(rt)
    for line in supply_warnings(r, tables):
        console.print(f"warning: {line}", style="yellow", highlight=False, soft_wrap=True)
    if quarantine_out is not None:
        import polars as pl

        pl.concat([st.quarantine for st in tables.values()]).write_parquet(quarantine_out)
        console.print(f"quarantine rows written to {quarantine_out}")


def register(app: typer.Typer) -> None:
    app.command("index")(index)
