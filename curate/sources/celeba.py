"""CelebA reader: identities, partitions, face boxes and attributes from the original text files.

Files under ``spec.root`` (see ``shared/reference/sources.md`` 1.3):
``identity_CelebA.txt`` and ``list_eval_partition.txt`` (required),
``list_bbox_celeba.txt`` (required for ``images: wild``) and
``list_attr_celeba.txt`` (optional; gives the ``attributes`` table).

The identity list is the catalogue: an image named in another file but not
there is quarantined as ``image_unknown``. ``image_id`` is the file stem
(``000001``), so the aligned PNG release (``000001.png``) is found too.

* ``images: aligned``: the 178x218 aligned crops are whole-face images, so no
  ``objects`` rows (the bbox file's boxes are in the in-the-wild frame).
* ``images: wild``: images from ``wild_dir`` with one ``objects`` row each,
  category ``face``, the face box from ``list_bbox_celeba.txt`` and the
  person's identity. An image without a usable box is quarantined whole.

Tables: ``images``, ``identities`` (source, image_id, identity), ``objects``
(wild only), ``attributes`` (source, image_id, attributes: the names of the
attributes set to 1) and ``quarantine``. Images outside ``spec.splits`` are
skipped, not quarantined: that is a selection, not a bad record. Quarantine
``record_id`` is the image name as written in the file (the file name for a
count mismatch); the detail gives ``file:line``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import polars as pl

from curate import imageio, progress
from curate.errors import UserError
from curate.plan.identity_pairs import CelebAPairs
from curate.recipe.model import SourceSpecBase
from curate.sources.common import check_image, safe_join, xywh_to_xyxy
from curate.sources.registry import SourceKind, register
from curate.sources.tables import SCHEMAS, SourceTables, conform, from_rows, quarantine_row
from curate.sources.textfiles import Listing, parse_int, read_listing

CACHE_VERSION = 2  # 2: path_outside_root (symlinks leading out of the source folder)
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_FILE = "list_eval_partition.txt"
BBOX_FILE = "list_bbox_celeba.txt"
ATTR_FILE = "list_attr_celeba.txt"
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
ALIGNED_SIZE = (178, 218)
ATTRIBUTES_SCHEMA = {"source": pl.String, "image_id": pl.String, "attributes": pl.List(pl.String)}


class CelebASource(SourceSpecBase):
    kind: Literal["celeba"]
    root: Path  # holds identity_CelebA.txt, list_eval_partition.txt, list_bbox_celeba.txt, ...
    images: Literal["aligned", "wild"] = "aligned"
    aligned_dir: str = "img_align_celeba"
    wild_dir: str = "img_celeba"
    splits: list[str] = ["train"]


def input_files(spec) -> list[Path]:
    names = [IDENTITY_FILE, PARTITION_FILE, ATTR_FILE] + ([BBOX_FILE] if spec.images == "wild" else [])
    return [spec.root / n for n in names]


class _Reader:
    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.quarantine: list[dict] = []
        self.rejected: set[str] = set()  # images already quarantined for a bad value in some file

    def bad(self, record, reason: str, detail: str = "") -> None:
        self.quarantine.append(quarantine_row(self.name, "index", record, reason, detail))

    def listing(self, filename: str, ncols: int | None, *, counted: bool) -> Listing:
        lst = read_listing(self.spec.root / filename, ncols, counted=counted)
        for lineno, first, problem in lst.malformed:
            self.bad(first, "malformed_line", f"{filename}:{lineno}: {problem}")
            self.rejected.add(first)
        if (problem := lst.count_problem()) is not None:
            self.bad(filename, "count_mismatch", problem)
        return lst

    def keyed(self, lst: Listing, known: dict | None, parse) -> dict[str, object]:
        """name -> parse(values) for each row; duplicates, unknown images and bad values are quarantined."""
        fname = lst.path.name
        out: dict[str, object] = {}
        for lineno, image, values in lst.rows:
            where = f"{fname}:{lineno}"
            if image in self.rejected:
                continue  # already quarantined for a bad line or value elsewhere
            if image in out:
                self.bad(image, "image_id_duplicate", f"{where}: listed again")
            elif known is not None and image not in known:
                self.bad(image, "image_unknown", f"{where}: not in {IDENTITY_FILE}")
            else:
                value, reason = parse(values)
                if reason:
                    self.bad(image, reason, f"{where}: {' '.join(values)[:120]}")
                    self.rejected.add(image)
                else:
                    out[image] = value
        return out

    def read(self) -> SourceTables:
        spec = self.spec
        unknown = sorted(set(spec.splits) - set(PARTITIONS.values()))
        if unknown:
            raise UserError(
                f"celeba source {self.name!r}: unknown split(s) {', '.join(unknown)} (CelebA has train, val, test)"
            )
        identities = self.keyed(self.listing(IDENTITY_FILE, 1, counted=False), None, _parse_identity)
        splits = self.keyed(self.listing(PARTITION_FILE, 1, counted=False), identities, _parse_partition)
        boxes = (
            self.keyed(self.listing(BBOX_FILE, 4, counted=True), identities, _parse_box)
            if spec.images == "wild"
            else {}
        )
        attrs = None
        if (spec.root / ATTR_FILE).is_file():
            lst = self.listing(ATTR_FILE, None, counted=True)
            attrs = self.keyed(lst, identities, lambda v: _parse_attrs(lst.header, v))

        folder = spec.root / (spec.aligned_dir if spec.images == "aligned" else spec.wild_dir)
        roots = imageio.real_roots([spec.root])
        img = {k: [] for k in ("image_id", "path", "width", "height", "split", "identity")}
        obj = {k: [] for k in ("image_id", "x1", "y1", "x2", "y2", "area", "identity")}
        attr = {"image_id": [], "attributes": []}
        for image, identity in progress.track(list(identities.items()), f"Indexing {self.name} (CelebA)"):
            if spec.limit is not None and len(img["image_id"]) >= spec.limit:
                break
            if image in self.rejected:
                continue
            split = splits.get(image)
            if split is None:
                self.bad(image, "no_partition", f"{image} is not in {PARTITION_FILE}")
                continue
            if split not in spec.splits:
                continue
            path = self.image_path(folder, image)
            if path is None:
                continue
            size, reason = check_image(path, spec.verify_images, roots=roots)
            if reason:
                outside = f" resolves to {imageio.outside(path, roots)}, outside {roots[0]}"
                self.bad(image, reason, path + (outside if reason == "path_outside_root" else ""))
                continue
            if size is None and spec.images == "aligned":
                size = ALIGNED_SIZE
            image_id = image.rsplit(".", 1)[0]
            if spec.images == "wild":
                raw = boxes.get(image)
                if raw is None:
                    self.bad(image, "bbox_missing", f"{image} is not in {BBOX_FILE}")
                    continue
                box, reason = xywh_to_xyxy(list(raw), *(size or (None, None)))
                if box is None:
                    self.bad(image, reason, f"{image}: x_1 y_1 width height = {list(raw)}, image size {size}")
                    continue
                for k, v in zip(
                    ("image_id", "x1", "y1", "x2", "y2", "area", "identity"),
                    (image_id, *box, float(raw[2] * raw[3]), identity),
                ):
                    obj[k].append(v)
            for k, v in (
                ("image_id", image_id),
                ("path", path),
                ("width", size[0] if size else None),
                ("height", size[1] if size else None),
                ("split", split),
                ("identity", identity),
            ):
                img[k].append(v)
            if attrs is not None and image in attrs:
                attr["image_id"].append(image_id)
                attr["attributes"].append(attrs[image])

        tables = {
            "images": self.frame("images", img),
            "identities": self.frame("identities", {"image_id": img["image_id"], "identity": img["identity"]}),
            "quarantine": from_rows("quarantine", self.quarantine),
        }
        if spec.images == "wild":
            corners = pl.DataFrame({k: pl.Series(obj.pop(k), dtype=pl.Float64) for k in ("x1", "y1", "x2", "y2")})
            bbox = corners.select(pl.concat_list(pl.all()).list.to_array(4)).to_series().alias("bbox")
            tables["objects"] = self.frame(
                "objects",
                {**obj, "object_id": obj["image_id"]},
                category="face",
                iscrowd=False,
                isfake=False,
                isreflected=False,
            ).with_columns(bbox=bbox)
        if attrs is not None:
            joined = pl.Series("attributes", attr["attributes"], dtype=pl.String)
            tables["attributes"] = pl.DataFrame({"image_id": pl.Series(attr["image_id"], dtype=pl.String)}).select(
                source=pl.lit(self.name),
                image_id=pl.col("image_id"),
                attributes=joined.str.split(" ").list.eval(pl.element().filter(pl.element() != "")),
            )
            tables["attributes"] = tables["attributes"].cast(ATTRIBUTES_SCHEMA)
        return SourceTables(source=self.name, kind="celeba", tables=tables)

    def frame(self, table: str, cols: dict[str, list], **constants) -> pl.DataFrame:
        """A conformed table from column lists (much faster than row dicts at CelebA's 200k images)."""
        schema = SCHEMAS[table]
        df = pl.DataFrame([pl.Series(k, v, dtype=schema[k]) for k, v in cols.items() if k in schema])
        lits = {"source": self.name, **constants}
        return conform(table, df.with_columns(**{k: pl.lit(v, dtype=schema[k]) for k, v in lits.items()}))

    def image_path(self, folder: Path, image: str) -> str | None:
        if "/" in image or "\\" in image or image.startswith(".."):
            path = safe_join(folder, image)
            if path is None:
                self.bad(image, "path_traversal", f"{image!r} escapes {folder}")
                return None
            path = str(path)
        else:
            path = f"{folder}{os.sep}{image}"  # the common case, without building Path objects
        if self.spec.images == "aligned" and self.spec.verify_images != "none" and not os.path.exists(path):
            png = path.rsplit(".", 1)[0] + ".png"  # img_align_celeba_png release
            if os.path.exists(png):
                return png
        return path


def _parse_identity(values: list[str]):
    n = parse_int(values[0])
    if n is None or n <= 0:
        return None, "identity_invalid"
    return str(n), ""


def _parse_partition(values: list[str]):
    split = PARTITIONS.get(values[0])
    return (split, "") if split else (None, "partition_invalid")


def _parse_box(values: list[str]):
    nums = [parse_int(v) for v in values]
    if any(n is None for n in nums):
        return None, "bbox_malformed"
    return tuple(nums), ""


def _parse_attrs(names: list[str], values: list[str]):
    """The names of the attributes set to 1, space-joined (split into a list column at the end)."""
    if not set(values) <= {"1", "-1"}:
        return None, "attribute_invalid"
    return " ".join([n for n, v in zip(names, values) if v == "1"]), ""


def read(name: str, spec) -> SourceTables:
    """Read a CelebA source (see the module docstring)."""
    return _Reader(name, spec).read()


KIND = register(
    SourceKind(
        name="celeba",
        spec=CelebASource,
        read=read,
        input_files=input_files,
        tasks=("oct", "ict_single"),
        pairs=CelebAPairs,
        cache_version=CACHE_VERSION,
    )
)
