"""Crop stage benchmark: codec floor vs naive per-box loop vs this project's crop stage, 1 and 2 workers.

Generates photo-like 640x480 JPEGs (smooth gradients, shapes and sensor-like
noise, quality 90) with N boxes each, then times, in one run:

  (a) floor  plain Pillow: decode each source image once, encode each crop once (JPEG q95)
  (a+w)      control: the floor plus writing each encoded crop once to a file
             (what any tool that keeps its crops must add; not a target)
  (b) naive  per box: reopen and decode the source image, crop, encode

(a) and (b) cut exactly the pixel regions the stage stores (each box widened
to whole 28-px patches, computed before timing with the stage's own
``crops.plan_region``), so all three encode the same crop sizes: the floor
differs from (c) only by what (c) adds (grouping, planning the regions, the
pack files, rows and Parquet), not by smaller outputs.
  (c) stage  this project end to end: group requests by source image
             (crops.crop_jobs), decode once + cut in the model frame + encode + pack
             (crops.run_crop_job), then assemble rows and write Parquet shards
             (materialize.materialize_part), through curate.materialize.executor

Every variant runs with 1 and 2 workers (a process pool for 2: the same
executor the build uses, spawn start-up included).

    .venv/bin/python benchmarks/crops.py [--images 300] [--boxes 5] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.materialize.crops import crop_jobs, image_keys, plan_region, run_crop_job  # noqa: E402
from curate.materialize.executor import frozen_heap, make_executor  # noqa: E402
from curate.materialize.parquet import row_schema  # noqa: E402
from curate.materialize.shards import PartSpec, materialize_part  # noqa: E402
from curate.plan.example import ExamplePlan, ImageRef  # noqa: E402
from curate.recipe import Crops, ModelFrame  # noqa: E402

QUALITY = 95


def make_photo(path: Path, seed: int, size=(640, 480)) -> None:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [xx / w * rng.uniform(80, 200), yy / h * rng.uniform(80, 200), (xx + yy) / (w + h) * rng.uniform(60, 180)], -1
    )
    im = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x, y, r = rng.integers(0, w), rng.integers(0, h), rng.integers(15, 90)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(im).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_corpus(root: Path, n_images: int, n_boxes: int) -> list[tuple[str, list[tuple[float, float, float, float]]]]:
    rnd = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n_images):
        p = root / f"{i:06d}.jpg"
        make_photo(p, i)
        boxes = []
        for _ in range(n_boxes):
            bw, bh = rnd.uniform(50, 260), rnd.uniform(50, 220)
            x, y = rnd.uniform(0, 640 - bw), rnd.uniform(0, 480 - bh)
            boxes.append((x, y, x + bw, y + bh))
        items.append((str(p), boxes))
    return items


def _encode(im: Image.Image) -> int:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=QUALITY)
    return len(buf.getvalue())


def output_regions(items: list) -> list[tuple[str, list[tuple[int, int, int, int]]]]:
    """Per image, the source pixel regions the stage stores for its boxes (grid-snapped, as the stage cuts them)."""
    frame, crops = ModelFrame(), Crops(jpeg_quality=QUALITY)
    out = []
    for path, boxes in items:
        with Image.open(path) as im:
            size = im.size
        regions = []
        for b in boxes:
            region, stored = plan_region(b, size, frame, crops)
            assert stored == (region[2] - region[0], region[3] - region[1])  # a plain cut, no resampling
            regions.append(region)
        out.append((path, regions))
    return out


def floor_chunk(chunk: list) -> int:
    n = 0
    for path, regions in chunk:
        with Image.open(path) as im:
            im.load()
            for r in regions:
                n += _encode(im.crop(r)) > 0
    return n


def floor_write_chunk(chunk: list) -> int:
    """The floor, plus writing every encoded crop once to a file (one file per chunk, 4 MiB buffer).

    A control, not a target: (c) must store its crops, the floor stores nothing, and on some
    virtual machines fresh page-cache memory is far from free (see RESULTS.md).
    """
    n = 0
    first = Path(chunk[0][0])
    out_dir = first.parent.parent / "floor-out"
    out_dir.mkdir(exist_ok=True)
    with open(out_dir / f"{first.stem}.bin", "wb", buffering=1 << 22) as out:
        for path, regions in chunk:
            with Image.open(path) as im:
                im.load()
                for r in regions:
                    buf = io.BytesIO()
                    im.crop(r).save(buf, format="JPEG", quality=QUALITY)
                    n += out.write(buf.getvalue()) > 0
    return n


def naive_chunk(chunk: list) -> int:
    n = 0
    for path, regions in chunk:
        for r in regions:
            with Image.open(path) as im:
                im.load()
                n += _encode(im.crop(r)) > 0
    return n


def cpu_timed(call: tuple) -> tuple:
    """Run ``fn(arg)`` in whichever process the executor picks; (its result, the CPU seconds it took there)."""
    fn, arg = call
    t = time.process_time()
    return fn(arg), time.process_time() - t


def timed_map(ex, fn, items, cpu: list[float]):
    """``ex.map(fn, items)``, adding each task's CPU seconds (in its worker) to ``cpu[0]``."""
    for result, seconds in ex.map(cpu_timed, [(fn, item) for item in items]):
        cpu[0] += seconds
        yield result


