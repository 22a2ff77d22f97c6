"""Drawing the demo objects: an instance's canonical picture (shape, colour, pattern, outline) and posed sprites."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw

from curate.demo.objects import _STEP, FREE_ROTATION, Instance


def _surface(size: tuple[int, int], inst: Instance) -> Image.Image:
    """The instance's patterned surface, to be cut out by a silhouette."""
    w, h = size
    img = Image.new("RGB", size, inst.colour)
    d = ImageDraw.Draw(img)
    step = _STEP.get(inst.scale) or max(8, 60 // inst.detail)
    if inst.pattern == "stripes" and inst.vertical:
        for x in range(step // 2, w, step * 2):
            d.rectangle((x, 0, x + step - 1, h), fill=inst.colour2)
    elif inst.pattern == "stripes":
        for y in range(step // 2, h, step * 2):
            d.rectangle((0, y, w, y + step - 1), fill=inst.colour2)
    elif inst.pattern == "dots":
        for y in range(step // 2, h, step * 2):
            for x in range(step // 2 + (y // step) % 2 * step, w, step * 2):
                d.ellipse((x, y, x + step, y + step), fill=inst.colour2)
    elif inst.pattern == "checks":
        for y in range(0, h, step * 2):
            for x in range(0, w, step * 2):
                d.rectangle((x, y, x + step - 1, y + step - 1), fill=inst.colour2)
                d.rectangle((x + step, y + step, x + 2 * step - 1, y + 2 * step - 1), fill=inst.colour2)
    return img


def _dark(rgb, f=0.6):
    return tuple(int(c * f) for c in rgb)


def _rim(mask: np.ndarray, r: int) -> np.ndarray:
    """The pixels of ``mask`` within ``r`` pixels of its edge (mask minus its erosion by a square)."""
    inner = sliding_window_view(np.pad(mask, r), 2 * r + 1, axis=1).all(-1)
    inner = sliding_window_view(inner, 2 * r + 1, axis=0).all(-1)
    return mask & ~inner


@lru_cache(maxsize=64)
def _canonical(inst: Instance) -> Image.Image:
    """Draw the instance upright on a transparent 200x200 canvas (cached: crowds and pairs draw one instance
    several times; callers must not modify the result)."""
    size = (200, 200)
    sil = Image.new("L", size, 0)
    s = ImageDraw.Draw(sil)
    extra: list = []  # (method, args, kwargs) drawn on top of the surface
    c, c2, sh = inst.colour, inst.colour2, inst.shape
    if sh == "mug":
        s.rounded_rectangle((40, 45, 140, 190), radius=14, fill=255)
        s.ellipse((115, 70, 185, 160), fill=255)
        s.ellipse((132, 88, 168, 142), fill=0)
        extra.append(("ellipse", (40, 38, 140, 58), {"fill": _dark(c)}))
    elif sh == "ball":
        s.ellipse((10, 10, 190, 190), fill=255)
        extra.append(("ellipse", (50, 40, 80, 70), {"fill": (250, 250, 250)}))
    elif sh == "book":
        s.rectangle((40, 12, 160, 188), fill=255)
        extra += [
            ("rectangle", (40, 12, 58, 188), {"fill": c2}),
            ("rectangle", (75, 40, 145, 52), {"fill": (245, 245, 240)}),
            ("rectangle", (75, 62, 130, 70), {"fill": (245, 245, 240)}),
        ]
    elif sh == "bottle":
        s.rounded_rectangle((62, 80, 138, 195), radius=10, fill=255)
        s.polygon([(62, 95), (86, 50), (114, 50), (138, 95)], fill=255)
        s.rectangle((86, 22, 114, 55), fill=255)
        extra += [
            ("rectangle", (84, 10, 116, 28), {"fill": c2}),
            ("rectangle", (62, 115, 138, 160), {"fill": (245, 240, 225)}),
            ("rectangle", (70, 128, 130, 136), {"fill": c2}),
        ]
    elif sh == "teddy":
        s.ellipse((45, 85, 155, 195), fill=255)
        s.ellipse((55, 15, 145, 105), fill=255)
        for box in [(45, 10, 80, 45), (120, 10, 155, 45), (20, 100, 65, 150), (135, 100, 180, 150)]:
            s.ellipse(box, fill=255)
        extra += [
            ("ellipse", (80, 55, 120, 90), {"fill": (235, 215, 180)}),
            ("ellipse", (75, 40, 87, 52), {"fill": (20, 20, 20)}),
            ("ellipse", (113, 40, 125, 52), {"fill": (20, 20, 20)}),
            ("ellipse", (94, 60, 106, 70), {"fill": (40, 25, 20)}),
        ]
    elif sh == "vase":
        s.ellipse((35, 70, 165, 195), fill=255)
        s.rectangle((75, 25, 125, 100), fill=255)
        s.ellipse((62, 15, 138, 40), fill=255)
        extra.append(("ellipse", (80, 20, 120, 32), {"fill": _dark(c, 0.4)}))
    elif sh == "clock":
        s.ellipse((10, 10, 190, 190), fill=255)
        extra.append(("ellipse", (28, 28, 172, 172), {"fill": (248, 248, 244)}))
        for k in range(12):
            a = k * np.pi / 6
            extra.append(
                (
                    "line",
                    [(100 + 62 * np.sin(a), 100 - 62 * np.cos(a)), (100 + 70 * np.sin(a), 100 - 70 * np.cos(a))],
                    {"fill": (20, 20, 20), "width": 4},
                )
            )
        ha, ma = inst.detail * np.pi / 6, inst.detail * 1.3
        extra += [
            ("line", [(100, 100), (100 + 38 * np.sin(ha), 100 - 38 * np.cos(ha))], {"fill": (20, 20, 20), "width": 7}),
            ("line", [(100, 100), (100 + 58 * np.sin(ma), 100 - 58 * np.cos(ma))], {"fill": (20, 20, 20), "width": 4}),
        ]
    elif sh == "tv":
        s.rectangle((10, 30, 190, 150), fill=255)
        s.rectangle((85, 150, 115, 175), fill=255)
        s.rectangle((50, 172, 150, 185), fill=255)
        extra.append(("rectangle", (22, 42, 178, 138), {"fill": _dark(c2, 0.5)}))
    elif sh == "balloon":
        s.ellipse((40, 10, 160, 150), fill=255)
        s.polygon([(92, 148), (108, 148), (100, 160)], fill=255)
        s.line([(100, 158), (96, 175), (104, 195)], fill=255, width=3)
        extra.append(("ellipse", (65, 35, 85, 60), {"fill": (250, 250, 250)}))
    elif sh == "cigarette":
        s.rectangle((10, 90, 190, 110), fill=255)
        extra += [
            ("rectangle", (10, 90, 60, 110), {"fill": (210, 140, 60)}),
            ("rectangle", (184, 90, 190, 110), {"fill": (90, 80, 80)}),
        ]
    else:
        raise ValueError(f"unknown shape {sh}")
    img = _surface(size, inst).convert("RGBA")
    d = ImageDraw.Draw(img)
    for method, args, kwargs in extra:
        getattr(d, method)(args, **kwargs)
    if inst.trim is not None:  # a 5-pixel outline just inside the silhouette
        img.paste((*inst.trim, 255), mask=Image.fromarray(_rim(np.asarray(sil) > 0, 5).astype(np.uint8) * 255))
    img.putalpha(sil)
    if abs(inst.aspect - 1.0) > 1e-3:
        img = img.resize((max(8, round(200 * inst.aspect)), 200), Image.BILINEAR)
    return img


def sprite(inst: Instance, height: int, angle: float = 0.0, mirror: bool = False, turn: float = 1.0) -> Image.Image:
    """The instance drawn ``height`` pixels tall (before rotation), rotated by ``angle`` degrees.

    ``turn`` (0.7-1.0) narrows the drawing as if the object were turned away from the camera.
    """
    img = _canonical(inst)
    if mirror:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    w = max(4, round(img.width * height / 200 * turn))
    img = img.resize((w, max(4, height)), Image.BILINEAR)
    if angle:
        img = img.rotate(angle, resample=Image.BICUBIC, expand=True)
    alpha = np.asarray(img.getchannel("A"))
    img.putalpha(Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8)))
    bbox = img.getbbox()
    return img.crop(bbox) if bbox else img


def random_pose(inst: Instance, rng: np.random.Generator) -> tuple[float, bool, float]:
    """(angle, mirror, turn): free rotation for shapes that lie around, a tilt for upright ones."""
    angle = float(rng.uniform(-180, 180)) if inst.shape in FREE_ROTATION else float(rng.uniform(-25, 25))
    return angle, bool(rng.random() < 0.5), float(rng.uniform(0.7, 1.0))
