"""Casting: which object instance appears in which COCO / Objects365 image or Subjects200K pair.

Real detection photos practically never show the same physical object twice, and
every Subjects200K pair is a different subject, so the planner treats each
annotation (each pair) as its own instance. The demo corpus matches that: an
:class:`InstanceFactory` mints a new instance for every placement, and no two
instances of one source look the same (shape, colour, pattern and second colour
never all coincide).

To keep hard negatives hard, instances come in look-alike *families*: the same
shape, proportions, shape detail and colours, a slightly shifted shade and
another surface pattern (e.g. ``mug-03a`` a red and white striped mug, ``mug-03b``
a darker red mug with white dots). :func:`cast_scenes` spreads a family's members
over different images, so an image holding another instance of the reference's
category often holds one of its look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.demo.objects import PALETTE, PATTERNS, Instance, shift

_COLOURS = list(PALETTE)


def look(inst: Instance, pattern: str | None = None) -> tuple:
    """What tells instances apart at a glance, unique within a source (a solid surface hides the second colour).

    ``pattern``: the look ``inst`` would have with that pattern instead of its own."""
    pattern = pattern or inst.pattern
    return inst.shape, inst.colour_name, pattern, None if pattern == "solid" else inst.colour2_name


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
        self.minted: list[Instance] = []

    def _keep(self, fam: _Family, inst: Instance) -> Instance:
        fam.members.append(inst)
        self.looks.add(look(inst))
        self.minted.append(inst)
        return inst

    def new_family(self, shape: str) -> Instance:
        """The first member of a new family of ``shape``."""
        fams = self.families.setdefault(shape, [])
        fam = _Family(f"{shape}-{len(fams):02d}", size=int(self.rng.integers(self.family_size[0], self.family_size[1] + 1)))
        for _ in range(500):
            c1, c2 = (_COLOURS[int(i)] for i in self.rng.choice(len(_COLOURS), size=2, replace=False))
            inst = Instance(
                iid=fam.name + "a", shape=shape, colour_name=c1, colour=PALETTE[c1], colour2=PALETTE[c2], colour2_name=c2,
                pattern=str(self.rng.choice(PATTERNS)), aspect=float(self.rng.uniform(0.8, 1.2)),
                detail=int(self.rng.integers(2, 6)), family=fam.name,
            )
            if look(inst) not in self.looks:
                fams.append(fam)
                return self._keep(fam, inst)
        raise RuntimeError(f"no unused look left for a new {shape}")  # 12 x 11 x 4 looks per shape: never at demo sizes

    def lookalike(self, fam: _Family) -> Instance | None:
        """Another member of ``fam``: a shifted shade of the base colour and an unused pattern (None when none is left)."""
        base = fam.members[0]
        taken = {m.pattern for m in fam.members}
        choices = [p for p in PATTERNS if p not in taken and look(base, p) not in self.looks]
        if not choices:
            fam.size = len(fam.members)
            return None
        dh = float(self.rng.choice([-1, 1]) * self.rng.uniform(0.015, 0.04))
        inst = Instance(
            iid=fam.name + "abcdefgh"[len(fam.members)], shape=base.shape, colour_name=base.colour_name,
            colour=shift(base.colour, dh, float(self.rng.uniform(-0.12, 0.06))), colour2=base.colour2,
            colour2_name=base.colour2_name, pattern=str(self.rng.choice(choices)), aspect=base.aspect, detail=base.detail,
            lookalike_of=base.iid, family=fam.name,
        )
        return self._keep(fam, inst)

    def member(self, shape: str, avoid: set[str] = frozenset()) -> Instance:
        """A new instance of ``shape``: usually a look-alike in the oldest open family not in ``avoid``, else a new family."""
        open_fams = [f for f in self.families.get(shape, []) if f.open and f.name not in avoid]
        if open_fams and self.rng.random() < self.join:
            inst = self.lookalike(open_fams[0])
            if inst is not None:
                return inst
        return self.new_family(shape)

    def truth(self) -> dict:
        """TRUTH.json's ``instances``: iid -> shape, description, family, lookalike_of."""
        return {i.iid: {"shape": i.shape, "description": i.description, "family": i.family, "lookalike_of": i.lookalike_of}
                for i in self.minted}


class ShapeCycle:
    """Shapes in shuffled rounds, so every shape is used about equally often."""

    def __init__(self, shapes: list[str], rng: np.random.Generator):
        self.shapes, self.rng, self.queue = list(shapes), rng, []

    def next(self) -> str:
        if not self.queue:
            self.queue = [self.shapes[i] for i in self.rng.permutation(len(self.shapes))]
        return self.queue.pop()


def cast_scenes(factory: InstanceFactory, shapes: list[str], n_images: int, rng: np.random.Generator,
                lo: int = 2, hi: int = 5) -> list[list[Instance]]:
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
