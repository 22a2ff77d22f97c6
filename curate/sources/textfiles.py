"""Whitespace-separated annotation lists keyed by image file name (the CelebA ``.txt`` files).

Two shapes exist:

* plain lists, ``000001.jpg 2880`` per line (``identity_CelebA.txt``,
  ``list_eval_partition.txt``); some edited copies add a header line such as
  ``image identity``, which is tolerated;
* counted tables (``list_bbox_celeba.txt``, ``list_attr_celeba.txt``, the
  landmark lists): line 1 is the row count, line 2 the column names (with or
  without a leading ``image_id``), then rows padded with several spaces.

Lines are split with :meth:`str.split`, so any run of spaces or tabs separates
fields. A line with the wrong number of fields is reported as malformed (the
caller quarantines it); a file where no line fits the format is a
:class:`UserError`, and so is a file that is an HTML page (several mirrors
serve a "quota exceeded" page under the list's name: it must be downloaded
again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class Listing:
    path: Path
    header: list[str] = field(default_factory=list)  # value column names; [] when the file has none
    declared: int | None = None  # the row count on line 1, for counted tables
    rows: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (line number, image name, values)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, first field, problem)

    def count_problem(self) -> str | None:
        """A description of the mismatch between the declared count and the rows, if any."""
        found = len(self.rows) + len(self.malformed)
        if self.declared is not None and self.declared != found:
            return f"line 1 declares {self.declared} rows but the file has {found}"
        return None


def read_lines(path: Path) -> list[str]:
    """The file's lines; a missing or binary file is a one-line :class:`UserError`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:65536]:
        raise UserError(f"{path}: not a text file (it holds binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if looks_like_html(text):
        raise UserError(
            f"{path}: looks like an HTML page (a saved download page such as Google Drive's 'quota exceeded'), "
            "not the annotation list: download it again"
        )
    return text.splitlines()


def looks_like_html(text: str) -> bool:
    """The text starts (after blanks) with an HTML doctype or tag, or holds ``<html`` / ``<body`` in its first 4 KiB."""
    head = text[:4096].lstrip().lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<?xml")) or "<html" in head or "<body" in head


def _is_image_name(token: str) -> bool:
    return token.lower().endswith(IMAGE_SUFFIXES)


def read_listing(path: Path, ncols: int | None, *, counted: bool) -> Listing:
    """Parse a listing with ``ncols`` value columns after the image name.

    ``ncols=None`` takes the width from the header (which is then required).
    """
    path = Path(path)
    lines = read_lines(path)
    out = Listing(path)
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if counted and i < len(lines):
        toks = lines[i].split()
        if len(toks) == 1 and toks[0].isdigit():
            out.declared = int(toks[0])
            i += 1
    if i < len(lines) and lines[i].split() and not _is_image_name(lines[i].split()[0]):
        header = lines[i].split()
        if header[0].lower() in ("image_id", "image", "img", "filename", "file_name"):
            header = header[1:]
        if ncols is not None and counted and len(header) != ncols:
            raise UserError(f"{path}:{i + 1}: column header has {len(header)} names, expected {ncols}")
        out.header = header
        i += 1
    if ncols is None:
        if not out.header:
            raise UserError(f"{path}: line 2 must name the columns")
        ncols = len(out.header)
    for lineno in range(i + 1, len(lines) + 1):
        toks = lines[lineno - 1].split()
        if not toks:
            continue
        if len(toks) != ncols + 1:
            out.malformed.append((lineno, toks[0][:120], f"expected {ncols + 1} fields, found {len(toks)}"))
        elif not _is_image_name(toks[0]):
            out.malformed.append((lineno, toks[0][:120], f"{toks[0][:60]!r} is not an image file name"))
        else:
            out.rows.append((lineno, toks[0], toks[1:]))
    if not out.rows and out.malformed:
        lineno, _, problem = out.malformed[0]
        raise UserError(f"{path}: no line has the expected format (line {lineno}: {problem})")
    return out


def parse_int(text: str) -> int | None:
    """``int(text)`` for plain decimal integers (sign allowed), else None."""
    t = text[1:] if text[:1] in "+-" else text
    return int(text) if t.isdigit() else None
