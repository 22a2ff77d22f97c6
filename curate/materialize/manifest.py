"""``manifest.json``: what a build is made of, written last, and the check that it still is.

The manifest has no timestamps, so a rerun of the same recipe on the same
sources writes the same bytes. ``files`` lists every file of the build with
its sha256 and size (and row count for Parquet shards) except the manifest
itself, the presentation files (``README.md``, ``preview.png`` and the
card's ``composition.png``), which may be regenerated without changing the
data, and ``recipe.resolved.yaml`` (the resolved recipe with this machine's
paths: kept local, never published; ``recipe.yaml`` is the recipe as written).
:func:`verify_build` compares a build folder with its manifest (and finds
temporary files of interrupted writes); a build with problems is "modified"
and must not be published.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from curate.errors import UserError
from curate.fileio import atomic_write_json, sha256_file, temporary_files
from curate.provenance import library_versions, toolkit_info

FORMAT = "repic-build/1"
MANIFEST = "manifest.json"
PRESENTATION = frozenset({"README.md", "preview.png", "composition.png"})
RECIPE = "recipe.yaml"  # the recipe file as written (``${VAR}`` forms kept); listed and published
RESOLVED_RECIPE = "recipe.resolved.yaml"  # the resolved recipe (absolute local paths): local only
LOCAL_ONLY = frozenset({RESOLVED_RECIPE})
LIBRARIES = ("datasets", "pillow", "polars", "faker", "pyarrow")


def sha256_of_json(value) -> str:
    """sha256 of the canonical JSON of ``value``."""
    import hashlib

    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    ).hexdigest()


def sha256_of_files(paths: list[Path]) -> str:
    """sha256 over the sha256s of ``paths``, in the order given."""
    return sha256_of_json([sha256_file(p) for p in paths])


def toolkit() -> dict:
    return toolkit_info()


def file_entry(path: Path) -> dict:
    entry = {"sha256": sha256_file(path), "size": path.stat().st_size}
    if path.suffix == ".parquet" and path.parent.name == "data":
        entry["rows"] = pq.ParquetFile(path).metadata.num_rows
    return entry


def data_files(build_dir: Path) -> list[Path]:
    """Every file of the build that the manifest must list, sorted by relative path."""
    out = []
    for p in sorted(build_dir.rglob("*")):
        rel = p.relative_to(build_dir)
        if (
            not p.is_file()
            or rel.parts[0].startswith(".")
            or (len(rel.parts) == 1 and rel.name in PRESENTATION | LOCAL_ONLY | {MANIFEST})
        ):
            continue
        out.append(p)
    return out


def files_section(build_dir: Path, known: dict[str, dict] | None = None) -> dict[str, dict]:
    """``files`` for the manifest; ``known`` entries (computed while writing) are reused as they are."""
    known = known or {}
    out = {}
    for p in data_files(build_dir):
        rel = p.relative_to(build_dir).as_posix()
        out[rel] = known[rel] if rel in known else file_entry(p)
    return out


def counts(metas: list[dict]) -> dict:
    by_task, by_ts, answers = Counter(), {}, Counter()
    for m in metas:
        by_task.update(m["by_task"])
        answers.update(m["oct_answers"])
        for key, n in m["by_task_source"].items():
            task, source = key.split("|", 1)
            by_ts.setdefault(task, Counter())[source] += n
    return {
        "total": sum(m["rows"] for m in metas),
        "by_task": dict(sorted(by_task.items())),
        "by_task_source": {t: dict(sorted(c.items())) for t, c in sorted(by_ts.items())},
        "oct_answers": {"yes": answers.get("yes", 0), "no": answers.get("no", 0)},
    }


def build_manifest(
    recipe, rhash: str, state: dict, metas: list[dict], files: dict, quarantine_path: Path, *, excluded_eval_images: int
) -> dict:
    """The manifest of a finished build (see ARCHITECTURE.md "Build folder"; extra keys: excluded_examples, plan)."""
    q_counts = Counter(pq.read_table(quarantine_path, columns=["reason"]).column("reason").to_pylist())
    shard_hashes = [files[k]["sha256"] for k in sorted(files) if k.startswith("data/")]
    return {
        "format": FORMAT,
        "status": "complete",
        "name": recipe.name,
        "version": recipe.version,
        "seed": recipe.seed,
        "recipe_hash": rhash,
        "toolkit": toolkit(),
        "libraries": library_versions(LIBRARIES),
        "sources": state["sources"],
        "stages": {
            "index": sha256_of_json({name: fp["fingerprint"] for name, fp in state["sources"].items()}),
            "plan": state["plan_fingerprint"],
            "materialize": sha256_of_json(
                {"model": recipe.model.model_dump(), "crops": recipe.crops.model_dump(), "shards": shard_hashes}
            ),
        },
        "counts": counts(metas),
        "quarantine": {"total": sum(q_counts.values()), "by_reason": dict(sorted(q_counts.items()))},
        "excluded_eval_images": excluded_eval_images,
        "excluded_examples": sum(m["excluded_examples"] for m in metas),
        "plan": state["plan_stats"],
        "files": files,
    }


def write_manifest(build_dir: Path, manifest: dict) -> Path:
    """Write ``manifest.json`` atomically (stable key order, UTF-8, trailing newline)."""
    path = build_dir / MANIFEST
    atomic_write_json(path, manifest)
    return path


def read_manifest(build_dir: str | Path) -> dict:
    """The manifest of a build folder; UserError when there is none or it is not valid."""
    path = Path(build_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{build_dir} is not a build (no {MANIFEST}; a build writes it when it is finished)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise UserError(f"{path}: unreadable manifest, not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a RePIC build manifest (format is not {FORMAT!r})")
    return data


def verify_build(build_dir: str | Path) -> list[str]:
    """Problems that make the folder differ from its manifest (empty when it matches)."""
    build_dir = Path(build_dir)
    try:
        manifest = read_manifest(build_dir)
    except UserError as exc:
        return [str(exc)]
    problems = []
    if manifest.get("status") != "complete":
        problems.append(f"status is {manifest.get('status')!r}, not 'complete'")
    listed = manifest.get("files", {})
    for rel, entry in sorted(listed.items()):
        p = build_dir / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif p.stat().st_size != entry.get("size"):
            problems.append(f"{rel}: size {p.stat().st_size} differs from the manifest's {entry.get('size')}")
        elif sha256_file(p) != entry.get("sha256"):
            problems.append(f"{rel}: content differs from the manifest (sha256)")
    for p in data_files(build_dir):
        rel = p.relative_to(build_dir).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    if (build_dir / ".work").exists():
        problems.append(".work: leftover resume state (the build did not finish cleanly)")
    for p in temporary_files(build_dir):
        rel = p.relative_to(build_dir)
        if rel.parts[0] != ".work":
            problems.append(
                f"{rel.as_posix()}: temporary file of an interrupted write (rerun `repic build` to clean it)"
            )
    return problems


def _nonzero(mapping) -> dict:
    return {k: v for k, v in (mapping or {}).items() if v}


def count_problems(build_dir: str | Path, manifest: dict) -> list[str]:
    """Ways the manifest's counts differ from the data (empty when they agree).

    Nothing is decoded but the small ``task``, ``source`` and ``solution``
    columns and the quarantine's ``reason``: rows per shard come from the
    Parquet footers. The sha256s in ``files`` do not protect the manifest itself.
    """
    build_dir = Path(build_dir)
    problems, rows, by_task, by_ts, answers = [], 0, Counter(), {}, Counter()
    for rel, entry in sorted((manifest.get("files") or {}).items()):
        if not rel.startswith("data/") or not rel.endswith(".parquet"):
            continue
        shard = pq.ParquetFile(build_dir / rel)
        n = shard.metadata.num_rows
        rows += n
        if entry.get("rows") != n:
            problems.append(f"files.{rel} says {entry.get('rows')} rows, the file has {n}")
        table = shard.read(columns=["task", "source", "solution"])
        for task, source, solution in zip(*(table.column(c).to_pylist() for c in ("task", "source", "solution"))):
            by_task[task] += 1
            by_ts.setdefault(task, Counter())[source] += 1
            if task == "oct":
                answers[json.loads(solution)] += 1
    counts = manifest.get("counts") or {}
    if counts.get("total") != rows:
        problems.append(f"counts.total is {counts.get('total')} but the shards hold {rows} rows")
    if _nonzero(counts.get("by_task")) != dict(by_task):
        problems.append(f"counts.by_task is {counts.get('by_task')}, the shards hold {dict(sorted(by_task.items()))}")
    claimed = {t: _nonzero(per) for t, per in (counts.get("by_task_source") or {}).items() if _nonzero(per)}
    if claimed != {t: dict(c) for t, c in by_ts.items()}:
        problems.append(f"counts.by_task_source is {counts.get('by_task_source')}, the shards differ")
    if "oct_answers" in counts and _nonzero(counts["oct_answers"]) != dict(answers):
        problems.append(f"counts.oct_answers is {counts['oct_answers']}, the shards hold {dict(answers)}")
    q_file, q = build_dir / "quarantine.parquet", manifest.get("quarantine")
    if q is not None and q_file.is_file():
        reasons = Counter(pq.read_table(q_file, columns=["reason"]).column("reason").to_pylist())
        if q.get("total") != sum(reasons.values()) or _nonzero(q.get("by_reason")) != dict(reasons):
            problems.append(f"quarantine is {q}, quarantine.parquet holds {sum(reasons.values())} rows {dict(reasons)}")
    return problems
