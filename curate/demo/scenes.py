"""Procedural scenes: backgrounds, object placement with low overlap, lighting.

:func:`compose` pastes instance sprites onto a background and returns, for each
placed object, its visible mask (later objects occlude earlier ones) and the
tight box of that mask, so annotations match exactly what is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from curate.demo.common import light, mask_box
from curate.demo.objects import Instance
from curate.demo.sprites import random_pose, sprite

BACKGROUNDS = ("kitchen", "wallpaper", "tiles", "meadow", "studio", "shelf", "beach", "night")
SCENE_TEXT = {
    "kitchen": "on a wooden kitchen counter",
    "wallpaper": "in front of a striped wallpaper",
    "tiles": "on a tiled bathroom floor",
    "meadow": "on the grass of a sunny meadow",
    "studio": "in a plain photo studio",
    "shelf": "on a shelf in a living room",
    "beach": "on the sand of a beach",
    "night": "on a table at night",
}


def background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    w, h = size
    jitter = rng.integers(-20, 21, size=3)

    def col(base):
        return tuple(int(np.clip(b + j, 0, 255)) for b, j in zip(base, jitter))

    img = Image.new("RGB", size, col((200, 200, 200)))
    d = ImageDraw.Draw(img)
    horizon = int(h * rng.uniform(0.35, 0.6))
    if kind == "kitchen":
        d.rectangle((0, 0, w, horizon), fill=col((225, 220, 200)))
        d.rectangle((0, horizon, w, h), fill=col((150, 105, 60)))
        for y in range(horizon + 6, h, 14):
            d.line([(0, y), (w, y + int(rng.integers(-3, 4)))], fill=col((130, 90, 50)), width=2)
    elif kind == "wallpaper":
        step = int(rng.integers(14, 30))
        for x in range(0, w, step * 2):
            d.rectangle((x, 0, x + step - 1, h), fill=col((190, 210, 230)))
        d.rectangle((0, horizon + h // 4, w, h), fill=col((110, 90, 80)))
    elif kind == "tiles":
        step = int(rng.integers(24, 48))
        for y in range(0, h, step):
            for x in range(0, w, step):
                d.rectangle((x + 1, y + 1, x + step - 2, y + step - 2), fill=col((215, 225, 228)))
    elif kind == "meadow":
        d.rectangle((0, 0, w, horizon), fill=col((150, 195, 235)))
        d.rectangle((0, horizon, w, h), fill=col((90, 160, 70)))
    elif kind == "studio":
        for y in range(h):
            v = int(235 - 60 * y / h)
            d.line([(0, y), (w, y)], fill=col((v, v, v)))
    elif kind == "shelf":
        d.rectangle((0, 0, w, h), fill=col((170, 140, 110)))
        for y in range(int(h * 0.3), h, max(40, h // 3)):
            d.rectangle((0, y, w, y + 8), fill=col((95, 65, 40)))
    elif kind == "beach":
        d.rectangle((0, 0, w, horizon), fill=col((120, 180, 225)))
        d.rectangle((0, horizon, w, horizon + h // 10), fill=col((40, 110, 160)))
        d.rectangle((0, horizon + h // 10, w, h), fill=col((225, 205, 150)))
    else:  # night
        d.rectangle((0, 0, w, h), fill=col((35, 35, 60)))
        d.rectangle((0, horizon, w, h), fill=col((70, 55, 45)))
    noise = rng.normal(0, 6, size=(h, w, 1))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.SMOOTH)


@dataclass
class Placed:
    instance: Instance
    mask: np.ndarray  # visible pixels, bool (h, w)
    box: tuple[int, int, int, int]  # tight x1, y1, x2, y2 of mask (exclusive max)
    angle: float
    crowd: bool = False  # a tight group of small look-alikes annotated as one crowd region

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _overlap(a, b) -> float:
    """Intersection over the smaller box."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(small, 1)


def compose(
    instances: list[Instance],
    size: tuple[int, int],
    rng: np.random.Generator,
    *,
    bg: str | None = None,
    scale: tuple[float, float] = (0.22, 0.45),
    max_overlap: float = 0.08,
    lighting: float = 1.0,
    crowd: Instance | None = None,
) -> tuple[Image.Image, list[Placed]]:
    """Draw ``instances`` on a background; objects that cannot be placed with low overlap are skipped.

    ``crowd``: also draw a row of 4-6 small copies of that instance, returned as one ``Placed``
    with ``crowd=True`` (COCO ``iscrowd=1``).
    """
    w, h = size
    img = background(bg or str(rng.choice(BACKGROUNDS)), size, rng)
    placed: list[Placed] = []
    boxes: list[tuple[int, int, int, int]] = []
    for inst in instances:
        angle, mirror, turn = random_pose(inst, rng)
        sp = sprite(inst, max(12, int(h * rng.uniform(*scale))), angle, mirror, turn)
        if sp.width >= w - 2 or sp.height >= h - 2:
            sp = sp.resize((max(4, sp.width // 2), max(4, sp.height // 2)), Image.NEAREST)
        for _ in range(40):
            x = int(rng.integers(1, w - sp.width))
            y = int(rng.integers(1, h - sp.height))
            box = (x, y, x + sp.width, y + sp.height)
            if all(_overlap(box, b) <= max_overlap for b in boxes):
                break
        else:
            continue
        img.paste(sp, (x, y), sp)
        m = np.zeros((h, w), dtype=bool)
        m[y : y + sp.height, x : x + sp.width] = np.asarray(sp.getchannel("A")) > 0
        for p in placed:
            p.mask &= ~m
        placed.append(Placed(inst, m, box, angle))
        boxes.append(box)
    if crowd is not None:
        _crowd_row(img, crowd, rng, boxes, placed)
    for p in placed:
        p.box = mask_box(p.mask) or p.box
    return light(img, rng, lighting), [p for p in placed if p.area > 0]


def _crowd_row(img: Image.Image, inst: Instance, rng: np.random.Generator, boxes: list, placed: list[Placed]) -> None:
    w, h = img.size
    n = int(rng.integers(4, 7))
    sprites = [sprite(inst, max(8, h // 9), float(rng.uniform(-15, 15))) for _ in range(n)]
    row_w = sum(s.width for s in sprites) - 2 * (n - 1)
    row_h = max(s.height for s in sprites)
    if row_w >= w - 2 or row_h >= h - 2:
        return
    for _ in range(40):
        x, y = int(rng.integers(1, w - row_w)), int(rng.integers(1, h - row_h))
        box = (x, y, x + row_w, y + row_h)
        if all(_overlap(box, b) <= 0.02 for b in boxes):
            break
    else:
        return
    m = np.zeros((h, w), dtype=bool)
    for sp in sprites:
        img.paste(sp, (x, y + row_h - sp.height), sp)
        m[y + row_h - sp.height : y + row_h, x : x + sp.width] |= np.asarray(sp.getchannel("A")) > 0
        x += sp.width - 2
    for p in placed:
        p.mask &= ~m
    placed.append(Placed(inst, m, box, 0.0, crowd=True))
    boxes.append(box)
