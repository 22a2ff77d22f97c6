"""Normalized source tables: the contract between source readers and builders.

Every reader returns a :class:`SourceTables`. Column names and dtypes are fixed
here; readers must produce exactly these columns (``conform`` enforces order and
dtype) so that builders never need to know which dataset a row came from.

Image references (``images.path``) are strings that :func:`curate.imageio.open_image`
can open: a filesystem path, or ``<file.parquet>#row=<i>&col=<name>`` for images
embedded in a Parquet shard (Subjects200K, HF RefCOCO layouts).

Boxes are absolute pixel coordinates ``[x1, y1, x2, y2]`` (float64) in the
source image's own frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

BBOX = pl.Array(pl.Float64, 4)

IMAGES_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,  # recipe source name (e.g. "coco")
    "image_id": pl.String,  # unique within the source
    "path": pl.String,  # image reference, see module docstring
    "width": pl.Int32,
    "height": pl.Int32,
    "split": pl.String,  # train / val / test / testA ... (null when unknown)
}

OBJECTS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "image_id": pl.String,
    "object_id": pl.String,  # unique within the source
    "category": pl.String,  # category name exactly as in the source (typos kept)
    "bbox": BBOX,  # absolute [x1, y1, x2, y2]
    "area": pl.Float64,  # annotation area when given, else box area
    "iscrowd": pl.Boolean,
    "isfake": pl.Boolean,  # Objects365 only (False elsewhere)
    "isreflected": pl.Boolean,  # Objects365 only (False elsewhere)
    "identity": pl.String,  # instance identity when the source has one (CelebA person, Subjects200K pair); else null
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "stage": pl.String,  # index / crops / tasks / mixture ...
    "record_id": pl.String,  # id of the offending record (image id, ann id, line number ...)
    "reason": pl.String,  # short machine-friendly reason, e.g. "bbox_out_of_bounds"
    "detail": pl.String,  # human detail (file, values)
}

# CelebA: one row per image with its identity (the reader adds an ``attributes`` table of set flags).
IDENTITIES_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "image_id": pl.String,
    "identity": pl.String,
}

# Subjects200K: one row per composite pair image.
PAIRS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "pair_id": pl.String,
    "image_id": pl.String,  # the composite image (in ``images``)
    "item": pl.String,
    "category": pl.String,
    "description_0": pl.String,
    "description_1": pl.String,
    "collection": pl.String,
    "left_object_id": pl.String,  # panel boxes live in ``objects``
    "right_object_id": pl.String,
}

# RefCOCO / RefCOCO+ / RefCOCOg: one row per referring expression.
REFERRING_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "dataset": pl.String,  # refcoco / refcoco+ / refcocog
    "split_by": pl.String,  # unc / umd / google / hf
    "ref_id": pl.String,
    "sent_id": pl.String,
    "image_id": pl.String,
    "object_id": pl.String,  # COCO ann id (may be absent from ``objects``)
    "category": pl.String,
    "expression": pl.String,
    "bbox": BBOX,
    "split": pl.String,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "images": IMAGES_SCHEMA,
    "objects": OBJECTS_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "identities": IDENTITIES_SCHEMA,
    "pairs": PAIRS_SCHEMA,
    "referring": REFERRING_SCHEMA,
}


def empty(table: str) -> pl.DataFrame:
    """An empty frame with the schema of ``table``."""
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``df`` to the schema of ``table`` (missing columns become nulls)."""
    schema = SCHEMAS[table]
    cols = []
    for name, dtype in schema.items():
        if name in df.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(cols)


def from_rows(table: str, rows: list[dict]) -> pl.DataFrame:
    """Build a conformed frame from a list of dict rows."""
    if not rows:
        return empty(table)
    return conform(table, pl.DataFrame(rows, schema_overrides={k: v for k, v in SCHEMAS[table].items()}, strict=False))


@dataclass
class SourceTables:
    """What one reader returns for one recipe source."""

    source: str
    kind: str
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    revision: str | None = None  # resolved "ORG/NAME@<40-hex commit>" for Hub sources

    def get(self, name: str) -> pl.DataFrame:
        return self.tables.get(name, empty(name))

    @property
    def images(self) -> pl.DataFrame:
        return self.get("images")

    @property
    def objects(self) -> pl.DataFrame:
        return self.get("objects")

    @property
    def quarantine(self) -> pl.DataFrame:
        return self.get("quarantine")

    def summary(self) -> dict[str, int]:
        """Row counts per table plus quarantine counts per reason."""
        out = {name: df.height for name, df in sorted(self.tables.items())}
        q = self.quarantine
        if q.height:
            for reason, n in q.group_by("reason").len().sort("reason").iter_rows():
                out[f"quarantine:{reason}"] = n
        return out


def quarantine_row(source: str, stage: str, record_id: object, reason: str, detail: str = "") -> dict:
    """One quarantine row (use with :func:`from_rows`)."""
    return {"source": source, "stage": stage, "record_id": str(record_id), "reason": reason, "detail": detail}
