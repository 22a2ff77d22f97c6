"""Row checks of the Subjects200K reader: panels inside the composite, the known composite geometries, and the
fields the quality filters read (malformed values are bad input, not filtered rows)."""

from __future__ import annotations


def inside(box, size) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]


KNOWN_GEOMETRY = {
    (1056, 528): (
        "Yuanshi/Subjects200K collection_1/collection_2 (OminiControl's crops)",
        (8, 8, 520, 520),
        (528, 8, 1040, 520),
    ),
    (1024, 512): ("already-cropped pairs (two 512x512 panels, no gutter)", (0, 0, 512, 512), (512, 0, 1024, 512)),
}


def _score_ok(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 5)


def malformed(rec: dict, qa, scores: list, spec) -> tuple[str, str] | None:
    """(reason, detail) when a field the filters read has the wrong type or range, else None."""
    if qa is not None and not isinstance(qa, dict):
        return "quality_malformed", f"quality_assessment is a {type(qa).__name__}, not a struct: {qa!r}"
    if not all(_score_ok(v) for v in scores):
        return "quality_malformed", f"scores must be integers 0-5 or null: quality_assessment = {qa!r}"
    coll = rec.get("collection")
    if spec.collections is not None and coll is not None and not isinstance(coll, str):
        return "collection_malformed", f"collection is a {type(coll).__name__}: {coll!r}"
    desc = rec.get("description")
    valid = desc.get("description_valid") if isinstance(desc, dict) else None
    if spec.require_valid_description and valid is not None and not isinstance(valid, bool):
        return "description_malformed", f"description_valid is a {type(valid).__name__}: {valid!r}"
    return None
