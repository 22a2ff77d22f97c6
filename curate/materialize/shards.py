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

Parquet is written by pyarrow with fixed settings (100-row row groups, the
Hugging Face features in the schema metadata; snappy, dictionary encoding and
statistics for every column except the image bytes, which are already
compressed and unique per row: compressing, dictionary-hashing or min/max-ing
them cost CPU for nothing), so the same rows always give the same bytes. The
Arrow table is built column by column (:func:`rows_table`), each image's
bytes copied once. The Arrow schema travels in the :class:`PartSpec`
(computed once by the caller from ``FEATURES``), so worker processes never
import ``datasets`` (about 2 s of start-up per worker).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.fileio import atomic_path, atomic_write_text
from curate.materialize.crops import image_keys
from curate.materialize.resize import box_to_frame
from curate.materialize.stored import Failure, Stored
from curate.plan.example import ExamplePlan

STAGE = "materialize"
ROW_GROUP_SIZE = 100


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


def row_schema() -> pa.Schema:
    """The Arrow schema of FEATURES, with the Hugging Face features in its metadata."""
    from curate.materialize.rows import FEATURES

    return FEATURES.arrow_schema


def warm_up() -> None:
    """Pay pyarrow's first-call cost (it imports pandas lazily, ~0.2 s) before timing-sensitive work."""
    pa.Table.from_pylist([{"a": 1}])


IMAGE_BYTES = "images.list.element.bytes"  # the Parquet column path of the encoded images


def _leaf_paths(name: str, t: pa.DataType) -> list[str]:
    """Parquet column paths under one Arrow field (lists as ``name.list.element``)."""
    if pa.types.is_list(t):
        return _leaf_paths(f"{name}.list.element", t.value_type)
    if pa.types.is_struct(t):
        return [p for f in t for p in _leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


def parquet_options(schema: pa.Schema) -> dict:
    """Fixed writer settings: snappy, dictionaries and statistics everywhere but on the (JPEG/PNG) image bytes."""
    paths = [p for f in schema for p in _leaf_paths(f.name, f.type)]
    rest = [p for p in paths if p != IMAGE_BYTES]
    return {
        "compression": {p: "snappy" for p in rest} | {IMAGE_BYTES: "none"},
        "use_dictionary": rest,
        "write_statistics": rest,
        "row_group_size": ROW_GROUP_SIZE,
    }


def rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """The Arrow table of rows, column by column; ``row["images"]`` holds each image's encoded bytes (bytes-like).

    The image column is chunked by row group, so no chunk's byte offsets come near the 2 GiB limit of ``binary``.
    """
    columns: list = []
    for f in schema:
        if f.name != "images":
            columns.append(pa.array([r[f.name] for r in rows], type=f.type))
            continue
        columns.append(
            pa.chunked_array(
                [_images_array(rows[i : i + ROW_GROUP_SIZE], f.type) for i in range(0, len(rows), ROW_GROUP_SIZE)],
                type=f.type,
            )
        )
    return pa.Table.from_arrays(columns, schema=schema)


def _images_array(rows: list[dict], list_type: pa.DataType) -> pa.Array:
    """list<struct<bytes, path=null>> of the rows' images; all their bytes copied once, straight into one Arrow buffer."""
    blobs, lists, ends, end = [], [0], [0], 0
    for r in rows:
        for b in r["images"]:
            blobs.append(b)
            end += len(b)
            ends.append(end)
        lists.append(len(blobs))
    item = list_type.value_type  # struct<bytes: binary, path: string>
    data = pa.BinaryArray.from_buffers(
        item.field("bytes").type,
        len(blobs),
        [None, pa.array(ends, type=pa.int32()).buffers()[1], pa.py_buffer(b"".join(blobs))],
    )
    values = pa.StructArray.from_arrays([data, pa.nulls(len(blobs), item.field("path").type)], fields=list(item))
    return pa.ListArray.from_arrays(pa.array(lists, type=pa.int32()), values, type=list_type)


class _HashingFile:
    """A binary file that keeps the sha256 and size of everything written through it."""

    closed = False

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def tell(self) -> int:
        return self.size


def write_parquet(rows: list[dict], path: Path, schema: pa.Schema | None = None) -> tuple[str, int]:
    """Write rows with FEATURES to ``path`` atomically and deterministically; returns (sha256, size).

    pyarrow writes straight to the file and the bytes are hashed on the way
    (no in-memory copy of the whole shard: measured ~4% of the crop stage on
    the 1,000-image crop benchmark, where every fresh megabyte of memory costs).
    """
    schema = schema or row_schema()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        sink = _HashingFile(f)
        pq.write_table(rows_table(rows, schema), sink, **parquet_options(schema))
    return sink.sha.hexdigest(), sink.size


def write_quarantine(parts: list, path: Path) -> Path:
    """Concatenate quarantine frames, Parquet files or row lists (in order) into one Parquet file, atomically."""
    import polars as pl

    from curate.sources.tables import conform, empty, from_rows

    frames = []
    for part in parts:
        if isinstance(part, pl.DataFrame):
            frames.append(conform("quarantine", part))
        elif isinstance(part, (str, Path)):
            frames.append(conform("quarantine", pl.read_parquet(part)))
        else:
            frames.append(from_rows("quarantine", list(part)))
    df = pl.concat(frames) if frames else empty("quarantine")
    table = df.to_arrow().cast(pa.schema([(name, pa.string()) for name in df.columns]))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy", write_statistics=True)
    return path


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
