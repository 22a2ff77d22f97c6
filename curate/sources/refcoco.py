"""RefCOCO / RefCOCO+ / RefCOCOg reader (referring expressions with their boxes).

``layout: pickle`` (the original release, ``shared/reference/sources.md`` 1.5)::

    <root>/<dataset>/refs(<split_by>).p   # list of refs, read by curate.sources.safe_pickle
    <root>/<dataset>/instances.json       # COCO-2014-style images/annotations/categories

The box of a ref is its annotation's COCO ``[x, y, w, h]`` (stored as xyxy).
Image paths are ``<images folder>/<file_name of the image in instances.json>``
(``COCO_train2014_<12-digit id>.jpg``; that name is used when the entry has
none); the folder is ``spec.images``, else ``<root>/images/train2014``, else
``<root>/images/mscoco/images/train2014`` (the original code's layout).

``layout: hf`` (Parquet shards, lmms-lab and jxu124 layouts) is read by
:mod:`curate.sources.refcoco_hf`.

Tables: ``referring`` (one row per sentence, expression = the normalised
``sent``), ``images`` and ``objects`` for the referred images and
annotations (COCO ids, so the three datasets share rows), and ``quarantine``.
Splits come from each ref; ``spec.splits`` entry ``test`` also selects
``testA``/``testB``/``testC``. Refs outside the wanted splits are skipped.
``spec.limit`` caps the number of distinct images.
"""

from __future__ import annotations

import json
from pathlib import Path

from curate import progress
from curate.errors import UserError
from curate.sources import safe_pickle
from curate.sources.common import check_image, safe_join, xywh_to_xyxy
from curate.tables import SourceTables, from_rows, quarantine_row

CACHE_VERSION = 1


def wants_split(split: str | None, wanted: list[str]) -> bool:
    """``split`` is selected by ``wanted``; ``test`` selects every ``test*`` split."""
    return isinstance(split, str) and (split in wanted or ("test" in wanted and split.startswith("test")))


def image_folder(spec) -> Path:
    if spec.images is not None:
        return spec.images
    for cand in (spec.root / "images" / "train2014", spec.root / "images" / "mscoco" / "images" / "train2014"):
        if cand.is_dir():
            return cand
    return spec.root / "images" / "train2014"


def coco_file_name(image_id) -> str:
    return f"COCO_train2014_{int(image_id):012d}.jpg"


