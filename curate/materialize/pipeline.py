"""``repic build``: recipe -> index -> plan -> crops -> shards -> manifest, resumable and deterministic.

Layout (see ARCHITECTURE.md "Build folder"): ``<out>/<name>/<version>/`` with
``data/train-NNNNN-of-MMMMM.parquet``, ``quarantine.parquet``, ``recipe.yaml``
(the recipe file as written, ``${VAR}`` forms kept: it is published),
``manifest.json`` (written last, atomically: its presence means the build is
complete; its ``recipe_hash`` is the hash of the resolved recipe), then
``preview.png``, ``README.md`` and ``recipe.resolved.yaml`` (the resolved recipe,
with this machine's absolute paths: local only, never listed or published).

Resume state lives in ``.work/``: ``state.json`` (recipe hash, source
fingerprints, plan summary; written after the per-shard plan files, so a
resumed build uses exactly the same plan), ``crops/job-*.json`` and
``parts/part-*.{parquet,json}`` (each committed atomically by the stage
function). A rerun after a crash (even SIGKILL) skips every committed job and
shard. Nothing in the output depends on the worker count, timing or the
order in which workers finish.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from itertools import accumulate
from pathlib import Path

import yaml

from curate import progress
from curate.errors import BuildFailed, UserError
from curate.fileio import atomic_write_bytes, atomic_write_text
from curate.materialize import guards
from curate.materialize import manifest as mf
from curate.materialize.crops import crop_jobs, image_keys, run_crop_job
from curate.materialize.executor import frozen_heap, make_executor, map_resumed
from curate.materialize.lock import build_lock
from curate.materialize.parquet import row_schema, write_quarantine
from curate.materialize.prepare import exclusion_hashes, fingerprints_only, load_state, plan_build
from curate.materialize.shards import PartSpec, materialize_part, read_plans
from curate.plan.example import ExamplePlan
from curate.recipe import Recipe, load_recipe, recipe_hash, resolved_yaml
from curate.sources.common import source_roots


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_dir_for(recipe: Recipe, out_dir: Path) -> Path:
    return Path(out_dir) / recipe.name / recipe.version


def _crop(
    recipe: Recipe, work: Path, plans: list[ExamplePlan], keys: list[list[str]], state: dict, executor, log
) -> dict:
    jobs = crop_jobs(
        plans,
        results=work / "crops",
        frame=recipe.model,
        crops=recipe.crops,
        exclude_hashes=frozenset(state["exclude_hashes"]),
        keys=keys,
        roots=source_roots(recipe.sources),
        max_pixels=recipe.quality.max_image_pixels,
    )
    done = sum(1 for j in jobs if Path(j.result_path).exists())
    if done:
        log(f"resumed: {done} of {len(jobs)} crop jobs already done")
    merged = {"images": {}, "failed": {}, "excluded": set(), "decoded": 0}
    with progress.bar("Cropping", total=len(jobs)) as advance:
        for res in map_resumed(executor, run_crop_job, jobs, lambda j: Path(j.result_path).exists()):
            merged["images"].update(res.images)
            merged["failed"].update(res.failed)
            merged["excluded"].update(res.excluded)
            merged["decoded"] += res.decoded
            advance()
    return merged


def _parts(work: Path, part_keys: list[list[list[str]]], crops: dict, executor, log) -> list[dict]:
    """Assemble every shard; ``part_keys[i]``: the store keys of part i's plans, plan by plan."""
    specs, schema = [], row_schema()
    for i, plan_keys in enumerate(part_keys):
        keys = {k for ks in plan_keys for k in ks}
        plans_path = work / "plans" / f"part-{i:05d}.jsonl"
        specs.append(
            PartSpec(
                index=i,
                plans_path=str(plans_path),
                out_path=str(work / "parts" / f"part-{i:05d}.parquet"),
                meta_path=str(work / "parts" / f"part-{i:05d}.json"),
                packs=str(work / "crops"),
                images={k: crops["images"][k] for k in keys if k in crops["images"]},
                failed={k: crops["failed"][k] for k in keys if k in crops["failed"]},
                excluded=frozenset(crops["excluded"]),
                schema=schema,
                keys=plan_keys,
            )
        )
    done = sum(1 for s in specs if Path(s.meta_path).exists() and Path(s.out_path).exists())
    if done:
        log(f"resumed: {done} of {len(specs)} shards already done (not redone)")
    metas = []
    with progress.bar("Writing shards", total=len(specs)) as advance:
        committed = lambda s: Path(s.meta_path).exists() and Path(s.out_path).exists()  # noqa: E731
        for meta in map_resumed(executor, materialize_part, specs, committed):
            metas.append(meta)
            advance()
    return metas


