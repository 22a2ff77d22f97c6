"""Objects365 v1/v2 reader: a COCO-style JSON of several GB (~25M boxes in v2 train), read by streaming.

The file is never loaded whole. :class:`_Stream` walks the top-level object
itself and decodes the ``images`` / ``annotations`` / ``categories`` arrays in
chunks of a few MB: the text up to the last ``}`` of the buffer is handed to
``json.loads`` as one array (a cut that is not between two elements cannot
parse, because a JSON prefix that ends inside a string or a nested value is
never complete, and then the elements are decoded one by one with
``raw_decode``). Records go straight into the compact typed columns of
:class:`~curate.sources.cocojson.CocoCollector`, so peak memory is one chunk
plus ~70 bytes per box, whatever the file size, and the sections may come in
any order (the images section often follows the annotations).

File names: ``images/v1/patch8/objects365_v1_00420917.jpg`` is looked up as
``<images>/patch8/objects365_v1_00420917.jpg`` (the last two parts, the layout
after extracting the patch tarballs, as mmdetection does). When the images
folder has no ``patch*`` sub-folder the layout is taken to be flat and the
file is ``<images>/<basename>`` (ultralytics' layout, and v1's plain names).
Category names are kept byte for byte (``'Cigar/Cigarette '``); ids are sorted.
``isfake`` / ``isreflected`` become booleans. Images missing from disk are
quarantined (``image_missing``) together with each of their annotations.
"""

from __future__ import annotations

import codecs
import gc
import json
import os
from pathlib import Path
from typing import Literal

from curate import imageio, progress
from curate.errors import UserError
from curate.plan.pairs import DetectionPairs
from curate.recipe.model import SourceSpecBase
from curate.sources.cocojson import CocoCollector
from curate.sources.registry import SourceKind, register
from curate.sources.tables import SourceTables

CHUNK = 4 << 20  # bytes read at a time
MAX_VALUE = 64 << 20  # a single JSON value larger than this is taken as a broken file
SECTIONS = ("images", "annotations", "categories")
CACHE_VERSION = 2  # 2: path_outside_root (symlinks leading out of the images folder)
_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


class Objects365Source(SourceSpecBase):
    kind: Literal["objects365"]
    annotations: Path
    images: Path  # the split folder holding patchN/ sub-folders (or a flat folder)
    split: str = "train"


def input_files(spec: Objects365Source) -> list[Path]:
    return [Path(spec.annotations)]


def read(name: str, spec: Objects365Source) -> SourceTables:
    path = Path(spec.annotations)
    coll = CocoCollector(name, str(path), make_resolver(Path(spec.images)), imageio.real_roots([spec.images]))
    handlers = {"images": coll.add_images, "annotations": coll.add_annotations, "categories": coll.add_categories}
    try:
        size = path.stat().st_size
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: annotation file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the annotation file ({e.strerror or e})") from None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the decoded records hold no reference cycles; collecting through millions of them only costs time
    try:
        with fh, progress.bar(f"Indexing {name} ({size / 1e6:,.0f} MB)", total=size) as advance:
            _Stream(fh, path, advance).read_object(handlers)
    except RecursionError:
        raise UserError(f"{path}: not a usable annotation file: JSON values nested too deeply") from None
    finally:
        if gc_was_enabled:
            gc.enable()
    return coll.finish(split=spec.split, limit=spec.limit, verify=spec.verify_images, kind="objects365")


def make_resolver(root: Path):
    """file_name -> image path string, or None when the name is absolute or climbs out (``..``)."""
    patch_layout = not root.is_dir()
    if not patch_layout:
        with os.scandir(root) as entries:
            patch_layout = any(e.is_dir() and e.name.startswith("patch") for e in entries)
    prefix = str(root).rstrip("/") + "/"

    def resolve(file_name: str) -> str | None:
        name = file_name.replace("\\", "/")
        if not name or "\x00" in name or name.startswith("/") or name[1:3] == ":/":
            return None
        parts = name.split("/")
        if ".." in parts:
            return None
        parts = [p for p in parts if p and p != "."]
        if not parts:
            return None
        return prefix + ("/".join(parts[-2:]) if patch_layout else parts[-1])

    return resolve


