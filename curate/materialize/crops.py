"""Crop stage: cut every image the plans name, in the model frame, decoding each source image once.

Requests (:class:`curate.plan.example.ImageRef`) are grouped by source image
across the whole mixture (:func:`crop_jobs`); a job holds a run of source
images and, for each, all the distinct regions examples need from it (the
whole image and/or crops). :func:`run_crop_job` decodes each source image once
(JPEG draft decoding by a power of two when every output from it is
downscaled at least that much), cuts all its regions from that one decode,
brings each to a size the Qwen2.5-VL processor leaves unchanged
(:mod:`curate.materialize.resize`) and encodes it (``recipe.crops.format`` /
``jpeg_quality``).

Object crops are *grid-snapped*: the box (margin included) is widened to the
next multiple of the patch multiple in each direction (less than one patch,
centred, shifted to stay inside the image), so the cut is already in the
model frame and needs no resampling at all: sharper crops, and about half the
CPU of crop-then-resize. Whole images, crops whose snapped size would leave the
image or the pixel budget, and outputs that are downscaled (JPEG draft
decoding when every output of an image allows it) are resized with bicubic
filtering to exactly ``smart_resize``'s size instead.

A job's outputs are appended to one pack file (``job-NNNNN.bin``) and its
result (:class:`curate.materialize.stored.CropResult`: where each stored
image is and what it shows, why each failed key could not be cut) to ``job-NNNNN.json``, written last and atomically: a job whose result
file exists is done and is skipped on a rerun.

A source image that cannot be read is not an exception for the build: the job
records the failure (``image_missing`` / ``image_unreadable``; ``path_outside_root`` for a file
whose symlinks lead outside the source folders, never opened; ``image_too_large`` for a header
over ``quality.max_image_pixels``, never decoded) and the
examples that need it become quarantine rows at assembly. With evaluation
hashes given, the sha256 of each source image's bytes is checked first and a
match is recorded as ``excluded`` without decoding.

Job functions are top-level and take one picklable argument, so any executor
(:mod:`curate.materialize.executor`) can run them.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image

from curate import imageio
from curate.fileio import atomic_path, atomic_write_bytes
from curate.materialize.resize import model_size
from curate.materialize.stored import CropResult, Failure, Region, Stored
from curate.plan.example import ExamplePlan, ImageRef
from curate.recipe import Crops, ModelFrame

DRAFT_SCALES = (8, 4, 2)
PACK_BUFFER = 1 << 22  # pack files are written in few large writes, not one per stored image


def store_key(ref: ImageRef) -> str:
    """Content address of one stored image (stable over runs and machines)."""
    return hashlib.sha256(f"{ref.key()}|{ref.path}".encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class CropJob:
    """One unit of crop work: source images with the regions wanted from each."""

    index: int
    items: tuple[
        tuple[str, tuple[tuple[str, tuple[float, float, float, float] | None], ...]], ...
    ]  # (path, ((key, box), ...))
    result_path: str  # job-NNNNN.json; the pack file is job-NNNNN.bin next to it
    frame: ModelFrame
    crops: Crops
    exclude_hashes: frozenset[str] = field(default_factory=frozenset)
    roots: tuple[str, ...] | None = None  # source folders, symlinks resolved: files leading outside are refused
    max_pixels: int | None = None  # quality.max_image_pixels (None: Pillow's default; 0: no limit)


def image_keys(plans: list[ExamplePlan]) -> list[list[str]]:
    """The store keys of each plan's images (compute once, pass to :func:`crop_jobs` and use for the shards)."""
    return [[store_key(ref) for ref in plan.images] for plan in plans]


