"""RefCOCO-family Parquet shards from the Hugging Face Hub layouts (``layout: hf``).

Two layouts exist and are told apart by their columns (``shared/reference/sources.md`` 1.5):

* **lmms-lab** (``lmms-lab/RefCOCO``, ``RefCOCOplus``, ``RefCOCOg``): one row per
  annotation with the image embedded (``question_id``, ``image``, ``answer``:
  the expressions, ``bbox`` [x, y, w, h], ``iscrowd``, ``file_name``). The split
  is the shard's split name; ``question_id`` serves as ref and object id; the
  COCO image id is read from ``file_name``. No category names. These copies
  have no train split (val/test only: evaluation data); a source asking for
  splits they lack stops with a UserError naming the splits they have.
* **jxu124** (``jxu124/refcoco`` ...): one row per ref, no images
  (``ref_id``, ``ann_id``, ``image_id``, ``split``, ``sentences``, ``bbox``,
  ``raw_anns``, ``raw_image_info``, ``image_path``). ``bbox`` is absolute
  corners ``[x1, y1, x2, y2]`` (not COCO's xywh); when the row has ``raw_anns``
  (the COCO annotation as JSON) its ``[x, y, w, h]`` box must agree
  (``x2 = x + w``, ``y2 = y + h``, within 0.01 px), else the ref is quarantined
  as ``bbox_mismatch`` (an unparsable ``raw_anns`` is ``raw_anns_malformed``);
  revisions without a ``raw_anns`` column are read as corners unchecked. The
  per-row ``split`` wins over the shard's split name (the HF ``test`` split of
  jxu124/refcoco holds testA rows). Images come from the images folder (see
  :func:`curate.sources.refcoco.image_folder`) by the COCO file name.

The shard's split is taken from its file name (``val-00000-of-00004.parquet``)
or, when the file name has none (the Hub's auto-converted layout
``default/val/0000.parquet``), from its folder (``partial-`` prefixes dropped).

Shards live under ``<root>/<dataset>/`` (``refcoco``, ``refcoco+`` or
``refcocoplus``, ``refcocog``), any depth; a source with one dataset may keep
them directly under ``<root>``. ``split_by`` of the rows is ``hf``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from curate import progress
from curate.errors import UserError
from curate.imageio import parquet_ref
from curate.sources.common import check_image_bytes, safe_join, split_inside, xywh_to_xyxy
from curate.sources.refcoco import Collector, coco_file_name, image_folder

LMMS = ("question_id", "image", "answer", "bbox", "file_name")
JXU = ("ref_id", "ann_id", "image_id", "split", "sentences", "bbox")
ALIASES = {
    "refcoco": ("refcoco", "RefCOCO"),
    "refcoco+": ("refcoco+", "refcocoplus", "RefCOCOplus"),
    "refcocog": ("refcocog", "RefCOCOg"),
}
BATCH_ROWS = 64
_SHARD = re.compile(r"^([A-Za-z][A-Za-z0-9_]*?)-\d+-of-\d+$")
_COCO_ID = re.compile(r"COCO_[a-z]+\d{4}_(\d{12})")


def dataset_folders(spec) -> list[tuple[str, Path]]:
    out = []
    for ds in spec.datasets:
        found = next((spec.root / a for a in ALIASES[ds] if (spec.root / a).is_dir()), None)
        if found is None and len(spec.datasets) == 1:
            found = spec.root
        if found is None:
            raise UserError(f"{spec.root}: no folder for {ds} (looked for {', '.join(ALIASES[ds])})")
        out.append((ds, found))
    return out


def shard_files(folder: Path) -> list[Path]:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise UserError(f"{folder}: no Parquet shards")
    return files


def input_files(spec) -> list[Path]:
    """The shards; one whose symlinks lead outside ``root`` is left out (never opened; quarantined by the reader)."""
    return [f for _, folder in dataset_folders(spec) for f in split_inside(shard_files(folder), spec.root)[0]]


def shard_split(path: Path, dataset_folder: Path | None = None) -> str | None:
    """The HF split name in ``<split>-00000-of-00004.parquet`` (``validation`` is ``val``).

    A file named by number only (``default/val/0000.parquet``, the Hub's auto-converted layout) takes
    the split from its folder (``partial-train`` is ``train``), unless that folder is the dataset folder.
    """
    m = _SHARD.match(path.stem)
    split = m.group(1) if m else None
    if split is None and path.stem.isdigit() and path.parent != dataset_folder:
        split = path.parent.name.removeprefix("partial-") or None
    return "val" if split == "validation" else split


def _open(path: Path) -> tuple[pq.ParquetFile, str]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:120]})") from None
    names = set(pf.schema_arrow.names)
    if set(JXU) <= names:
        return pf, "jxu124"
    if set(LMMS) <= names:
        return pf, "lmms"
    raise UserError(
        f"{path}: unknown RefCOCO Parquet layout: columns {sorted(names)} match neither "
        f"lmms-lab ({', '.join(LMMS)}) nor jxu124 ({', '.join(JXU)})"
    )


def _json(text) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        value = None
    return value if isinstance(value, dict) else {}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _area(box, given) -> float:
    return (
        float(given)
        if isinstance(given, (int, float)) and not isinstance(given, bool)
        else (box[2] - box[0]) * (box[3] - box[1])
    )


def _lmms_row(c: Collector, dataset: str, shard: Path, r: int, rec: dict, split: str | None) -> None:
    qid = rec.get("question_id")
    ref_id = str(qid) if qid is not None else f"{shard.stem}#{r}"
    if split is None:
        c.bad(dataset, ref_id, "split_unknown", f"{shard.name}: no split in the shard name")
        return
    if not c.wants(split):
        return
    if qid is None or not isinstance(rec.get("bbox"), list):
        c.bad(dataset, ref_id, "ref_malformed", f"{shard.name} row {r}: question_id or bbox missing")
        return
    if not c.new_ref(dataset, ref_id):
        return
    m = _COCO_ID.search(rec.get("file_name") or "")
    image_id = str(int(m.group(1))) if m else f"{dataset}:{shard.stem}:{r}"
    if c.full(image_id):
        return
    size, reason = c.image_checked(
        dataset, image_id, f"{shard.name} row {r}", lambda: check_image_bytes(rec.get("image"), c.spec.verify_images)
    )
    if reason:
        c.bad(dataset, ref_id, reason, f"image {image_id} ({shard.name} row {r})")
        return
    box, reason = xywh_to_xyxy(rec["bbox"], *(size or (None, None)))
    if box is None:
        c.bad(dataset, ref_id, reason, f"bbox {rec['bbox']!r}"[:160])
        return
    c.add(
        dataset=dataset,
        split_by="hf",
        ref_id=ref_id,
        split=split,
        image={
            "image_id": image_id,
            "path": parquet_ref(shard, r, "image"),
            "width": size[0] if size else None,
            "height": size[1] if size else None,
        },
        obj={
            "object_id": ref_id,
            "category": None,
            "bbox": list(box),
            "area": _area(box, None),
            "iscrowd": bool(rec.get("iscrowd") or 0),
        },
        sentences=c.sentences(dataset, ref_id, rec.get("answer")),
    )


def _corners_as_xywh(bbox):
    """jxu124's ``[x1, y1, x2, y2]`` as ``[x, y, w, h]`` (anything else unchanged, for the box checks to name)."""
    if isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox):
        x1, y1, x2, y2 = (float(v) for v in bbox)
        return [x1, y1, x2 - x1, y2 - y1]
    return bbox


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


