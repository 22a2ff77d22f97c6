"""The ``repic`` command.

Each command group lives in its own module that exposes ``register(app)``;
this module only wires them together and turns :class:`UserError` into a
one-line message with a non-zero exit status.
"""

from __future__ import annotations

import importlib

import typer
from rich.console import Console

from curate import __version__
from curate.errors import UserError

app = typer.Typer(
    name="repic",
    help="Rebuild, version, publish and train on the RePIC instruction mixture.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands to the app, in help order.
COMMAND_MODULES = (
    "curate.cli.recipe",  # repic recipe check
    "curate.cli.index",  # repic index
    "curate.cli.demo",  # repic demo
    "curate.cli.build",  # repic build / inspect / export
    "curate.cli.publish",  # repic publish / versions / pull
    "curate.cli.train",  # repic train
    "curate.cli.evaluate",  # repic eval / db / caption
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"repic {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """RePIC Curate."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from every Click that can raise it: Typer >= 0.26 vendors its own (``typer._click``), older
    Typers and Click itself raise ``click.exceptions``."""
    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_CLICK_ERRORS = _click_classes("ClickException")
_ABORTS = _click_classes("Abort")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``repic`` console script."""
    try:
        rc = app(args=argv, prog_name="repic", standalone_mode=False)
        if isinstance(rc, int):
            return rc
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as exc:  # --help, --version
        return exc.exit_code or 0
    except SystemExit as exc:
        return int(exc.code or 0)
    except _CLICK_ERRORS as exc:  # usage errors: Click's own usage message, exit 2
        exc.show()
        return exc.exit_code
    except _ABORTS:
        err_console.print("aborted")
        return 1
    return 0
