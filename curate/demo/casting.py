"""Casting: which object instance appears in which COCO / Objects365 image or Subjects200K pair.

Real detection photos practically never show the same physical object twice, and
every Subjects200K pair is a different subject, so the planner treats each
annotation (each pair) as its own instance. The demo corpus matches that: an
:class:`InstanceFactory` mints a new instance for every placement, and no two
instances of one source look the same: a look is the combination of shape, base
colour, surface pattern (solid, stripes, dots, checks), pattern size (fine, bold),
stripe direction, second colour and outline colour (or none), all visible and all
named in the instance's description, so two instances look alike exactly when
their descriptions match. That is about 30,000 looks per shape (16 colours), so
a corpus of tens of thousands of scenes fills a small fraction of them and new
looks are found in a few draws.

To keep hard negatives hard, instances come in look-alike *families*: the same
shape, proportions, shape detail, colours and outline, a slightly shifted shade
and another surface pattern or pattern size (e.g. ``mug-03a`` a red mug with
wide horizontal white stripes, ``mug-03b`` a darker red mug with small white dots). :func:`cast_scenes` spreads a family's members
over different images, so an image holding another instance of the reference's
category often holds one of its look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from curate.demo.objects import PALETTE, PATTERNS, SCALES, Instance, shift

_COLOURS = list(PALETTE)
# surface variants: (pattern, scale, vertical)
VARIANTS = [("solid", "", False)] + [
    (p, s, v) for p in PATTERNS[1:] for s in SCALES for v in ((False, True) if p == "stripes" else (False,))
]
NO_TRIM = 0.35  # share of new families without an outline


def look(inst: Instance, variant: tuple[str, str, bool] | None = None) -> tuple:
    """What tells instances apart at a glance, unique within a source: the shape and the description, which
    names every visible attribute (a solid surface hides the second colour and the pattern size).

    ``variant``: the look ``inst`` would have with that (pattern, scale, vertical) instead of its own."""
    if variant is not None:
        inst = replace(inst, pattern=variant[0], scale=variant[1], vertical=variant[2])
    return inst.shape, inst.description


def _variant(inst: Instance) -> tuple[str, str, bool]:
    return inst.pattern, inst.scale, inst.vertical


@dataclass
class _Family:
    name: str  # e.g. "mug-03"
    members: list[Instance] = field(default_factory=list)
    size: int = 2  # members it may grow to

    @property
    def open(self) -> bool:
        return len(self.members) < self.size


class InstanceFactory:
    """Mints distinct instances of one source, grouped in look-alike families of ``family_size`` members."""

    def __init__(self, rng: np.random.Generator, family_size: tuple[int, int] = (2, 3), join: float = 0.8):
        self.rng, self.family_size, self.join = rng, family_size, join
        self.looks: set[tuple] = set()
        self.families: dict[str, list[_Family]] = {}
        self.open: dict[str, list[_Family]] = {}  # per shape, the families that may still grow, oldest first
        self.minted: list[Instance] = []

    def _keep(self, fam: _Family, inst: Instance) -> Instance:
        fam.members.append(inst)
        self.looks.add(look(inst))
        self.minted.append(inst)
        return inst

    def new_family(self, shape: str) -> Instance:
        """The first member of a new family of ``shape``."""
        fams = self.families.setdefault(shape, [])
        fam = _Family(
            f"{shape}-{len(fams):02d}", size=int(self.rng.integers(self.family_size[0], self.family_size[1] + 1))
        )
        for _ in range(500):
            c1, c2, c3 = (_COLOURS[int(i)] for i in self.rng.choice(len(_COLOURS), size=3, replace=False))
            pattern = str(self.rng.choice(PATTERNS))
            scale = str(self.rng.choice(SCALES)) if pattern != "solid" else ""
            vertical = pattern == "stripes" and bool(self.rng.random() < 0.5)
            trim = None if self.rng.random() < NO_TRIM else str(self.rng.choice([c2, c3]))
            inst = Instance(
                iid=fam.name + "a",
                shape=shape,
                colour_name=c1,
                colour=PALETTE[c1],
                colour2=PALETTE[c2],
                colour2_name=c2,
                pattern=pattern,
                aspect=float(self.rng.uniform(0.8, 1.2)),
                detail=int(self.rng.integers(2, 6)),
                family=fam.name,
                scale=scale,
                vertical=vertical,
                trim=PALETTE[trim] if trim else None,
                trim_name=trim,
            )
            if look(inst) not in self.looks:
                fams.append(fam)
                self.open.setdefault(shape, []).append(fam)
                return self._keep(fam, inst)
        # ~30,000 looks per shape: only a corpus far beyond 100K objects per shape gets here
        raise RuntimeError(f"no unused look left for a new {shape} after 500 draws")

    def lookalike(self, fam: _Family) -> Instance | None:
        """Another member of ``fam``: a shifted shade of the base colour and a surface variant (pattern, size,
        direction) no member has (None when none is left)."""
        base = fam.members[0]
        taken = {_variant(m) for m in fam.members}
        choices = [v for v in VARIANTS if v not in taken and look(base, v) not in self.looks]
        if not choices:
            fam.size = len(fam.members)
            return None
        dh = float(self.rng.choice([-1, 1]) * self.rng.uniform(0.015, 0.04))
        pattern, scale, vertical = choices[int(self.rng.integers(len(choices)))]
        inst = replace(
            base,
            iid=fam.name + "abcdefgh"[len(fam.members)],
            colour=shift(base.colour, dh, float(self.rng.uniform(-0.12, 0.06))),
            pattern=pattern,
            scale=scale,
            vertical=vertical,
            lookalike_of=base.iid,
        )
        return self._keep(fam, inst)

    def member(self, shape: str, avoid: set[str] = frozenset()) -> Instance:
        """A new instance of ``shape``: usually a look-alike in the oldest open family not in ``avoid``, else a new family."""
        self.open[shape] = still = [f for f in self.open.get(shape, []) if f.open]
        open_fams = [f for f in still if f.name not in avoid]
        if open_fams and self.rng.random() < self.join:
            inst = self.lookalike(open_fams[0])
            if inst is not None:
                return inst
        return self.new_family(shape)

    def truth(self) -> dict:
        """TRUTH.json's ``instances``: iid -> shape, description, family, lookalike_of."""
        return {
            i.iid: {"shape": i.shape, "description": i.description, "family": i.family, "lookalike_of": i.lookalike_of}
            for i in self.minted
        }