class _Stream:
    """A forward-only reader of one JSON document, decoding top-level arrays in bulk."""

    def __init__(self, fh, path: Path, advance):
        self.fh, self.path, self.advance = fh, path, advance
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.base, self.eof = "", 0, 0, False

    def fail(self, problem: str, at: int | None = None):
        where = self.base + (self.pos if at is None else at)
        raise UserError(f"{self.path}: {problem} (near character {where:,})")

    def fill(self) -> bool:
        """Append the next chunk to the buffer (dropping what was consumed); False at end of file."""
        if self.eof:
            return False
        data = self.fh.read(CHUNK)
        self.advance(len(data))
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as e:
            self.fail(f"not valid UTF-8 JSON ({e.reason})", len(self.buf))
        self.base += self.pos
        self.buf, self.pos = self.buf[self.pos :] + text, 0
        self.eof = not data
        return bool(data)

    def peek(self) -> str:
        """The next non-blank character ('' at end of file), without consuming it."""
        while True:
            buf, n = self.buf, len(self.buf)
            while self.pos < n and buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < n:
                return buf[self.pos]
            if not self.fill():
                return ""

    def value(self):
        """Decode one complete JSON value at the cursor."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number at the very end might continue
                    self.pos = end
                    return obj
            except json.JSONDecodeError as e:
                if self.eof and (e.pos >= len(self.buf.rstrip()) or e.msg.startswith("Unterminated string")):
                    self.fail("not valid JSON: the file ends before the value is complete (cut short?)", e.pos)
                if self.eof or len(self.buf) - self.pos > MAX_VALUE:
                    self.fail(f"not valid JSON: {e.msg}", e.pos)
            self.fill()

    def expect(self, ch: str, what: str) -> None:
        c = self.peek()
        if c != ch:
            self.fail(
                f"not valid JSON: expected {what}, found {c!r}" if c else f"not valid JSON: the file ends before {what}"
            )
        self.pos += 1

    def read_object(self, handlers: dict) -> None:
        c = self.peek()
        if c != "{":
            kinds = {"": "empty", "[": "a JSON array"}
            self.fail(
                f"the top level is {kinds.get(c, 'not a JSON object')}; expected an object with images/annotations/categories"
            )
        self.pos += 1
        seen = set()
        while self.peek() != "}":
            if seen:
                self.expect(",", "',' or '}'")
            if self.peek() != '"':
                self.expect('"', "a key")
            key = self.value()
            self.expect(":", "':'")
            if key in handlers:
                if self.peek() != "[":
                    self.fail(f"{key!r} must be a JSON list")
                self.pos += 1
                for items in self.array_chunks():
                    handlers[key](items)
            elif self.peek() == "[":  # another array (licenses ...): decode and drop it piece by piece
                self.pos += 1
                for _ in self.array_chunks():
                    pass
            else:
                self.value()
            seen.add(key)
        self.pos += 1
        if self.peek():
            self.fail("not valid JSON: extra data after the top-level object")
        missing = [k for k in SECTIONS if k not in seen]
        if missing:
            raise UserError(
                f"{self.path}: missing the {', '.join(repr(k) for k in missing)} section(s) of a COCO-style annotation file"
            )

    def array_chunks(self):
        """Yield lists of the elements of the array whose '[' was just consumed, up to and including its ']'."""
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            self.peek()
            if len(self.buf) - self.pos < CHUNK and not self.eof:
                self.fill()
            start, end = self.pos, self.buf.rfind("}", self.pos) + 1
            items = None
            if end > start:
                text = "[" + self.buf[start:end] + "]"
                try:
                    items, stop = _DECODER.raw_decode(text)
                    # the array's own ']' may come before the cut: then stop points just past it
                    self.pos = end if stop == len(text) else start + stop - 2
                except json.JSONDecodeError:
                    items = None
            if items is None:  # not cut between two elements: decode one by one up to the cut
                items = [self.value()]
                while self.pos < end - 1 and self.peek() == ",":
                    self.pos += 1
                    items.append(self.value())
            yield items
            c = self.peek()
            if c == "]":
                self.pos += 1
                return
            self.expect(",", "',' or ']' in a list")


KIND = register(
    SourceKind(
        name="objects365",
        spec=Objects365Source,
        read=read,
        input_files=input_files,
        tasks=("oct", "ict_single", "ict_multi"),
        pairs=DetectionPairs,
    )
)
