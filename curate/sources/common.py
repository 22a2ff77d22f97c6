"""Helpers shared by the source readers: safe paths, box checks, image checks."""

from __future__ import annotations

import io
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


def split_inside(files: list[Path], root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files inside ``root``, [(file, resolved target)] of those whose symlinks lead outside it); nothing is opened."""
    roots = imageio.real_roots([root])
    inside, escaped = [], []
    for f in files:
        target = imageio.outside(f, roots)
        if target is None:
            inside.append(f)
        else:
            escaped.append((f, target))
    return inside, escaped


def source_roots(sources: dict) -> tuple[str, ...]:
    """The folders a recipe's image references may lie in (symlinks resolved): each source's declared image
    folder or root; for a Subjects200K Hub source, its repository's Hugging Face cache folder."""
    folders: list[Path] = []
    for spec in sources.values():
        for key in ("images", "root", "path"):
            value = getattr(spec, key, None)
            if isinstance(value, Path):
                folders.append(value)
        if getattr(spec, "hub", None):
            from huggingface_hub import constants

            repo_id = spec.hub.partition("@")[0]
            folders.append(Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}")
    return imageio.real_roots(folders)


def resolver(root: Path):
    """``file_name -> str(root/file_name)``, or None when the name is absolute or leaves ``root`` (a CocoCollector resolve)."""

    def resolve(file_name: str) -> str | None:
        p = safe_join(root, file_name)
        return None if p is None else str(p)

    return resolve


def xywh_to_xyxy(
    bbox, width: float | None, height: float | None, *, slack: float = 1.0
) -> tuple[tuple[float, float, float, float] | None, str]:
    """Validate a COCO ``[x, y, w, h]`` box; return (xyxy, "") or (None, reason).

    Reasons: ``bbox_malformed``, ``bbox_nan``, ``bbox_negative``, ``bbox_zero_area``,
    ``bbox_out_of_bounds`` (beyond the image by more than ``slack`` pixels).
    """
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
    ):
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


_TAIL = 4096


def jpeg_complete(tail: bytes, head: bytes) -> bool:
    """False for JPEG bytes whose last 4 KiB hold no end-of-image marker (FF D9); other formats pass.

    A JPEG cut mid-scan keeps an intact header, so a header read alone cannot see it; entropy-coded
    data never holds the byte pair FF D9, so a cut file has none near its end.
    """
    return not head.startswith(b"\xff\xd8") or b"\xff\xd9" in tail


def check_image(
    path: Path | str, mode: str, expected: tuple[int, int] | None = None, roots: tuple[str, ...] | None = None
) -> tuple[tuple[int, int] | None, str]:
    """Check an image per ``verify_images`` mode: ``none``, ``exists``, ``header``.

    ``roots`` (:func:`curate.imageio.real_roots` of the source's folder): a file whose symlinks lead
    outside them is ``path_outside_root``, decided from names alone: the target is never opened.
    In ``header`` mode a JPEG without its end marker is ``image_truncated`` and, when ``expected``
    (width, height) is given, a different header size is ``image_size_mismatch``. Any size is read
    (the pixel limit is the build's: ``image_too_large`` at planning and cropping).
    Returns ((width, height) or None, reason); the size is kept for ``image_size_mismatch``. The reason is "" when
    fine, else ``path_outside_root``, ``image_missing``, ``image_unreadable``, ``image_truncated`` or
    ``image_size_mismatch``.
    """
    if mode == "none":
        return None, ""
    p = str(path)
    embedded = "#row=" in p
    if roots is not None and imageio.outside(imageio.split_ref(p)[0], roots) is not None:
        return None, "path_outside_root"
    if not embedded and not Path(p).is_file():
        return None, "image_missing"
    if mode == "exists":
        return None, ""
    if embedded:
        try:
            return check_image_bytes(imageio.read_bytes(p), mode, expected)
        except OSError:
            return None, "image_missing"
    try:
        size = imageio.header_size(p)
    except Exception:
        return None, "image_unreadable"
    with open(p, "rb") as f:
        head = f.read(2)
        f.seek(0, 2)
        f.seek(max(0, f.tell() - _TAIL))
        tail = f.read()
    if not jpeg_complete(tail, head):
        return None, "image_truncated"
    if expected is not None and tuple(size) != tuple(expected):
        return size, "image_size_mismatch"
    return size, ""


def check_image_bytes(img, mode: str, expected: tuple[int, int] | None = None) -> tuple[tuple[int, int] | None, str]:
    """The same checks for encoded bytes or an HF ``Image`` value (a struct with ``bytes``)."""
    data = img.get("bytes") if isinstance(img, dict) else img
    if mode == "none":
        return None, ""
    if not data:
        return None, "image_missing"
    if mode == "exists":
        return None, ""
    try:
        with imageio.open_unchecked(io.BytesIO(data)) as im:
            size = im.size
    except Exception:
        return None, "image_unreadable"
    if not jpeg_complete(data[-_TAIL:], data[:2]):
        return None, "image_truncated"
    if expected is not None and tuple(size) != tuple(expected):
        return size, "image_size_mismatch"
    return size, ""
