"""The build lock: one process at a time writes a build folder, and nobody reads one that is being written.

``repic build`` holds an exclusive ``fcntl.flock`` on ``<out>/<name>/.<version>.lock``, a file beside the
build folder (so it is never one of the build's files: not in the manifest, never published). The lock
belongs to the open file, so it dies with the process: a build killed with SIGKILL leaves the file but no
lock, and the next build takes it at once. The file holds the PID of the build that holds the lock, for the
message a second build, ``repic publish`` or ``repic inspect`` prints when they are refused:
``build folder X is in use by process N``. Readers only probe the lock (:func:`refuse_if_in_use`), so they
never make a build wait.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curate.errors import UserError


def lock_path(build_dir: str | Path) -> Path:
    """``<parent>/.<folder name>.lock``, next to the build folder (symlinks resolved)."""
    real = Path(os.path.abspath(build_dir))
    real = real.parent.resolve() / real.name
    return real.parent / f".{real.name}.lock"


def _in_use(build_dir: Path, fd: int) -> UserError:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    who = f"process {pid}" if pid.isdigit() else "another process"
    return UserError(f"build folder {build_dir} is in use by {who} (a build is writing it); wait for it to finish")


@contextmanager
def build_lock(build_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``build_dir`` (its parent must exist); UserError at once when it is taken."""
    build_dir = Path(build_dir)
    path = lock_path(build_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        for attempt in range(2):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt:
                    raise _in_use(build_dir, fd) from None
                time.sleep(0.05)  # a reader's probe holds a shared lock for microseconds: look once more
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock (the file stays: removing it would race with a waiting opener)


def refuse_if_in_use(build_dir: str | Path) -> None:
    """UserError ``build folder X is in use by process N`` when a build holds the folder's lock.

    A probe (a shared lock taken and released at once) that creates nothing: a folder that no build ever
    locked (a copy, a download) has no lock file and is free. Readers do not keep the lock, so they never
    make a build wait or fail.
    """
    build_dir = Path(build_dir)
    try:
        fd = os.open(lock_path(build_dir), os.O_RDONLY)
    except OSError:  # no lock file (never built here) or unreadable: nothing holds it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(build_dir, fd) from None
    finally:
        os.close(fd)
