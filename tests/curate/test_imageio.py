"""Opening source images: the pixel limit and the source-folder guard (issue 9, items 1 and 10)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from PIL import Image

from curate import imageio
from curate.materialize.crops import crop_jobs, run_crop_job, store_key
from curate.plan.example import ImageRef
from curate.recipe import Crops, ModelFrame, Recipe
from curate.recipe.model import DEFAULT_MAX_IMAGE_PIXELS
from curate.sources.common import check_image, check_image_bytes
from tests.curate.materialize.test_crops import plan_with
from tests.support.corpus import make_photo, write_png_header

HUGE = (20000, 20000)  # 400 MP: Pillow's own check raises (over twice its limit)
LARGE = (10000, 10000)  # 100 MP: Pillow's own check warns


def test_default_limit_is_pillows():
    assert DEFAULT_MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS == imageio.DEFAULT_MAX_PIXELS
    assert Recipe.model_fields["quality"].default.max_image_pixels == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("size", [HUGE, LARGE])
def test_too_large_is_its_own_error_with_pixels_and_limit_and_no_warning(tmp_path, size):
    path = str(write_png_header(tmp_path / "big.png", size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any DecompressionBombWarning fails the test
        with pytest.raises(imageio.ImageTooLarge) as err:
            imageio.open_header(path)
        pixels = size[0] * size[1]
        assert str(err.value) == (
            f"{size[0]}x{size[1]} = {pixels:,} pixels, over the limit of {DEFAULT_MAX_IMAGE_PIXELS:,} "
            "(quality.max_image_pixels)"
        )
        with pytest.raises(imageio.ImageTooLarge, match="over the limit of 1,000 "):
            imageio.open_header(path, max_pixels=1000)
        with imageio.open_header(path, max_pixels=0) as im:  # 0: no limit
            assert im.size == size
        # the index reads any size from the header: the limit is the build's (never image_unreadable)
        assert check_image(path, "header") == (size, "")
        assert check_image_bytes(Path(path).read_bytes(), "header") == (size, "")
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_IMAGE_PIXELS  # Pillow's setting is left as it was


def test_crop_job_quarantines_too_large_and_outside_images(tmp_path):
    root = tmp_path / "src"
    write_png_header(root / "big.png", HUGE)
    make_photo(root / "good.jpg")
    outside = make_photo(tmp_path / "elsewhere" / "secret.jpg")
    (root / "link.jpg").symlink_to(outside)
    os.mkfifo(tmp_path / "elsewhere" / "fifo.jpg")  # opening it would block: it must never be opened
    (root / "fifo.jpg").symlink_to(tmp_path / "elsewhere" / "fifo.jpg")
    refs = [
        ImageRef("coco", str(i), str(root / n)) for i, n in enumerate(["big.png", "good.jpg", "link.jpg", "fifo.jpg"])
    ]
    plans = [plan_with([r]) for r in refs]
    roots = imageio.real_roots([root])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [job] = crop_jobs(plans, results=tmp_path / "r", frame=ModelFrame(), crops=Crops(), roots=roots)
        res = run_crop_job(job)
    failed = res.failed
    reason, detail = failed[store_key(refs[0])]
    assert reason == "image_too_large" and "400,000,000 pixels" in detail and "89,478,485" in detail
    assert store_key(refs[1]) in res.images
    for ref, target in ((refs[2], outside), (refs[3], tmp_path / "elsewhere" / "fifo.jpg")):
        reason, detail = failed[store_key(ref)]
        assert reason == "path_outside_root" and str(target) in detail
    # and with exclusion hashes the bytes of an outside file are not read either
    [job] = crop_jobs(
        plans[3:],
        results=tmp_path / "r2",
        frame=ModelFrame(),
        crops=Crops(),
        roots=roots,
        exclude_hashes=frozenset({"0" * 64}),
    )
    assert run_crop_job(job).failed[store_key(refs[3])][0] == "path_outside_root"
    # a limit from the recipe
    [job] = crop_jobs(plans[1:2], results=tmp_path / "r3", frame=ModelFrame(), crops=Crops(), max_pixels=1000)
    assert run_crop_job(job).failed[store_key(refs[1])][0] == "image_too_large"
