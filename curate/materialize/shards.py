"""Assembly stage: plans + stored images -> output rows, one Parquet part per shard.

:func:`materialize_part` turns the plans of one shard into rows with
:data:`curate.materialize.rows.FEATURES`: image bytes come from the crop stage's
pack files (:mod:`curate.materialize.crops`), VLT boxes are mapped from the query image's
source frame to its stored (model-frame) pixels as integer ``[x1, y1, x2, y2]``
clamped to the image, and ``solution`` becomes a JSON string. An example whose
image could not be read, or whose source image is an excluded evaluation
image, is dropped: the first becomes a quarantine row (stage
``materialize``), the second is counted. The part file and then its summary
(``part-NNNNN.json``, the commit marker) are written atomically; a part whose
summary exists is not redone.

Parquet is written by :mod:`curate.materialize.parquet` (same rows, same bytes).
The Arrow schema travels in the :class:`PartSpec` (computed once by the caller from
``FEATURES``), so worker processes never import ``datasets`` (about 2 s of
start-up per worker).
"""

from __future__ import annotations

import json
import mmap
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curate.fileio import atomic_write_text
from curate.materialize.crops import image_keys
from curate.materialize.parquet import write_parquet
from curate.materialize.resize import box_to_frame
from curate.materialize.stored import Failure, Stored
from curate.plan.example import ExamplePlan

STAGE = "materialize"


@dataclass(frozen=True)
class PartSpec:
    """One shard's assembly work (picklable)."""

    index: int
    plans_path: str  # JSON lines, one ExamplePlan.to_json() per line
    out_path: str  # the part's Parquet file
    meta_path: str  # the part's summary, written last
    packs: str  # folder of the crop jobs' pack files (job-NNNNN.bin)
    images: dict[str, Stored] = field(default_factory=dict)  # store key -> where its stored image is
    failed: dict[str, Failure] = field(default_factory=dict)  # store key -> why it could not be stored
    excluded: frozenset = frozenset()  # source image paths that are evaluation images
    schema: pa.Schema | None = None  # row_schema(); None: computed here
    keys: list | None = (
        None  # per plan of the part, in file order: its images' store keys (crops.image_keys); None: computed here
    )


def warm_up() -> None:
    """Pay pyarrow's first-call cost (it imports pandas lazily, ~0.2 s) before timing-sensitive work."""
    pa.Table.from_pylist([{"a": 1}])


def normalize_prompt(messages: list[dict]) -> list[dict]:
    """Messages in the row layout: every content part is exactly ``{"type", "text"}``."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = [{"type": p["type"], "text": p.get("text") if p["type"] == "text" else None} for p in content]
        out.append({"role": m["role"], "content": parts})
    return out


class Dropped(Exception):
    """An example that cannot be materialized: (reason, detail)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class Packs:
    """Stored images in the crop jobs' pack files, memory-mapped once per file; :meth:`view` copies nothing."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.maps: dict[int, memoryview] = {}  # job index -> the whole pack file

    def view(self, stored: Stored) -> memoryview:
        job, start, end = stored.job, stored.offset, stored.offset + stored.length
        m = self.maps.get(job)
        if m is None:
            name = self.folder / f"job-{job:05d}.bin"
            with open(name, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise OSError(f"{name.name} is empty but its result file lists stored images")
                m = self.maps[job] = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        if end > len(m):
            raise OSError(f"job-{job:05d}.bin is shorter than its result file says")
        return m[start:end]

    def close(self) -> None:
        """Forget the mappings; each is unmapped once no view of it is left."""
        self.maps.clear()


def build_row(plan: ExamplePlan, keys: list[str], spec: PartSpec, packs: Packs) -> dict:
    """The output row of one plan (``keys``: its images' store keys; ``images``: views of the encoded bytes, in order).

    Raises :class:`Dropped` when it cannot be built.
    """
    prompt = normalize_prompt(plan.messages)
    n_placeholders = sum(1 for m in prompt for part in m["content"] if part["type"] == "image")
    if n_placeholders != len(plan.images):
        raise Dropped("placeholder_mismatch", f"{n_placeholders} image placeholders for {len(plan.images)} images")
    images, stored = [], []
    for ref, key in zip(plan.images, keys):
        if key in spec.failed:
            raise Dropped(*spec.failed[key])
        s = spec.images.get(key)
        if s is None:
            raise Dropped("image_missing", f"{ref.path}: no stored image")
        stored.append(s)
        images.append(packs.view(s))
    solution = plan.solution
    if plan.task == "vlt":
        query = stored[-1]  # the query image is the last one
        solution = box_to_frame(plan.solution, query.region, query.size)
        if solution is None:
            raise Dropped("vlt_box_outside_image", f"box {plan.solution} outside region {list(query.region)}")
    return {
        "id": plan.content_id(),
        "task": plan.task,
        "prompt": prompt,
        "images": images,
        "solution": json.dumps(solution, ensure_ascii=False),
        "names": list(plan.names),
        "source": plan.source,
        "source_ids": [str(s) for s in plan.source_ids],
        "template": plan.template,
    }


def read_plans(path: str | Path) -> list[ExamplePlan]:
    with open(path, encoding="utf-8") as f:
        return [ExamplePlan.from_json(json.loads(line)) for line in f if line.strip()]


def materialize_part(spec: PartSpec) -> dict:
    """Build and write one shard's rows; returns (and saves) the part summary."""
    meta_path, out_path = Path(spec.meta_path), Path(spec.out_path)
    if meta_path.exists() and out_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["skipped"] = True
        return meta
    rows, quarantine, excluded_paths, excluded_examples = [], [], set(), 0
    by_task, by_task_source, answers = Counter(), Counter(), Counter()
    packs = Packs(spec.packs)
    plans = read_plans(spec.plans_path)
    keys = spec.keys if spec.keys is not None else image_keys(plans)
    if len(keys) != len(plans):
        raise ValueError(f"{spec.plans_path}: {len(plans)} plans but store keys for {len(keys)}")
    for plan, plan_keys in zip(plans, keys):
        hit = [ref.path for ref in plan.images if ref.path in spec.excluded]
        if hit:
            excluded_paths.update(hit)
            excluded_examples += 1
            continue
        try:
            row = build_row(plan, plan_keys, spec, packs)
        except Dropped as d:
            quarantine.append(
                {
                    "source": plan.source,
                    "stage": STAGE,
                    "record_id": plan.content_id(),
                    "reason": d.reason,
                    "detail": d.detail,
                }
            )
            continue
        rows.append(row)
        by_task[plan.task] += 1
        by_task_source[f"{plan.task}|{plan.source}"] += 1
        if plan.task == "oct":
            answers[str(plan.solution)] += 1
    packs.close()
    digest, size = write_parquet(rows, out_path, spec.schema)
    meta = {
        "index": spec.index,
        "rows": len(rows),
        "sha256": digest,
        "size": size,
        "quarantine": quarantine,
        "excluded_examples": excluded_examples,
        "excluded_paths": sorted(excluded_paths),
        "by_task": dict(sorted(by_task.items())),
        "by_task_source": dict(sorted(by_task_source.items())),
        "oct_answers": dict(sorted(answers.items())),
    }
    atomic_write_text(meta_path, json.dumps(meta, sort_keys=True))
    meta["skipped"] = False
    return meta
