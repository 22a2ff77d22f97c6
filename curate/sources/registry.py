"""Source kinds: what a recipe's ``sources.<name>.kind`` can be, each declared by one module.

A source module (e.g. :mod:`curate.sources.coco`) declares everything about its
kind in one :class:`SourceKind` and registers it (``KIND = register(SourceKind(...))``):

* ``spec``: the pydantic model of its recipe entry (a subclass of
  :class:`curate.recipe.model.SourceSpecBase` with ``kind: Literal["<name>"]``);
  the recipe model validates ``sources.*`` against the registered models
  (:func:`curate.recipe.model.validate_source_spec`);
* ``read(name, spec) -> SourceTables`` and ``input_files(spec)`` (the files
  whose size, mtime and content sample key the index cache and fingerprint the
  source), with ``cache_version`` bumped when the reader's output changes;
* ``tasks``: the tasks its tables can feed, and ``pairs``: its reference-query
  pair sampler (:mod:`curate.plan.pairs`), needed for ``oct`` and ``ict_single``;
* ``image_namespace``: sources whose kinds share a namespace share image ids
  (COCO and RefCOCO ids are one set of MS-COCO photos), so a query image is
  claimed once across them.

The built-in kinds are registered on first use (:data:`BUILTIN`); any other
module (a plug-in, a test) can register more before a recipe is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from curate.recipe.model import TASKS

BUILTIN = ("coco", "objects365", "celeba", "subjects200k", "refcoco")  # modules under curate.sources, in this order
PAIR_TASKS = ("oct", "ict_single")  # tasks planned from a kind's pair sampler

_KINDS: dict[str, SourceKind] = {}
_loading = False


@dataclass(frozen=True)
class SourceKind:
    """Everything the toolkit needs to know about one source kind."""

    name: str  # the recipe's ``kind``
    spec: type  # recipe entry model: SourceSpecBase subclass with ``kind: Literal[name]``
    read: Callable[[str, Any], Any]  # (source name, spec) -> SourceTables
    input_files: Callable[[Any], list[Path]]  # spec -> files and folders the tables are read from
    tasks: tuple[str, ...] = ()  # tasks its tables can feed
    pairs: type | None = None  # pair sampler class (curate.plan.pairs protocol), for oct / ict_single
    cache_version: int = 1  # part of the index cache key: bump when the reader's output changes
    image_namespace: str | None = None  # kinds with the same namespace share image ids (one photo)


def register(kind: SourceKind) -> SourceKind:
    """Add a source kind (ValueError when it is inconsistent or its name is taken); returns it."""
    field = kind.spec.model_fields.get("kind")
    if field is None or get_args(field.annotation) != (kind.name,):
        raise ValueError(f"source kind {kind.name!r}: its spec model needs the field kind: Literal[{kind.name!r}]")
    unknown = [t for t in kind.tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"source kind {kind.name!r}: unknown task(s) {unknown} (tasks: {', '.join(TASKS)})")
    if kind.pairs is None and any(t in PAIR_TASKS for t in kind.tasks):
        raise ValueError(f"source kind {kind.name!r}: {'/'.join(PAIR_TASKS)} need a pair sampler (pairs=...)")
    old = _KINDS.get(kind.name)
    if old is not None and old != kind:
        raise ValueError(f"source kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (tests)."""
    _KINDS.pop(name, None)


def _load_builtins() -> None:
    global _loading
    if _loading:
        return
    _loading = True  # stays set: a built-in module imported later (or now) registers itself
    for module in BUILTIN:
        importlib.import_module(f"curate.sources.{module}")


def source_kinds() -> dict[str, SourceKind]:
    """Every registered kind: the built-in ones in :data:`BUILTIN` order, then the others as registered."""
    _load_builtins()
    order = {name: i for i, name in enumerate(BUILTIN)}
    return {k: _KINDS[k] for k in sorted(_KINDS, key=lambda k: order.get(k, len(order)))}


def source_kind(name: str) -> SourceKind:
    """The kind named ``name`` (KeyError when none is registered)."""
    kinds = source_kinds()
    if name not in kinds:
        raise KeyError(f"no source kind {name!r} is registered (kinds: {', '.join(kinds)})")
    return kinds[name]


def kinds_for(task: str) -> tuple[str, ...]:
    """The kinds whose sources can feed ``task``."""
    return tuple(name for name, kind in source_kinds().items() if task in kind.tasks)
