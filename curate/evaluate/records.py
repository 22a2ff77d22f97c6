"""Caption records and query files: the formats `repic caption` writes and `repic eval grounding` reads.

A caption file is a JSON list of records ``[image_path, [concept, ...], caption, prompt]``
(the RePIC / RAP evaluation format; trailing fields after the caption are kept but
not used by the metric). A query file is a JSON object ``{image_path: [concept, ...]}``.
Concept names are usually bracketed (``"<Anya>"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import UserError
from curate.fileio import atomic_write_json


@dataclass(frozen=True)
class CaptionRecord:
    image: str
    concepts: tuple[str, ...]
    caption: str
    prompt: str | None = None
    extra: tuple = field(default_factory=tuple)

    def to_json(self) -> list:
        return [
            self.image,
            list(self.concepts),
            self.caption,
            self.prompt if self.prompt is not None else "",
            *self.extra,
        ]


@dataclass(frozen=True)
class BadRecord:
    index: int
    reason: str


def _record_problem(row) -> str:
    if not isinstance(row, (list, tuple)):
        return f"expected a list [image_path, [concepts], caption, prompt], got {type(row).__name__}"
    if len(row) < 3:
        return f"expected at least 3 fields [image_path, [concepts], caption], got {len(row)}"
    image, concepts, caption = row[0], row[1], row[2]
    if not isinstance(image, str):
        return "image_path is not a string"
    if not isinstance(concepts, list):
        return "concepts is not a list"
    if not concepts:
        return "concepts list is empty"
    if not all(isinstance(c, str) and c.strip() for c in concepts):
        return "a concept name is not a non-empty string"
    if not isinstance(caption, str):
        return "caption is not a string"
    if len(row) > 3 and row[3] is not None and not isinstance(row[3], str):
        return "prompt is not a string"
    return ""


def parse_records(data) -> tuple[list[CaptionRecord], list[BadRecord]]:
    """Split a decoded caption file into valid records and bad ones (with their index and reason)."""
    if not isinstance(data, list):
        raise UserError(f"a caption file must be a JSON list of records, got a JSON {type(data).__name__}")
    good: list[CaptionRecord] = []
    bad: list[BadRecord] = []
    for i, row in enumerate(data):
        problem = _record_problem(row)
        if problem:
            bad.append(BadRecord(i, problem))
            continue
        prompt = row[3] if len(row) > 3 else None
        good.append(CaptionRecord(row[0], tuple(row[1]), row[2], prompt, tuple(row[4:])))
    return good, bad


def read_json(path: Path, what: str):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise UserError(f"{path}: not a usable {what}: JSON values nested too deeply") from None


def load_records(path: Path, *, skip_bad: bool = False) -> tuple[list[CaptionRecord], list[BadRecord]]:
    """Read a caption file. Malformed records raise a one-line UserError unless ``skip_bad``."""
    records, bad = parse_records(read_json(path, "caption file"))
    if bad and not skip_bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(
            f"{path}: record {first.index}: {first.reason}{more}; pass --skip-bad to skip malformed records"
        )
    return records, bad


def write_records(path: Path, records: list[CaptionRecord]) -> None:
    atomic_write_json(path, [r.to_json() for r in records], indent=4)


def load_queries(path: Path) -> dict[str, list[str]]:
    """Read a query file ``{image_path: [concepts]}`` (insertion order kept)."""
    data = read_json(path, "query file")
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: a query file must be a JSON object {{image_path: [concepts]}}, got a JSON {type(data).__name__}"
        )
    out: dict[str, list[str]] = {}
    for image, concepts in data.items():
        if (
            not isinstance(concepts, list)
            or not concepts
            or not all(isinstance(c, str) and c.strip() for c in concepts)
        ):
            raise UserError(f"{path}: query {image!r}: concepts must be a non-empty list of names")
        out[image] = list(concepts)
    if not out:
        raise UserError(f"{path}: the query file is empty")
    return out