def run_plain(fn, items, workers: int) -> tuple[float, float, float]:
    """(seconds of work, CPU seconds of work, seconds of pool start-up) for the plain-Pillow variants."""
    chunks = [items[i : i + 16] for i in range(0, len(items), 16)]
    shutil.rmtree(
        Path(items[0][0]).parent.parent / "floor-out", ignore_errors=True
    )  # a fresh output folder, as (c) has
    t0 = time.perf_counter()
    with make_executor(workers) as ex:
        ex.warm(wait=True)
        cpu = [0.0]
        t, c = time.perf_counter(), time.process_time()
        assert sum(timed_map(ex, fn, chunks, cpu)) == sum(len(b) for _, b in items)
        return time.perf_counter() - t, cpu_total(cpu, c, workers), t - t0


def cpu_total(tasks: list[float], parent_start: float, workers: int) -> float:
    """CPU seconds of the work: the tasks' (in the workers), plus the parent's own when it is not also the worker."""
    parent = time.process_time() - parent_start
    return parent if workers == 1 else tasks[0] + parent  # one worker: the tasks ran in this process


def run_stage(items, workers: int, tmp: Path, per_shard: int = 256) -> tuple[float, float, float]:
    plans = []
    for path, boxes in items:
        image_id = Path(path).stem
        for k, b in enumerate(boxes):
            ref = ImageRef("bench", image_id, path, b, f"{image_id}-{k}")
            plans.append(
                ExamplePlan(
                    "ict_single",
                    "bench",
                    [ref.object_id],
                    [ref],
                    [
                        {
                            "role": "user",
                            "content": [{"type": "image", "text": None}, {"type": "text", "text": "Name it."}],
                        }
                    ],
                    "<Ann>",
                    ["<Ann>"],
                    "bench",
                )
            )
    work = tmp / f"stage-{workers}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "plans").mkdir(parents=True)
    n_parts = -(-len(plans) // per_shard)
    for i in range(n_parts):
        (work / "plans" / f"{i}.jsonl").write_text(
            "".join(json.dumps(p.to_json()) + "\n" for p in plans[i * per_shard : (i + 1) * per_shard])
        )
    t0 = time.perf_counter()
    with make_executor(workers) as ex, frozen_heap():  # as curate.materialize.pipeline.build
        ex.warm(wait=True)
        cpu = [0.0]
        t, c = time.perf_counter(), time.process_time()
        keys = image_keys(plans)  # as curate.materialize.pipeline: store keys computed once for jobs and shards
        jobs = crop_jobs(plans, results=work / "jobs", frame=ModelFrame(), crops=Crops(jpeg_quality=QUALITY), keys=keys)
        images = {}
        for r in timed_map(ex, run_crop_job, jobs, cpu):
            images.update(r.images)
        schema = row_schema()
        specs = []
        for i in range(n_parts):
            part = {k for ks in keys[i * per_shard : (i + 1) * per_shard] for k in ks}
            specs.append(
                PartSpec(
                    i,
                    str(work / "plans" / f"{i}.jsonl"),
                    str(work / "parts" / f"{i}.parquet"),
                    str(work / "parts" / f"{i}.json"),
                    str(work / "jobs"),
                    {k: images[k] for k in part},
                    {},
                    frozenset(),
                    schema,
                    keys[i * per_shard : (i + 1) * per_shard],
                )
            )
        rows = sum(m["rows"] for m in timed_map(ex, materialize_part, specs, cpu))
        elapsed, cpu_seconds = time.perf_counter() - t, cpu_total(cpu, c, workers)
    assert rows == len(plans), (rows, len(plans))
    return elapsed, cpu_seconds, t - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--boxes", type=int, default=5)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell (best and median are reported)")
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="repic-bench-crops-"))
    try:
        items = make_corpus(tmp / "src", args.images, args.boxes)
        regions = output_regions(items)
        load0 = f"{os.getloadavg()[0]:.2f}"
        row_schema()  # imports `datasets` once, as a build does while planning, so the first (c) run does not pay it
        n_crops = args.images * args.boxes
        runs: dict[tuple[str, int], list[tuple[float, float, float]]] = {}  # cell -> [(seconds, cpu s, pool start)]
        for _ in range(args.repeat):  # interleaved repeats: every cell sees the same spread of machine load
            for w in workers:
                for name, fn in (
                    ("a floor", lambda w=w: run_plain(floor_chunk, regions, w)),
                    ("a+w", lambda w=w: run_plain(floor_write_chunk, regions, w)),
                    ("b naive", lambda w=w: run_plain(naive_chunk, regions, w)),
                    ("c stage", lambda w=w: run_stage(items, w, tmp)),
                ):
                    runs.setdefault((name, w), []).append(fn())
        print(
            f"# crops benchmark: {args.images} images 640x480, {args.boxes} boxes each = {n_crops} crops; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(
            f"# {args.repeat} interleaved runs per cell. seconds = the work (wall clock), timed after the pool's workers"
        )
        print(
            "# started and imported the stage modules; cpu s = CPU seconds of that work in the workers and the parent (less"
        )
        print(
            "# sensitive than wall clock to other load on the machine); best = fastest run, median = middle run (ratios are"
        )
        print(
            "# best/best and median/median); pool start = the start-up (paid once per build, overlapped with planning)"
        )
        print(f"# load average before / after: {load0} / {os.getloadavg()[0]:.2f}")
        print(
            f"{'variant':10} {'workers':>7} {'best s':>7} {'crops/s':>8} {'x floor':>8} {'median s':>8} {'x floor':>8} "
            f"{'speedup vs 1 worker':>20} {'cpu s':>7} {'cpu x floor':>11} {'pool start':>10}"
        )
        best = {cell: min(r[0] for r in rs) for cell, rs in runs.items()}
        med = {cell: statistics.median(r[0] for r in rs) for cell, rs in runs.items()}
        cpu = {cell: min(r[1] for r in rs) for cell, rs in runs.items()}
        for (name, w), sec in best.items():
            floor = ("a floor", w)
            print(
                f"{name:10} {w:7d} {sec:7.2f} {n_crops / sec:8.0f} {sec / best[floor]:8.2f} {med[(name, w)]:8.2f} "
                f"{med[(name, w)] / med[floor]:8.2f} {best[(name, workers[0])] / sec:20.2f} {cpu[(name, w)]:7.2f} "
                f"{cpu[(name, w)] / cpu[floor]:11.2f} {min(r[2] for r in runs[(name, w)]):10.2f}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