BOX_TOLERANCE = 0.01  # pixels: float rounding only; any real disagreement is a quarantined ref


def _raw_anns_problem(box, text, ann: dict) -> tuple[str, str] | None:
    """(reason, detail) when the row's ``raw_anns`` COCO box cannot be read or disagrees with the corners ``box``."""
    coco = ann.get("bbox")
    if not ann or not (isinstance(coco, list) and len(coco) == 4 and all(_is_number(v) for v in coco)):
        return "raw_anns_malformed", f"raw_anns has no COCO [x, y, w, h] bbox: {text!r}"
    x, y, w, h = (float(v) for v in coco)
    if any(abs(a - b) > BOX_TOLERANCE for a, b in zip(box, (x, y, x + w, y + h))):
        return (
            "bbox_mismatch",
            f"bbox corners {[round(v, 2) for v in box]} disagree with raw_anns bbox [x, y, w, h] {coco} "
            f"(corners {[round(v, 2) for v in (x, y, x + w, y + h)]})",
        )
    return None


def _jxu_row(c: Collector, dataset: str, folder: Path, rec: dict, hf_split: str | None, has_raw_anns: bool) -> None:
    ref_id = str(rec.get("ref_id"))
    split = rec["split"] if isinstance(rec.get("split"), str) else hf_split  # the per-row split wins
    if not c.wants(split):
        return
    wrong = [k for k in ("ref_id", "ann_id", "image_id") if not _is_int(rec.get(k))]
    if wrong or not isinstance(rec.get("bbox"), list):
        c.bad(dataset, ref_id, "ref_malformed", f"missing or wrong type: {', '.join(wrong) or 'bbox'}")
        return
    if not c.new_ref(dataset, ref_id):
        return
    image_id = str(rec["image_id"])
    if c.full(image_id):
        return
    info, ann = _json(rec.get("raw_image_info")), _json(rec.get("raw_anns"))
    name = info.get("file_name")
    if not isinstance(name, str):
        name = (
            PurePosixPath(rec["image_path"]).name
            if isinstance(rec.get("image_path"), str)
            else coco_file_name(rec["image_id"])
        )
    path = safe_join(folder, name)
    if path is None:
        c.bad(dataset, ref_id, "path_traversal", f"file_name {name!r}")
        return
    size, reason = c.check_image(dataset, image_id, path)
    if reason:
        c.bad(dataset, ref_id, reason, f"image {image_id}: {path}")
        return
    width, height = size or (info.get("width"), info.get("height"))
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
        width = height = None
    box, reason = xywh_to_xyxy(_corners_as_xywh(rec["bbox"]), width, height)
    if box is None:
        c.bad(dataset, ref_id, reason, f"bbox {rec['bbox']!r} (corners)"[:160])
        return
    if has_raw_anns:
        problem = _raw_anns_problem(box, rec.get("raw_anns"), ann)
        if problem:
            c.bad(dataset, ref_id, problem[0], problem[1][:200])
            return
    c.add(
        dataset=dataset,
        split_by="hf",
        ref_id=ref_id,
        split=split,
        image={"image_id": image_id, "path": str(path), "width": width, "height": height},
        obj={
            "object_id": str(rec["ann_id"]),
            "category": None,
            "bbox": list(box),
            "area": _area(box, ann.get("area")),
            "iscrowd": bool(ann.get("iscrowd", 0)),
        },
        sentences=c.sentences(dataset, ref_id, rec.get("sentences")),
    )


