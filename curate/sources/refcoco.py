"""RefCOCO / RefCOCO+ / RefCOCOg reader (referring expressions with their boxes).

``layout: pickle`` (the original release, ``shared/reference/sources.md`` 1.5)::

    <root>/<dataset>/refs(<split_by>).p   # list of refs, read by curate.sources.safe_pickle
    <root>/<dataset>/instances.json       # COCO-2014-style images/annotations/categories

The box of a ref is its annotation's COCO ``[x, y, w, h]`` (stored as xyxy).
Image paths are ``<images folder>/<file_name of the image in instances.json>``
(``COCO_train2014_<12-digit id>.jpg``); the folder is ``spec.images``, else
``<root>/images/train2014``, else ``<root>/images/mscoco/images/train2014``
(the original code's layout).

``layout: hf`` (Parquet shards, lmms-lab and jxu124 layouts) is read by
:mod:`curate.sources.refcoco_hf`; ``layout: pickle`` by :mod:`curate.sources.refcoco_pickle`.

Tables: ``referring`` (one row per sentence, expression = the normalised
``sent``), ``images`` and ``objects`` for the referred images and
annotations (COCO ids, so the three datasets share rows), and ``quarantine``.
Every image and annotation of ``instances.json`` is checked (types, duplicate
ids, path traversal, unknown image/category, box); a ref on a bad one is
quarantined too. Image files are checked for referred images only.
Splits come from each ref; ``spec.splits`` entry ``test`` also selects
``testA``/``testB``/``testC`` (the same rule as ``tasks.vlt.splits``, see
:func:`wants_split`). Refs outside the wanted splits are skipped; a source
with no ref in the wanted splits is a UserError naming the splits it has.
``spec.limit`` caps the number of distinct images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from curate import imageio
from curate.errors import UserError
from curate.recipe.model import SourceSpecBase
from curate.sources.common import check_image
from curate.sources.registry import SourceKind, register
from curate.sources.tables import SourceTables, from_rows, quarantine_row

CACHE_VERSION = 3  # 2: jxu124 boxes are corners; no-rows-in-splits check; 3: path_outside_root


class RefCOCOSource(SourceSpecBase):
    kind: Literal["refcoco"]
    root: Path  # holds refcoco/, refcoco+/, refcocog/ (pickle layout) or Parquet shards (hf layout)
    layout: Literal["pickle", "hf"] = "pickle"
    datasets: list[Literal["refcoco", "refcoco+", "refcocog"]] = ["refcoco", "refcoco+", "refcocog"]
    split_by: dict[str, str] = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
    images: Path | None = None  # COCO train2014 folder (pickle layout)
    splits: list[str] = ["train"]


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
    """Accumulates the tables of one RefCOCO source and enforces ids, limits and sentence checks.

    Quarantine ``record_id`` is the plain id of the offending record (ref id, image id, annotation id,
    ``<ref id>:<sent id>``); the detail starts with the dataset name.
    """

    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.images: dict[str, dict] = {}
        self.objects: dict[str, dict] = {}
        self.referring: list[dict] = []
        self.quarantine: list[dict] = []
        self.refs_seen: set[tuple[str, str]] = set()
        self.sents_seen: set[tuple[str, str]] = set()
        self.checked: dict[str, tuple] = {}
        self.split_rows: dict[str, int] = {}  # rows seen per split, wanted or not
        self.wanted_rows = 0
        self.roots = imageio.real_roots([spec.images or spec.root])  # image files must stay inside

    def wants(self, split) -> bool:
        """``wants_split(split, spec.splits)``, counting every row's split for :meth:`check_supplied`."""
        key = split if isinstance(split, str) else "(none)"
        self.split_rows[key] = self.split_rows.get(key, 0) + 1
        wanted = wants_split(split, self.spec.splits)
        self.wanted_rows += wanted
        return wanted

    def check_supplied(self) -> None:
        """UserError when no row of the source is in the requested splits (naming the splits it has)."""
        if self.wanted_rows or (not self.split_rows and self.quarantine):
            return  # rows were read (or every one is quarantined, e.g. split_unknown): the summaries count them
        asked = ", ".join(self.spec.splits)
        if not self.split_rows:
            raise UserError(f"refcoco source {self.name!r}: its files hold no refs at all (splits asked: {asked})")
        has = ", ".join(f"{k} ({n} rows)" for k, n in sorted(self.split_rows.items()))
        hint = (
            "; the lmms-lab RefCOCO copies have no train split (they are val/test only)"
            if self.spec.layout == "hf" and "train" in self.spec.splits
            else ""
        )
        raise UserError(
            f"refcoco source {self.name!r} supplied no rows for splits [{asked}]: its data has {has}{hint}; "
            "set the source's 'splits'"
        )

    def bad(self, dataset: str, record, reason: str, detail: str = "") -> None:
        self.quarantine.append(quarantine_row(self.name, "index", record, reason, f"{dataset}: {detail}"))

    def full(self, image_id: str) -> bool:
        """The image limit is reached and ``image_id`` is not already in."""
        return self.spec.limit is not None and len(self.images) >= self.spec.limit and image_id not in self.images

    def new_ref(self, dataset: str, ref_id: str) -> bool:
        if (dataset, ref_id) in self.refs_seen:
            self.bad(dataset, ref_id, "ref_id_duplicate", f"ref_id {ref_id} appears again")
            return False
        self.refs_seen.add((dataset, ref_id))
        return True

    def image_checked(self, dataset: str, image_id: str, where: str, check) -> tuple[tuple[int, int] | None, str]:
        """Run ``check()`` -> (size, reason) once per image; a failing image gets one quarantine row."""
        if image_id not in self.checked:
            self.checked[image_id] = check()
            reason = self.checked[image_id][1]
            if reason == "path_outside_root":
                where = f"{where} resolves to {imageio.outside(where, self.roots)}, outside {self.roots[0]}"
            if reason:
                self.bad(dataset, image_id, reason, where)
        return self.checked[image_id]

    def check_image(self, dataset: str, image_id: str, path: Path, expected=None) -> tuple[tuple[int, int] | None, str]:
        return self.image_checked(
            dataset, image_id, str(path), lambda: check_image(path, self.spec.verify_images, expected, self.roots)
        )

    def sentences(self, dataset: str, ref_id: str, raw) -> list[tuple[str, str]]:
        """Valid (sent_id, expression) pairs of a ref's sentence list; the others are quarantined."""
        if not isinstance(raw, list):
            self.bad(dataset, ref_id, "ref_malformed", f"sentences is {type(raw).__name__}, not a list")
            return []
        if not raw:
            self.bad(dataset, ref_id, "no_expression", "the ref has no sentences")
            return []
        out = []
        for k, s in enumerate(raw):
            if isinstance(s, str):  # HF layouts with bare strings
                sid, text = f"{ref_id}:{k}", s
            elif isinstance(s, dict) and isinstance(s.get("sent_id"), int) and not isinstance(s.get("sent_id"), bool):
                sid, text = str(s["sent_id"]), s.get("sent") if isinstance(s.get("sent"), str) else s.get("raw")
            else:
                self.bad(dataset, f"{ref_id}:#{k}", "sentence_malformed", repr(s)[:120])
                continue
            if not isinstance(text, str) or not text.strip():
                self.bad(dataset, f"{ref_id}:{sid}", "empty_expression", repr(text)[:120])
            elif (dataset, sid) in self.sents_seen:
                self.bad(dataset, f"{ref_id}:{sid}", "sent_id_duplicate", f"sent_id {sid} appears again")
            else:
                self.sents_seen.add((dataset, sid))
                out.append((sid, " ".join(text.split())))
        return out

    def add(
        self, *, dataset, split_by, ref_id, split, image: dict, obj: dict, sentences: list[tuple[str, str]]
    ) -> None:
        """Add one ref: its image and object (first occurrence wins) and one referring row per sentence."""
        if not sentences:
            return
        image_id, object_id = image["image_id"], obj["object_id"]
        self.images.setdefault(image_id, {"source": self.name, "split": split, **image})
        self.objects.setdefault(
            object_id,
            {"source": self.name, "image_id": image_id, "isfake": False, "isreflected": False, "identity": None, **obj},
        )
        for sid, text in sentences:
            self.referring.append(
                {
                    "source": self.name,
                    "dataset": dataset,
                    "split_by": split_by,
                    "ref_id": ref_id,
                    "sent_id": sid,
                    "image_id": image_id,
                    "object_id": object_id,
                    "category": obj["category"],
                    "expression": text,
                    "bbox": obj["bbox"],
                    "split": split,
                }
            )

    def tables(self) -> SourceTables:
        return SourceTables(
            source=self.name,
            kind="refcoco",
            tables={
                "images": from_rows("images", list(self.images.values())),
                "objects": from_rows("objects", list(self.objects.values())),
                "referring": from_rows("referring", self.referring),
                "quarantine": from_rows("quarantine", self.quarantine),
            },
        )


# ---------------------------------------------------------------- pickle layout


def input_files(spec) -> list[Path]:
    if spec.layout == "hf":
        from curate.sources import refcoco_hf

        return refcoco_hf.input_files(spec)
    from curate.sources import refcoco_pickle

    return refcoco_pickle.input_files(spec)


def read(name: str, spec) -> SourceTables:
    """Read a RefCOCO-family source (see the module docstring)."""
    c = Collector(name, spec)
    if spec.layout == "hf":
        from curate.sources import refcoco_hf

        refcoco_hf.read_into(c)
    else:
        from curate.sources import refcoco_pickle

        refcoco_pickle.read_into(c)
    c.check_supplied()
    return c.tables()


KIND = register(
    SourceKind(
        name="refcoco",
        spec=RefCOCOSource,
        read=read,
        input_files=input_files,
        tasks=("vlt",),
        cache_version=CACHE_VERSION,
        image_namespace="mscoco",
    )
)
