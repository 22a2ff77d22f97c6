"""RefCOCO / RefCOCO+ / RefCOCOg writer: ``refs(<split_by>).p`` pickles, COCO-2014 ``instances.json``
and ``images/train2014/COCO_train2014_<12-digit id>.jpg``.

Scenes hold 2-4 objects, usually two of the same category, and every expression is
true of its target only: colour, pattern, size or position among the same-category
objects. RefCOCO+ expressions avoid location words, as in the real dataset; RefCOCOg
expressions are longer sentences.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.demo.categories import COCO_LICENSES, coco_categories
from curate.demo.coco_like import annotation
from curate.demo.common import FaultLog, rng_for, save_jpeg, write_json
from curate.demo.faults import inject_json_faults
from curate.demo.objects import SHAPES, Instance, catalogue
from curate.demo.scenes import Placed, compose

DATASETS = {"refcoco": ("unc", "google"), "refcoco+": ("unc",), "refcocog": ("umd", "google")}
SPLITS = {"unc": ("train", "val", "testA", "testB"), "umd": ("train", "val", "test"), "google": ("train", "val")}
PATTERN_WORD = {"stripes": "striped", "dots": "dotted", "checks": "checked", "solid": "plain"}


@dataclass
class Seen:
    """What the expressions need of a placed object (its mask is not kept: a big corpus holds many scenes)."""

    instance: Instance
    box: tuple[int, int, int, int]
    area: int


def _picks(insts: list[Instance], rng: np.random.Generator) -> list[Instance]:
    """Two same-category objects (different colours or look-alikes) plus 0-2 others."""
    by_shape: dict[str, list[Instance]] = {}
    for i in insts:
        by_shape.setdefault(i.shape, []).append(i)
    shape = str(rng.choice(sorted(by_shape)))
    pair = [by_shape[shape][j] for j in rng.choice(len(by_shape[shape]), size=2, replace=False)]
    others = [i for i in insts if i.shape != shape]
    extra = [others[j] for j in rng.choice(len(others), size=int(rng.integers(0, 3)), replace=False)]
    return pair + extra


def expressions(target: Seen | Placed, placed: list, width: int, dataset: str) -> list[str]:
    """Expressions true of ``target`` and of no other object in the image."""
    inst = target.instance
    same = [p for p in placed if p.instance.shape == inst.shape and p is not target]
    noun = inst.noun
    cx = (target.box[0] + target.box[2]) / 2
    out: list[str] = []
    if not same:
        out += [noun, f"the {noun}"]
    if inst.dominant_colour and all(
        inst.colour_name not in (p.instance.colour_name, p.instance.colour2_name) for p in same
    ):
        out.append(f"{inst.colour_name} {noun}")
    if all(p.instance.description != inst.description for p in same) and inst.pattern != "solid":
        out.append(inst.description)
    if all(p.instance.pattern != inst.pattern for p in same):
        out.append(f"{PATTERN_WORD[inst.pattern]} {noun}")
    if same and all(target.area > 1.6 * p.area for p in same):
        out.append(f"the larger {noun}")
    if same and all(1.6 * target.area < p.area for p in same):
        out.append(f"the smaller {noun}")
    if dataset != "refcoco+":
        centres = [(p.box[0] + p.box[2]) / 2 for p in same]
        if same and all(cx + 10 < c for c in centres):
            out.append(f"{noun} on the left" if dataset == "refcoco" else f"left {noun}")
        if same and all(cx - 10 > c for c in centres):
            out.append(f"{noun} on the right" if dataset == "refcoco" else f"right {noun}")
        if not same:
            out.append(
                f"{noun} on the left"
                if cx < width / 3
                else f"{noun} on the right"
                if cx > 2 * width / 3
                else f"{noun} in the middle"
            )
    if dataset == "refcocog":  # longer sentences: the full description plus the side when that tells it apart
        left_half = cx < width / 2
        appearance = [e.removeprefix("the ") for e in out if not any(w in e for w in ("left", "right", "middle"))]
        out = []
        if all(((p.box[0] + p.box[2]) / 2 < width / 2) != left_half for p in same):
            art = "an" if inst.description[0] in "aeiou" else "a"
            out.append(f"{art} {inst.description} on the {'left' if left_half else 'right'} side of the picture")
        out += [f"the {e} that you can see in this photo" for e in dict.fromkeys(appearance) if e != noun or not same]
    return list(dict.fromkeys(out))


def _sentence(text: str, sent_id: int, rng: np.random.Generator) -> dict:
    raw = text.capitalize() if rng.random() < 0.3 else text
    sent = text.lower()
    return {"tokens": sent.split(), "raw": raw, "sent_id": sent_id, "sent": sent}


def write_refcoco(root: Path, seed: int, cfg: dict, faults: FaultLog | None, truth: dict) -> Path:
    base = root / "refcoco"
    cats = coco_categories()
    cat_id = {c["name"]: c["id"] for c in cats}
    shapes = [s for s, (coco_name, _) in SHAPES.items() if coco_name]
    insts = catalogue(seed + 3, shapes, cfg["per_shape"])
    rng = rng_for(seed, "refcoco")
    ids = [int(v) for v in rng.choice(np.arange(1, 581930), size=cfg["ref_images"], replace=False)]
    images, anns, scenes = [], [], []
    next_ann = 400000
    for k, iid in enumerate(ids):
        r = rng_for(seed, "refcoco", "image", str(k))
        size = cfg["scene_sizes"][int(r.integers(len(cfg["scene_sizes"])))]
        img, placed = compose(_picks(insts, r), size, r, scale=(0.2, 0.5))
        name = f"COCO_train2014_{iid:012d}.jpg"
        save_jpeg(img, base / "images" / "train2014" / name)
        images.append(
            {
                "license": 1 + iid % 8,
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/train2014/{name}",
                "height": img.height,
                "width": img.width,
                "date_captured": "2013-11-14 16:28:13",
                "flickr_url": f"http://farm{1 + iid % 9}.staticflickr.com/demo/{iid}.jpg",
                "id": iid,
            }
        )
        ann_ids = []
        for p in placed:
            anns.append(annotation(p, next_ann, iid, cat_id[SHAPES[p.instance.shape][0]]))
            ann_ids.append(next_ann)
            next_ann += int(rng.integers(1, 30))
        scenes.append((iid, img.width, [Seen(p.instance, p.box, p.area) for p in placed], ann_ids))  # masks dropped
    clean = {
        "info": {
            "description": "RePIC demo corpus (synthetic images, COCO 2014 format)",
            "version": "1.0",
            "year": 2014,
            "contributor": "repic demo generator",
            "date_created": "2015-01-27 09:11:52.357475",
            "url": "",
        },
        "images": images,
        "licenses": COCO_LICENSES,
        "type": "instances",
        "annotations": anns,
        "categories": cats,
    }
    ref_truth = {}
    for d_index, (dataset, split_bys) in enumerate(DATASETS.items()):
        refs, sent_id, ref_id = [], 10000 * (d_index + 1), 1000 * (d_index + 1)
        for iid, width, placed, ann_ids in scenes:
            for p, aid in zip(placed, ann_ids):
                exprs = expressions(p, placed, width, dataset)
                if not exprs:
                    continue
                chosen = [exprs[j] for j in sorted(rng.choice(len(exprs), size=min(3, len(exprs)), replace=False))]
                sents = [_sentence(t, sent_id + j, rng) for j, t in enumerate(chosen)]
                refs.append(
                    {
                        "sent_ids": [s["sent_id"] for s in sents],
                        "file_name": f"COCO_train2014_{iid:012d}_{aid}.jpg",
                        "ann_id": aid,
                        "ref_id": ref_id,
                        "image_id": iid,
                        "split": "train",
                        "sentences": sents,
                        "category_id": cat_id[SHAPES[p.instance.shape][0]],
                    }
                )
                ref_truth[f"{dataset}/{ref_id}"] = p.instance.iid
                sent_id += len(sents)
                ref_id += 1
        data = copy.deepcopy(clean)
        out = base / dataset
        if faults is not None and dataset == "refcoco":
            _inject(data, base, refs, faults)
        write_json(data, out / "instances.json")
        for split_by in split_bys:
            split_rng = rng_for(seed, "refcoco", dataset, split_by)
            names = SPLITS[split_by]
            probs = np.array([0.7] + [0.3 / (len(names) - 1)] * (len(names) - 1))
            image_split = {iid: str(split_rng.choice(names, p=probs)) for iid, *_ in scenes}
            for ref in refs:
                ref["split"] = (
                    image_split.get(ref["image_id"], "train")
                    if split_by != "google"
                    else str(split_rng.choice(names, p=[0.8, 0.2]))
                )
            with open(out / f"refs({split_by}).p", "wb") as f:
                pickle.dump(refs, f, protocol=2)
    truth["refcoco"] = {"refs": ref_truth}
    return base


def _inject(data: dict, base: Path, refs: list[dict], log: FaultLog) -> None:
    """COCO-style faults in refcoco/instances.json (with refs on the bad annotations) plus bad refs."""
    start = len(log.faults)
    image_dir = base / "images" / "train2014"
    inject_json_faults(
        data,
        "refcoco",
        image_dir,
        "refcoco/instances.json",
        log,
        unknown_category=12,
        traversal_name="../evil.jpg",
        name_of=lambda i: f"COCO_train2014_{i:012d}.jpg",
        path_of=lambda fn: image_dir / fn,
    )
    anns = {a["id"]: a for a in data["annotations"]}
    next_ref = max(r["ref_id"] for r in refs) + 1
    next_sent = max(s for r in refs for s in r["sent_ids"]) + 1
    for f in log.faults[start:]:
        if f.kind in (
            "bbox_out_of_bounds",
            "bbox_zero_area",
            "bbox_nan",
            "bbox_negative",
            "bbox_malformed",
            "unknown_category",
        ):
            a = anns[int(f.record_id)]
            refs.append(
                {
                    "sent_ids": [next_sent],
                    "file_name": f"COCO_train2014_{a['image_id']:012d}_{a['id']}.jpg",
                    "ann_id": a["id"],
                    "ref_id": next_ref,
                    "image_id": a["image_id"],
                    "split": "train",
                    "sentences": [
                        {"tokens": ["the", "object"], "raw": "the object", "sent_id": next_sent, "sent": "the object"}
                    ],
                    "category_id": a["category_id"],
                }
            )
            next_ref, next_sent = next_ref + 1, next_sent + 1
        if f.kind in ("image_truncated", "image_unreadable", "image_missing"):
            for other in ("refcoco+", "refcocog"):
                log.add("refcoco", f.record_id, f.kind, f"{other}/instances.json", stage=f.stage, detail=f.detail)
    bad = copy.deepcopy(refs[0])
    bad.update(ref_id=next_ref, ann_id=max(anns) + 999)
    refs.append(bad)
    log.add(
        "refcoco",
        next_ref,
        "missing_annotation",
        "refcoco/refs(unc).p",
        detail="ann_id not in instances.json (also in refs(google).p)",
    )
    broken = copy.deepcopy(refs[1])
    del broken["sentences"]
    broken["ref_id"] = next_ref + 1
    refs.append(broken)
    log.add(
        "refcoco",
        next_ref + 1,
        "malformed_record",
        "refcoco/refs(unc).p",
        detail="ref has no 'sentences' (also in refs(google).p)",
    )
