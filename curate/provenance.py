"""Provenance facts recorded by builds and training runs: toolkit version and git commit, library versions."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from curate import __version__

_ROOT = Path(__file__).resolve().parents[1]


def library_versions(names: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def toolkit_info(*, with_dirty: bool = False) -> dict:
    """``{"version", "git_commit"}`` (commit None outside a git checkout), plus ``git_dirty`` when asked.

    ``git_dirty`` says whether tracked files of ``curate``/``train`` differ from the commit.
    """
    commit = (_git("rev-parse", "HEAD") or "").strip() or None
    info: dict = {"version": __version__, "git_commit": commit}
    if with_dirty:
        status = _git("status", "--porcelain", "--untracked-files=no", "--", "curate", "train")
        info["git_dirty"] = None if status is None else bool(status.strip())
    return info
