"""Assembly: plans -> rows with FEATURES, VLT boxes in the stored frame, bad images quarantined."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from curate.materialize.crops import crop_jobs, run_crop_job
from curate.materialize.rows import FEATURES, parse_solution
from curate.materialize.shards import PartSpec, materialize_part
from curate.plan.example import ExamplePlan, ImageRef
from curate.recipe import Crops, ModelFrame
from tests.support.corpus import make_photo


def _msg(n_images: int, text: str) -> list[dict]:
    parts = [{"type": "image", "text": None} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},
        {"role": "user", "content": parts},
    ]


def synthetic_plans(root: Path, n_images: int = 6) -> list[ExamplePlan]:
    """A few examples of every task over generated 640x480 photos (the 2nd image is 800x600)."""
    paths = [
        str(make_photo(root / f"img{i}.jpg", size=(800, 600) if i == 1 else (640, 480), seed=i))
        for i in range(n_images)
    ]
    plans = []
    for i, p in enumerate(paths):
        crop = ImageRef("coco", str(i), p, (40.0 + i, 30.0, 240.0, 230.0), f"o{i}")
        other = paths[(i + 1) % len(paths)]
        plans.append(
            ExamplePlan(
                "oct",
                "coco",
                [f"o{i}", str(i)],
                [crop, ImageRef("coco", str(i), p)],
                _msg(2, "Same object?"),
                "yes",
                [],
                "oct.q01",
            )
        )
        plans.append(
            ExamplePlan(
                "oct",
                "coco",
                [f"o{i}", str((i + 1) % len(paths))],
                [crop, ImageRef("coco", str((i + 1) % len(paths)), other)],
                _msg(2, "Same object?"),
                "no",
                [],
                "oct.q02",
                {"negative": "easy"},
            )
        )
        plans.append(
            ExamplePlan(
                "vlt",
                "refcoco",
                [f"r{i}"],
                [ImageRef("refcoco", str(i), p)],
                _msg(1, "Where is the dog?"),
                [100.0, 60.0, 300.5, 240.2],
                [],
                "vlt.t01",
            )
        )
        plans.append(
            ExamplePlan(
                "ict_single",
                "coco",
                [f"o{i}"],
                [crop, ImageRef("coco", str(i), p)],
                _msg(2, "Who is <Ann>?"),
                "<Ann>",
                ["<Ann>"],
                "ict.q01",
            )
        )
        refs = [
            ImageRef("coco", str(i), p, (0, 0, 100, 100), "a"),
            ImageRef("coco", str(i), p, (300, 200, 420, 330), "b"),
        ]
        plans.append(
            ExamplePlan(
                "ict_multi",
                "coco",
                ["a", "b"],
                refs + [ImageRef("coco", str(i), p)],
                _msg(3, "Describe."),
                ["<Bo>", "<Cy>"],
                ["<Bo>", "<Cy>"],
                "ictm.q01",
            )
        )
    return plans


def run_stages(plans: list[ExamplePlan], tmp: Path, *, exclude: frozenset = frozenset()) -> dict:
    work = tmp / "work"
    jobs = crop_jobs(plans, results=work / "jobs", frame=ModelFrame(), crops=Crops(), exclude_hashes=exclude)
    images, failed, excluded = {}, {}, set()
    for r in map(run_crop_job, jobs):
        images.update(r.images)
        failed.update(r.failed), excluded.update(r.excluded)
    plans_path = work / "plans.jsonl"
    plans_path.write_text("".join(json.dumps(p.to_json()) + "\n" for p in plans))
    spec = PartSpec(
        0,
        str(plans_path),
        str(work / "part.parquet"),
        str(work / "part.json"),
        str(work / "jobs"),
        images,
        failed,
        frozenset(excluded),
    )
    return materialize_part(spec)


def test_rows_have_the_contract_features_and_valid_solutions(tmp_path):
    plans = synthetic_plans(tmp_path / "src")
    meta = run_stages(plans, tmp_path)
    assert meta["rows"] == len(plans) and meta["quarantine"] == []
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "work" / "part.parquet"), split="train")
    assert ds.features == FEATURES
    for row, plan in zip(ds, plans):
        assert row["id"] == plan.content_id()
        assert len(row["images"]) == sum(1 for m in row["prompt"] for p in m["content"] if p["type"] == "image")
        assert all(set(p) == {"type", "text"} for m in row["prompt"] for p in m["content"])
        parse_solution(row["task"], row["solution"])
    assert meta["by_task"] == {"ict_multi": 6, "ict_single": 6, "oct": 12, "vlt": 6}
    assert meta["oct_answers"] == {"no": 6, "yes": 6}


def test_vlt_box_is_in_the_stored_frame(tmp_path):
    plans = [p for p in synthetic_plans(tmp_path / "src") if p.task == "vlt"][:2]
    run_stages(plans, tmp_path)
    rows = pq.read_table(tmp_path / "work" / "part.parquet").to_pylist()
    import io

    from PIL import Image

    # 640x480 -> 644x476: x * 644/640, y * 476/480
    assert json.loads(rows[0]["solution"]) == [101, 60, 302, 238]
    assert Image.open(io.BytesIO(rows[0]["images"][0]["bytes"])).size == (644, 476)
    # 800x600 -> 812x588
    assert json.loads(rows[1]["solution"]) == [102, 59, 305, 235]  # 101.5 rounds half up; 58.8, 305.0, 235.3


def test_corrupt_and_missing_images_become_quarantine_rows(tmp_path):
    plans = synthetic_plans(tmp_path / "src", n_images=3)
    Path(plans[0].images[-1].path).write_bytes(b"\xff\xd8 broken")  # img0 is corrupt now
    Path(plans[-1].images[-1].path).unlink()  # img2 is gone
    meta = run_stages(plans, tmp_path)
    reasons = sorted({q["reason"] for q in meta["quarantine"]})
    assert reasons == ["image_missing", "image_unreadable"]
    dropped = {q["record_id"] for q in meta["quarantine"]}
    assert all(q["stage"] == "materialize" for q in meta["quarantine"])
    uses_bad = {p.content_id() for p in plans if any(Path(r.path).name in ("img0.jpg", "img2.jpg") for r in p.images)}
    assert dropped == uses_bad
    assert meta["rows"] == len(plans) - len(uses_bad) > 0


def test_excluded_evaluation_images_are_dropped_and_counted(tmp_path):
    plans = synthetic_plans(tmp_path / "src", n_images=3)
    digest = hashlib.sha256(Path(plans[0].images[-1].path).read_bytes()).hexdigest()
    meta = run_stages(plans, tmp_path, exclude=frozenset({digest}))
    uses = [p for p in plans if any(r.path.endswith("img0.jpg") for r in p.images)]
    assert meta["excluded_examples"] == len(uses) and meta["excluded_paths"] == [plans[0].images[-1].path]
    assert meta["rows"] == len(plans) - len(uses) and meta["quarantine"] == []


def test_finished_part_is_not_redone(tmp_path):
    plans = synthetic_plans(tmp_path / "src", n_images=2)
    first = run_stages(plans, tmp_path)
    part = tmp_path / "work" / "part.parquet"
    mtime = part.stat().st_mtime_ns
    again = run_stages(plans, tmp_path)
    assert again["skipped"] and not first["skipped"]
    assert part.stat().st_mtime_ns == mtime and again["sha256"] == first["sha256"]
