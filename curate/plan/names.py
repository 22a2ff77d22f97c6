"""Names for the ``<name>`` slots of OCT and ICT examples.

The paper samples "human or object names" on the fly with a random name
generator (appendix B.4). This module does the same with Faker, seeded from the
recipe seed and a key that identifies the example (task, source and the ids of
the records it uses), so the names of an example do not depend on the order in
which examples are planned.

Scheme (a stated choice; the paper names no generator):

* ``person`` (CelebA faces, person-like categories such as COCO's ``person``):
  a Faker first name, as is, e.g. ``<Olivia>``.
* ``thing`` (every other object): a pet-like nickname made from a Faker first
  name: its leading consonants, its first vowel run and the consonant after it,
  lower-cased (``Charlotte`` -> ``char``, ``Bobby`` -> ``bob``, ``Max`` -> ``max``), at
  least 3 letters and not a common short English word (``Andrew`` -> ``and`` is redrawn),
  in the spirit of the short names of the paper's figures (``<bo>``).

Rules, enforced for every example: names are distinct (case-insensitively),
none is a category word of any source (whole category names and each of their
alphabetic words), none is a word the prompts use as a tag (``think``,
``answer``, ...), and none is a substring of another name of the same example,
because the rewards test whether a name occurs in the output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import faker

from curate.errors import UserError

Kind = Literal["person", "thing"]

# Categories whose instances get person names (compared lower-case, stripped).
PERSON_CATEGORIES = frozenset(
    {"person", "people", "man", "woman", "boy", "girl", "child", "baby", "human", "face", "celebrity", "player"}
)
# Words used as tags or placeholders in the prompts: never a name.
RESERVED = frozenset(
    {"name", "think", "answer", "observe", "observation", "image", "images", "query", "reference", "yes", "no"}
)
# Short English words a nickname can come out as ("Andrew" -> "and"): never a thing's name.
STOPWORDS = frozenset(
    {
        "and",
        "are",
        "but",
        "can",
        "did",
        "for",
        "had",
        "has",
        "her",
        "him",
        "his",
        "not",
        "our",
        "she",
        "the",
        "was",
        "who",
        "you",
        "all",
        "any",
        "one",
        "out",
        "ten",
        "two",
        "see",
        "saw",
    }
)
MIN_THING_LEN = 3  # nicknames of 2 letters ("an", "as", "el") read as words or fragments
_VOWELS = "aeiouy"
_WORD = re.compile(r"[a-z]+")
_MAX_TRIES = 200


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts (stable across runs and platforms)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def is_person(category: str | None) -> bool:
    """Whether a subject of this category gets a person name (CelebA's pair sampler names every subject a person)."""
    return (category or "").strip().lower() in PERSON_CATEGORIES


def banned_words(categories: Iterable[str | None]) -> frozenset[str]:
    """Lower-case words no name may equal: every category and each word in it, plus RESERVED."""
    out = set(RESERVED)
    for cat in categories:
        if not cat:
            continue
        low = cat.strip().lower()
        out.add(low)
        out.update(_WORD.findall(low))
    return frozenset(out)


def nickname(first_name: str) -> str:
    """Pet-like nickname: leading consonants + first vowel run + the next consonant."""
    s = "".join(ch for ch in first_name.lower() if ch.isalpha())
    i = 0
    while i < len(s) and s[i] not in _VOWELS:
        i += 1
    while i < len(s) and s[i] in _VOWELS:
        i += 1
    if i < len(s):
        i += 1
    return s[:i]


def bracket(name: str) -> str:
    return f"<{name}>"


class NameGenerator:
    """Draws the names of one example at a time; cheap to call per example."""

    def __init__(self, seed: int, locale: str, banned: Iterable[str] = ()):
        try:
            self._faker = faker.Faker(locale)
        except AttributeError:
            raise UserError(f"names.locale: {locale!r} is not a Faker locale") from None
        self.seed = seed
        self.banned = frozenset(w.lower() for w in banned) | RESERVED

    def _draw(self, kind: Kind) -> str:
        first = self._faker.first_name()
        return first if kind == "person" else nickname(first)

    def _acceptable(self, cand: str, kind: Kind, taken: list[str]) -> bool:
        low = cand.lower()
        if len(low) < (MIN_THING_LEN if kind == "thing" else 2) or not low.isalpha() or low in self.banned:
            return False
        if kind == "thing" and low in STOPWORDS:
            return False
        return all(low not in t.lower() and t.lower() not in low for t in taken)

    def names_for(self, key: Sequence[object], kinds: Sequence[Kind]) -> list[str]:
        """Bracketed names (``<Name>``) for one example identified by ``key``."""
        self._faker.seed_instance(derive_seed(self.seed, "names", *key))
        taken: list[str] = []
        for kind in kinds:
            for _ in range(_MAX_TRIES):
                cand = self._draw(kind)
                if self._acceptable(cand, kind, taken):
                    taken.append(cand)
                    break
            else:  # pragma: no cover - Faker's name lists are far larger than any example
                raise RuntimeError(f"could not draw a valid {kind} name for {key!r}")
        return [bracket(n) for n in taken]


def check_names(names: Sequence[str], banned: Iterable[str]) -> list[str]:
    """Problems with an example's names (empty when the rules hold); used by tests and checks."""
    problems = []
    bare = [n[1:-1] if n.startswith("<") and n.endswith(">") else n for n in names]
    banned = {b.lower() for b in banned}
    if len({b.lower() for b in bare}) != len(bare):
        problems.append("duplicate names")
    for i, a in enumerate(bare):
        if a.lower() in banned:
            problems.append(f"{a!r} is a banned word")
        for j, b in enumerate(bare):
            if i != j and a.lower() in b.lower():
                problems.append(f"{a!r} is a substring of {b!r}")
    return problems
