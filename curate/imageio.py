"""Opening source images from any reference a reader can produce.

A reference is either a filesystem path, or ``<file.parquet>#row=<i>&col=<name>``
for an image stored as bytes inside a Parquet file (HF ``Image`` feature: a
struct with ``bytes`` and ``path``). Parquet row groups are cached per process
so that reading many rows of one shard does not re-read the file.

Two guards apply before any pixel is decoded. ``roots`` (the declared source
folders, symlinks resolved): a reference whose file resolves outside all of
them raises :class:`PathOutsideRoot` before the file is opened. ``max_pixels``
(default Pillow's ``Image.MAX_IMAGE_PIXELS``): an image whose header declares
more pixels raises :class:`ImageTooLarge`; Pillow's own decompression-bomb
check (a warning, then an error at twice its limit) is replaced by this one,
so nothing is printed.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from pathlib import Path
from urllib.parse import parse_qs

from PIL import Image

from curate.recipe.model import DEFAULT_MAX_IMAGE_PIXELS

PARQUET_MARK = "#row="
DEFAULT_MAX_PIXELS: int = DEFAULT_MAX_IMAGE_PIXELS  # Pillow's Image.MAX_IMAGE_PIXELS (a test checks they agree)
_PILLOW_CHECK = threading.Lock()


class PathOutsideRoot(OSError):
    """The reference's file resolves (symlinks followed) outside every declared source folder."""


class ImageTooLarge(ValueError):
    """The image header declares more pixels than the limit."""

    def __init__(self, size: tuple[int, int], limit: int):
        self.size, self.pixels, self.limit = tuple(size), size[0] * size[1], limit
        super().__init__(
            f"{size[0]}x{size[1]} = {self.pixels:,} pixels, over the limit of {limit:,} (quality.max_image_pixels)"
        )


def real_roots(roots) -> tuple[str, ...]:
    """The folders with every symlink resolved (a root may itself be a link)."""
    return tuple(sorted({os.path.realpath(r) for r in roots}))


def outside(path: str | Path, roots: tuple[str, ...]) -> str | None:
    """The resolved target of ``path`` when it lies outside every root of :func:`real_roots`, else None.

    Only names are resolved (``os.path.realpath``): the target is never opened.
    """
    real = os.path.realpath(path)
    if any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
        return None
    return real


def check_inside(ref: str, roots: tuple[str, ...] | None) -> None:
    """Raise :class:`PathOutsideRoot` when ``ref``'s file resolves outside ``roots`` (None: no check)."""
    if roots is None:
        return
    file = split_ref(ref)[0]
    real = outside(file, roots)
    if real is not None:
        raise PathOutsideRoot(f"{file} resolves to {real}, outside the source folders")


def parquet_ref(file: str | Path, row: int, col: str = "image") -> str:
    return f"{file}{PARQUET_MARK}{row}&col={col}"


def split_ref(ref: str) -> tuple[str, int | None, str | None]:
    """(file, row, column); row and column are None for plain files."""
    if PARQUET_MARK not in ref:
        return ref, None, None
    file, query = ref.split("#", 1)
    q = parse_qs(query)
    return file, int(q["row"][0]), q.get("col", ["image"])[0]


@functools.lru_cache(maxsize=4)
def _parquet_column(file: str, col: str):
    import pyarrow.parquet as pq

    return pq.read_table(file, columns=[col]).column(col)


def read_bytes(ref: str, *, roots: tuple[str, ...] | None = None) -> bytes:
    """The encoded bytes of the image behind ``ref`` (``roots``: see :func:`check_inside`)."""
    check_inside(ref, roots)
    file, row, col = split_ref(ref)
    if row is None:
        return Path(file).read_bytes()
    value = _parquet_column(file, col)[row].as_py()
    if isinstance(value, dict):
        value = value.get("bytes")
    if not value:
        raise OSError(f"no image bytes in {file} row {row} column {col}")
    return value


def open_unchecked(src) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb check (callers apply :func:`check_pixels`)."""
    with _PILLOW_CHECK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(src)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_pixels(size: tuple[int, int], max_pixels: int | None = None) -> None:
    """Raise :class:`ImageTooLarge` when ``size`` has more pixels than ``max_pixels`` (None: Pillow's default)."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if limit and size[0] * size[1] > limit:
        raise ImageTooLarge(size, limit)


def open_header(ref: str, *, roots: tuple[str, ...] | None = None, max_pixels: int | None = None) -> Image.Image:
    """Open the image behind ``ref`` with only its header parsed (size, mode, format); nothing is decoded yet.

    Pass the result to :func:`open_image` to decode it: callers that need the
    original size to choose a draft size avoid opening the file twice. The
    caller owns the returned image (``close()`` it if it is not decoded).
    Raises :class:`PathOutsideRoot` (``roots``) before opening anything and
    :class:`ImageTooLarge` (``max_pixels``) before decoding anything.
    """
    check_inside(ref, roots)
    file, row, _ = split_ref(ref)
    im = open_unchecked(file if row is None else io.BytesIO(read_bytes(ref)))
    try:
        check_pixels(im.size, max_pixels)
    except ImageTooLarge:
        im.close()
        raise
    return im


def open_image(ref: str | Image.Image, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode the image behind ``ref`` (RGB); ``ref`` may also be an :func:`open_header` result.

    ``draft_size`` lets the JPEG decoder downscale by a power of two while
    decoding when the caller only needs at least that size.
    """
    im = ref if isinstance(ref, Image.Image) else open_header(ref)
    try:
        if draft_size is not None and im.format == "JPEG":
            im.draft("RGB", draft_size)
        im.load()  # Pillow closes a file it opened itself once a single-frame image is loaded
    except BaseException:
        im.close()
        raise
    return im if im.mode == "RGB" else im.convert("RGB")


def header_size(ref: str) -> tuple[int, int]:
    """(width, height) from the image header only, whatever the size; raises OSError on unreadable data."""
    with open_header(ref, max_pixels=0) as im:
        return im.size
