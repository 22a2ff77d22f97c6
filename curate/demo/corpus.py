"""The demo corpus: all five RePIC sources in their native formats, generated from a seed.

Layout under ``root`` (see ARCHITECTURE.md and the readers in curate/sources/)::

    coco/annotations/instances_train2017.json, coco/train2017/<12-digit id>.jpg
    objects365/annotations/zhiyuan_objv2_train.json, objects365/train/patchN/<name>.jpg
    celeba/{identity_CelebA.txt, list_eval_partition.txt, list_bbox_celeba.txt, list_attr_celeba.txt,
            list_landmarks_align_celeba.txt}, celeba/img_align_celeba/*.jpg (178x218), celeba/img_celeba/*.jpg
    subjects200k/data/train-0000K-of-0000N.parquet
    refcoco/{refcoco,refcoco+,refcocog}/{instances.json, refs(<split_by>).p}, refcoco/images/train2014/*.jpg
    TRUTH.json    ground truth the formats cannot hold, see below
    FAULTS.json   with faults=True: the injected bad records, see below

The same seed gives byte-identical files. ``faults=True`` injects, per source, one
record of each bad-input kind that source can have (:data:`FAULT_KINDS`); each is
listed in FAULTS.json as ``{source, record_id, kind, file, stage, detail}``:

- ``record_id``: COCO / Objects365 / RefCOCO instances: the image id (image faults) or
  annotation id (annotation faults); CelebA: the image file name as written in the
  file; Subjects200K: ``<shard file stem>:<row>`` (e.g. ``train-00000-of-00002:3``); RefCOCO
  refs: the ref id.
- ``file``: the file holding the record, relative to the source root.
- ``stage``: ``index`` (a reader must quarantine it), ``decode`` (a JPEG cut
  mid-scan: the header is intact, so only decoding, or a check for the JPEG end
  marker, finds it) or ``filter`` (a valid record that a source filter rejects:
  the Subjects200K quality filter, on by default, and the description filter,
  off by default).

TRUTH.json: per source, which object instance (or person) each record shows.
``coco`` / ``objects365``: ``annotations`` (annotation id -> instance id), ``images``
(image id -> its instance ids) and ``instances`` (instance id -> shape, description,
look-alike ``family``, ``lookalike_of``); ``subjects200k``: ``pairs`` (pair id -> instance
id) and ``instances``; ``celeba``: ``photos`` (file name -> identity) and ``identities``;
``refcoco``: ``refs`` (``<dataset>/<ref id>`` -> instance id). In COCO, Objects365 and
Subjects200K an instance appears in one image (one pair) only, as in the real data,
while its look-alikes appear in others; CelebA identities recur across 3-4 photos.

A bad record can cascade (the annotations of a quarantined image), so readers may
quarantine more records than are listed; every listed one must be quarantined.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from curate import progress
from curate.demo.celeba import write_celeba
from curate.demo.coco_like import write_coco, write_objects365
from curate.demo.common import Fault, FaultLog
from curate.demo.refcoco import write_refcoco
from curate.demo.subjects import write_subjects
from curate.errors import UserError

SOURCES = ("coco", "objects365", "celeba", "subjects200k", "refcoco")
_JSON_KINDS = (
    "image_truncated",
    "image_unreadable",
    "image_missing",
    "wrong_type",
    "bbox_out_of_bounds",
    "bbox_zero_area",
    "bbox_nan",
    "bbox_negative",
    "bbox_malformed",
    "unknown_category",
    "unknown_image",
    "duplicate_annotation_id",
    "duplicate_image_id",
    "path_traversal",
)
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "coco": _JSON_KINDS,
    "objects365": _JSON_KINDS,
    "celeba": (
        "image_truncated",
        "image_unreadable",
        "image_missing",
        "malformed_line",
        "bad_identity",
        "duplicate_image_id",
        "path_traversal",
        "unknown_image",
        "bbox_out_of_bounds",
        "bbox_zero_area",
        "bbox_negative",
    ),
    "subjects200k": (
        "quality_null",
        "quality_low",
        "description_invalid",
        "image_truncated",
        "image_unreadable",
        "image_missing",
        "image_size_mismatch",
    ),
    "refcoco": _JSON_KINDS + ("missing_annotation", "malformed_record"),
}
SIZES: dict[str, dict] = {
    "tiny": {
        "per_shape": 1,
        "coco_images": 12,
        "o365_images": 12,
        "scene_sizes": [(256, 192), (240, 240), (224, 288)],
        "celeba_identities": 4,
        "celeba_photos": (3, 3),
        "small": True,
        "pairs": 12,
        "panel": 256,
        "shards": 2,
        "ref_images": 12,
    },
    "demo": {
        "per_shape": 3,
        "coco_images": 80,
        "o365_images": 60,
        "scene_sizes": [(640, 480), (480, 360), (512, 384), (384, 512), (320, 240)],
        "celeba_identities": 40,
        "celeba_photos": (3, 4),
        "small": False,
        "pairs": 40,
        "panel": 512,
        "shards": 4,
        "ref_images": 40,
    },
}
WRITERS = {
    "coco": write_coco,
    "objects365": write_objects365,
    "celeba": write_celeba,
    "subjects200k": write_subjects,
    "refcoco": write_refcoco,
}


def generate_corpus(
    root: Path, *, seed: int = 0, size: str = "demo", faults: bool = False, workers: int = 1
) -> dict[str, Path]:
    """Write the demo corpus under ``root`` (replacing earlier source folders); return source kind -> its root.

    ``workers`` > 1 writes the sources in that many processes (same bytes as one process)."""
    if size not in SIZES:
        raise UserError(f"unknown demo corpus size {size!r} (choose one of: {', '.join(SIZES)})")
    return generate_sized(root, SIZES[size], seed=seed, faults=faults, workers=workers, label=size)


def scaled_size(counts: dict[str, int], base: str = "demo") -> dict:
    """The knobs of size ``base`` with some counts replaced (``coco_images``, ``o365_images``, ``celeba_identities``,
    ``pairs``, ``ref_images``, ``shards``, ``scene_sizes``...): for corpora larger than the named sizes (benchmarks)."""
    unknown = set(counts) - set(SIZES[base])
    if unknown:
        raise UserError(f"unknown demo corpus knob(s): {', '.join(sorted(unknown))}")
    return {**SIZES[base], **counts}


def generate_sized(
    root: Path, cfg: dict, *, seed: int = 0, faults: bool = False, workers: int = 1, label: str = "custom"
) -> dict[str, Path]:
    """:func:`generate_corpus` with explicit knobs (see :data:`SIZES` and :func:`scaled_size`)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: exists and is not a folder; choose another place for the demo corpus")
    existing = [kind for kind in SOURCES if (root / kind).exists()]
    if existing and not (root / "TRUTH.json").is_file():
        raise UserError(
            f"{root}: already holds {', '.join(existing)} but is not a generated demo corpus; "
            "choose another folder (the generator replaces its source folders)"
        )
    for kind in SOURCES:
        shutil.rmtree(root / kind, ignore_errors=True)
    done: dict[str, tuple[Path, dict, list[Fault]]] = {}
    with progress.bar("Generating demo corpus", total=len(SOURCES)) as advance:
        if workers <= 1:
            for kind in SOURCES:
                done[kind] = _write_source(kind, root, seed, cfg, faults)
                advance()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(SOURCES)), mp_context=get_context("fork")) as pool:
                jobs = {pool.submit(_write_source, kind, root, seed, cfg, faults): kind for kind in _BIGGEST_FIRST}
                for job in as_completed(jobs):
                    done[jobs[job]] = job.result()
                    advance()
    truth: dict = {"seed": seed, "size": label}
    log = FaultLog()
    for kind in SOURCES:  # merged in a fixed order: the same files whatever the worker count
        truth.update(done[kind][1])
        log.faults.extend(done[kind][2])
    (root / "TRUTH.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    fault_file = root / "FAULTS.json"
    if faults:
        fault_file.write_text(json.dumps(log.as_dicts(), indent=1) + "\n", encoding="utf-8")
    elif fault_file.exists():
        fault_file.unlink()
    return {kind: done[kind][0] for kind in SOURCES}


_BIGGEST_FIRST = ("refcoco", "subjects200k", "coco", "objects365", "celeba")  # most rendering work first


def _write_source(kind: str, root: Path, seed: int, cfg: dict, faults: bool) -> tuple[Path, dict, list[Fault]]:
    """One source's files; returns its root, its TRUTH.json entries and its injected faults."""
    log = FaultLog() if faults else None
    truth: dict = {}
    path = WRITERS[kind](root, seed, cfg, log, truth)
    return path, truth, log.faults if log is not None else []


def load_faults(root: Path) -> list[dict]:
    """The faults listed in ``root/FAULTS.json`` (empty when the corpus was generated without faults)."""
    path = Path(root) / "FAULTS.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
