"""The model frame: the size the Qwen2.5-VL processor will feed the model.

Qwen2-VL / Qwen2.5-VL image processors resize every image with ``smart_resize``:
both sides become multiples of the patch multiple (28 = 14-pixel patches merged
2x2), the area lands within ``[min_pixels, max_pixels]`` and the aspect ratio is
kept as closely as possible. :func:`smart_resize` computes exactly the same
numbers (same rounding: Python's ``round`` then floor/ceil in the out-of-budget
branches), so an image stored at :func:`model_size` is a fixed point: the
processor leaves it unchanged, and a box stored in that frame is in the frame
the model sees (and answers in).
"""

from __future__ import annotations

import math

from curate.recipe import ModelFrame

MAX_ASPECT = 200  # the processor refuses more extreme aspect ratios


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """(height, width) the Qwen2.5-VL processor resizes an image of ``height`` x ``width`` to.

    Raises ValueError when the aspect ratio exceeds 200 (the processor does too)
    or a side is not positive.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT}, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def model_size(width: int, height: int, frame: ModelFrame) -> tuple[int, int]:
    """(width, height) of an image of ``width`` x ``height`` in the model frame."""
    h, w = smart_resize(height, width, frame.patch_multiple, frame.min_pixels, frame.max_pixels)
    return w, h


def box_to_frame(
    box: tuple[float, float, float, float] | list[float],
    region: tuple[float, float, float, float],
    stored: tuple[int, int],
) -> list[int] | None:
    """Map a box from source pixels to integer pixels of a stored image.

    ``region`` is the part of the source image the stored image shows
    (``[x1, y1, x2, y2]`` source pixels: the whole image or a crop), ``stored``
    its stored (width, height). The result is ``[x1, y1, x2, y2]`` rounded (half up) to
    integers and clamped to the stored image; None when nothing of the box is
    left inside it.
    """
    rx1, ry1, rx2, ry2 = region
    sw, sh = stored
    rw, rh = rx2 - rx1, ry2 - ry1

    def to(v: float, origin: float, extent: float, size: int) -> int:
        # multiply before dividing (exact for integer inputs) and round half up
        return min(max(math.floor((v - origin) * size / extent + 0.5), 0), size)

    x1, x2 = to(box[0], rx1, rw, sw), to(box[2], rx1, rw, sw)
    y1, y2 = to(box[1], ry1, rh, sh), to(box[3], ry1, rh, sh)
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2, y2]
