"""The first half of a build: index the sources and plan the mixture into ``.work/``, the resume state.

``plan_build`` runs the readers (cached), stops on bad input past ``quality.max_bad_fraction``, drops source
images whose bytes are evaluation images (``exclude``), plans the mixture and saves it as one JSONL file per
shard, then ``state.json`` last (recipe hash, source fingerprints, plan summary). ``load_state`` gives that
state back to a rerun when the recipe and the sources are unchanged, so a resumed build uses exactly the same
plan. Nothing here touches pixels; :mod:`curate.materialize.pipeline` runs the crop and shard stages on it.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from curate import progress
from curate.errors import BuildFailed
from curate.fileio import atomic_write_text, sha256_file
from curate.materialize import manifest as mf
from curate.materialize.parquet import write_quarantine
from curate.recipe import Recipe
from curate.sources.common import source_roots
from curate.sources.index import bad_fraction

STATE_FORMAT = "repic-build-state/1"


def fingerprints_only(fps: dict) -> dict:
    return {name: fp["fingerprint"] for name, fp in fps.items()}


def load_state(work: Path, rhash: str, current_fps: dict) -> dict | None:
    path = work / "state.json"
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    if (
        state.get("format") != STATE_FORMAT
        or state.get("recipe_hash") != rhash
        or fingerprints_only(state["sources"]) != current_fps
    ):
        return None
    return state


def exclusion_hashes(recipe: Recipe) -> set[str]:
    """sha256 of every evaluation image: the recipe's hashes plus the files under its paths."""
    hashes = set(recipe.exclude.hashes)
    for root in recipe.exclude.paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        hashes.update(sha256_file(p) for p in files)
    return hashes


def hash_refs(refs: list[str], roots: tuple[str, ...] | None = None) -> list[str | None]:
    """sha256 of each image reference's bytes (None when unreadable, or outside ``roots``: never opened);
    a top-level stage function."""
    import hashlib

    from curate import imageio

    out = []
    for ref in refs:
        try:
            out.append(hashlib.sha256(imageio.read_bytes(ref, roots=roots)).hexdigest())
        except Exception:  # unreadable images are the crop stage's business (quarantined there)
            out.append(None)
    return out


def excluded_source_images(
    tables: dict, hashes: set[str], executor, chunk: int = 256, roots: tuple[str, ...] | None = None
) -> set[tuple[str, str]]:
    """(source, image_id) of every source image whose bytes hash to an evaluation image's sha256."""
    if not hashes:
        return set()
    keys, refs = [], []
    for name, st in tables.items():
        for image_id, path in st.images.select("image_id", "path").iter_rows():
            keys.append((name, image_id))
            refs.append(path)
    chunks = [refs[i : i + chunk] for i in range(0, len(refs), chunk)]
    digests = [
        d
        for part in progress.track(
            executor.map(functools.partial(hash_refs, roots=roots), chunks), "Hashing source images", total=len(chunks)
        )
        for d in part
    ]
    return {k for k, d in zip(keys, digests) if d in hashes}


def check_index_quality(recipe: Recipe, tables: dict, build_dir: Path) -> None:
    """BuildFailed (after writing quarantine.parquet) when a source's bad-input fraction passes the recipe's limit."""
    limit = recipe.quality.max_bad_fraction
    bad = {name: bad_fraction(st) for name, st in tables.items()}
    worst = max(bad, key=bad.get, default=None)
    if worst is not None and bad[worst] > limit:
        q = write_quarantine([st.quarantine for st in tables.values()], build_dir / "quarantine.parquet")
        raise BuildFailed(
            f"source {worst!r}: {bad[worst]:.1%} of its records are bad input, quarantined "
            f"(> quality.max_bad_fraction {limit:.1%}); see {q}"
        )


def plan_build(recipe: Recipe, work: Path, rhash: str, build_dir: Path, executor, log) -> dict:
    """Index and plan; save the plan per shard and the state file (last)."""
    from curate.plan.mixture import plan_mixture
    from curate.sources.index import index_recipe, source_fingerprints, supply_warnings

    for stale in (work, build_dir / "data"):  # no manifest yet: nothing here is a finished build
        shutil.rmtree(stale, ignore_errors=True)
    (work / "plans").mkdir(parents=True)
    log(f"indexing {len(recipe.sources)} source(s)")
    tables = index_recipe(recipe)
    fps = source_fingerprints(recipe, tables)
    index_q = [st.quarantine for st in tables.values()]
    check_index_quality(recipe, tables, build_dir)  # raises BuildFailed after writing quarantine.parquet
    warnings = [f"warning: {w}" for w in supply_warnings(recipe, tables)]
    for w in warnings:
        log(w)
    hashes = exclusion_hashes(recipe)
    excluded = excluded_source_images(tables, hashes, executor, roots=source_roots(recipe.sources))
    if hashes:
        log(f"excluding {len(excluded)} source image(s) that are evaluation images")
    log(f"planning {recipe.mixture.total} examples")
    result = plan_mixture(recipe, tables, excluded_images=excluded)
    result.stats["notes"][:0] = warnings  # kept in the manifest's plan stats
    plans = result.plans
    per = recipe.output.examples_per_shard
    n_parts = max(1, -(-len(plans) // per))
    for i in range(n_parts):
        chunk = plans[i * per : (i + 1) * per]
        atomic_write_text(
            work / "plans" / f"part-{i:05d}.jsonl",
            "".join(json.dumps(p.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for p in chunk),
        )
    write_quarantine([*index_q, result.quarantine], work / "pre_quarantine.parquet")
    plan_fp = mf.sha256_of_files(sorted((work / "plans").glob("part-*.jsonl")))
    state = {
        "format": STATE_FORMAT,
        "recipe_hash": rhash,
        "sources": fps,
        "n_plans": len(plans),
        "n_parts": n_parts,
        "plan_fingerprint": plan_fp,
        "plan_stats": result.stats,
        "exclude_hashes": sorted(hashes),
        "excluded_images": len(excluded),
    }
    text = json.dumps(state, sort_keys=True, default=str)
    atomic_write_text(work / "state.json", text)
    return json.loads(text)  # exactly what a resumed build reads back
