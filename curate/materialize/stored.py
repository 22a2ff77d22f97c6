"""What the crop stage stored, as named records: the crop job results that shard assembly reads.

A crop job (:func:`curate.materialize.crops.run_crop_job`) saves its
:class:`CropResult` as ``job-NNNNN.json`` (:meth:`CropResult.to_json`, the
on-disk form, read back on a resumed build with :meth:`CropResult.from_json`);
the build merges the results' :class:`Stored` and :class:`Failure` records by
store key and hands them to the shard stage (:mod:`curate.materialize.shards`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

Region = tuple[int, int, int, int]


class Stored(NamedTuple):
    """One stored image: its size, the source region it shows, and where its encoded bytes are."""

    width: int
    height: int
    x1: int  # x1..y2: the source region the stored image shows (source pixels)
    y1: int
    x2: int
    y2: int
    offset: int  # offset/length: the encoded bytes in the job's pack file (job-NNNNN.bin)
    length: int
    job: int  # the crop job's index

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def region(self) -> Region:
        return (self.x1, self.y1, self.x2, self.y2)


class Failure(NamedTuple):
    """Why an image could not be stored (a quarantine reason) and the detail."""

    reason: str
    detail: str


@dataclass(frozen=True)
class CropResult:
    """What one crop job did: stored images and failures per store key, excluded source paths, decode count."""

    index: int
    images: dict[str, Stored]
    failed: dict[str, Failure]
    excluded: list[str]
    decoded: int

    def to_json(self) -> dict:
        """The result file's form: ``{"index", "images": {key: [w, h, x1, y1, x2, y2, offset, length]},
        "failed": {key: [reason, detail]}, "excluded": [path, ...], "decoded": n}`` (the job is the file's)."""
        return {
            "index": self.index,
            "images": {k: [s.width, s.height, *s.region, s.offset, s.length] for k, s in self.images.items()},
            "failed": {k: list(f) for k, f in self.failed.items()},
            "excluded": self.excluded,
            "decoded": self.decoded,
        }

    @classmethod
    def from_json(cls, data: dict) -> CropResult:
        n = data["index"]
        return cls(
            index=n,
            images={k: Stored(*v, n) for k, v in data["images"].items()},
            failed={k: Failure(*v) for k, v in data["failed"].items()},
            excluded=data["excluded"],
            decoded=data["decoded"],
        )
