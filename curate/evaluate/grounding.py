"""Personal-grounding precision / recall / F1 of generated captions.

The protocol of the RePIC evaluation scripts (single-, 2- and 4-concept):

* the candidate pool is every distinct concept name in the file;
* a caption is tokenized by removing ``</s>``, splitting on whitespace and stripping
  ``.,!?;:()[]{}"'-`` from both ends of each token (empty tokens are dropped);
* a concept is present when its bracketed form (``<Anya>``) or its bare form (``Anya``)
  equals a token;
* for each ground-truth concept of a record the prediction is that concept if present,
  else ``MISS`` if any pool concept that is not one of the record's ground truths is
  present, else nothing;
* precision = correct / predictions that are not nothing (``MISS`` included),
  recall = correct / ground-truth concepts, F1 = their harmonic mean.

Matching lowercases captions and names unless ``case_sensitive`` (the 2-concept script
matches exactly; the single- and 4-concept scripts lowercase).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from curate.evaluate.records import CaptionRecord

PUNCT_STRIP = ".,!?;:()[]{}\"'-"
END_OF_SEQUENCE = "</s>"
MISS = "MISS"


def tokenize(caption: str, *, case_sensitive: bool = False) -> list[str]:
    text = caption.replace(END_OF_SEQUENCE, "")
    if not case_sensitive:
        text = text.lower()
    tokens = (w.strip(PUNCT_STRIP) for w in text.split())
    return [t for t in tokens if t]


def bare(name: str) -> str:
    """``<Anya>`` -> ``Anya``; a name without surrounding brackets is returned unchanged."""
    return name[1:-1] if len(name) >= 2 and name.startswith("<") and name.endswith(">") else name


def _norm(name: str, case_sensitive: bool) -> str:
    return name if case_sensitive else name.lower()


def present_concepts(caption: str, pool: Iterable[str], *, case_sensitive: bool = False) -> set[str]:
    """Bare (normalized) forms of the pool concepts that a caption mentions."""
    tokens = set(tokenize(caption, case_sensitive=case_sensitive))
    found = set()
    for name in pool:
        n = _norm(name, case_sensitive)
        if n in tokens or bare(n) in tokens:
            found.add(bare(n))
    return found


def predict(
    caption: str, truths: Sequence[str], pool: Iterable[str], *, case_sensitive: bool = False
) -> list[str | None]:
    """One prediction per ground-truth concept: its bare name, ``MISS`` or None."""
    pool = list(pool)
    present = present_concepts(caption, pool, case_sensitive=case_sensitive)
    truth_bare = [bare(_norm(t, case_sensitive)) for t in truths]
    others = {bare(_norm(c, case_sensitive)) for c in pool} - set(truth_bare)
    wrong = bool(present & others)
    return [t if t in present else (MISS if wrong else None) for t in truth_bare]


@dataclass(frozen=True)
class GroundingScore:
    precision: float  # percent
    recall: float  # percent
    f1: float  # percent
    records: int
    targets: int
    correct: int
    predicted: int  # predictions that are not nothing (MISS included)
    missed: int  # MISS predictions

    def summary(self) -> dict:
        """The ``--format json`` object."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "records": self.records,
            "targets": self.targets,
        }

    def as_dict(self) -> dict:
        return asdict(self)


def score(records: Sequence[CaptionRecord], *, case_sensitive: bool = False) -> GroundingScore:
    """Personal-grounding scores (percent) of a list of caption records."""
    pool = sorted({c for r in records for c in r.concepts})
    correct = predicted = missed = targets = 0
    for r in records:
        preds = predict(r.caption, r.concepts, pool, case_sensitive=case_sensitive)
        truth_bare = [bare(_norm(t, case_sensitive)) for t in r.concepts]
        targets += len(truth_bare)
        for p, t in zip(preds, truth_bare):
            if p is None:
                continue
            predicted += 1
            if p == MISS:
                missed += 1
            elif p == t:
                correct += 1
    precision = correct / predicted if predicted else 0.0
    recall = correct / targets if targets else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return GroundingScore(precision * 100, recall * 100, f1 * 100, len(records), targets, correct, predicted, missed)
