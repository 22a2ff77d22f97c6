"""Planning at Objects365 scale: vectorized candidate selection vs a per-row Python loop.

Builds a synthetic Objects365-like objects table (default 5M boxes on 400K images; Objects365
v2 train has ~25M boxes on ~1.7M images), then in one run times:

  (a) the obvious alternative: crop filters applied row by row in Python (``iter_rows``), which
      is what a first script does (only on a slice, extrapolated to the full table);
  (b) ``curate.plan.candidates.crop_candidates`` (vectorized polars) on the full table;
  (c) ``plan_mixture`` end to end for a 2,000-example mixture (OCT, single-ICT, multi-ICT) on it.

Usage: .venv/bin/python benchmarks/plan.py [--boxes 5000000] [--images 400000]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import polars as pl

os.environ.setdefault("REPIC_PROGRESS", "0")

from curate.plan.candidates import crop_candidates  # noqa: E402
from curate.plan.mixture import plan_mixture  # noqa: E402
from curate.recipe import Crops, Recipe  # noqa: E402
from curate.sources.tables import SourceTables, conform  # noqa: E402


def synthetic(n_boxes: int, n_images: int, seed: int = 0) -> SourceTables:
    rng = np.random.default_rng(seed)
    ids = np.char.add("o365_", np.arange(n_images).astype(str))
    w = rng.integers(400, 1025, n_images)
    h = rng.integers(300, 769, n_images)
    images = conform(
        "images",
        pl.DataFrame(
            {
                "source": "o365",
                "image_id": ids,
                "path": np.char.add(ids, ".jpg"),
                "width": w,
                "height": h,
                "split": "train",
            }
        ),
    )
    img = rng.integers(0, n_images, n_boxes)
    bw = np.minimum(rng.lognormal(3.8, 1.0, n_boxes), w[img] - 1)
    bh = np.minimum(rng.lognormal(3.8, 1.0, n_boxes), h[img] - 1)
    x1 = rng.uniform(0, 1, n_boxes) * (w[img] - bw)
    y1 = rng.uniform(0, 1, n_boxes) * (h[img] - bh)
    bbox = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
    objects = conform(
        "objects",
        pl.DataFrame(
            {
                "source": "o365",
                "image_id": ids[img],
                "object_id": np.arange(n_boxes).astype(str),
                "category": np.char.add("cat", rng.integers(0, 365, n_boxes).astype(str)),
                "bbox": pl.Series(bbox, dtype=pl.Array(pl.Float64, 4)),
                "area": bw * bh,
                "iscrowd": rng.random(n_boxes) < 0.01,
                "isfake": rng.random(n_boxes) < 0.01,
                "isreflected": rng.random(n_boxes) < 0.01,
            }
        ),
    )
    return SourceTables("o365", "objects365", {"images": images, "objects": objects})


def per_row(objects: pl.DataFrame, images: pl.DataFrame, crops: Crops) -> int:
    """The same output as crop_candidates (kept rows with crop boxes, quarantine rows, sorted), row by row."""
    sizes = {r[0]: (r[1], r[2], r[3]) for r in images.select("image_id", "path", "width", "height").iter_rows()}
    kept, bad = [], []
    for r in objects.iter_rows(named=True):
        x1, y1, x2, y2 = r["bbox"]
        bw, bh = x2 - x1, y2 - y1
        reason = None
        if r["image_id"] not in sizes:
            reason = "object_without_image"
        elif r["iscrowd"] or r["isfake"] or r["isreflected"]:
            reason = "crop_flagged"
        elif min(bw, bh) < crops.min_side:
            reason = "crop_small_side"
        elif bw * bh < crops.min_area:
            reason = "crop_small_area"
        elif max(bw, bh) > crops.max_aspect * min(bw, bh):
            reason = "crop_aspect"
        if reason:
            bad.append(
                {
                    "record_id": r["object_id"],
                    "reason": reason,
                    "detail": f"image {r['image_id']} box {bw:.1f}x{bh:.1f}",
                }
            )
            continue
        path, w, h = sizes[r["image_id"]]
        mx, my = bw * crops.margin, bh * crops.margin
        kept.append(
            {
                **r,
                "path": path,
                "cx1": max(0.0, x1 - mx),
                "cy1": max(0.0, y1 - my),
                "cx2": min(w, x2 + mx),
                "cy2": min(h, y2 + my),
            }
        )
    kept.sort(key=lambda d: (d["image_id"], d["object_id"]))
    return len(kept) + len(bad)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boxes", type=int, default=5_000_000)
    ap.add_argument("--images", type=int, default=400_000)
    args = ap.parse_args()
    st = synthetic(args.boxes, args.images)
    crops = Crops()
    rows = []
    sl = min(args.boxes, 500_000)
    t = time.perf_counter()
    per_row(st.objects.head(sl), st.images, crops)
    dt = (time.perf_counter() - t) * args.boxes / sl
    rows.append(("(a) per-row Python crop filters" + (" (extrapolated)" if sl < args.boxes else ""), dt))
    t = time.perf_counter()
    good, q = crop_candidates(st.objects, st.images, crops, "o365")
    rows.append(
        (f"(b) crop_candidates, vectorized ({good.height:,} kept, {q.height:,} quarantined)", time.perf_counter() - t)
    )
    recipe = Recipe.model_validate(
        {
            "name": "bench",
            "version": "1.0.0",
            "sources": {"o365": {"kind": "objects365", "annotations": "/a", "images": "/b"}},
            "mixture": {"total": 2000, "proportions": {"oct": 0.5, "ict_single": 0.4, "ict_multi": 0.1}},
        }
    )
    t = time.perf_counter()
    res = plan_mixture(recipe, {"o365": st})
    rows.append((f"(c) plan_mixture, 2,000 examples ({len(res.plans)} planned)", time.perf_counter() - t))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nplanning on {args.boxes:,} boxes / {args.images:,} images (polars {pl.__version__}, {os.cpu_count()} CPUs)"
    )
    print(f"{'step':<75} {'seconds':>8}")
    for name, sec in rows:
        print(f"{name:<75} {sec:8.2f}")
    print(f"peak RSS {rss:,.0f} MiB; (a)/(b) = {rows[0][1] / rows[1][1]:.1f}x")


if __name__ == "__main__":
    main()
