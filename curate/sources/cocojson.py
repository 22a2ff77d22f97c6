"""Validation and compact accumulation of COCO-style records (shared by the COCO and Objects365 readers).

Records arrive in file order, section by section in whatever order the file has
them (Objects365 files may put ``annotations`` before ``images``). Per record we
only check JSON types and store the fields in flat typed arrays (no Python dict
kept per record); everything that needs another section -- duplicate ids,
unknown images and categories, boxes against the image size, image files on
disk -- is decided once at the end, vectorized, in :meth:`CocoCollector.finish`.
Every rejected record gets one quarantine row: ``IMAGE_REASONS`` / ``ANN_REASONS``
below, plus ``wrong_type``, ``bbox_malformed`` and ``category_id_duplicate`` found per
record. Each annotation of a rejected image is rejected with the image's reason.
The vectorized box checks are those of :func:`curate.sources.common.xywh_to_xyxy`
(same reasons, order and 1-pixel slack; the COCO tests check that they agree).
In ``header`` mode a JPEG without its end marker is ``image_truncated``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable

import numpy as np
import polars as pl

from curate import imageio, progress
from curate.sources.common import check_image, xywh_to_xyxy
from curate.sources.tables import SourceTables, conform, from_rows, quarantine_row

NUM = (int, float)
BIT = (0, 1)
SLACK = 1.0  # same tolerance as xywh_to_xyxy
_I64 = 2**63
# image status codes (index into IMAGE_REASONS); 0 = fine
IMAGE_REASONS = [
    "",
    "wrong_type",
    "path_traversal",
    "image_missing",
    "image_unreadable",
    "image_truncated",
    "image_size_mismatch",
    "path_outside_root",
]
# annotation reason codes, in priority order (first match wins); 0 = kept, -1 = outside the ``limit``
ANN_REASONS = [
    "",
    "annotation_id_duplicate",
    "image_unknown",
    *IMAGE_REASONS[1:],
    "category_unknown",
    "bbox_nan",
    "bbox_negative",
    "bbox_zero_area",
    "bbox_out_of_bounds",
]
_A = {r: i for i, r in enumerate(ANN_REASONS)}


class CocoCollector:
    """Accumulates one COCO-style file's categories, images and annotations."""

    def __init__(
        self, source: str, file: str, resolve: Callable[[str], str | None], roots: tuple[str, ...] | None = None
    ):
        """``roots``: the images folder, symlinks resolved (:func:`curate.imageio.real_roots`); an image file whose
        symlinks lead outside is ``path_outside_root`` when files are verified (``exists``/``header``)."""
        self.source, self.file, self.resolve, self.roots = source, file, resolve, roots
        self.rows: list[dict] = []  # quarantine rows found per record
        self.cats: dict[int, str] = {}
        self.n_cats = self.n_images = self.n_anns = 0
        self.img_id, self.img_w, self.img_h, self.img_status = array("q"), array("l"), array("l"), array("b")
        self._paths: list[pl.Series] = []
        self._path_buf: list[str | None] = []
        self.ann_id, self.ann_img, self.ann_cat = array("q"), array("q"), array("q")
        self.ann_box, self.ann_area, self.ann_flags = array("d"), array("d"), array("B")

    def reject(self, record_id: object, reason: str, detail: str) -> None:
        self.rows.append(quarantine_row(self.source, "index", record_id, reason, f"{detail} ({self.file})"))

    # ------------------------------------------------------------ per record
    def add_categories(self, recs: Iterable) -> None:
        for rec in recs:
            i, self.n_cats = self.n_cats, self.n_cats + 1
            cid = rec.get("id") if type(rec) is dict else None
            name = rec.get("name") if type(rec) is dict else None
            if type(cid) is not int or type(name) is not str:
                self.reject(
                    f"categories[{i}]",
                    "wrong_type",
                    f"category record needs an integer id and a string name, got {_short(rec)}",
                )
            elif cid in self.cats:
                self.reject(
                    cid, "category_id_duplicate", f"category {cid} {name!r} repeats the id of {self.cats[cid]!r}"
                )
            else:
                self.cats[cid] = name  # name kept exactly (typos, trailing spaces)

    def add_images(self, recs: Iterable) -> None:
        for rec in recs:
            i, self.n_images = self.n_images, self.n_images + 1
            iid = rec.get("id") if type(rec) is dict else None
            if type(iid) is not int or not -_I64 <= iid < _I64:
                self.reject(f"images[{i}]", "wrong_type", f"image record needs an integer id, got {_short(rec)}")
                continue
            w, h, fn = rec.get("width"), rec.get("height"), rec.get("file_name")
            status, path = 0, None
            if not (type(w) in NUM and type(h) in NUM and 0 < w < 2**31 and 0 < h < 2**31):
                status, detail = 1, f"image {iid}: width/height must be positive numbers, got {w!r} x {h!r}"
            elif type(fn) is not str:
                status, detail = 1, f"image {iid}: file_name must be a string, got {fn!r}"
            else:
                path = self.resolve(fn)
                if path is None:
                    status, detail = 2, f"image {iid}: file_name {fn!r} is absolute or leaves the images folder"
            if status:
                self.reject(iid, IMAGE_REASONS[status], detail)
                w = h = 0
            self.img_id.append(iid)
            self.img_w.append(int(w))
            self.img_h.append(int(h))
            self.img_status.append(status)
            self._path_buf.append(path)
            if len(self._path_buf) >= 100_000:  # compact: one Arrow string column per 100k names
                self._paths.append(pl.Series(self._path_buf, dtype=pl.String))
                self._path_buf = []

    def add_annotations(self, recs: Iterable) -> None:
        """Fast path for well-typed records; anything else goes to :meth:`_bad_annotation`."""
        ids, imgs, cats, boxes, areas, flags = (
            self.ann_id,
            self.ann_img,
            self.ann_cat,
            self.ann_box,
            self.ann_area,
            self.ann_flags,
        )
        nan = math.nan
        for a in recs:
            self.n_anns += 1
            try:
                aid, iid, cid, b = a["id"], a["image_id"], a["category_id"], a["bbox"]
                area = a.get("area", nan)
                c, f, r = a.get("iscrowd", 0), a.get("isfake", 0), a.get("isreflected", 0)
                if (
                    type(aid) is not int
                    or type(iid) is not int
                    or type(cid) is not int
                    or type(b) is not list
                    or len(b) != 4
                    or type(b[0]) not in NUM
                    or type(b[1]) not in NUM
                    or type(b[2]) not in NUM
                    or type(b[3]) not in NUM
                    or (type(area) not in NUM and area is not None)
                    or c not in BIT
                    or f not in BIT
                    or r not in BIT
                ):
                    raise TypeError
                ids.append(aid)
                imgs.append(iid)
                cats.append(cid)
                boxes.extend(b)
                areas.append(nan if area is None else area)
            except (TypeError, KeyError, OverflowError):
                self._rollback()
                self._bad_annotation(a, self.n_anns - 1)
                continue
            flags.append(
                (1 if c else 0) | (2 if f else 0) | (4 if r else 0)
            )  # appended last: marks the record complete

    def _rollback(self) -> None:
        n = len(self.ann_flags)
        for arr in (self.ann_id, self.ann_img, self.ann_cat, self.ann_area):
            del arr[n:]
        del self.ann_box[4 * n :]

    def _bad_annotation(self, a: object, index: int) -> None:
        if type(a) is not dict:
            return self.reject(
                f"annotations[{index}]", "wrong_type", f"annotation record is not an object: {_short(a)}"
            )
        aid = a.get("id")
        rid = aid if type(aid) is int else f"annotations[{index}]"
        for key in ("id", "image_id", "category_id"):
            v = a.get(key)
            if type(v) is not int or not -_I64 <= v < _I64:
                return self.reject(rid, "wrong_type", f"annotation {key} must be an integer, got {v!r}")
        box, reason = xywh_to_xyxy(a.get("bbox"), None, None, slack=math.inf)
        if box is None and reason == "bbox_malformed":
            return self.reject(
                rid, reason, f"annotation bbox must be 4 numbers [x, y, w, h], got {_short(a.get('bbox'))}"
            )
        for key in ("area", "iscrowd", "isfake", "isreflected"):
            if key in a:
                v = a[key]
                bad = (type(v) not in NUM and v is not None) if key == "area" else v not in BIT
                if bad:
                    return self.reject(rid, "wrong_type", f"annotation {key} has the wrong type or value: {v!r}")
        self.reject(rid, "wrong_type", f"annotation could not be read: {_short(a)}")

    # ------------------------------------------------------------ end
    def finish(self, *, split: str, limit: int | None, verify: str, kind: str) -> SourceTables:
        if self._path_buf or not self._paths:
            self._paths.append(pl.Series(self._path_buf, dtype=pl.String))
            self._path_buf = []
        paths = pl.concat(self._paths)
        ids = np.frombuffer(self.img_id, np.int64) if self.img_id else np.zeros(0, np.int64)
        status = np.array(self.img_status, dtype=np.int8)
        first = _first_occurrence(ids)
        for i in np.flatnonzero(~first & (status == 0)):
            self.reject(
                int(ids[i]), "image_id_duplicate", f"image {ids[i]} repeats an earlier image id; the first one is kept"
            )
        ok = first & (status == 0)
        keep = ok & (np.cumsum(ok) <= limit) if limit else ok.copy()
        width = np.array(self.img_w, dtype=np.int64)
        height = np.array(self.img_h, dtype=np.int64)
        if verify != "none":
            self._verify(np.flatnonzero(keep), paths, width, height, status, keep, verify)
        tables = {
            "images": conform(
                "images",
                pl.DataFrame(
                    {
                        "image_id": pl.Series(ids[keep]).cast(pl.String),
                        "path": paths.filter(pl.Series(keep)),
                        "width": width[keep],
                        "height": height[keep],
                    }
                ).with_columns(source=pl.lit(self.source), split=pl.lit(split)),
            ),
        }
        tables["objects"], ann_q = self._objects(ids[first], status[first], keep[first], width[first], height[first])
        self.annotation_quarantine = ann_q  # the rejected well-typed annotations alone (record_id = annotation id)
        tables["quarantine"] = pl.concat([from_rows("quarantine", self.rows), ann_q])
        return SourceTables(self.source, kind, tables)

    def _verify(self, idx, paths, width, height, status, keep, mode) -> None:
        todo = list(zip(idx.tolist(), paths.gather(idx).to_list()))
        for i, path in progress.track(todo, f"Checking {self.source} images"):
            size, reason = check_image(path, mode, (int(width[i]), int(height[i])), self.roots)
            if reason:
                status[i], keep[i] = IMAGE_REASONS.index(reason), False
                self.reject(
                    int(self.img_id[i]),
                    reason,
                    f"image {self.img_id[i]}: {path}"
                    + (
                        f" is {size[0]}x{size[1]}, the JSON says {width[i]}x{height[i]}"
                        if reason == "image_size_mismatch"
                        else f" resolves to {imageio.outside(path, self.roots)}, outside {self.roots[0]}"
                        if reason == "path_outside_root"
                        else ""
                    ),
                )

    def _objects(self, img_ids, img_status, img_keep, img_w, img_h) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Decide every annotation (vectorized), then build the objects table column by column, freeing each
        buffer once it is used: peak memory stays near the size of the buffers. The collector is spent afterwards."""
        aid, iid, cid = _np(self.ann_id, np.int64), _np(self.ann_img, np.int64), _np(self.ann_cat, np.int64)
        box = _np(self.ann_box, np.float64).reshape(-1, 4)
        n, m = len(aid), len(img_ids)
        code = np.zeros(n, np.int8)
        if m:  # the first image record with each annotation's image id
            order = np.argsort(img_ids, kind="stable")
            img = order[np.clip(np.searchsorted(img_ids[order], iid), 0, m - 1)]
            found = img_ids[img] == iid
        else:
            img, found = np.zeros(n, np.int64), np.zeros(n, bool)
            img_status, img_keep, img_w, img_h = (
                np.zeros(1, np.int8),
                np.zeros(1, bool),
                np.zeros(1, np.int64),
                np.zeros(1, np.int64),
            )
        st = img_status[img]
        code[found & (st == 0) & ~img_keep[img]] = -1  # image outside ``limit``: not read, not bad
        _set(code, ~_first_occurrence(aid), "annotation_id_duplicate")
        _set(code, ~found, "image_unknown")
        sel = (code == 0) & (st != 0)  # the image record was quarantined: so is each of its annotations
        code[sel] = st[sel] + _A["image_unknown"]
        del st, sel, found
        cat_ids = np.array(sorted(self.cats), dtype=np.int64)
        cpos = np.clip(np.searchsorted(cat_ids, cid), 0, max(len(cat_ids) - 1, 0))
        _set(code, (cat_ids[cpos] != cid) if len(cat_ids) else np.ones(n, bool), "category_unknown")
        x, y, w, h = box.T
        with np.errstate(invalid="ignore"):
            _set(code, ~np.isfinite(box).all(axis=1), "bbox_nan")
            _set(code, (w < 0) | (h < 0) | (x < -SLACK) | (y < -SLACK), "bbox_negative")
            _set(code, (w == 0) | (h == 0), "bbox_zero_area")
            _set(code, x + w > img_w[img] + SLACK, "bbox_out_of_bounds")
            _set(code, y + h > img_h[img] + SLACK, "bbox_out_of_bounds")
        del img
        quarantine = self._ann_quarantine(code > 0, aid, iid, cid, box, code)
        k = code == 0
        del code
        names = pl.Series([self.cats[c] for c in cat_ids.tolist()], dtype=pl.String)
        cols = {"object_id": pl.Series(aid[k]).cast(pl.String)}
        del aid
        cols["image_id"] = pl.Series(iid[k]).cast(pl.String)
        del iid
        cols["category"] = names.gather(cpos[k])
        del cpos, cid
        self.ann_id, self.ann_img, self.ann_cat = array("q"), array("q"), array("q")
        area = _np(self.ann_area, np.float64)
        fix = ~(np.isfinite(area) & (area > 0))  # no usable area in the record: the box area
        area[fix] = w[fix] * h[fix]
        cols["area"] = pl.Series(area[k])
        del area, fix
        self.ann_area = array("d")
        flags = _np(self.ann_flags, np.uint8)[k]
        cols.update(iscrowd=(flags & 1) > 0, isfake=(flags & 2) > 0, isreflected=(flags & 4) > 0)
        self.ann_flags = array("B")
        box[:, 2] += x  # [x, y, w, h] -> [x1, y1, x2, y2], in place
        box[:, 3] += y
        del x, y, w, h
        cols["bbox"] = pl.Series(box[k], dtype=pl.Array(pl.Float64, 4))
        del box
        self.ann_box = array("d")
        return conform("objects", pl.DataFrame(cols).with_columns(source=pl.lit(self.source))), quarantine

    def _ann_quarantine(self, bad, aid, iid, cid, box, code) -> pl.DataFrame:
        b = box[bad]
        df = pl.DataFrame(
            {
                "record_id": pl.Series(aid[bad]).cast(pl.String),
                "reason": pl.Series(ANN_REASONS, dtype=pl.String).gather(code[bad].astype(np.int64)),
                "i": iid[bad],
                "c": cid[bad],
                "x": b[:, 0],
                "y": b[:, 1],
                "w": b[:, 2],
                "h": b[:, 3],
            }
        )
        detail = pl.format(
            "annotation {} of image {} (category {}, bbox [{}, {}, {}, {}]): {} ({})",
            "record_id",
            "i",
            "c",
            "x",
            "y",
            "w",
            "h",
            "reason",
            pl.lit(self.file),
        )
        return conform("quarantine", df.with_columns(detail=detail, source=pl.lit(self.source), stage=pl.lit("index")))


def _np(buf: array, dtype) -> np.ndarray:
    """A writable numpy view of an ``array.array`` (no copy)."""
    return np.frombuffer(buf, dtype) if len(buf) else np.zeros(0, dtype)


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    """True where ``ids[i]`` has not appeared before ``i``."""
    first = np.ones(len(ids), bool)
    if len(ids) > 1:
        order = np.argsort(ids, kind="stable")
        s = ids[order]
        first[order[1:][s[1:] == s[:-1]]] = False
    return first


def _set(code: np.ndarray, cond: np.ndarray, reason: str) -> None:
    code[(code == 0) & cond] = _A[reason]


def _short(v: object, n: int = 120) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."
