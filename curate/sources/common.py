"""Helpers shared by the source readers: safe paths, box checks, image checks."""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath

from curate import imageio


def safe_join(root: Path, name: str) -> Path | None:
    """``root/name``, or None when ``name`` is absolute or escapes ``root`` (``../``)."""
    if not name or "\x00" in name:
        return None
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        return None
    return root / Path(*p.parts)


def xywh_to_xyxy(bbox, width: float | None, height: float | None, *, slack: float = 1.0) -> tuple[tuple[float, float, float, float] | None, str]:
    """Validate a COCO ``[x, y, w, h]`` box; return (xyxy, "") or (None, reason).

    Reasons: ``bbox_malformed``, ``bbox_nan``, ``bbox_negative``, ``bbox_zero_area``,
    ``bbox_out_of_bounds`` (beyond the image by more than ``slack`` pixels).
    """
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        return None, "bbox_malformed"
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None, "bbox_nan"
    if w < 0 or h < 0 or x < -slack or y < -slack:
        return None, "bbox_negative"
    if w == 0 or h == 0:
        return None, "bbox_zero_area"
    if width is not None and height is not None and (x + w > width + slack or y + h > height + slack):
        return None, "bbox_out_of_bounds"
    return (x, y, x + w, y + h), ""


def check_image(path: Path | str, mode: str) -> tuple[tuple[int, int] | None, str]:
    """Check an image file per ``verify_images`` mode: ``none``, ``exists``, ``header``.

    Returns ((width, height) or None, reason); reason is "" when fine, else
    ``image_missing`` or ``image_unreadable``.
    """
    if mode == "none":
        return None, ""
    p = str(path)
    if "#row=" not in p and not Path(p).is_file():
        return None, "image_missing"
    if mode == "exists":
        return None, ""
    try:
        return imageio.header_size(p), ""
    except Exception:
        return None, "image_unreadable"
