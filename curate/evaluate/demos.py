"""Demonstrations for `repic caption`: ground-truth, wrong (table 3) and the default top-k of retrieval."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError
from curate.evaluate.database import Database


@dataclass(frozen=True)
class Demo:
    key: str
    name: str
    info: str
    image: Path


def demo_of(db: Database, key: str, image: str | None = None) -> Demo:
    c = db.concepts[key]
    return Demo(key, c.name, c.info, db.resolve(image or c.images[0]))


def _lookup(db: Database, name: str) -> str | None:
    if name in db.concepts:
        return name
    if f"<{name}>" in db.concepts:
        return f"<{name}>"
    return None


def ground_truth_demos(db: Database, queries: dict[str, list[str]]) -> list[list[Demo]]:
    out = []
    for image, concepts in queries.items():
        keys = [_lookup(db, c) for c in concepts]
        missing = [c for c, k in zip(concepts, keys) if k is None]
        if missing:
            raise UserError(f"query {image!r}: concept {missing[0]} is not in the database")
        out.append([demo_of(db, k) for k in dict.fromkeys(keys)])
    return out


def wrong_demos(db: Database, queries: dict[str, list[str]], seed: int = 0) -> list[list[Demo]]:
    """For each query, len(concepts) database concepts that are not its ground truths (seeded, order-free)."""
    out = []
    for image, concepts in queries.items():
        truths = {(_lookup(db, c) or c).lower() for c in concepts}
        others = [k for k in db.concepts if k.lower() not in truths]
        if not others:
            raise UserError(f"query {image!r}: the database has no concept other than its ground truths for wrong-demo")
        others.sort(key=lambda k: hashlib.sha256(f"{seed}\0{image}\0{k}".encode()).hexdigest())
        out.append([demo_of(db, k) for k in others[: len(set(truths))]])
    return out


def default_top_k(queries: dict[str, list[str]]) -> int:
    """2 for single- and 2-concept sets, 4 when a query has more concepts (paper, section 4)."""
    return 4 if max(len(c) for c in queries.values()) > 2 else 2
