"""Subjects200K reader: the HF dataset's Parquet shards, from a folder or a pinned Hub revision.

Each row is one composite image holding two panels of the same subject
(features: ``image`` {bytes, path}, ``collection``, ``quality_assessment``
{compositeStructure, objectConsistency, imageQuality} possibly null,
``description`` {item, description_0, description_1, category,
description_valid}; see ``shared/reference/sources.md`` 1.4).

Kept rows give one ``images`` row (``path`` = ``<shard>#row=<i>&col=image``,
size from the embedded image's header), one ``pairs`` row and two ``objects``
rows, the left and right panels (``spec.left_panel`` / ``spec.right_panel``,
category = the description's category, identity = the pair id). The pair id is
``<shard file stem>:<row>`` (e.g. ``train-00000-of-00032:17``).

Filters (quality, collection, valid description) are applied as OminiControl
does; every well-formed row they drop is a quarantine row with stage ``filter``
and reason ``no_quality`` (null scores) / ``low_quality`` /
``collection_filtered`` / ``description_invalid``. A row the filters cannot
judge (scores that are not numbers 0-5, a non-struct ``quality_assessment``, a
non-string collection or non-bool ``description_valid`` where a filter reads
it) is bad input: stage ``index``, reason ``quality_malformed`` /
``collection_malformed`` / ``description_malformed``, counted against
``quality.max_bad_fraction`` like every other broken row (stage ``index``).

Panel geometry: every composite must be ``spec.image_size`` (default 1056x528,
collection_1/2); another size is ``image_size_mismatch`` with the expected and
found sizes. When no row is kept and some mismatched, reading stops with one
line naming the size the files seem to have and a geometry for it
(``KNOWN_GEOMETRY``). ``image_size: null`` accepts any size holding both panels
(``panel_out_of_bounds`` otherwise).

Shards are read in batches of a few rows (never a whole shard of images).
For ``hub: ORG/NAME@REV`` the shards are fetched with
``huggingface_hub.snapshot_download`` and the commit that ``REV`` resolved to
is kept as ``SourceTables.revision`` (``ORG/NAME@<commit sha>``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import Field, model_validator

from curate import progress
from curate.errors import UserError
from curate.imageio import parquet_ref
from curate.plan.identity_pairs import SubjectsPairs
from curate.recipe.model import HUB_REF, Box, SourceSpecBase
from curate.sources.common import check_image_bytes, split_inside
from curate.sources.registry import SourceKind, register
from curate.sources.subjects200k_checks import KNOWN_GEOMETRY, inside, malformed
from curate.sources.subjects200k_shards import COLUMNS, location, open_shard, shard_root
from curate.sources.tables import SourceTables, from_rows, quarantine_row

CACHE_VERSION = 3  # 2: malformed rows are bad input; composite size checked; 3: path_outside_root
SCORES = ("compositeStructure", "objectConsistency", "imageQuality")
TEXTS = ("item", "category", "description_0", "description_1")
BATCH_ROWS = 32
_SHARD_SPLIT = re.compile(r"^([A-Za-z0-9_]+)-\d+-of-\d+$")


class Subjects200KSource(SourceSpecBase):
    kind: Literal["subjects200k"]
    path: Path | None = None  # local folder of Parquet shards
    hub: str | None = None  # "Yuanshi/Subjects200K@<revision>"
    min_quality: int = Field(5, ge=0, le=5)
    collections: list[str] | None = None  # None: every collection
    require_valid_description: bool = False
    # panel geometry (recipes/README.md "Subjects200K panel geometry"): every composite must be image_size
    # (None: any size that holds both panels); the defaults are collection_1/2's 1056x528 with OminiControl's crops
    image_size: tuple[int, int] | None = (1056, 528)
    left_panel: Box = (8, 8, 520, 520)
    right_panel: Box = (528, 8, 1040, 520)

    @model_validator(mode="after")
    def _onelocation(self):
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of 'path' or 'hub'")
        if self.hub is not None and (not HUB_REF.match(self.hub) or "@" not in self.hub):
            raise ValueError("'hub' must be ORG/NAME@REVISION (a pinned revision)")
        return self


def input_files(spec) -> list[Path]:
    """The shards; one whose symlinks lead outside the folder is left out (never opened; quarantined by the reader)."""
    folder, files, _ = location(spec)
    return split_inside(files, shard_root(folder))[0]


# ---------------------------------------------------------------- rows


class _Reader:
    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.images, self.objects, self.pairs, self.quarantine = [], [], [], []
        self.wrong_sizes: dict[tuple[int, int], int] = {}  # found size -> rows that are not spec.image_size
        for side in ("left_panel", "right_panel"):
            x1, y1, x2, y2 = getattr(spec, side)
            if not (x1 < x2 and y1 < y2):
                raise UserError(
                    f"subjects200k source {name!r}: {side} {tuple(getattr(spec, side))} must have x1 < x2 and y1 < y2"
                )
            if spec.image_size is not None and not inside(getattr(spec, side), spec.image_size):
                w, h = spec.image_size
                raise UserError(
                    f"subjects200k source {name!r}: {side} {tuple(getattr(spec, side))} does not fit in "
                    f"image_size {w}x{h}"
                )

    def reject(self, stage: str, record: str, reason: str, detail: str) -> None:
        self.quarantine.append(quarantine_row(self.name, stage, record, reason, detail))

    def filtered(self, pair_id: str, rec: dict) -> bool:
        """Apply the selection filters; quarantine and return True when the row is dropped.

        A well-formed row a filter rejects is stage ``filter`` (not bad input); a row the filters cannot
        judge because a field they read has the wrong type or range is stage ``index`` (bad input, counted
        against ``quality.max_bad_fraction``): ``quality_malformed``, ``collection_malformed``,
        ``description_malformed``.
        """
        spec, qa = self.spec, rec.get("quality_assessment")
        scores = [qa.get(k) if isinstance(qa, dict) else None for k in SCORES]
        bad = malformed(rec, qa, scores, spec)
        if bad:
            self.reject("index", pair_id, bad[0], bad[1][:200])
        elif any(s is None for s in scores):  # null (not assessed): OminiControl drops these rows
            self.reject("filter", pair_id, "no_quality", f"quality_assessment = {qa!r}"[:200])
        elif min(scores) < spec.min_quality:
            shown = ", ".join(f"{k}={s}" for k, s in zip(SCORES, scores))
            self.reject("filter", pair_id, "low_quality", f"{shown}; min_quality {spec.min_quality}")
        elif spec.collections is not None and rec.get("collection") not in spec.collections:
            self.reject(
                "filter",
                pair_id,
                "collection_filtered",
                f"collection {rec.get('collection')!r} not in {spec.collections}",
            )
        elif spec.require_valid_description and not (
            isinstance(rec.get("description"), dict) and rec["description"].get("description_valid") is True
        ):
            self.reject("filter", pair_id, "description_invalid", "description_valid is not true")
        else:
            return False
        return True

    def row(self, shard: Path, pair_id: str, r: int, rec: dict) -> bool:
        """Index one row; return True when it was kept."""
        if self.filtered(pair_id, rec):
            return False
        desc = rec.get("description")
        if not isinstance(desc, dict) or not all(isinstance(desc.get(k), str) and desc[k].strip() for k in TEXTS):
            missing = [
                k for k in TEXTS if not (isinstance(desc, dict) and isinstance(desc.get(k), str) and desc[k].strip())
            ]
            self.reject("index", pair_id, "description_missing", f"empty or missing: {', '.join(missing)}")
            return False
        size, reason = check_image_bytes(rec.get("image"), self.spec.verify_images, self.spec.image_size)
        if reason == "image_size_mismatch":
            (w, h), (ew, eh) = size, self.spec.image_size
            self.wrong_sizes[(w, h)] = self.wrong_sizes.get((w, h), 0) + 1
            self.reject(
                "index",
                pair_id,
                reason,
                f"{shard.name} row {r}: expected {ew}x{eh} (image_size of the panel geometry "
                f"{tuple(self.spec.left_panel)} {tuple(self.spec.right_panel)}), found {w}x{h}",
            )
            return False
        if reason:
            self.reject("index", pair_id, reason, f"{shard} row {r}")
            return False
        if size is not None:
            for side in ("left_panel", "right_panel"):
                if not inside(getattr(self.spec, side), size):
                    self.reject(
                        "index",
                        pair_id,
                        "panel_out_of_bounds",
                        f"{side} {tuple(getattr(self.spec, side))} outside {size[0]}x{size[1]}",
                    )
                    return False
        m = _SHARD_SPLIT.match(shard.stem)
        self.images.append(
            {
                "source": self.name,
                "image_id": pair_id,
                "path": parquet_ref(shard, r, "image"),
                "width": size[0] if size else None,
                "height": size[1] if size else None,
                "split": m.group(1) if m else "train",
            }
        )
        ids = {}
        for side in ("left", "right"):
            x1, y1, x2, y2 = (float(v) for v in getattr(self.spec, f"{side}_panel"))
            ids[side] = f"{pair_id}/{side}"
            self.objects.append(
                {
                    "source": self.name,
                    "image_id": pair_id,
                    "object_id": ids[side],
                    "category": desc["category"],
                    "bbox": [x1, y1, x2, y2],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": False,
                    "isfake": False,
                    "isreflected": False,
                    "identity": pair_id,
                }
            )
        self.pairs.append(
            {
                "source": self.name,
                "pair_id": pair_id,
                "image_id": pair_id,
                "item": desc["item"],
                "category": desc["category"],
                "description_0": desc["description_0"],
                "description_1": desc["description_1"],
                "collection": rec.get("collection"),
                "left_object_id": ids["left"],
                "right_object_id": ids["right"],
            }
        )
        return True

    def read(self) -> SourceTables:
        folder, files, revision = location(self.spec)
        files, escaped = split_inside(files, shard_root(folder))
        for shard, target in escaped:
            self.reject("index", shard.name, "path_outside_root", f"{shard} resolves to {target}, outside {folder}")
        opened = [(f, open_shard(f)) for f in files]
        total = sum(pf.metadata.num_rows for _, pf in opened)
        limit, kept = self.spec.limit, 0
        with progress.bar(f"Indexing {self.name} (Subjects200K)", total=total) as advance:
            for shard, pf in opened:
                if limit is not None and kept >= limit:
                    break
                r = 0
                try:
                    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS)):
                        for rec in batch.to_pylist():
                            if limit is not None and kept >= limit:
                                break
                            kept += self.row(shard, f"{shard.stem}:{r}", r, rec)
                            r += 1
                        advance(batch.num_rows)
                        if limit is not None and kept >= limit:
                            break
                except (OSError, pa.ArrowException) as exc:  # a damaged page or a truncated file
                    raise UserError(f"{shard}: cannot read row {r}: {' '.join(str(exc).split())[:120]}") from None
                pf.close()
        if not kept and self.wrong_sizes:
            raise UserError(self.geometry_message())
        st = SourceTables(
            source=self.name,
            kind="subjects200k",
            tables={
                "images": from_rows("images", self.images),
                "objects": from_rows("objects", self.objects),
                "pairs": from_rows("pairs", self.pairs),
                "quarantine": from_rows("quarantine", self.quarantine),
            },
        )
        st.revision = revision  # kept by curate.sources.index in its cache and the manifest
        return st

    def geometry_message(self) -> str:
        """One line: no row has the declared composite size; which size (and geometry) the files seem to have."""
        (w, h), n = max(self.wrong_sizes.items(), key=lambda kv: (kv[1], kv[0]))
        ew, eh = self.spec.image_size
        known = KNOWN_GEOMETRY.get((w, h))
        hint = (
            f"{known[0]}: image_size ({w}, {h}), left_panel {known[1]}, right_panel {known[2]}"
            if known
            else f"if the two panels fill the halves: image_size ({w}, {h}), left_panel (0, 0, {w // 2}, {h}), "
            f"right_panel ({w // 2}, 0, {w}, {h}); check one row"
        )
        return (
            f"subjects200k source {self.name!r}: no row has the declared panel geometry's size {ew}x{eh}; "
            f"the files seem to hold {w}x{h} composites ({n} of {sum(self.wrong_sizes.values())} mismatching rows); "
            f"set the source's geometry, e.g. {hint}"
        )


# composite size -> (what it is, left panel, right panel); see recipes/README.md "Subjects200K panel geometry"


def read(name: str, spec) -> SourceTables:
    """Read a Subjects200K source (see the module docstring)."""
    return _Reader(name, spec).read()


KIND = register(
    SourceKind(
        name="subjects200k",
        spec=Subjects200KSource,
        read=read,
        input_files=input_files,
        tasks=("oct", "ict_single"),
        pairs=SubjectsPairs,
        cache_version=CACHE_VERSION,
    )
)