def _finish_presentation(build_dir: Path) -> None:
    """preview.png (contact sheet) and README.md (dataset card); neither is part of the manifest."""
    from curate.report.card import render_card
    from curate.report.inspect import write_contact_sheet

    write_contact_sheet(build_dir, build_dir / "preview.png")
    atomic_write_text(build_dir / "README.md", render_card(build_dir, local=True))


def build(
    recipe_path: str | Path,
    out_dir: str | Path = "builds",
    *,
    workers: int | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    log=_log,
    overrides: dict | None = None,
) -> Path:
    """Build the mixture a recipe describes (``overrides``: top-level recipe sections); returns the build folder.

    ``executor``/``ray_address`` (default: the recipe's ``runtime``) choose where the crop and shard jobs run:
    ``local`` (this machine's process pool) or ``ray`` (see :mod:`curate.materialize.ray_executor`). The build
    holds the folder's lock (:mod:`curate.materialize.lock`) throughout; a full disk, here or in a worker, stops
    it with one line (BuildFailed) and a rerun resumes.
    """
    recipe = load_recipe(recipe_path, overrides=overrides)
    out_dir = os.path.abspath(out_dir)  # workers elsewhere (Ray) have another working directory
    if recipe.mixture is None:
        raise UserError(f"{recipe_path}: the recipe has no 'mixture' section, so there is nothing to build")
    build_dir = build_dir_for(recipe, Path(out_dir))
    guards.make_folder(build_dir.parent)
    as_written = _as_written(Path(recipe_path), overrides)
    where = (executor or recipe.runtime.executor, ray_address or recipe.runtime.ray_address)
    with build_lock(build_dir):
        try:
            return _build_locked(recipe, as_written, build_dir, workers, where, log)
        except Exception as exc:
            full = guards.disk_full(exc)
            if full is None or isinstance(exc, UserError):
                raise
            raise guards.disk_full_error(full, build_dir) from None


def _as_written(path: Path, overrides: dict | None) -> bytes:
    """The recipe as its author wrote it (``${VAR}`` forms kept: no local paths, no secrets), published as
    recipe.yaml; with overrides, the file's sections with those replaced (comments are then lost)."""
    data = path.read_bytes()
    if not overrides:
        return data
    raw = yaml.safe_load(data.decode("utf-8"))  # load_recipe already checked the file
    return yaml.safe_dump({**raw, **overrides}, sort_keys=False, allow_unicode=True).encode("utf-8")


