"""Small build folders that follow the ARCHITECTURE.md "Build folder" contract, for the hub tests."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from curate.sources.tables import QUARANTINE_SCHEMA


def _png(colour: tuple[int, int, int], size=(32, 24)) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _prompt(text: str, n_images: int) -> list[dict]:
    parts = [{"type": "image", "text": None} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": parts}]


def make_rows(n: int = 8, salt: str = "") -> list[dict]:
    rows = []
    for i in range(n):
        task = ("oct", "vlt", "ict_single", "ict_multi")[i % 4]
        source = ("coco", "objects365", "celeba", "subjects200k")[i % 4]
        solution = {
            "oct": json.dumps("yes" if i % 8 == 0 else "no"),
            "vlt": json.dumps([1, 2, 20, 22]),
            "ict_single": json.dumps("<Anna>"),
            "ict_multi": json.dumps(["<Anna>", "<Bo>"]),
        }[task]
        images = 3 if task == "ict_multi" else 2
        rows.append(
            {
                "id": f"{task}-{i:04d}{salt}",
                "task": task,
                "prompt": _prompt(f"question {i}{salt}", images),
                "images": [_png(((i * 37 + k * 80) % 256, (i * 11) % 256, 90)) for k in range(images)],
                "solution": solution,
                "names": ["<Anna>", "<Bo>"] if task == "ict_multi" else ["<Anna>"],
                "source": source,
                "source_ids": [f"{source}:{i}"],
                "template": f"{task}.t0",
            }
        )
    return rows


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def make_build(
    root: Path,
    *,
    name: str = "tiny",
    version: str = "1.0.0",
    rows: int = 8,
    shards: int = 1,
    salt: str = "",
    status: str = "complete",
) -> Path:
    """A build folder: data shards written through datasets with FEATURES, recipe, quarantine, manifest."""
    import datasets

    from curate.materialize.rows import FEATURES

    out = Path(root) / name / version
    (out / "data").mkdir(parents=True, exist_ok=True)
    all_rows = make_rows(rows, salt)
    files: dict[str, dict] = {}
    per = -(-len(all_rows) // shards)
    for s in range(shards):
        rel = f"data/train-{s:05d}-of-{shards:05d}.parquet"
        datasets.Dataset.from_list(all_rows[s * per : (s + 1) * per], features=FEATURES).to_parquet(str(out / rel))
        files[rel] = {**_digest(out / rel), "rows": len(all_rows[s * per : (s + 1) * per])}
    (out / "recipe.yaml").write_text(f"name: {name}\nversion: {version}\nseed: 0\n", encoding="utf-8")
    files["recipe.yaml"] = _digest(out / "recipe.yaml")
    pl.DataFrame(
        [
            {"source": "coco", "stage": "index", "record_id": "17", "reason": "bbox_out_of_bounds", "detail": "x2 > w"},
            {"source": "celeba", "stage": "index", "record_id": "9", "reason": "missing_image", "detail": "9.jpg"},
        ],
        schema=QUARANTINE_SCHEMA,
    ).write_parquet(out / "quarantine.parquet")
    files["quarantine.parquet"] = _digest(out / "quarantine.parquet")
    Image.new("RGB", (64, 32), (200, 200, 200)).save(out / "preview.png")
    by_task_source: dict[str, dict[str, int]] = {}
    for r in all_rows:
        by_task_source.setdefault(r["task"], {}).setdefault(r["source"], 0)
        by_task_source[r["task"]][r["source"]] += 1
    manifest = {
        "format": "repic-build/1",
        "status": status,
        "name": name,
        "version": version,
        "seed": 0,
        "recipe_hash": hashlib.sha256(f"{name}{version}{salt}".encode()).hexdigest(),
        "toolkit": {"version": "0.1.0", "git_commit": "0123456789abcdef0123456789abcdef01234567"},
        "libraries": {"datasets": datasets.__version__},
        "sources": {
            k: {
                "kind": k,
                "fingerprint": hashlib.sha256(k.encode()).hexdigest(),
                "revision": None,
                "counts": {"images": 4},
            }
            for k in ("coco", "objects365", "celeba", "subjects200k")
        },
        "stages": {"index": "a", "plan": "b", "materialize": "c"},
        "counts": {
            "total": len(all_rows),
            "by_task": {t: sum(v.values()) for t, v in by_task_source.items()},
            "by_task_source": by_task_source,
            "oct_answers": {
                a: sum(r["task"] == "oct" and json.loads(r["solution"]) == a for r in all_rows) for a in ("yes", "no")
            },
        },
        "quarantine": {"total": 2, "by_reason": {"bbox_out_of_bounds": 1, "missing_image": 1}},
        "excluded_eval_images": 0,
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return out


@pytest.fixture
def build_dir(tmp_path) -> Path:
    return make_build(tmp_path / "builds")