class Collector:
    """Accumulates the tables of one RefCOCO source and enforces ids, limits and sentence checks."""

    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.images: dict[str, dict] = {}
        self.objects: dict[str, dict] = {}
        self.referring: list[dict] = []
        self.quarantine: list[dict] = []
        self.refs_seen: set[tuple[str, str]] = set()
        self.sents_seen: set[tuple[str, str]] = set()
        self.checked: dict[str, tuple] = {}

    def bad(self, record, reason: str, detail: str = "") -> None:
        self.quarantine.append(quarantine_row(self.name, "index", record, reason, detail))

    def full(self, image_id: str) -> bool:
        """The image limit is reached and ``image_id`` is not already in."""
        return self.spec.limit is not None and len(self.images) >= self.spec.limit and image_id not in self.images

    def new_ref(self, dataset: str, ref_id: str, record: str) -> bool:
        if (dataset, ref_id) in self.refs_seen:
            self.bad(record, "duplicate_id", f"ref_id {ref_id} appears again in {dataset}")
            return False
        self.refs_seen.add((dataset, ref_id))
        return True

    def check_file(self, image_id: str, path: Path) -> tuple[tuple[int, int] | None, str]:
        """check_image once per image."""
        if image_id not in self.checked:
            self.checked[image_id] = check_image(path, self.spec.verify_images)
        return self.checked[image_id]

    def sentences(self, dataset: str, ref_id: str, raw) -> list[tuple[str, str]]:
        """Valid (sent_id, expression) pairs of a ref's sentence list; the others are quarantined."""
        record = f"{dataset}:{ref_id}"
        if not isinstance(raw, list):
            self.bad(record, "ref_malformed", f"sentences is {type(raw).__name__}, not a list")
            return []
        if not raw:
            self.bad(record, "no_expression", "the ref has no sentences")
            return []
        out = []
        for k, s in enumerate(raw):
            if isinstance(s, str):  # HF layouts with bare strings
                sid, text = f"{ref_id}:{k}", s
            elif isinstance(s, dict) and isinstance(s.get("sent_id"), int) and not isinstance(s.get("sent_id"), bool):
                sid, text = str(s["sent_id"]), s.get("sent") if isinstance(s.get("sent"), str) else s.get("raw")
            else:
                self.bad(f"{record}:{k}", "sentence_malformed", repr(s)[:120])
                continue
            if not isinstance(text, str) or not text.strip():
                self.bad(f"{record}:{sid}", "empty_expression", repr(text)[:120])
            elif (dataset, sid) in self.sents_seen:
                self.bad(f"{record}:{sid}", "duplicate_id", f"sent_id {sid} appears again in {dataset}")
            else:
                self.sents_seen.add((dataset, sid))
                out.append((sid, " ".join(text.split())))
        return out

    def add(self, *, dataset, split_by, ref_id, split, image: dict, obj: dict, sentences: list[tuple[str, str]]) -> None:
        """Add one ref: its image and object (first occurrence wins) and one referring row per sentence."""
        if not sentences:
            return
        image_id, object_id = image["image_id"], obj["object_id"]
        self.images.setdefault(image_id, {"source": self.name, "split": split, **image})
        self.objects.setdefault(object_id, {"source": self.name, "image_id": image_id, "isfake": False,
                                            "isreflected": False, "identity": None, **obj})
        for sid, text in sentences:
            self.referring.append({"source": self.name, "dataset": dataset, "split_by": split_by, "ref_id": ref_id,
                                   "sent_id": sid, "image_id": image_id, "object_id": object_id,
                                   "category": obj["category"], "expression": text, "bbox": obj["bbox"], "split": split})

    def tables(self) -> SourceTables:
        return SourceTables(source=self.name, kind="refcoco", tables={
            "images": from_rows("images", list(self.images.values())),
            "objects": from_rows("objects", list(self.objects.values())),
            "referring": from_rows("referring", self.referring),
            "quarantine": from_rows("quarantine", self.quarantine)})


# ---------------------------------------------------------------- pickle layout
def _files(spec, dataset: str) -> tuple[str, Path, Path]:
    split_by = spec.split_by.get(dataset)
    if split_by is None:
        raise UserError(f"refcoco source: split_by names no split for dataset {dataset!r}")
    folder = spec.root / dataset
    return split_by, folder / f"refs({split_by}).p", folder / "instances.json"


def input_files(spec) -> list[Path]:
    if spec.layout == "hf":
        from curate.sources import refcoco_hf

        return refcoco_hf.input_files(spec)
    return [p for ds in spec.datasets for p in _files(spec, ds)[1:]]


