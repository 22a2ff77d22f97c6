"""Procedural faces with identity-specific features (CelebA stand-ins).

An :class:`Identity` fixes face shape, skin tone, eye and hair colour, hairstyle,
glasses and beard; :func:`head` draws it under a pose (yaw, roll) and expression,
and returns the RGBA head sprite with its five landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SKIN = [(255, 224, 196), (240, 200, 160), (224, 172, 130), (198, 134, 90), (160, 100, 60), (110, 70, 45)]
EYES = {"brown": (100, 60, 30), "blue": (60, 110, 190), "green": (60, 140, 80), "grey": (120, 130, 140)}
HAIR = {
    "Black_Hair": (25, 22, 20),
    "Brown_Hair": (110, 70, 35),
    "Blond_Hair": (225, 195, 110),
    "Gray_Hair": (170, 170, 170),
}
STYLES = ("short", "long", "bob", "bun", "bald")


@dataclass(frozen=True)
class Identity:
    number: int  # CelebA identity id
    face_w: float  # face ellipse half-width (canvas units)
    face_h: float
    skin: tuple[int, int, int]
    eye: str
    hair: str  # one of HAIR's keys
    style: str
    glasses: bool
    beard: bool
    male: bool


def identities(rng: np.random.Generator, n: int) -> list[Identity]:
    numbers = sorted(int(v) for v in rng.choice(np.arange(1, 10178), size=n, replace=False))
    out = []
    for num in numbers:
        male = bool(rng.random() < 0.5)
        out.append(
            Identity(
                number=num,
                face_w=float(rng.uniform(48, 62)),
                face_h=float(rng.uniform(64, 78)),
                skin=SKIN[int(rng.integers(len(SKIN)))],
                eye=str(rng.choice(list(EYES))),
                hair=str(rng.choice(list(HAIR))),
                style=str(rng.choice(STYLES[:4] + (("bald",) if male else ()))),
                glasses=bool(rng.random() < 0.3),
                beard=male and bool(rng.random() < 0.4),
                male=male,
            )
        )
    return out


def head(
    ident: Identity, *, yaw: float = 0.0, roll: float = 0.0, smile: bool = False
) -> tuple[Image.Image, dict[str, tuple[float, float]]]:
    """RGBA head on a 200x240 canvas (then rotated by ``roll`` degrees) and its landmarks."""
    W, H = 200, 240
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    cx, cy = W / 2, 125.0
    fw, fh = ident.face_w * (1 - 0.25 * abs(yaw)), ident.face_h
    hair = HAIR[ident.hair] + (255,)
    skin = ident.skin + (255,)
    if ident.style == "long":
        d.rounded_rectangle((cx - fw - 14, cy - fh - 10, cx + fw + 14, cy + fh + 35), radius=30, fill=hair)
    elif ident.style == "bun":
        d.ellipse((cx - 26, cy - fh - 48, cx + 26, cy - fh + 4), fill=hair)
    d.ellipse((cx - fw - 8, cy - 12, cx - fw + 8, cy + 16), fill=skin)  # ears
    d.ellipse((cx + fw - 8, cy - 12, cx + fw + 8, cy + 16), fill=skin)
    d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh), fill=skin)
    if ident.style in ("short", "long", "bob", "bun"):
        d.chord((cx - fw - 6, cy - fh - 14, cx + fw + 6, cy + fh * 0.25), 180, 360, fill=hair)
    if ident.style == "bob":
        d.rectangle((cx - fw - 8, cy - fh * 0.3, cx - fw + 10, cy + fh * 0.5), fill=hair)
        d.rectangle((cx + fw - 10, cy - fh * 0.3, cx + fw + 8, cy + fh * 0.5), fill=hair)
    sx = yaw * fw * 0.35  # features slide sideways when the head turns
    ey, es = cy - fh * 0.1, fw * 0.42
    lm = {
        "lefteye": (cx - es + sx, ey),
        "righteye": (cx + es + sx, ey),
        "nose": (cx + sx * 1.3, cy + fh * 0.22),
        "leftmouth": (cx - fw * 0.3 + sx, cy + fh * 0.5),
        "rightmouth": (cx + fw * 0.3 + sx, cy + fh * 0.5),
    }
    brow = tuple(int(c * 0.8) for c in HAIR[ident.hair])
    for key in ("lefteye", "righteye"):
        x, y = lm[key]
        d.ellipse((x - 11, y - 6, x + 11, y + 6), fill=(250, 250, 250, 255))
        d.ellipse((x - 5, y - 5, x + 5, y + 5), fill=EYES[ident.eye] + (255,))
        d.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(10, 10, 10, 255))
        d.line([(x - 13, y - 14), (x + 13, y - 15)], fill=brow, width=4)
        if ident.glasses:
            d.ellipse((x - 17, y - 13, x + 17, y + 13), outline=(30, 30, 30, 255), width=3)
    if ident.glasses:
        d.line([lm["lefteye"][0] + 17, ey, lm["righteye"][0] - 17, ey], fill=(30, 30, 30, 255), width=3)
    nx, ny = lm["nose"]
    shade = tuple(int(c * 0.8) for c in ident.skin) + (255,)
    d.polygon([(nx, ny - 24), (nx - 9, ny + 4), (nx + 9, ny + 4)], fill=shade)
    (lx, my), (rx, _) = lm["leftmouth"], lm["rightmouth"]
    if ident.beard:
        d.chord((cx - fw * 0.85 + sx, cy + fh * 0.1, cx + fw * 0.85 + sx, cy + fh), 0, 180, fill=hair)
    lips = (170, 60, 70, 255) if not ident.male else (150, 80, 75, 255)
    if smile:
        d.chord((lx, my - 10, rx, my + 12), 0, 180, fill=lips)
        d.rectangle((lx + 6, my + 1, rx - 6, my + 4), fill=(250, 250, 250, 255))
    else:
        d.line([(lx, my), (rx, my)], fill=lips, width=5)
    if roll:
        img, lm = _rotate(img, lm, roll)
    return img, lm


def _rotate(img: Image.Image, lm: dict, angle: float):
    """Rotate counter-clockwise by ``angle`` degrees (canvas expanded) and move the landmarks with it."""
    w, h = img.size
    out = img.rotate(angle, resample=Image.BICUBIC, expand=True)
    a = np.deg2rad(angle)
    c, s = np.cos(a), np.sin(a)
    moved = {}
    for k, (x, y) in lm.items():
        dx, dy = x - w / 2, y - h / 2
        moved[k] = (out.width / 2 + c * dx + s * dy, out.height / 2 - s * dx + c * dy)
    return out, moved


def binarize(img: Image.Image) -> Image.Image:
    a = np.asarray(img.getchannel("A"))
    img.putalpha(Image.fromarray(np.where(a >= 128, 255, 0).astype(np.uint8)))
    return img


def torso(
    d: ImageDraw.ImageDraw, cx: float, top: float, width: float, bottom: float, colour: tuple[int, int, int]
) -> None:
    """Shoulders below a head, for in-the-wild photos."""
    d.rounded_rectangle((cx - width, top, cx + width, bottom + width), radius=int(width * 0.5), fill=colour)
