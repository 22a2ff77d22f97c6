"""The contract between task planning and materialization.

Planning (``curate.plan.oct`` / ``vlt`` / ``ict`` and ``curate.plan.mixture``) works on the
source tables only and never decodes pixels: it produces :class:`ExamplePlan`
objects. Materialization (``curate.materialize.crops`` and
``curate.materialize.shards``) cuts and resizes the images each plan names,
groups work by source image so that every image is decoded once, and writes
rows with the schema of :mod:`curate.materialize.rows`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Task = Literal["oct", "vlt", "ict_single", "ict_multi"]


@dataclass(frozen=True)
class ImageRef:
    """One image of an example: a whole source image or a crop of it."""

    source: str  # recipe source name
    image_id: str
    path: str  # image reference (see curate.sources.tables)
    box: tuple[float, float, float, float] | None = (
        None  # crop region [x1, y1, x2, y2] in source pixels, margin included; None = whole image
    )
    object_id: str | None = None  # the object the crop shows, if any

    def key(self) -> str:
        b = "" if self.box is None else ",".join(f"{v:.3f}" for v in self.box)
        return f"{self.source}|{self.image_id}|{b}"


@dataclass
class ExamplePlan:
    """A fully specified example whose images are not cut yet."""

    task: Task
    source: str  # the source the example was drawn from
    source_ids: list[str]  # ids of the source records used (image ids, object ids, pair ids, ref ids)
    images: list[ImageRef]  # in placeholder order, query last
    messages: list[dict]  # TRL conversational prompt; image parts are {"type": "image", "text": None}
    solution: object  # "yes"/"no", [x1,y1,x2,y2] in the QUERY IMAGE's SOURCE frame (vlt), "<name>", or list of names
    names: list[str] = field(default_factory=list)
    template: str = ""  # id of the instruction template used, e.g. "oct.q07" or "vlt.t03+think"
    meta: dict = field(default_factory=dict)  # free-form planning facts (e.g. {"negative": "hard"})
    # content_id(), once computed; saved in the plan files so that assembly does not hash every example again.
    # Plans are not changed after planning (the id would go stale): build a new plan instead.
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    def content_id(self) -> str:
        """Stable id: sha256 over what defines the example (not its pixels); computed once per plan."""
        if self._id is None:
            self._id = self._hash()
        return self._id

    def _hash(self) -> str:
        blob = json.dumps(
            {
                "task": self.task,
                "source": self.source,
                "source_ids": self.source_ids,
                "images": [r.key() for r in self.images],
                "messages": self.messages,
                "solution": self.solution,
                "names": self.names,
                "template": self.template,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def to_json(self) -> dict:
        """JSON-ready dict of the plan, its content id included (``"id"``)."""
        d = asdict(self)
        del d["_id"]
        d["images"] = [asdict(r) for r in self.images]
        d["id"] = self.content_id()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ExamplePlan":
        """The plan of :meth:`to_json` (a dict without ``"id"`` gets its id computed when first asked)."""
        d = dict(d)
        saved = d.pop("id", None)
        d["images"] = [ImageRef(**{**r, "box": tuple(r["box"]) if r["box"] is not None else None}) for r in d["images"]]
        plan = cls(**d)
        plan._id = saved
        return plan
