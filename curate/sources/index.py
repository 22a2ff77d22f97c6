"""Index stage: run each recipe source's reader (its kind's, :mod:`curate.sources.registry`), with a Parquet cache.

The cache key of a source is its kind, its resolved spec, the kind's
``cache_version`` and, for each input file the kind names, its path,
size, mtime and a content sample (first/last 64 KiB and three 4 KiB probes).
Changing an annotation file (or touching it) re-indexes that source only.

Source *fingerprints* written into build manifests leave out paths and mtimes
(name, size and content sample only), so the same data on two machines has
the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl

from curate import __version__
from curate.fileio import atomic_folder
from curate.recipe import Recipe
from curate.sources.registry import kinds_for, source_kind
from curate.sources.tables import SCHEMAS, SourceTables, conform, empty

CACHE_FORMAT = "repic-index/1"
_SAMPLE = 64 * 1024
_PROBE = 4 * 1024


def default_cache_dir(recipe: Recipe | None = None) -> Path:
    if recipe is not None and recipe.runtime.cache_dir is not None:
        return recipe.runtime.cache_dir
    if os.environ.get("REPIC_CACHE_DIR"):
        return Path(os.environ["REPIC_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "repic" / "index"


def content_sample(path: Path) -> str:
    """sha256 of the file's size plus its first/last 64 KiB and three 4 KiB probes."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            for frac in (0.25, 0.5, 0.75):
                f.seek(int(size * frac))
                h.update(f.read(_PROBE))
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def _files(spec) -> list[Path]:
    files = []
    for p in source_kind(spec.kind).input_files(spec):
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        elif p.exists():
            files.append(p)
    return files


def _cache_key(name: str, spec) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "format": CACHE_FORMAT,
                "toolkit": __version__,
                "name": name,
                "reader": source_kind(spec.kind).cache_version,
                "spec": spec.model_dump(mode="json"),
            },
            sort_keys=True,
        ).encode()
    )
    for f in _files(spec):
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}|{content_sample(f)}".encode())
    return h.hexdigest()[:24]


def source_fingerprint(spec) -> str:
    """Path- and mtime-independent fingerprint of a source's input files."""
    h = hashlib.sha256(spec.kind.encode())
    for f in _files(spec):
        h.update(f"{f.name}|{f.stat().st_size}|{content_sample(f)}".encode())
    return h.hexdigest()


def _load_cached(folder: Path, name: str, kind: str) -> SourceTables | None:
    meta = folder / "tables.json"
    if not meta.is_file():
        return None
    try:
        names = json.loads(meta.read_text())["tables"]
        tables = {t: pl.read_parquet(folder / f"{t}.parquet") for t in names}
    except Exception:
        return None  # a damaged cache entry is rebuilt
    extra = json.loads(meta.read_text()).get("attrs", {})
    st = SourceTables(source=name, kind=kind, tables=tables)
    for k, v in extra.items():
        setattr(st, k, v)
    return st


def _store(folder: Path, st: SourceTables) -> None:
    attrs = {
        k: v
        for k, v in vars(st).items()
        if k not in ("source", "kind", "tables") and isinstance(v, (str, int, float, type(None)))
    }
    with atomic_folder(folder) as tmp:
        for t, df in st.tables.items():
            df.write_parquet(tmp / f"{t}.parquet")
        (tmp / "tables.json").write_text(json.dumps({"tables": sorted(st.tables), "attrs": attrs}))


