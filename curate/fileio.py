"""Atomic file writes and file hashing: the one place every stage writes a file that must be whole or absent.

A write goes to a hidden sibling ``.<name>.tmp-<host>-<pid>-<random>`` and is renamed over the target
(``os.replace``, atomic on POSIX filesystems, NFS and Lustre included). The temporary name is unique across
hosts and processes, so two workers that run the same job (a retried or duplicated task on a cluster) never
write into each other's temporary file, and a reader sees either the old file, the new one, or none. A failed
write removes its temporary file; one left by a killed process is found by :func:`temporary_files`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    host = socket.gethostname().split(".")[0] or "host"
    return path.with_name(f".{path.name}{TMP_MARK}{host}-{os.getpid()}-{secrets.token_hex(4)}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write() (disk full) names no file: name the one being written
        raise


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill; on success it takes the place of ``path`` (a folder already
    there is removed first), on an exception it is removed. Readers see the old folder, the new one, or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(
    path: str | Path, data, *, indent: int | None = 2, sort_keys: bool = False, allow_nan: bool = True
) -> None:
    """``data`` as UTF-8 JSON (non-ASCII kept) with a final newline."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=sort_keys, allow_nan=allow_nan)
    atomic_write_text(path, text + "\n")


def temporary_files(folder: str | Path) -> list[Path]:
    """Temporary files of atomic writes left under ``folder`` (by a killed process), sorted."""
    return sorted(p for p in Path(folder).rglob(f".*{TMP_MARK}*") if p.is_file())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
