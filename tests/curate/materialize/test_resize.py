"""The model frame must be exactly what the Qwen2.5-VL processor computes (a fixed point)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from curate.materialize.resize import box_to_frame, model_size, smart_resize
from curate.recipe import ModelFrame


def test_matches_transformers_smart_resize_on_many_sizes():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize

    rng = random.Random(0)
    budgets = [(3136, 12845056), (3136, 200704), (56 * 56, 16 * 28 * 28), (100000, 400000)]
    for _ in range(2000):
        h, w = rng.randint(1, 3000), rng.randint(1, 3000)
        if max(h, w) / min(h, w) > 200:
            continue
        lo, hi = rng.choice(budgets)
        assert smart_resize(h, w, 28, lo, hi) == hf_smart_resize(h, w, 28, lo, hi), (h, w, lo, hi)


def test_stored_size_is_a_fixed_point():
    rng = random.Random(1)
    frame = ModelFrame(min_pixels=3136, max_pixels=200704)
    for _ in range(500):
        w, h = rng.randint(10, 2500), rng.randint(10, 2500)
        sw, sh = model_size(w, h, frame)
        assert sw % 28 == 0 and sh % 28 == 0
        assert frame.min_pixels <= sw * sh <= frame.max_pixels
        assert model_size(sw, sh, frame) == (sw, sh)


def test_refuses_extreme_aspect_ratio_like_the_processor():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)


def _processor(backend: str, frame: ModelFrame):
    size = {"shortest_edge": frame.min_pixels, "longest_edge": frame.max_pixels}
    if backend == "pil":
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return Qwen2VLImageProcessorPil(size=size)
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(size=size)


@pytest.mark.parametrize("backend", ["pil", "torchvision"])
@pytest.mark.parametrize("size", [(640, 480), (178, 218), (1056, 528), (37, 91), (2000, 1500)])
def test_qwen_image_processor_leaves_stored_images_unchanged(size, backend):
    """image_grid_thw * 14 of the real processor equals the stored size (no resize happens)."""
    frame = ModelFrame(min_pixels=3136, max_pixels=401408)
    sw, sh = model_size(*size, frame)
    stored = Image.fromarray(np.random.default_rng(0).integers(0, 255, (sh, sw, 3), dtype=np.uint8))
    proc = _processor(backend, frame)
    assert proc.size["longest_edge"] == frame.max_pixels  # transformers 5.17 class-level size bug guard
    out = proc(images=[stored], return_tensors="np")
    t, gh, gw = (int(v) for v in out["image_grid_thw"][0])
    assert (gw * 14, gh * 14) == (sw, sh)


def test_box_to_frame_scales_rounds_and_clamps():
    # whole 640x480 image stored at 644x476
    assert box_to_frame([0, 0, 640, 480], (0, 0, 640, 480), (644, 476)) == [0, 0, 644, 476]
    assert box_to_frame([100, 50, 200, 150], (0, 0, 640, 480), (644, 476)) == [101, 50, 201, 149]
    # box spilling over the image is clamped
    assert box_to_frame([-5, -5, 700, 500], (0, 0, 640, 480), (644, 476)) == [0, 0, 644, 476]
    # box in a crop region: offset by the region's origin
    assert box_to_frame([110, 60, 150, 100], (100, 50, 200, 150), (100, 100)) == [10, 10, 50, 50]
    # nothing left inside
    assert box_to_frame([700, 10, 800, 20], (0, 0, 640, 480), (644, 476)) is None
