"""Shared test helpers: small image files, the demo corpus copy and a recipe over it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

DEMO_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"


def tiny_corpus(root: Path) -> Path:
    from curate.demo.corpus import generate_corpus

    generate_corpus(root, size="tiny")
    return root


def write_recipe(folder: Path, corpus: Path, *, total: int = 60, per_shard: int = 8, **sections) -> Path:
    """demo.yaml pointed at ``corpus`` with a small total, small shards and optional section overrides."""
    text = DEMO_RECIPE.read_text().replace("${REPIC_DEMO_CORPUS}", str(corpus))
    data = yaml.safe_load(text)
    data["mixture"]["total"] = total
    data["output"] = {"examples_per_shard": per_shard}
    data.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def same_commit(data: bytes) -> bytes:
    """The manifest records the toolkit's git commit; other people commit to this tree while tests run."""
    return re.sub(rb'"git_commit": "[0-9a-f]{40}"', b'"git_commit": "<HEAD>"', data)


def make_photo(path: Path, size=(640, 480), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 255 // w), (yy * 255 // h), rng.integers(0, 255, (h, w))], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)
    return path


def write_jpeg(path: Path, size: tuple[int, int], seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.effect_noise(size, 40 + seed).convert("RGB").save(path, "JPEG", quality=90)


def write_png_header(path: Path, size: tuple[int, int]) -> Path:
    """A PNG whose header declares ``size`` (1-bit grey) with a token of pixel data: opening it reads the size, and
    nothing of that size is ever allocated (a 20000x20000 image costs 70 bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", size[0], size[1], 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_truncated_jpeg(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])  # header intact, scan cut short


KIND_TO_REASON = {
    "unknown_category": "category_unknown",
    "unknown_image": "image_unknown",
    "image_corrupt": "image_unreadable",
    "duplicate_annotation_id": "annotation_id_duplicate",
    "duplicate_image_id": "image_id_duplicate",
}


def check_demo_source(t, faults: list[dict], annotation_file: Path) -> None:
    """Every injected fault is quarantined with its reason; every annotation is either an object or quarantined."""
    got = set(t.quarantine.select("record_id", "reason").iter_rows())
    assert faults and t.objects.height > 0
    for f in faults:
        assert (f["record_id"], KIND_TO_REASON.get(f["kind"], f["kind"])) in got, f
    n_anns = len(json.loads(annotation_file.read_text())["annotations"])
    ann_rows = t.quarantine.filter(t.quarantine["detail"].str.contains("^(crowd )?annotation")).height
    assert t.objects.height + ann_rows == n_anns
