"""Build benchmark: recipes/repic-2k.yaml on a generated corpus of realistic size, and a scaling ladder.

The corpus is the demo corpus generator (curate.demo.corpus) scaled up, with
COCO / Objects365 / RefCOCO scenes of 640x480 JPEGs (COCO-like), CelebA aligned
faces and Subjects200K pair images; it is generated once and kept (``--corpus``).
Every build runs as a real ``repic build`` subprocess (index cache warmed first,
so each row times planning + crops + shards + manifest + preview/card); peak
RSS is sampled over the whole process tree (parent + workers, summed).

  1. the 2K recipe as written (no query image reused);
  2. a scaling ladder with the same recipe at other totals (``--ladder``); time
     per 1K examples should stay flat if the build scales linearly. Give a
     corpus large enough for the largest total (``--scale``), or ``--reuse``
     (``mixture.allow_query_reuse: true``: faster than linear, since source
     images are shared and decoded once, and the planner may fall short).

    .venv/bin/python benchmarks/build.py [--scale 1] [--workers 2] [--ladder 2000,5000,10000] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCH_SIZE = {  # the demo generator's knobs at --scale 1: enough for the 2K mixture without query reuse
    "per_shape": 3, "coco_images": 700, "o365_images": 700, "scene_sizes": [(640, 480)],
    "celeba_identities": 300, "celeba_photos": (3, 4), "small": False, "pairs": 500, "panel": 512, "shards": 8,
    "ref_images": 900,
}
SCALED = ("coco_images", "o365_images", "celeba_identities", "pairs", "ref_images", "shards")


def ensure_corpus(root: Path, scale: int) -> Path:
    from curate.demo import corpus

    marker = root / "BENCH_OK"
    if marker.exists():
        return root
    corpus.SIZES["bench"] = {k: v * scale if k in SCALED else v for k, v in BENCH_SIZE.items()}
    t = time.perf_counter()
    corpus.generate_corpus(root, size="bench")
    (root / "coco" / "train2014").unlink(missing_ok=True)
    (root / "coco" / "train2014").symlink_to(root / "refcoco" / "images" / "train2014")  # repic-2k.yaml's RefCOCO image path
    marker.write_text(f"generated in {time.perf_counter() - t:.0f} s\n")
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
    ap.add_argument("--corpus", type=Path, help="corpus folder (default: $TMPDIR/repic-bench-corpus-x<scale>)")
    ap.add_argument("--scale", type=int, default=1, help="corpus size multiplier (5: a 10K mixture without query reuse)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ladder", default="2000,5000,10000")
    ap.add_argument("--reuse", action="store_true", help="ladder recipes allow query reuse (so a small corpus serves large totals)")
    args = ap.parse_args()
    corpus = ensure_corpus(args.corpus or Path(tempfile.gettempdir()) / f"repic-bench-corpus-x{args.scale}", args.scale)
    work = Path(tempfile.mkdtemp(prefix="repic-bench-build-"))
    env = {**os.environ, "REPIC_DATA": str(corpus), "REPIC_PROGRESS": "0", "REPIC_CACHE_DIR": str(work / "cache")}
    py = sys.executable
    wall, _, _ = run([py, "-m", "curate.cli", "index", str(recipe_variant(work, None, False))], env)
    print(f"# build benchmark: corpus {corpus} ({(corpus / 'BENCH_OK').read_text().strip()}); "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, workers {args.workers}; index (cold cache) {wall:.1f} s")
    rows = [("repic-2k (no reuse)", recipe_variant(work, None, False))]
    tag = "reuse" if args.reuse else "no reuse"
    rows += [(f"ladder {int(n) / 1000:g}K ({tag})", recipe_variant(work, int(n), args.reuse)) for n in args.ladder.split(",")]
    print(f"{'build':22} {'examples':>8} {'wall s':>7} {'ex/s':>6} {'s/1K ex':>7} {'plan s':>6} {'crops s':>7} {'shards s':>8} "
          f"{'preview s':>9} {'peak RSS MB':>11} {'decoded':>8}")
    for label, recipe in rows:
        wall, peak, log = run([py, "-m", "curate.cli", "build", str(recipe), "--out", str(work / "out"), "--workers", str(args.workers)], env)
        n = int(re.search(r"built (\d+) examples", log).group(1))
        decoded = re.search(r"\((\d+) source images decoded", log)
        print(f"{label:22} {n:8d} {wall:7.1f} {n / wall:6.1f} {wall / n * 1000:7.1f} {timing(log, 'index+plan'):6.1f} "
              f"{timing(log, 'crops'):7.1f} {timing(log, 'shards'):8.1f} {timing(log, 'preview+card'):9.1f} {peak / 2**20:11.0f} "
              f"{decoded.group(1) if decoded else '?':>8}")


if __name__ == "__main__":
    main()