def crop_jobs(
    plans: list[ExamplePlan],
    *,
    results: Path,
    frame: ModelFrame,
    crops: Crops,
    exclude_hashes: frozenset[str] = frozenset(),
    images_per_job: int = 64,
    keys: list[list[str]] | None = None,
    roots: tuple[str, ...] | None = None,
    max_pixels: int | None = None,
) -> list[CropJob]:
    """Group the plans' image requests by source image, in first-use order, into jobs (``keys``: :func:`image_keys`)."""
    by_path: dict[str, dict[str, tuple[float, float, float, float] | None]] = {}
    for plan, plan_keys in zip(plans, keys if keys is not None else image_keys(plans)):
        for ref, key in zip(plan.images, plan_keys):
            by_path.setdefault(ref.path, {}).setdefault(key, ref.box)
    paths = list(by_path)
    jobs = []
    for i in range(0, len(paths), images_per_job):
        chunk = paths[i : i + images_per_job]
        items = tuple((p, tuple(by_path[p].items())) for p in chunk)
        n = len(jobs)
        jobs.append(
            CropJob(n, items, str(results / f"job-{n:05d}.json"), frame, crops, exclude_hashes, roots, max_pixels)
        )
    return jobs


def pixel_region(box: tuple[float, float, float, float] | None, size: tuple[int, int], clip: bool) -> Region:
    """Integer source-pixel region of a request: the whole image, or the box rounded outwards."""
    w, h = size
    if box is None:
        return (0, 0, w, h)
    x1, y1, x2, y2 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    if clip:
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty crop region {box} in a {w}x{h} image")
    return (x1, y1, x2, y2)


