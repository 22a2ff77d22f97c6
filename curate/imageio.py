"""Opening source images from any reference a reader can produce.

A reference is either a filesystem path, or ``<file.parquet>#row=<i>&col=<name>``
for an image stored as bytes inside a Parquet file (HF ``Image`` feature: a
struct with ``bytes`` and ``path``). Parquet row groups are cached per process
so that reading many rows of one shard does not re-read the file.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from urllib.parse import parse_qs

from PIL import Image

PARQUET_MARK = "#row="


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


def read_bytes(ref: str) -> bytes:
    """The encoded bytes of the image behind ``ref``."""
    file, row, col = split_ref(ref)
    if row is None:
        return Path(file).read_bytes()
    value = _parquet_column(file, col)[row].as_py()
    if isinstance(value, dict):
        value = value.get("bytes")
    if not value:
        raise OSError(f"no image bytes in {file} row {row} column {col}")
    return value


def open_header(ref: str) -> Image.Image:
    """Open the image behind ``ref`` with only its header parsed (size, mode, format); nothing is decoded yet.

    Pass the result to :func:`open_image` to decode it: callers that need the
    original size to choose a draft size avoid opening the file twice. The
    caller owns the returned image (``close()`` it if it is not decoded).
    """
    file, row, _ = split_ref(ref)
    return Image.open(file if row is None else io.BytesIO(read_bytes(ref)))


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
    """(width, height) from the image header only; raises OSError on unreadable data."""
    with open_header(ref) as im:
        return im.size
