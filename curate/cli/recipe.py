"""``repic recipe check``: validate a recipe and print it resolved, with its hash."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.syntax import Syntax

from curate.recipe import load_recipe, recipe_hash, resolved_yaml

recipe_app = typer.Typer(help="Work with recipes.", no_args_is_help=True)


@recipe_app.command("check")
def check(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    check_paths: bool = typer.Option(
        True, "--check-paths/--no-check-paths", help="Require every source path to exist."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the hash."),
) -> None:
    """Validate RECIPE; print the resolved recipe and its content hash."""
    r = load_recipe(recipe, check_paths=check_paths)
    digest = recipe_hash(r)
    if quiet:
        typer.echo(digest)
        return
    console = Console()
    console.print(Syntax(resolved_yaml(r), "yaml", theme="ansi_dark", background_color="default"))
    console.print(f"[bold]recipe[/] {r.name} {r.version}  [bold]hash[/] {digest}")


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")