def snapped_region(region: Region, size: tuple[int, int], frame: ModelFrame) -> Region | None:
    """``region`` widened to whole patches (centred, kept inside the image), or None when that is not possible."""
    m = frame.patch_multiple
    rw, rh = region[2] - region[0], region[3] - region[1]
    sw, sh = -(-rw // m) * m, -(-rh // m) * m
    inside = region[0] >= 0 and region[1] >= 0 and region[2] <= size[0] and region[3] <= size[1]
    if not inside or sw > size[0] or sh > size[1] or not frame.min_pixels <= sw * sh <= frame.max_pixels:
        return None
    if max(sw, sh) / min(sw, sh) > 200:
        return None
    x1 = min(max(region[0] - (sw - rw) // 2, 0), size[0] - sw)
    y1 = min(max(region[1] - (sh - rh) // 2, 0), size[1] - sh)
    return (x1, y1, x1 + sw, y1 + sh)


def plan_region(box, size: tuple[int, int], frame: ModelFrame, crops: Crops) -> tuple[Region, tuple[int, int]]:
    """(source region, stored size) of one request: a grid-snapped crop, or a region and its smart_resize size."""
    region = pixel_region(box, size, crops.clip_to_image)
    if box is not None:
        snapped = snapped_region(region, size, frame)
        if snapped is not None:
            return snapped, (snapped[2] - snapped[0], snapped[3] - snapped[1])
    return region, model_size(region[2] - region[0], region[3] - region[1], frame)


def draft_scale(regions: list[Region], targets: list[tuple[int, int]]) -> int:
    """Largest power-of-two JPEG downscale (8, 4, 2 or 1) that keeps every region at least its target size."""
    for k in DRAFT_SCALES:
        if all((r[2] - r[0]) / k >= t[0] and (r[3] - r[1]) / k >= t[1] for r, t in zip(regions, targets)):
            return k
    return 1


def encode(im: Image.Image, crops: Crops) -> bytes:
    buf = io.BytesIO()
    if crops.format == "jpeg":
        im.save(buf, format="JPEG", quality=crops.jpeg_quality)
    else:
        im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def cut_pieces(
    path: str,
    boxes: list[tuple[float, float, float, float] | None],
    frame: ModelFrame,
    crops: Crops,
    *,
    roots: tuple[str, ...] | None = None,
    max_pixels: int | None = None,
) -> Iterator[tuple[Region, Image.Image] | Exception]:
    """Decode ``path`` once; per box, its source region and the image in the model frame, one piece at a time
    (each can be encoded and freed before the next is cut).

    A box that cannot be cut (empty region, extreme aspect ratio) gives its
    exception in place of the pair. The header read and the decode happen in
    this call, so an unreadable image raises here, before any piece is returned;
    so do a file outside ``roots`` and an image over ``max_pixels`` (see :func:`curate.imageio.open_header`).
    """
    # one open: the header gives the size, then the same file is decoded
    head = imageio.open_header(path, roots=roots, max_pixels=max_pixels)
    try:
        size = head.size
        planned: list[tuple[Region, tuple[int, int]] | Exception] = []
        for box in boxes:
            try:
                planned.append(plan_region(box, size, frame, crops))
            except ValueError as exc:
                planned.append(exc)
        ok = [p for p in planned if not isinstance(p, Exception)]
        if not ok:
            head.close()
            return iter(planned)
        k = draft_scale([r for r, _ in ok], [t for _, t in ok])
    except BaseException:
        head.close()
        raise
    im = imageio.open_image(head, draft_size=(size[0] // k, size[1] // k) if k > 1 else None)
    return _pieces(im, planned, size, k == 1)


def _pieces(
    im: Image.Image, planned: list, size: tuple[int, int], full: bool
) -> Iterator[tuple[Region, Image.Image] | Exception]:
    fx, fy = im.size[0] / size[0], im.size[1] / size[1]
    for item in planned:
        if isinstance(item, Exception):
            yield item
            continue
        region, target = item
        if region[0] >= 0 and region[1] >= 0 and region[2] <= size[0] and region[3] <= size[1]:
            scaled = (region[0] * fx, region[1] * fy, min(region[2] * fx, im.size[0]), min(region[3] * fy, im.size[1]))
            if target == (region[2] - region[0], region[3] - region[1]) and full:
                piece = im.crop(region)  # grid-snapped: already in the model frame
            else:
                piece = im.resize(target, Image.Resampling.BICUBIC, box=scaled)
        else:  # clip_to_image is off and the box leaves the image: the outside is black
            piece = im.crop(tuple(round(v * f) for v, f in zip(region, (fx, fy, fx, fy)))).resize(
                target, Image.Resampling.BICUBIC
            )
        yield region, piece


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, imageio.PathOutsideRoot):
        return "path_outside_root"
    if isinstance(exc, (imageio.ImageTooLarge, Image.DecompressionBombError)):
        return "image_too_large"
    if isinstance(exc, FileNotFoundError):
        return "image_missing"
    if isinstance(exc, ValueError) and "aspect ratio" in str(exc):
        return "image_aspect_ratio"
    if isinstance(exc, ValueError) and "empty crop region" in str(exc):
        return "crop_region_empty"
    return "image_unreadable"


def run_crop_job(job: CropJob) -> CropResult:
    """Cut, resize, encode and store every region of one job; returns (and saves, :meth:`CropResult.to_json`)
    the job result."""
    result_path = Path(job.result_path)
    if result_path.exists():
        return CropResult.from_json(json.loads(result_path.read_text()))
    images: dict[str, Stored] = {}
    failed: dict[str, Failure] = {}
    excluded: list[str] = []
    decoded = 0
    pack = result_path.with_suffix(".bin")
    offset = 0
    with atomic_path(pack) as tmp, open(tmp, "wb", buffering=PACK_BUFFER) as out:
        for path, wanted in job.items:
            stored = 0
            try:
                if (
                    job.exclude_hashes
                    and hashlib.sha256(imageio.read_bytes(path, roots=job.roots)).hexdigest() in job.exclude_hashes
                ):
                    excluded.append(path)
                    continue
                pieces = cut_pieces(
                    path, [box for _, box in wanted], job.frame, job.crops, roots=job.roots, max_pixels=job.max_pixels
                )
                for (key, _), piece in zip(wanted, pieces):
                    if isinstance(piece, Exception):
                        failed[key] = Failure(_failure_reason(piece), f"{path}: {piece}"[:300])
                        continue
                    region, im = piece
                    data = encode(im, job.crops)  # cut, encode, store one piece at a time: it is still in cache
                    images[key] = Stored(im.size[0], im.size[1], *region, offset, len(data), job.index)
                    out.write(data)
                    offset += len(data)
                    stored += 1
            except Exception as exc:  # a bad source image must never stop the build
                for key, _ in wanted:
                    images.pop(key, None)
                    failed[key] = Failure(_failure_reason(exc), f"{path}: {type(exc).__name__}: {exc}"[:300])
                continue
            decoded += stored > 0
    result = CropResult(job.index, images, failed, excluded, decoded)
    atomic_write_bytes(result_path, json.dumps(result.to_json(), sort_keys=True).encode("utf-8"))
    return result
