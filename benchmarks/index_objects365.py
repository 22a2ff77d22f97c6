"""Objects365 indexing: curate.sources.objects365 (streaming) vs pycocotools.COCO (json.load + createIndex).

    .venv/bin/python benchmarks/index_objects365.py [--boxes 2200000] [--repeats 2] [--keep]

Writes an Objects365-v2-shaped train JSON (real key order and number formats,
``images/v1/patchN/...`` file names, the 365 category ids, ``isfake`` /
``isreflected``; annotations before images as in some dumps) to
``benchmarks/_work/`` by streaming, then loads it in fresh subprocesses, each
tool ``--repeats`` times, alternating. Each child reports its own wall time for
the load and its peak RSS (``ru_maxrss``, the whole process: interpreter,
imports and all). The table shows the best time and the highest peak per tool.
Image files are not checked (``verify_images: none``): pycocotools does not
look at them either.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work"

CHILD_OURS = """
import time, resource, sys
from curate.sources.objects365 import Objects365Source
from curate.sources import objects365
spec = Objects365Source(kind="objects365", annotations=sys.argv[1], images=sys.argv[2], verify_images="none")
t = time.perf_counter()
tables = objects365.read("objects365", spec)
dt = time.perf_counter() - t
print(tables.objects.height, tables.images.height, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_PYCOCOTOOLS = """
import time, resource, sys, io, contextlib
from pycocotools.coco import COCO
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(sys.argv[1])
dt = time.perf_counter() - t
print(len(coco.anns), len(coco.imgs), dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _fmt(v: float) -> str:
    return repr(float(v))


def generate(path: Path, boxes: int, seed: int = 0) -> tuple[int, int]:
    """Write the JSON without holding it in memory; returns (images, boxes)."""
    rng = np.random.default_rng(seed)
    n_images = max(1, boxes // 13)
    per_image = rng.multinomial(boxes - n_images, np.full(n_images, 1 / n_images)) + 1  # >= 1 box per image
    widths = rng.integers(400, 1025, n_images)
    heights = rng.integers(300, 769, n_images)
    image_ids = np.sort(rng.choice(np.arange(1, 3 * n_images), n_images, replace=False))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", buffering=1 << 20) as f:
        f.write('{"annotations": [')
        ann_id = 0
        step = 20_000
        for s in range(0, n_images, step):
            blocks = []
            for i in range(s, min(s + step, n_images)):
                k = int(per_image[i])
                W, H = widths[i], heights[i]
                x = rng.random(k) * (W - 2)
                y = rng.random(k) * (H - 2)
                w = rng.random(k) * (W - x - 1) + 0.5
                h = rng.random(k) * (H - y - 1) + 0.5
                cat = rng.integers(1, 366, k)
                flags = rng.random(k)
                for j in range(k):
                    ann_id += 1
                    blocks.append(
                        f'{{"id": {ann_id}, "iscrowd": 0, "isfake": {int(flags[j] < 0.02)}, "area": {_fmt(w[j] * h[j])}, '
                        f'"isreflected": {int(flags[j] > 0.99)}, "bbox": [{_fmt(x[j])}, {_fmt(y[j])}, {_fmt(w[j])}, {_fmt(h[j])}], '
                        f'"image_id": {image_ids[i]}, "category_id": {cat[j]}}}'
                    )
            f.write(("" if s == 0 else ", ") + ", ".join(blocks))
        f.write('], "images": [')
        for s in range(0, n_images, step):
            rows = [
                f'{{"height": {heights[i]}, "id": {image_ids[i]}, "license": 5, "width": {widths[i]}, '
                f'"file_name": "images/v{1 + (image_ids[i] > 2 * n_images)}/patch{image_ids[i] % 51}/objects365_v1_{image_ids[i]:08d}.jpg", "url": ""}}'
                for i in range(s, min(s + step, n_images))
            ]
            f.write(("" if s == 0 else ", ") + ", ".join(rows))
        cats = ", ".join(f'{{"name": "category {c}", "id": {c}}}' for c in range(1, 366))
        f.write(f'], "categories": [{cats}], "licenses": [{{"name": "", "id": 5, "url": ""}}]}}')
    os.replace(tmp, path)
    return n_images, ann_id


def run(code: str, *args: str) -> dict:
    env = dict(os.environ, REPIC_PROGRESS="0")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr}")
    boxes, images, load_s, maxrss_kb = out.stdout.split()[-4:]
    return {
        "boxes": int(boxes),
        "images": int(images),
        "load_s": float(load_s),
        "process_s": wall,
        "peak_mb": int(maxrss_kb) / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=2_200_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the generated JSON")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"objects365_{args.boxes}.json"
    if not path.exists():
        t = time.perf_counter()
        n_img, n_box = generate(path, args.boxes)
        print(f"generated {path} ({n_img:,} images, {n_box:,} boxes) in {time.perf_counter() - t:.0f}s", flush=True)
    size_mb = path.stat().st_size / 1e6
    print(f"file: {size_mb:,.0f} MB; cores: {os.cpu_count()}; python {sys.version.split()[0]}", flush=True)
    results: dict[str, list[dict]] = {"curate objects365 (streaming)": [], "pycocotools.COCO": []}
    for r in range(args.repeats):
        for label, code, extra in (
            ("curate objects365 (streaming)", CHILD_OURS, [str(WORK / "no-images")]),
            ("pycocotools.COCO", CHILD_PYCOCOTOOLS, []),
        ):
            res = run(code, str(path), *extra)
            results[label].append(res)
            print(
                f"  run {r + 1} {label}: {res['load_s']:.1f}s, peak {res['peak_mb']:,.0f} MB, {res['boxes']:,} boxes",
                flush=True,
            )
    rows = []
    for label, rs in results.items():
        best = min(x["load_s"] for x in rs)
        rows.append(
            (
                label,
                rs[0]["boxes"],
                best,
                min(x["process_s"] for x in rs),
                rs[0]["boxes"] / best,
                max(x["peak_mb"] for x in rs),
            )
        )
    print(f"\n| indexer | boxes | load s (best of {args.repeats}) | process s | boxes/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, boxes, best, proc, rate, peak in rows:
        print(f"| {label} | {boxes:,} | {best:.1f} | {proc:.1f} | {rate:,.0f} | {peak:,.0f} |")
    (ours, theirs) = rows
    print(
        f"\npeak RSS ratio ours/pycocotools: {ours[5] / theirs[5]:.2f} (target <= 0.33); "
        f"throughput ratio: {ours[4] / theirs[4]:.2f} (target >= 1)"
    )
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
