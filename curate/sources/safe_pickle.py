"""A restricted unpickler for data pickles (RefCOCO ``refs(*).p``).

Unpickling can call any importable callable (``os.system`` through
``__reduce__``), so a pickle from the internet must never go through
:func:`pickle.load`. This unpickler resolves no globals at all, except the one
that Python 3 writes for ``bytes`` at protocols 0-2 (``_codecs.encode`` of a
str), which is replaced by a checked local function. Everything else that
needs a global (``REDUCE``, ``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ``,
``NEWOBJ``, extension codes) is refused before anything is called, so the
result can only hold dicts, lists, tuples, str, bytes, int, float, bool and
None.

Python 2 ``cPickle`` files store text as byte strings; they are decoded as
UTF-8 and, if that fails, as latin-1.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

from curate.errors import UserError

_TEXT_ENCODINGS = {"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for a global other than the allowed ``bytes`` constructor."""

    def __init__(self, module: str, name: str):
        super().__init__(f"it references {module}.{name}, which is not a plain container or scalar")
        self.module, self.name = module, name


def _encode(text, encoding="utf-8"):
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocols 0-2, and nothing more."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _TEXT_ENCODINGS:
        raise UnsafePickleError("_codecs", "encode (with unexpected arguments)")
    return codecs.encode(text, encoding)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _encode
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid):
        raise UnsafePickleError("persistent_id", repr(pid)[:40])


MAX_DEPTH = 100  # RefCOCO refs nest 4 levels deep
MAX_OBJECTS = 20_000_000  # distinct containers (refcocog's refs(umd).p holds about 1.5 million)
MAX_EXPANDED = 50_000_000  # containers and scalars counted along every path, as a walker or printer sees them
_SCALARS = (str, bytes, int, float, bool, type(None))


class PickleTooComplexError(pickle.UnpicklingError):
    """Plain data, but shaped so that walking it would hang or exhaust memory."""


def _children(o) -> list:
    return [*o.keys(), *o.values()] if type(o) is dict else list(o)


def _check_plain(obj) -> None:
    """Defence in depth: the result must be plain data (BUILD can't smuggle objects in either), and bounded.

    Memo references let a tiny pickle share one container many times (``[a, a]`` of ``[b, b]`` of ...): the
    data has few objects but 2**depth paths, so any later walk or ``repr`` would never end. Each container is
    visited once (an id-keyed set); its expanded size (every path counted) is summed from its children's, and
    the depth, the number of distinct containers and the expanded size are bounded; a container that contains
    itself is refused.
    """
    expanded: dict[int, int] = {}  # id -> size counted along every path, once a container is done
    open_ids: set[int] = set()  # containers on the current path (entered, not done)
    stack: list[tuple[object, int, bool]] = [(obj, 1, False)]
    while stack:
        o, depth, done = stack.pop()
        t = type(o)
        if t in _SCALARS:
            continue
        if t not in (list, tuple, dict):
            raise UnsafePickleError(t.__module__, t.__qualname__)
        key = id(o)
        if done:
            open_ids.discard(key)
            size = 1 + sum(expanded.get(id(c), 1) for c in _children(o))
            if size > MAX_EXPANDED:
                raise PickleTooComplexError(
                    f"it shares containers so often that walking it would visit more than {MAX_EXPANDED:,} values"
                )
            expanded[key] = size
            continue
        if key in expanded:
            continue
        if key in open_ids:
            raise PickleTooComplexError("a container contains itself")
        if depth > MAX_DEPTH:
            raise PickleTooComplexError(f"containers are nested more than {MAX_DEPTH} levels deep")
        if len(expanded) + len(open_ids) >= MAX_OBJECTS:
            raise PickleTooComplexError(f"more than {MAX_OBJECTS:,} containers")
        open_ids.add(key)
        stack.append((o, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(o) if type(c) not in _SCALARS)


def loads(data: bytes):
    """Unpickle ``data`` into plain containers; raises :class:`pickle.UnpicklingError` subclasses."""
    last: Exception | None = None
    for encoding in ("utf-8", "latin1"):
        try:
            obj = _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        except UnicodeDecodeError as exc:  # Python 2 byte string that is not UTF-8 text
            last = exc
            continue
        _check_plain(obj)
        return obj
    raise pickle.UnpicklingError(f"cannot decode its text: {last}")


def load(path: Path):
    """Unpickle the file at ``path`` safely; any problem is a one-line :class:`UserError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return loads(data)
    except UnsafePickleError as exc:
        raise UserError(
            f"{path}: refused to unpickle: {exc} (only plain data is allowed; nothing was executed)"
        ) from None
    except PickleTooComplexError as exc:
        raise UserError(f"{path}: refused to unpickle: {exc}") from None
    except RecursionError:
        raise UserError(f"{path}: not a readable pickle: nested too deeply") from None
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, KeyError, ... from a damaged file
        raise UserError(f"{path}: not a readable pickle: {type(exc).__name__}: {exc}") from None
