"""RefCOCO's original layout (``layout: pickle``): ``<root>/<dataset>/refs(<split_by>).p`` + ``instances.json``.

The pickle is read by the restricted, bounded unpickler of :mod:`curate.sources.safe_pickle`; ``instances.json``
is validated exactly as a COCO source's annotation file is. Rows go into the shared
:class:`curate.sources.refcoco.Collector` (see :mod:`curate.sources.refcoco` for the tables and the rules).
"""

from __future__ import annotations

from pathlib import Path

from curate import progress
from curate.errors import UserError
from curate.sources import safe_pickle
from curate.sources.coco import load_coco_json
from curate.sources.cocojson import CocoCollector
from curate.sources.common import resolver
from curate.sources.refcoco import Collector, image_folder


def dataset_files(spec, dataset: str) -> tuple[str, Path, Path]:
    split_by = spec.split_by.get(dataset)
    if split_by is None:
        raise UserError(f"refcoco source: split_by names no split for dataset {dataset!r}")
    folder = spec.root / dataset
    return split_by, folder / f"refs({split_by}).p", folder / "instances.json"


class Instances:
    """The checked content of one ``instances.json``: its good images and annotations by id, and why the others are bad.

    The file is validated exactly as a COCO source's annotation file is (:class:`curate.sources.cocojson.CocoCollector`:
    same checks, same quarantine reasons, one row per bad record, each annotation of a bad image with the image's
    reason); image files are not opened here (only referred images are checked, by the caller).
    """

    def __init__(self, path: Path, dataset: str, c: Collector, folder: Path):
        data = load_coco_json(path)
        coll = CocoCollector(c.name, f"{dataset}/instances.json", resolver(folder))
        coll.add_categories(data.pop("categories"))
        coll.add_images(data.pop("images"))
        coll.add_annotations(data.pop("annotations"))
        st = coll.finish(split="", limit=None, verify="none", kind="refcoco")
        c.quarantine.extend(st.quarantine.to_dicts())
        self.images: dict[int, dict] = {int(r["image_id"]): r for r in st.images.iter_rows(named=True)}
        self.anns: dict[int, dict] = {int(r["object_id"]): r for r in st.objects.iter_rows(named=True)}
        ann_q = coll.annotation_quarantine
        self.bad_anns: dict[int, str] = {
            int(k): r for k, r in zip(ann_q["record_id"].to_list(), ann_q["reason"].to_list())
        }


_REF_KEYS = {"ref_id": int, "ann_id": int, "image_id": int, "split": str, "sentences": list}


def read_dataset(c: Collector, dataset: str) -> None:
    spec = c.spec
    split_by, refs_path, inst_path = dataset_files(spec, dataset)
    if not refs_path.is_file():
        raise UserError(f"{refs_path}: file not found")
    refs = safe_pickle.load(refs_path)
    if not isinstance(refs, list):
        raise UserError(f"{refs_path}: expected a list of refs, found a {type(refs).__name__}")
    folder = image_folder(spec)
    inst = Instances(inst_path, dataset, c, folder)
    for k, ref in enumerate(progress.track(refs, f"Indexing {c.name} ({dataset} {split_by})")):
        ref_id = str(ref.get("ref_id", f"#{k}")) if isinstance(ref, dict) else f"#{k}"
        wrong = [
            key
            for key, t in _REF_KEYS.items()
            if not isinstance(ref, dict) or not isinstance(ref.get(key), t) or isinstance(ref.get(key), bool)
        ]
        if wrong:
            c.bad(dataset, ref_id, "ref_malformed", f"refs[{k}]: missing or wrong type: {', '.join(wrong)}")
            continue
        if not c.wants(ref["split"]) or not c.new_ref(dataset, ref_id):
            continue
        aid, iid = ref["ann_id"], ref["image_id"]
        ann = inst.anns.get(aid)
        if ann is None:
            reason = inst.bad_anns.get(aid)
            c.bad(
                dataset,
                ref_id,
                reason or "annotation_unknown",
                f"its annotation {aid} is quarantined" if reason else f"ann_id {aid} is not in instances.json",
            )
            continue
        if ann["image_id"] != str(iid):
            c.bad(dataset, ref_id, "image_mismatch", f"image_id {iid} is not the image of annotation {aid}")
            continue
        image_id = str(iid)
        if c.full(image_id):
            continue
        img = inst.images[iid]
        path = Path(img["path"])
        size, reason = c.check_image(dataset, image_id, path, (img["width"], img["height"]))
        if reason:
            c.bad(dataset, ref_id, reason, f"image {image_id}: {path}")
            continue
        width, height = size or (img["width"], img["height"])
        c.add(
            dataset=dataset,
            split_by=split_by,
            ref_id=ref_id,
            split=ref["split"],
            image={"image_id": image_id, "path": str(path), "width": width, "height": height},
            obj={
                "object_id": str(aid),
                "category": ann["category"],
                "bbox": list(ann["bbox"]),
                "area": float(ann["area"]),
                "iscrowd": bool(ann["iscrowd"]),
            },
            sentences=c.sentences(dataset, ref_id, ref["sentences"]),
        )


def input_files(spec) -> list[Path]:
    return [p for ds in spec.datasets for p in dataset_files(spec, ds)[1:]]


def read_into(c: Collector) -> None:
    for dataset in c.spec.datasets:
        read_dataset(c, dataset)