def _instances(path: Path, dataset: str, c: Collector) -> tuple[dict, dict, dict]:
    """(images by id, annotations by id, category names by id) of an instances.json."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise UserError(f"{path}: not a COCO instances file (needs lists 'images', 'annotations', 'categories')")
    tables = []
    for key, kind in (("images", "image"), ("annotations", "annotation"), ("categories", "category")):
        by_id = {}
        for i, entry in enumerate(data[key]):
            eid = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(eid, int) or isinstance(eid, bool):
                c.bad(f"{dataset}/instances.json:{key}[{i}]", f"{kind}_malformed", repr(entry)[:120])
            elif eid in by_id:
                c.bad(f"{dataset}/instances.json:{key}[{i}]", "duplicate_id", f"{key} id {eid} appears again")
            else:
                by_id[eid] = entry
        tables.append(by_id)
    return tables[0], tables[1], {k: v.get("name") for k, v in tables[2].items()}


_REF_KEYS = {"ref_id": int, "ann_id": int, "image_id": int, "split": str, "sentences": list}


def _read_pickle_dataset(c: Collector, dataset: str) -> None:
    spec = c.spec
    split_by, refs_path, inst_path = _files(spec, dataset)
    if not refs_path.is_file():
        raise UserError(f"{refs_path}: file not found")
    refs = safe_pickle.load(refs_path)
    if not isinstance(refs, list):
        raise UserError(f"{refs_path}: expected a list of refs, found a {type(refs).__name__}")
    images, anns, cats = _instances(inst_path, dataset, c)
    folder = image_folder(spec)
    for k, ref in enumerate(progress.track(refs, f"Indexing {c.name} ({dataset} {split_by})")):
        ref_id = ref.get("ref_id", f"#{k}") if isinstance(ref, dict) else f"#{k}"
        record = f"{dataset}:{ref_id}"
        wrong = [key for key, t in _REF_KEYS.items() if not isinstance(ref, dict) or not isinstance(ref.get(key), t) or isinstance(ref.get(key), bool)]
        if wrong:
            c.bad(record, "ref_malformed", f"missing or wrong type: {', '.join(wrong)}")
            continue
        if not wants_split(ref["split"], spec.splits) or not c.new_ref(dataset, str(ref_id), record):
            continue
        ann, img = anns.get(ref["ann_id"]), images.get(ref["image_id"])
        if ann is None:
            c.bad(record, "unknown_annotation", f"ann_id {ref['ann_id']} is not in {dataset}/instances.json")
            continue
        if img is None or ann.get("image_id") != ref["image_id"]:
            c.bad(record, "unknown_image", f"image_id {ref['image_id']} is not in {dataset}/instances.json or not the annotation's image")
            continue
        category = cats.get(ann.get("category_id"))
        if category is None:
            c.bad(record, "unknown_category", f"category_id {ann.get('category_id')!r}")
            continue
        image_id = str(ref["image_id"])
        if c.full(image_id):
            continue
        name = img.get("file_name") if isinstance(img.get("file_name"), str) else coco_file_name(ref["image_id"])
        path = safe_join(folder, name)
        if path is None:
            c.bad(record, "path_traversal", f"file_name {name!r}")
            continue
        size, reason = c.check_file(image_id, path)
        if reason:
            c.bad(record, reason, str(path))
            continue
        width, height = size or (img.get("width"), img.get("height"))
        if not all(isinstance(v, int) and v > 0 for v in (width, height)):
            width = height = None
        box, reason = xywh_to_xyxy(ann.get("bbox"), width, height)
        if box is None:
            c.bad(record, reason, f"ann {ref['ann_id']} bbox {ann.get('bbox')!r}"[:160])
            continue
        area = ann.get("area") if isinstance(ann.get("area"), (int, float)) else (box[2] - box[0]) * (box[3] - box[1])
        c.add(dataset=dataset, split_by=split_by, ref_id=str(ref_id), split=ref["split"],
              image={"image_id": image_id, "path": str(path), "width": width, "height": height},
              obj={"object_id": str(ref["ann_id"]), "category": category, "bbox": list(box), "area": float(area),
                   "iscrowd": bool(ann.get("iscrowd", 0))},
              sentences=c.sentences(dataset, str(ref_id), ref["sentences"]))


def read(name: str, spec) -> SourceTables:
    """Read a RefCOCO-family source (see the module docstring)."""
    c = Collector(name, spec)
    if spec.layout == "hf":
        from curate.sources import refcoco_hf

        refcoco_hf.read_into(c)
    else:
        for dataset in spec.datasets:
            _read_pickle_dataset(c, dataset)
    return c.tables()