class ShapeCycle:
    """Shapes in shuffled rounds, so every shape is used about equally often."""

    def __init__(self, shapes: list[str], rng: np.random.Generator):
        self.shapes, self.rng, self.queue = list(shapes), rng, []

    def next(self) -> str:
        if not self.queue:
            self.queue = [self.shapes[i] for i in self.rng.permutation(len(self.shapes))]
        return self.queue.pop()


def cast_scenes(
    factory: InstanceFactory, shapes: list[str], n_images: int, rng: np.random.Generator, lo: int = 2, hi: int = 5
) -> list[list[Instance]]:
    """Per image, ``lo``..``hi`` new instances; no two of one family share an image."""
    cycle = ShapeCycle(shapes, rng)
    out = []
    for _ in range(n_images):
        picked: list[Instance] = []
        for _ in range(int(rng.integers(lo, hi + 1))):
            picked.append(factory.member(cycle.next(), {p.family for p in picked}))
        out.append(picked)
    return out


def cast_pairs(factory: InstanceFactory, shapes: list[str], n_pairs: int, rng: np.random.Generator) -> list[Instance]:
    """One new instance per pair (look-alike families spread over pairs)."""
    cycle = ShapeCycle(shapes, rng)
    return [factory.member(cycle.next()) for _ in range(n_pairs)]
