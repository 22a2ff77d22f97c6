"""Resolve, load and check the training mixture before any model is loaded.

Order matters: the reference is pinned first (a Hub reference resolves to a 40-hex commit;
a moving one is refused unless ``allow_unpinned``), then the files are read, then every row
is checked against the mixture contract of :mod:`curate.materialize.rows`. Any problem raises a
one-line :class:`UserError` naming the first offending rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import UserError
from curate.materialize.rows import COLUMNS, FEATURES, TASKS, count_placeholders, parse_solution

REASONING_MARKERS = ("+think", "+observe")
_SHOW_ROWS = 3


@dataclass
class DatasetSource:
    """Where the training rows come from, as recorded in training_manifest.json."""

    ref: str
    kind: str  # "local" (a build folder) or "hub"
    local_dir: Path
    repo_id: str | None = None
    revision: str | None = None  # the tag or commit the user named
    commit: str | None = None  # the resolved 40-hex commit (hub)
    pinned: bool = True
    manifest: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {
            "ref": self.ref,
            "kind": self.kind,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "pinned": self.pinned,
            "local_dir": str(self.local_dir) if self.kind == "local" else None,
            "name": self.manifest.get("name"),
            "version": self.manifest.get("version"),
            "recipe_hash": self.manifest.get("recipe_hash"),
            "toolkit": self.manifest.get("toolkit"),
            "counts": self.manifest.get("counts"),
            "files": {k: v.get("sha256") for k, v in (self.manifest.get("files") or {}).items()},
        }


def resolve_source(ref: str, *, allow_unpinned: bool = False) -> DatasetSource:
    """Pin ``ref`` (a build folder, ``ORG/NAME@vX.Y.Z`` or ``ORG/NAME@<commit>``) and fetch its verified files."""
    from curate.publish.refs import resolve_dataset

    resolved = resolve_dataset(ref, allow_unpinned=allow_unpinned, download=True)
    return DatasetSource(
        ref=ref,
        kind="hub" if resolved.repo_id else "local",
        local_dir=Path(resolved.local_dir).resolve(),
        repo_id=resolved.repo_id,
        revision=resolved.revision,
        commit=resolved.commit,
        pinned=bool(resolved.pinned),
        manifest=dict(resolved.manifest or {}),
    )


def data_files(folder: Path) -> list[str]:
    files = sorted(str(p) for p in (folder / "data").glob("*.parquet"))
    if not files:
        raise UserError(f"{folder}: no data/*.parquet files; not a RePIC build")
    return files


def _describe(rows: list[tuple[int, str, str]]) -> str:
    shown = "; ".join(f"row {i} (id {rid}): {why}" for i, rid, why in rows[:_SHOW_ROWS])
    more = f"; and {len(rows) - _SHOW_ROWS} more" if len(rows) > _SHOW_ROWS else ""
    return shown + more


def check_mixture(files: list[str], *, reasoning: bool = False, where: str = "dataset") -> int:
    """Check the rows of ``files`` against the RePIC mixture contract; returns the row count."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise UserError(
            f"{where} is not a RePIC mixture: missing column(s) {', '.join(missing)} in {Path(files[0]).name}"
        )
    bad: list[tuple[int, str, str]] = []
    offset = 0
    for file in files:
        table = pq.read_table(file, columns=["id", "task", "prompt", "solution", "template", "images"])
        n_images = pc.list_value_length(table["images"]).fill_null(0).to_pylist()
        ids, tasks, solutions, templates = (table[c].to_pylist() for c in ("id", "task", "solution", "template"))
        for j, prompt in enumerate(table["prompt"].to_pylist()):
            task, rid = tasks[j], ids[j]
            if task not in TASKS:
                bad.append((offset + j, rid, f"unknown task {task!r}"))
                continue
            try:
                parse_solution(task, solutions[j])
            except (ValueError, TypeError) as exc:
                bad.append((offset + j, rid, f"solution {solutions[j]!r} does not parse for {task}: {exc}"))
                continue
            holders = count_placeholders(prompt or [])
            if holders != n_images[j]:
                bad.append((offset + j, rid, f"{n_images[j]} image(s) but {holders} placeholder(s) in the prompt"))
                continue
            if not reasoning and any(m in (templates[j] or "") for m in REASONING_MARKERS):
                bad.append((offset + j, rid, f"reasoning template {templates[j]!r} while reasoning is off"))
        offset += table.num_rows
    if bad:
        raise UserError(f"{where} is not a RePIC mixture: {_describe(bad)}")
    if offset == 0:
        raise UserError(f"{where} has no rows")
    return offset


def vlt_rows_resized(files: list[str], frame: tuple[int, int, int]) -> int:
    """How many vlt query images the processor would resize (their boxes are then mapped back by the reward)."""
    import io

    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    count = 0
    for file in files:
        table = pq.read_table(file, columns=["task", "images"])
        table = table.filter(pc.equal(table["task"], "vlt"))
        for images in table["images"].to_pylist():
            if not images:
                continue
            query = images[-1]
            source = io.BytesIO(query["bytes"]) if query.get("bytes") else query.get("path")
            with Image.open(source) as im:  # reads the header only
                width, height = im.size
            if smart_resize(height, width, frame[2], min_pixels=frame[0], max_pixels=frame[1]) != (height, width):
                count += 1
    return count


def load_rows(files: list[str]):
    """The rows as a ``datasets.Dataset`` with the mixture features (images decode lazily)."""
    import datasets

    from curate import progress

    if not progress.enabled():
        datasets.disable_progress_bars()
    ds = datasets.load_dataset("parquet", data_files=files, split="train").select_columns(list(COLUMNS))
    return ds if ds.features == FEATURES else ds.cast(FEATURES)


@dataclass
class TrainingData:
    source: DatasetSource
    dataset: object  # datasets.Dataset
    rows: int


def load_training_data(ref: str, *, allow_unpinned: bool = False, reasoning: bool = False) -> TrainingData:
    source = resolve_source(ref, allow_unpinned=allow_unpinned)
    files = data_files(source.local_dir)
    rows = check_mixture(files, reasoning=reasoning, where=f"dataset {ref}")
    return TrainingData(source=source, dataset=load_rows(files), rows=rows)
