"""Procedural object instances and how they are drawn.

Each :class:`Instance` has a shape (mug, ball, book, ...), instance-specific colours,
surface pattern and shape parameters. :func:`catalogue` is a small fixed set of
instances with same-category look-alikes (same shape, slightly shifted colour, other
pattern), used by the RefCOCO writer; COCO, Objects365 and Subjects200K cast a new
instance for every placement (:mod:`curate.demo.casting`). :func:`sprite` draws an instance as an RGBA image under a pose
(rotation, scale, mirror); its alpha channel is binary, so boxes taken from it
are exactly the drawn pixels.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

from curate.demo.common import rng_for

# colour name -> RGB
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 130, 20),
    "yellow": (235, 205, 40),
    "green": (40, 150, 60),
    "teal": (20, 140, 140),
    "blue": (35, 70, 200),
    "purple": (120, 50, 160),
    "pink": (235, 120, 170),
    "brown": (125, 80, 40),
    "white": (238, 236, 230),
    "black": (30, 30, 35),
    "grey": (130, 130, 135),
    "navy": (25, 35, 105),
    "maroon": (120, 20, 50),
    "olive": (120, 125, 30),
    "lime": (165, 220, 40),
}
PATTERNS = ("solid", "stripes", "dots", "checks")
SCALES = ("fine", "bold")  # pattern sizes of cast instances (catalogue instances: "", a size from ``detail``)
_STEP = {"fine": 10, "bold": 26}
_SIZE_WORD = {
    ("stripes", "fine"): "thin",
    ("stripes", "bold"): "wide",
    ("dots", "fine"): "small",
    ("dots", "bold"): "large",
    ("checks", "fine"): "small",
    ("checks", "bold"): "large",
}

# shape -> (COCO category name or None, Objects365 category name)
SHAPES: dict[str, tuple[str | None, str]] = {
    "mug": ("cup", "Cup"),
    "ball": ("sports ball", "Soccer"),
    "book": ("book", "Book"),
    "bottle": ("bottle", "Bottle"),
    "teddy": ("teddy bear", "Stuffed Toy"),
    "vase": ("vase", "Vase"),
    "clock": ("clock", "Clock"),
    "tv": ("tv", "Moniter/TV"),
    "balloon": (None, "Ballon"),
    "cigarette": (None, "Cigar/Cigarette "),
}
NOUNS = {
    "mug": "mug",
    "ball": "ball",
    "book": "book",
    "bottle": "bottle",
    "teddy": "teddy bear",
    "vase": "vase",
    "clock": "clock",
    "tv": "television",
    "balloon": "balloon",
    "cigarette": "cigarette",
}
FREE_ROTATION = {"ball", "cigarette", "book"}  # shapes that may lie at any angle


@dataclass(frozen=True)
class Instance:
    iid: str  # e.g. "mug-02" or "mug-02b" (look-alike of mug-02)
    shape: str
    colour_name: str
    colour: tuple[int, int, int]
    colour2: tuple[int, int, int]
    colour2_name: str
    pattern: str
    aspect: float  # width multiplier of the canonical drawing
    detail: int  # shape-specific variant (stripe count, clock time, ...)
    lookalike_of: str | None = None
    family: str | None = None  # look-alike family (see curate.demo.casting), e.g. "mug-03"
    scale: str = ""  # pattern size: "fine" / "bold", or "" (a size from ``detail``, unnamed)
    vertical: bool = False  # stripes run top to bottom
    trim: tuple[int, int, int] | None = None  # colour of an outline along the silhouette
    trim_name: str | None = None

    @property
    def noun(self) -> str:
        return NOUNS[self.shape]

    @property
    def description(self) -> str:
        """What the instance looks like, e.g. ``red and white striped mug``, ``blue ball with yellow dots`` or
        ``red mug with thin vertical white stripes and a navy outline``: every look has its own description."""
        c, c2, noun = self.colour_name, self.colour2_name, self.noun
        if self.pattern == "solid":
            text = f"{c} {noun}"
        elif self.scale:
            kind = (
                "vertical stripes"
                if self.vertical
                else "horizontal stripes"
                if self.pattern == "stripes"
                else self.pattern
            )
            text = f"{c} {noun} with {_SIZE_WORD[self.pattern, self.scale]} {c2} {kind}"
        elif self.pattern == "dots":
            text = f"{c} {noun} with {c2} dots"
        else:
            text = f"{c} and {c2} {'striped' if self.pattern == 'stripes' else 'checked'} {noun}"
        if self.trim_name:
            text += f"{' and' if ' with ' in text else ' with'} a {self.trim_name} outline"
        return text

    @property
    def dominant_colour(self) -> bool:
        """True when the base colour covers most of the surface (solid or dotted)."""
        return self.pattern in ("solid", "dots")


def shift(rgb: tuple[int, int, int], dh: float, dv: float) -> tuple[int, int, int]:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    r, g, b = colorsys.hsv_to_rgb((h + dh) % 1.0, s, min(1.0, max(0.0, v + dv)))
    return int(r * 255), int(g * 255), int(b * 255)


def catalogue(seed: int, shapes: list[str], per_shape: int, lookalikes: bool = True) -> list[Instance]:
    """``per_shape`` distinct instances per shape (distinct colours), each with one look-alike."""
    rng = rng_for(seed, "catalogue")
    names = list(PALETTE)
    out: list[Instance] = []
    for shape in shapes:
        colours = rng.choice(len(names), size=per_shape, replace=False)
        for k, ci in enumerate(colours):
            cname = names[int(ci)]
            c2name = names[int(rng.choice([i for i in range(len(names)) if i != ci]))]
            inst = Instance(
                iid=f"{shape}-{k:02d}",
                shape=shape,
                colour_name=cname,
                colour=PALETTE[cname],
                colour2=PALETTE[c2name],
                colour2_name=c2name,
                pattern=str(rng.choice(PATTERNS)),
                aspect=float(rng.uniform(0.8, 1.2)),
                detail=int(rng.integers(2, 6)),
            )
            out.append(inst)
            if lookalikes:
                other = [p for p in PATTERNS if p != inst.pattern]
                out.append(
                    Instance(
                        iid=inst.iid + "b",
                        shape=shape,
                        colour_name=cname,
                        colour=shift(inst.colour, 0.03, -0.08),
                        colour2=inst.colour2,
                        colour2_name=inst.colour2_name,
                        pattern=str(rng.choice(other)),
                        aspect=inst.aspect,
                        detail=inst.detail,
                        lookalike_of=inst.iid,
                    )
                )
    return out
