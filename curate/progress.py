"""Rich progress bars for long work (shown on stderr; quiet when REPIC_PROGRESS=0)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
_console = Console(stderr=True)


def enabled() -> bool:
    return os.environ.get("REPIC_PROGRESS", "1") != "0"


def make_progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console,
        disable=not enabled(),
        transient=False,
    )


@contextmanager
def bar(description: str, total: int | None = None):
    """``with bar("Cropping", total=n) as advance: ... advance(k)``"""
    with make_progress() as p:
        task = p.add_task(description, total=total)
        yield lambda k=1: p.advance(task, k)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(description, total) as advance:
        for item in items:
            yield item
            advance()