def index_source(name: str, spec, *, cache_dir: Path | None = None, use_cache: bool = True) -> SourceTables:
    """Read one source (from the cache when its inputs are unchanged)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / f"{name}-{_cache_key(name, spec)}"
    if use_cache:
        cached = _load_cached(folder, name, spec.kind)
        if cached is not None:
            return cached
    st = source_kind(spec.kind).read(name, spec)
    st.tables = {t: conform(t, df) if t in SCHEMAS else df for t, df in st.tables.items()}
    if "quarantine" not in st.tables:
        st.tables["quarantine"] = empty("quarantine")  # conform() of an empty frame would give one row of nulls
    if use_cache:
        _store(folder, st)
    return st


def index_recipe(recipe: Recipe, *, cache_dir: Path | None = None, use_cache: bool = True) -> dict[str, SourceTables]:
    """Index every source of ``recipe`` (in declaration order)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(recipe)
    return {
        name: index_source(name, spec, cache_dir=cache_dir, use_cache=use_cache)
        for name, spec in recipe.sources.items()
    }


def source_fingerprints(recipe: Recipe, tables: dict[str, SourceTables] | None = None) -> dict[str, dict]:
    """Per-source provenance for manifests: kind, fingerprint, revision, counts."""
    out = {}
    for name, spec in recipe.sources.items():
        st = tables.get(name) if tables else None
        revision = getattr(st, "revision", None) if st is not None else None
        if revision is None:
            revision = getattr(spec, "hub", None)
        out[name] = {
            "kind": spec.kind,
            "fingerprint": source_fingerprint(spec),
            "revision": revision,
            "counts": st.summary() if st is not None else {},
        }
    return out


def bad_fraction(st: SourceTables) -> float:
    """Bad records over all records seen (kept images + objects + ... + quarantined).

    Rows a recipe filter rejected on purpose (stage ``filter``, e.g. Subjects200K's
    quality filter) are traced in the quarantine table but are not bad input.
    """
    q = st.quarantine
    filtered = q.filter(pl.col("stage") == "filter").height
    bad = q.height - filtered
    seen = q.height + sum(
        df.height
        for t, df in st.tables.items()
        if t != "quarantine" and t in ("images", "objects", "referring", "pairs", "identities")
    )
    return bad / seen if seen else 0.0


def supply_warnings(recipe: Recipe, tables: dict[str, SourceTables]) -> list[str]:
    """One line per (task, source) where a source the task draws from (weight > 0) has nothing for that task.

    A task counts when it is enabled and (with a ``mixture``) has a share; its sources are ``tasks.<task>.sources``
    or, when none are named, every recipe source whose kind can serve it. VLT needs referring expressions in
    ``tasks.vlt.splits``; the other tasks need indexed images. The line names the main quarantine reasons.
    """
    from curate.plan.vlt import split_selected  # the planner imports this package: import late
    from curate.recipe import TASKS

    shares = recipe.mixture.proportions if recipe.mixture is not None else None
    out = []
    for task in TASKS:
        cfg = getattr(recipe.tasks, task)
        if not cfg.enabled or (shares is not None and shares.get(task, 0) <= 0):
            continue
        kinds = kinds_for(task)
        weights = cfg.sources or {s: 1.0 for s, spec in recipe.sources.items() if spec.kind in kinds}
        for name, weight in sorted(weights.items()):
            st = tables.get(name)
            if st is None or weight <= 0 or st.kind not in kinds:
                continue
            if task == "vlt":
                ref, splits = st.get("referring"), recipe.tasks.vlt.splits
                n = ref.filter(split_selected(splits).fill_null(False)).height
                why = (
                    f"none of its {ref.height} expressions is in tasks.vlt.splits {splits}"
                    if ref.height
                    else "it indexed no referring expressions"
                )
            else:
                n, why = st.images.height, "it indexed no images"
            if n == 0:
                out.append(f"source {name!r} supplies nothing to {task} (weight {weight:g}): {why}{_main_reasons(st)}")
    return out


def _main_reasons(st: SourceTables) -> str:
    q = st.quarantine
    if not q.height:
        return ""
    top = q.group_by("stage", "reason").len().sort(["len", "stage", "reason"], descending=[True, False, False])
    shown = ", ".join(f"{stage}|{reason} {n}" for stage, reason, n in top.head(3).iter_rows())
    return f"; quarantined: {shown}"