def _build_locked(
    recipe: Recipe, as_written: bytes, build_dir: Path, workers: int | None, where: tuple[str, str | None], log
) -> Path:
    rhash = recipe_hash(recipe)
    if (build_dir / mf.MANIFEST).exists():
        old = mf.read_manifest(build_dir)
        if old.get("recipe_hash") != rhash:
            raise UserError(
                f"{build_dir} already holds a different build of {recipe.name} {recipe.version}; bump the version or use another --out"
            )
        shutil.rmtree(build_dir / ".work", ignore_errors=True)  # a kill after the manifest, before the clean-up
        guards.remove_temporary_files(build_dir)  # e.g. a kill while the card was written
        problems = mf.verify_build(build_dir)
        if problems:
            raise UserError(f"{build_dir} is complete but modified ({problems[0]}); remove it to rebuild")
        log(f"{build_dir} is already complete")
        if not (build_dir / "preview.png").exists() or not (build_dir / "README.md").exists():
            _finish_presentation(build_dir)
        return build_dir
    from curate.sources.index import source_fingerprints

    work = build_dir / ".work"
    state = load_state(work, rhash, fingerprints_only(source_fingerprints(recipe)))
    if state is not None and state["exclude_hashes"] != sorted(exclusion_hashes(recipe)):
        state = None  # the evaluation images behind exclude.paths changed: plan again
    with make_executor(workers if workers is not None else recipe.runtime.workers, *where) as executor:
        if hasattr(executor, "check_nodes"):  # a cluster: every node must see the sources and the build folder
            executor.check_nodes(build_dir, recipe)
        executor.warm()  # workers start while this process indexes and plans
        t = time.perf_counter()
        if state is None:
            state = plan_build(recipe, work, rhash, build_dir, executor, log)
            log(f"timing: index+plan {time.perf_counter() - t:.2f} s")
        else:
            log(f"resuming the unfinished build in {build_dir} (same recipe and sources)")
        guards.check_plan(recipe.quality, state, work, build_dir)
        by_part = [read_plans(work / "plans" / f"part-{i:05d}.jsonl") for i in range(state["n_parts"])]
        plans = [p for part in by_part for p in part]
        t = time.perf_counter()
        keys = image_keys(plans)  # store keys computed once, for the crop jobs and for the shards
        with frozen_heap():  # plans, tables and libraries stay alive: collections need not walk them
            crops = _crop(recipe, work, plans, keys, state, executor, log)
            ends = list(accumulate(len(part) for part in by_part))
            part_keys = [keys[end - len(part) : end] for part, end in zip(by_part, ends)]
            log(
                f"timing: crops {time.perf_counter() - t:.2f} s ({crops['decoded']} source images decoded, {len(crops['images'])} images stored)"
            )
            t = time.perf_counter()
            metas = _parts(work, part_keys, crops, executor, log)
            log(f"timing: shards {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
    mat_q = [q for m in metas for q in m["quarantine"]]
    q_path = write_quarantine([work / "pre_quarantine.parquet", mat_q], build_dir / "quarantine.parquet")
    dropped = len(mat_q)
    if state["n_plans"] and dropped / state["n_plans"] > recipe.quality.max_bad_fraction:
        raise BuildFailed(
            f"{dropped} of {state['n_plans']} planned examples could not be materialized "
            f"({dropped / state['n_plans']:.1%} > quality.max_bad_fraction {recipe.quality.max_bad_fraction:.1%}); see {q_path}"
        )
    built = mf.counts(metas)["by_task"]
    short = guards.check_shortfalls(
        recipe.quality, state["plan_stats"]["task_requested"], built, stage="built", see=q_path
    )
    for line in guards.shortfall_lines(short):
        log(line)
    n = len(metas)
    known = {}
    (build_dir / "data").mkdir(parents=True, exist_ok=True)
    for m in metas:
        rel = f"data/train-{m['index']:05d}-of-{n:05d}.parquet"
        src = work / "parts" / f"part-{m['index']:05d}.parquet"
        src.replace(build_dir / rel)
        known[rel] = {"sha256": m["sha256"], "size": m["size"], "rows": m["rows"]}
    atomic_write_bytes(build_dir / mf.RECIPE, as_written)
    atomic_write_text(build_dir / mf.RESOLVED_RECIPE, resolved_yaml(recipe))
    guards.remove_temporary_files(build_dir)  # left by killed runs (we hold the lock: nobody else writes here)
    files = mf.files_section(build_dir, known)
    manifest = mf.build_manifest(
        recipe,
        rhash,
        state,
        metas,
        files,
        q_path,
        excluded_eval_images=state["excluded_images"] + len(crops["excluded"]),
    )
    mf.write_manifest(build_dir, manifest)
    shutil.rmtree(work, ignore_errors=True)
    log(f"timing: manifest {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    _finish_presentation(build_dir)
    guards.remove_temporary_files(build_dir)
    log(f"timing: preview+card {time.perf_counter() - t:.2f} s")
    log(f"built {manifest['counts']['total']} examples in {n} shard(s): {build_dir}")
    return build_dir
