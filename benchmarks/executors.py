"""Executor benchmark: the crop and shard stages of one build on (a) the local process pool, (b) Ray on the same
CPUs (a private local Ray) and (c) a two-node Ray on this machine (``ray.cluster_utils.Cluster``, both nodes on
127.0.0.1, half the CPUs each).

The recipe is ``recipes/repic-2k.yaml`` with ``mixture.total`` set by ``--total``, over the corpus of
``benchmarks/build.py`` (generated once and kept, ``--corpus``). Each build runs in this process through
``curate.materialize.pipeline.build`` with a warm index cache; the stage times are the build's own
``timing: crops`` / ``timing: shards`` lines, so Ray's start-up (``ray.init``, 2-4 s) is not in them and is printed
separately. Rounds are interleaved (a, b, c, a, b, c, ...) and the best of ``--repeats`` is kept. Every build's
files are compared: the three executors must give the same bytes.

    .venv/bin/python benchmarks/executors.py [--total 1000] [--cpus 2] [--repeats 2] [--corpus DIR]

Needs the ``ray`` extra. Nothing binds anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "REPIC_PROGRESS": "0"})
os.environ.pop("RAY_ADDRESS", None)


def _bench_build():
    spec = importlib.util.spec_from_file_location("bench_build", REPO / "benchmarks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(build_dir: Path) -> dict[str, bytes]:
    from tests.support.corpus import same_commit

    return {
        p.relative_to(build_dir).as_posix(): same_commit(p.read_bytes())
        for p in sorted(build_dir.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def one_build(recipe: Path, out: Path, **kw) -> dict:
    from curate.materialize.pipeline import build

    lines: list[str] = []
    t = time.perf_counter()
    done = build(recipe, out, log=lines.append, **kw)
    wall = time.perf_counter() - t
    log = "\n".join(lines)
    crops = re.search(r"timing: crops ([\d.]+) s \((\d+) source images decoded, (\d+) images stored", log)
    return {
        "wall": wall,
        "crops": float(crops.group(1)),
        "decoded": int(crops.group(2)),
        "stored": int(crops.group(3)),
        "shards": float(re.search(r"timing: shards ([\d.]+) s", log).group(1)),
        "examples": int(re.search(r"built (\d+) examples", log).group(1)),
        "files": _files(done),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total", type=int, default=1000, help="examples in the build (repic-2k.yaml, total overridden)")
    ap.add_argument("--cpus", type=int, default=2, help="pool workers = local Ray CPUs = 2 x CPUs of each of 2 nodes")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best is kept")
    ap.add_argument("--corpus", type=Path, help="corpus folder (default: $TMPDIR/repic-bench-corpus-<total>)")
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    bench = _bench_build()
    corpus = bench.ensure_corpus(
        args.corpus or Path(tempfile.gettempdir()) / f"repic-bench-corpus-{args.total}", args.total, args.cpus
    )
    work = Path(tempfile.mkdtemp(prefix="repic-bench-executors-"))
    os.environ.update({"REPIC_DATA": str(corpus), "REPIC_CACHE_DIR": str(work / "cache")})
    recipe = bench.recipe_variant(work, None if args.total == 2000 else args.total, False)
    one_build(recipe, work / "warm", workers=args.cpus)  # index cache and page cache warm
    shutil.rmtree(work / "warm")

    per_node = max(1, args.cpus // 2)
    cluster = Cluster()
    t = time.perf_counter()
    cluster.add_node(num_cpus=per_node, node_ip_address="127.0.0.1", include_dashboard=False)
    cluster.add_node(num_cpus=per_node, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    cluster_up = time.perf_counter() - t
    variants = {
        f"(a) local pool, {args.cpus} processes": {"workers": args.cpus},
        f"(b) Ray, local, {args.cpus} CPUs": {"workers": args.cpus, "executor": "ray"},
        f"(c) Ray, 2 nodes x {per_node} CPU": {"executor": "ray", "ray_address": cluster.address},
    }
    best: dict[str, dict] = {}
    runs: dict[str, list[str]] = {name: [] for name in variants}
    reference = None
    try:
        for r in range(args.repeats):
            for i, (name, kw) in enumerate(variants.items()):
                res = one_build(recipe, work / f"out-{r}-{i}", **kw)
                shutil.rmtree(work / f"out-{r}-{i}")
                reference = reference or res["files"]
                if res.pop("files") != reference:
                    raise SystemExit(f"{name}: the build differs from the first one")
                runs[name].append(f"{res['crops'] + res['shards']:.2f}")
                if name not in best or res["crops"] + res["shards"] < best[name]["crops"] + best[name]["shards"]:
                    best[name] = res
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    first = next(iter(best.values()))
    print(
        f"# {os.cpu_count()} CPUs, Python {platform.python_version()}, ray {ray.__version__}, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; {first['examples']} examples, {first['decoded']} source "
        f"images decoded, {first['stored']} images stored; two-node cluster up in {cluster_up:.1f} s; "
        f"best of {args.repeats}; all builds byte-identical"
    )
    print(
        f"{'executor':30} {'crops s':>8} {'shards s':>8} {'crop+shard s':>12} {'decoded img/s':>13} "
        f"{'img/s per CPU':>13} {'x pool':>7}  runs (crop+shard s)"
    )
    base = None
    for name, res in best.items():
        stages = res["crops"] + res["shards"]
        rate = res["decoded"] / stages
        base = base or rate
        print(
            f"{name:30} {res['crops']:8.2f} {res['shards']:8.2f} {stages:12.2f} {rate:13.1f} "
            f"{rate / args.cpus:13.1f} {rate / base:7.2f}  {', '.join(runs[name])}"
        )


if __name__ == "__main__":
    main()
