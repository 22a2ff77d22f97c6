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


def _check_plain(obj) -> None:
    """Defence in depth: the result must be plain data (BUILD can't smuggle objects in either)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        t = type(o)
        if t in (str, bytes, int, float, bool, type(None)):
            continue
        if t in (list, tuple):
            stack.extend(o)
        elif t is dict:
            stack.extend(o.keys())
            stack.extend(o.values())
        else:
            raise UnsafePickleError(t.__module__, t.__qualname__)


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
    except RecursionError:
        raise UserError(f"{path}: not a readable pickle: nested too deeply") from None
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, KeyError, ... from a damaged file
        raise UserError(f"{path}: not a readable pickle: {type(exc).__name__}: {exc}") from None
