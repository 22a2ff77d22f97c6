"""Shared pieces of the demo corpus writers: seeded randomness, byte-stable file
writing, scene lighting, and the log of injected faults.

Every writer must be a pure function of its seed: no timestamps, fixed JPEG
settings, JSON written with sorted-free but fixed key order.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_QUALITY = 90


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the given names (stable across runs)."""
    digest = hashlib.sha256(("/".join([str(seed), *names])).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def jpeg_bytes(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling=2)
    return buf.getvalue()


def save_jpeg(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(img))


def write_json(obj, path: Path) -> None:
    """Compact JSON like the real dumps; float NaN is written as the bare ``NaN`` literal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":"), allow_nan=True, ensure_ascii=False), encoding="utf-8")


def truncated_jpeg(img: Image.Image) -> bytes:
    """A JPEG cut in the middle of its entropy-coded data (header intact, no EOI marker)."""
    data = jpeg_bytes(img)
    return data[: max(len(data) // 2, 700)]


CORRUPT_BYTES = b"<html><body>404 Not Found</body></html>\n"  # what a failed download often leaves behind


def light(img: Image.Image, rng: np.random.Generator, strength: float = 1.0) -> Image.Image:
    """Global lighting change: brightness, contrast and a colour tint."""
    a = np.asarray(img, dtype=np.float32)
    brightness = 1.0 + strength * rng.uniform(-0.3, 0.25)
    contrast = 1.0 + strength * rng.uniform(-0.3, 0.3)
    tint = 1.0 + strength * rng.uniform(-0.08, 0.08, size=3)
    mean = a.mean()
    # directional light: a linear ramp across the image in a random direction
    h, w = a.shape[:2]
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / max(w - 1, 1) - 0.5) * np.cos(theta) + (yy / max(h - 1, 1) - 0.5) * np.sin(theta)
    shade = 1.0 + strength * rng.uniform(0.0, 0.3) * ramp[..., None]
    a = ((a - mean) * contrast + mean) * brightness * tint * shade
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight (x1, y1, x2, y2) of a boolean mask, exclusive max (pixel-edge coordinates)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def mask_polygon(mask: np.ndarray, bands: int = 12) -> list[float]:
    """A staircase polygon enclosing a mask: per horizontal band, the band's leftmost and rightmost pixels.

    Its bounding box equals the mask's, so the polygon, the mask and the bbox agree.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return []
    cuts = np.unique(np.linspace(rows[0], rows[-1] + 1, num=min(bands, len(rows)) + 1).round().astype(int))
    left, right = [], []
    for top, bottom in zip(cuts[:-1], cuts[1:]):
        cols = np.flatnonzero(mask[top:bottom].any(axis=0))
        if len(cols) == 0:
            continue
        x1, x2 = float(cols[0]), float(cols[-1] + 1)
        left += [(x1, float(top)), (x1, float(bottom))]
        right += [(x2, float(top)), (x2, float(bottom))]
    pts = left + right[::-1]
    return [v for p in pts for v in p]


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major, starting with a run of zeros)."""
    flat = mask.astype(np.uint8).reshape(-1, order="F")
    edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(edges).tolist()
    return [0, *counts] if flat.size and flat[0] else counts


@dataclass
class Fault:
    source: str  # source kind: coco / objects365 / celeba / subjects200k / refcoco
    record_id: str  # the id a reader should quarantine (image id, annotation id, file name, ref id, row)
    kind: str  # bad-input kind, see curate.demo.corpus.FAULT_KINDS
    file: str  # file holding the record, relative to the source root
    stage: str = "index"  # "index": the reader must catch it; "decode": only a full decode can; "filter": a filter case
    detail: str = ""


@dataclass
class FaultLog:
    faults: list[Fault] = field(default_factory=list)

    def add(
        self, source: str, record_id: object, kind: str, file: str, *, stage: str = "index", detail: str = ""
    ) -> None:
        self.faults.append(Fault(source, str(record_id), kind, file, stage, detail))

    def as_dicts(self) -> list[dict]:
        return [asdict(f) for f in self.faults]
