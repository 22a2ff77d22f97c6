"""Build benchmark: recipes/repic-2k.yaml on a generated corpus of realistic size, and a scaling ladder.

The corpus is the demo corpus generator (curate.demo.corpus) scaled up through its
``generate_sized`` / ``scaled_size`` API, with COCO / Objects365 / RefCOCO scenes of
640x480 JPEGs (COCO-like), CelebA aligned faces and Subjects200K pair images. It is
sized for the largest ladder total (``--size-for``) without query reuse, the recipe's
default: every example claims its own query image, so the corpus holds one COCO /
Objects365 scene, CelebA photo, Subjects200K pair or RefCOCO scene per example of
that source, plus a few percent slack (:func:`corpus_counts`). It is generated once
and kept (``--corpus``). Every build runs as a real ``repic build`` subprocess (index
cache warmed first, so each row times planning + crops + shards + manifest +
preview/card); peak RSS is sampled over the whole process tree (parent + workers,
summed). Time per 1K examples should stay flat if the build scales linearly.

    .venv/bin/python benchmarks/build.py [--ladder 2000,10000,50000] [--workers 2] [--size-for N] [--reuse]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def query_needs(total: int) -> dict[str, float]:
    """Query images each source must supply for ``total`` examples of repic-2k.yaml without query reuse: every
    example claims one query image (a COCO / Objects365 scene, a CelebA photo, a Subjects200K pair, a RefCOCO
    scene), split over tasks by the proportions and over sources by the task's source weights."""
    data = yaml.safe_load((REPO / "recipes" / "repic-2k.yaml").read_text())
    need: dict[str, float] = {}
    for task, share in data["mixture"]["proportions"].items():
        weights = data["tasks"][task]["sources"]
        for source, w in weights.items():
            need[source] = need.get(source, 0.0) + total * share * w / sum(weights.values())
    return need


def corpus_counts(total: int) -> dict:
    """Demo generator knobs for a corpus that serves ``total`` examples without query reuse, with slack for images
    the planner cannot use: a CelebA identity yields ~2.9 query photos (one of its 3-4 photos is the reference),
    and a few RefCOCO scenes share their photo id with a COCO scene (one photo, one query) or have no expression."""
    n = query_needs(total)
    pairs = math.ceil(n["subjects200k"] * 1.03) + 20
    return {
        "coco_images": math.ceil(n["coco"] * 1.04) + 20,
        "o365_images": math.ceil(n["objects365"] * 1.04) + 20,
        "celeba_identities": math.ceil(n["celeba"] / 2.9) + 20,
        "pairs": pairs,
        "shards": max(8, pairs // 500),
        "ref_images": math.ceil(n["refcoco"] * 1.06) + 50,
        "scene_sizes": [(640, 480)],  # COCO-like photos
    }


def ensure_corpus(root: Path, total: int, workers: int) -> Path:
    from curate.demo import corpus

    marker = root / "BENCH_OK"
    if marker.exists():
        return root
    counts = corpus_counts(total)
    t = time.perf_counter()
    corpus.generate_sized(root, corpus.scaled_size(counts), workers=workers, label=f"bench-{total}")
    (root / "coco" / "train2014").unlink(missing_ok=True)
    (root / "coco" / "train2014").symlink_to(
        root / "refcoco" / "images" / "train2014"
    )  # repic-2k.yaml's RefCOCO image path
    shown = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("scene_sizes", "shards"))
    marker.write_text(
        f"sized for {total} examples: {shown}; generated in {time.perf_counter() - t:.0f} s with {workers} processes\n"
    )
    return root


def recipe_variant(folder: Path, total: int | None, reuse: bool) -> Path:
    data = yaml.safe_load((REPO / "recipes" / "repic-2k.yaml").read_text())
    if total is not None:
        data["name"] = f"repic-scale-{total}"
        data["mixture"]["total"] = total
    data["mixture"]["allow_query_reuse"] = reuse
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(cmd: list[str], env: dict) -> tuple[float, int, str]:
    """(wall seconds, peak RSS of the process tree in bytes, stderr)."""
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        ps, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - t
        err.seek(0)
        log = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{log[-3000:]}")
    return wall, peak, log


def timing(log: str, stage: str) -> float:
    m = re.search(rf"timing: {re.escape(stage)} ([0-9.]+) s", log)
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--ladder", default="2000,10000,50000", help="mixture totals to build (repic-2k.yaml, mixture.total overridden)"
    )
    ap.add_argument(
        "--size-for",
        type=int,
        help="size the corpus for this many examples without query reuse (default: the largest ladder total)",
    )
    ap.add_argument("--corpus", type=Path, help="corpus folder (default: $TMPDIR/repic-bench-corpus-<size-for>)")
    ap.add_argument("--workers", type=int, default=2, help="build workers, and corpus generation processes")
    ap.add_argument("--reuse", action="store_true", help="allow query reuse (mixture.allow_query_reuse: true)")
    ap.add_argument("--generate-only", action="store_true", help="generate the corpus and stop")
    args = ap.parse_args()
    totals = [int(n) for n in args.ladder.split(",")]
    size_for = args.size_for or max(totals)
    corpus = ensure_corpus(
        args.corpus or Path(tempfile.gettempdir()) / f"repic-bench-corpus-{size_for}", size_for, args.workers
    )
    print(f"# corpus {corpus}: {(corpus / 'BENCH_OK').read_text().strip()}", flush=True)
    if args.generate_only:
        return
    work = Path(tempfile.mkdtemp(prefix="repic-bench-build-"))
    env = {**os.environ, "REPIC_DATA": str(corpus), "REPIC_PROGRESS": "0", "REPIC_CACHE_DIR": str(work / "cache")}
    py = sys.executable
    wall, peak, _ = run([py, "-m", "curate.cli", "index", str(recipe_variant(work, None, False))], env)
    print(
        f"# {os.cpu_count()} CPUs, Python {platform.python_version()}, build workers {args.workers}, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; index (cold cache) {wall:.1f} s, peak RSS {peak / 2**20:.0f} MB",
        flush=True,
    )
    tag = "reuse" if args.reuse else "no reuse"
    print(
        f"{'build':22} {'examples':>8} {'wall s':>7} {'ex/s':>6} {'s/1K ex':>7} {'plan s':>6} {'crops s':>7} {'shards s':>8} "
        f"{'manifest s':>10} {'preview s':>9} {'peak RSS MB':>11} {'decoded':>8}",
        flush=True,
    )
    for total in totals:
        recipe = recipe_variant(work, None if total == 2000 else total, args.reuse)
        out = work / "out"
        wall, peak, log = run(
            [py, "-m", "curate.cli", "build", str(recipe), "--out", str(out), "--workers", str(args.workers)], env
        )
        n = int(re.search(r"built (\d+) examples", log).group(1))
        decoded = re.search(r"\((\d+) source images decoded", log)
        label = f"{total / 1000:g}K ({tag})"
        print(
            f"{label:22} {n:8d} {wall:7.1f} {n / wall:6.1f} {wall / n * 1000:7.1f} {timing(log, 'index+plan'):6.1f} "
            f"{timing(log, 'crops'):7.1f} {timing(log, 'shards'):8.1f} {timing(log, 'manifest'):10.1f} "
            f"{timing(log, 'preview+card'):9.1f} {peak / 2**20:11.0f} {decoded.group(1) if decoded else '?':>8}",
            flush=True,
        )
        shutil.rmtree(out, ignore_errors=True)  # a 50K build is several GB


if __name__ == "__main__":
    main()
