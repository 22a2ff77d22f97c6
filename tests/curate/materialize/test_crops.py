"""Crop stage: one decode per source image, model-frame sizes, draft decoding, failures recorded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate import imageio
from curate.materialize.crops import (
    crop_jobs,
    cut_pieces,
    draft_scale,
    pixel_region,
    run_crop_job,
    snapped_region,
    store_key,
)
from curate.materialize.resize import model_size
from curate.materialize.stored import CropResult, Failure, Stored
from curate.plan.example import ExamplePlan, ImageRef
from curate.recipe import Crops, ModelFrame
from tests.support.corpus import make_photo


def plan_with(refs: list[ImageRef]) -> ExamplePlan:
    content = [{"type": "image", "text": None} for _ in refs] + [{"type": "text", "text": "Who is it?"}]
    return ExamplePlan(
        task="ict_single",
        source=refs[0].source,
        source_ids=[r.image_id for r in refs],
        images=refs,
        messages=[{"role": "user", "content": content}],
        solution="<Ann>",
        names=["<Ann>"],
        template="t",
    )


def _stored(job, stored: Stored) -> bytes:
    with open(Path(job.result_path).with_suffix(".bin"), "rb") as f:
        f.seek(stored.offset)
        return f.read(stored.length)


def test_pixel_region_rounds_outwards_and_clips():
    assert pixel_region(None, (640, 480), True) == (0, 0, 640, 480)
    assert pixel_region((10.2, 20.7, 100.1, 200.0), (640, 480), True) == (10, 20, 101, 200)
    assert pixel_region((-5, -5, 700, 500), (640, 480), True) == (0, 0, 640, 480)
    assert pixel_region((-5, -5, 700, 500), (640, 480), False) == (-5, -5, 700, 500)
    with pytest.raises(ValueError):
        pixel_region((700, 10, 800, 20), (640, 480), True)


def test_draft_scale_only_when_every_output_is_downscaled_enough():
    assert draft_scale([(0, 0, 4000, 3000)], [(1000, 750)]) == 4
    assert draft_scale([(0, 0, 4000, 3000), (0, 0, 400, 300)], [(1000, 750), (392, 308)]) == 1
    assert draft_scale([(0, 0, 640, 480)], [(644, 476)]) == 1


def test_cut_pieces_decodes_once_and_gives_model_frame_sizes(tmp_path, monkeypatch):
    src = make_photo(tmp_path / "a.jpg")
    calls = []
    real = imageio.open_image
    monkeypatch.setattr(imageio, "open_image", lambda ref, **kw: calls.append(kw) or real(ref, **kw))
    frame = ModelFrame()
    boxes = [None, (10, 10, 110, 90), (300.5, 200.2, 500.9, 470.0), (0, 0, 33, 40), (600, 400, 640, 480)]
    out = list(cut_pieces(str(src), boxes, frame, Crops()))
    assert len(calls) == 1
    for box, (region, im) in zip(boxes, out):
        assert model_size(*im.size, frame) == im.size  # a fixed point of the processor's resize
        if box is not None:  # grid-snapped: the region holds the box, is whole patches, and is cut without resampling
            assert region[0] <= box[0] and region[1] <= box[1] and region[2] >= box[2] and region[3] >= box[3]
            assert im.size == (region[2] - region[0], region[3] - region[1])
            assert im.size[0] - (box[2] - box[0]) < 29 and im.size[1] - (box[3] - box[1]) < 29
            assert 0 <= region[0] and 0 <= region[1] and region[2] <= 640 and region[3] <= 480
    assert out[0][1].size == (644, 476) and out[0][0] == (0, 0, 640, 480)


def test_snapped_region():
    frame = ModelFrame()
    assert snapped_region((10, 10, 110, 90), (640, 480), frame) == (4, 8, 116, 92)  # 100x80 -> 112x84
    assert snapped_region((600, 400, 640, 480), (640, 480), frame) == (584, 396, 640, 480)  # shifted inside
    assert snapped_region((0, 0, 630, 470), (640, 480), frame) is None  # 644 > 640: resize instead
    assert snapped_region((0, 0, 100, 100), (640, 480), ModelFrame(max_pixels=56 * 56)) is None  # over budget


def test_draft_decoding_used_when_outputs_are_small(tmp_path, monkeypatch):
    src = make_photo(tmp_path / "big.jpg", size=(2000, 1600))
    seen = []
    real = imageio.open_image
    monkeypatch.setattr(imageio, "open_image", lambda ref, **kw: seen.append(kw.get("draft_size")) or real(ref, **kw))
    frame = ModelFrame(max_pixels=200704)
    [(region, im)] = cut_pieces(str(src), [None], frame, Crops())
    assert seen == [(500, 400)]  # decoded at 1/4
    assert im.size == model_size(2000, 1600, frame)
    # the picture content survives: the red gradient runs left to right
    arr = np.asarray(im)
    assert arr[:, -5:, 0].mean() > arr[:, :5, 0].mean() + 150


def test_crop_content_matches_the_box(tmp_path):
    arr = np.zeros((480, 640, 3), np.uint8)
    arr[100:200, 300:400] = (250, 10, 10)  # a red square
    Image.fromarray(arr).save(tmp_path / "sq.png")
    [(region, im)] = cut_pieces(str(tmp_path / "sq.png"), [(300, 100, 400, 200)], ModelFrame(), Crops())
    assert region == (294, 94, 406, 206) and im.size == (112, 112)
    assert (np.asarray(im) == arr[94:206, 294:406]).all()  # exact pixels, no resampling
    [(region, im)] = cut_pieces(
        str(tmp_path / "sq.png"), [(300, 100, 400, 200)], ModelFrame(max_pixels=56 * 56), Crops()
    )
    assert im.size == (56, 56)  # over the budget: resized down instead
    center = np.asarray(im)[10:-10, 10:-10]
    assert center[..., 0].mean() > 240 and center[..., 1].mean() < 20


def test_run_crop_job_stores_images_records_failures_and_is_resumable(tmp_path):
    good = make_photo(tmp_path / "src" / "good.jpg")
    (tmp_path / "src" / "bad.jpg").write_bytes(b"not a jpeg")
    refs = [
        ImageRef("coco", "1", str(good)),
        ImageRef("coco", "1", str(good), (10, 10, 200, 150), "o1"),
        ImageRef("coco", "2", str(tmp_path / "src" / "bad.jpg")),
        ImageRef("coco", "3", str(tmp_path / "src" / "missing.jpg")),
        ImageRef("coco", "1", str(good), (700, 10, 800, 20), "o2"),
    ]
    plans = [plan_with([refs[1], refs[0]]), plan_with([refs[1], refs[2]]), plan_with([refs[3]]), plan_with([refs[4]])]
    results = tmp_path / "jobs"
    jobs = crop_jobs(plans, results=results, frame=ModelFrame(), crops=Crops(), images_per_job=2)
    assert [len(j.items) for j in jobs] == [2, 1]  # grouped by source image: good, bad | missing
    assert len(jobs[0].items[0][1]) == 3  # the repeated crop is asked for once
    res = [run_crop_job(j) for j in jobs]
    assert res[0].decoded == 1
    k0, k1 = store_key(refs[0]), store_key(refs[1])
    assert res[0].images[k0].size == (644, 476) and res[0].images[k0].region == (0, 0, 640, 480)
    assert res[0].images[k0].job == 0 and res[1].images == {}
    with Image.open(io.BytesIO(_stored(jobs[0], res[0].images[k1]))) as im:
        assert im.format == "JPEG" and im.size == res[0].images[k1].size
    assert res[0].failed[store_key(refs[2])].reason == "image_unreadable"
    assert res[0].failed[store_key(refs[4])].reason == "crop_region_empty"
    assert res[1].failed[store_key(refs[3])].reason == "image_missing"
    # a finished job is not redone
    mtime = Path(jobs[0].result_path).stat().st_mtime_ns
    assert run_crop_job(jobs[0]) == res[0]
    assert Path(jobs[0].result_path).stat().st_mtime_ns == mtime


def test_excluded_hash_is_not_decoded(tmp_path):
    import hashlib

    src = make_photo(tmp_path / "eval.jpg")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    plans = [plan_with([ImageRef("coco", "1", str(src))])]
    [job] = crop_jobs(
        plans, results=tmp_path / "r", frame=ModelFrame(), crops=Crops(), exclude_hashes=frozenset({digest})
    )
    res = run_crop_job(job)
    assert res.excluded == [str(src)] and res.images == {} and res.decoded == 0


def test_png_format_and_parquet_embedded_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    Image.fromarray(np.full((528, 1056, 3), 128, np.uint8)).save(buf, format="JPEG")
    pq.write_table(pa.table({"image": [{"bytes": buf.getvalue(), "path": None}]}), tmp_path / "s.parquet")
    ref = imageio.parquet_ref(tmp_path / "s.parquet", 0)
    plans = [plan_with([ImageRef("s200k", "p0", ref, (8, 8, 520, 520))])]
    [job] = crop_jobs(plans, results=tmp_path / "r", frame=ModelFrame(), crops=Crops(format="png"))
    res = run_crop_job(job)
    [(key, stored)] = res.images.items()
    assert stored.size == (504, 504) and stored.region == (8, 8, 520, 520)  # 532 px (19 patches) would leave the image
    with Image.open(io.BytesIO(_stored(job, stored))) as im:
        assert im.format == "PNG"
    assert CropResult.from_json(json.loads(Path(job.result_path).read_text())) == res


def test_result_file_keeps_its_on_disk_form(tmp_path):
    """job-NNNNN.json holds plain lists (the job is the file's own), so results of earlier runs still resume."""
    src = make_photo(tmp_path / "a.jpg")
    plans = [plan_with([ImageRef("coco", "1", str(src)), ImageRef("coco", "2", str(tmp_path / "gone.jpg"))])]
    [job] = crop_jobs(plans, results=tmp_path / "r", frame=ModelFrame(), crops=Crops())
    res = run_crop_job(job)
    on_disk = json.loads(Path(job.result_path).read_text())
    k = store_key(plans[0].images[0])
    s = res.images[k]
    assert on_disk["images"][k] == [s.width, s.height, s.x1, s.y1, s.x2, s.y2, s.offset, s.length]
    assert on_disk["failed"] == {store_key(plans[0].images[1]): list(res.failed[store_key(plans[0].images[1])])}
    assert on_disk == res.to_json() and set(on_disk) == {"index", "images", "failed", "excluded", "decoded"}
    assert isinstance(CropResult.from_json(on_disk).failed[store_key(plans[0].images[1])], Failure)
