"""Image checks shared by the CelebA, Subjects200K and RefCOCO readers.

:func:`curate.sources.common.check_image` reads the header; a JPEG cut
mid-scan has an intact header, so in ``header`` mode these checks also look
for the JPEG end-of-image marker (entropy-coded data never holds the byte
pair FF D9, so a cut file has none near its end). Reasons: ``image_missing``,
``image_unreadable``, ``image_truncated``, ``image_size_mismatch``.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from curate.sources.common import check_image

_TAIL = 4096


def jpeg_complete(tail: bytes, head: bytes) -> bool:
    """False for JPEG bytes whose last ``_TAIL`` bytes hold no end-of-image marker; other formats pass."""
    return not head.startswith(b"\xff\xd8") or b"\xff\xd9" in tail


def check_file(path: Path | str, mode: str, expected: tuple[int, int] | None = None) -> tuple[tuple[int, int] | None, str]:
    """``check_image`` plus, in ``header`` mode, the JPEG end marker and (when given) the expected size."""
    size, reason = check_image(path, mode)
    if reason or mode != "header":
        return size, reason
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0, 2)
        f.seek(max(0, f.tell() - _TAIL))
        tail = f.read()
    if not jpeg_complete(tail, head):
        return None, "image_truncated"
    if expected is not None and size is not None and tuple(size) != tuple(expected):
        return None, "image_size_mismatch"
    return size, ""


def check_bytes(img, mode: str) -> tuple[tuple[int, int] | None, str]:
    """The same checks for an HF ``Image`` value (a struct with ``bytes``, or raw bytes)."""
    data = img.get("bytes") if isinstance(img, dict) else img
    if mode == "none":
        return None, ""
    if not data:
        return None, "image_missing"
    if mode == "exists":
        return None, ""
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
    except Exception:
        return None, "image_unreadable"
    if not jpeg_complete(data[-_TAIL:], data[:2]):
        return None, "image_truncated"
    return size, ""