def read_into(c: Collector) -> None:
    """Read every shard of the source's datasets into ``c``."""
    folder = image_folder(c.spec)
    for dataset, ds_folder in dataset_folders(c.spec):
        inside, escaped = split_inside(shard_files(ds_folder), c.spec.root)
        for shard, target in escaped:
            c.bad(dataset, shard.name, "path_outside_root", f"{shard} resolves to {target}, outside {c.spec.root}")
        opened = [(f, *_open(f)) for f in inside]
        if c.spec.verify_images != "none" and not folder.is_dir() and any(kind == "jxu124" for _, _, kind in opened):
            raise UserError(
                f"{folder}: images folder not found (the jxu124 layout has no images; set 'images' to the COCO train2014 folder)"
            )
        total = sum(pf.metadata.num_rows for _, pf, _ in opened)
        with progress.bar(f"Indexing {c.name} ({dataset}, HF Parquet)", total=total) as advance:
            for shard, pf, kind in opened:
                split, r = shard_split(shard, ds_folder), 0
                cols = (
                    list(JXU) + [k for k in ("raw_anns", "raw_image_info", "image_path") if k in pf.schema_arrow.names]
                    if kind == "jxu124"
                    else list(LMMS) + (["iscrowd"] if "iscrowd" in pf.schema_arrow.names else [])
                )
                try:
                    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=cols):
                        for rec in batch.to_pylist():
                            if kind == "jxu124":
                                _jxu_row(c, dataset, folder, rec, split, "raw_anns" in cols)
                            else:
                                _lmms_row(c, dataset, shard, r, rec, split)
                            r += 1
                        advance(batch.num_rows)
                except (OSError, pa.ArrowException) as exc:
                    raise UserError(f"{shard}: cannot read row {r}: {' '.join(str(exc).split())[:120]}") from None
