"""Checks around a build that turn environment trouble and silent losses into one clear line.

- :func:`make_folder`: the output folder (``--out``) is a file or cannot be created -> UserError (exit 2).
- :func:`disk_full` / :func:`disk_full_error`: no space left on the device, in this process or in a pool
  worker -> BuildFailed (exit 3) naming the file being written and the space the build held at that point.
  Everything committed so far stays, so rerunning the same command after freeing space resumes the build.
- :func:`shortfalls` / :func:`check_shortfalls`: tasks that got fewer examples than the mixture asked for
  (``mixture.total`` x proportions, largest-remainder rounded) -> a summary, and BuildFailed when a task got
  less than ``quality.min_task_fraction`` of its count, unless ``quality.allow_shortfall`` is set.
- :func:`remove_temporary_files`: temporary files of interrupted atomic writes never survive into a
  complete build.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from curate.errors import BuildFailed, UserError
from curate.fileio import temporary_files

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")


def make_folder(folder: Path, option: str = "--out") -> Path:
    """Create ``folder`` (and its parents); UserError naming ``option`` when a part is a file or mkdir fails."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise UserError(f"{option}: {blocker} is a file, not a folder; give a folder for the output") from None
    except OSError as exc:
        where = exc.filename or folder
        raise UserError(f"{option}: cannot create the folder {where}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- disk full
def disk_full(exc: BaseException) -> BaseException | None:
    """The "no space left" error in ``exc`` or its causes (also one re-raised from a pool worker), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return exc
        if any(text in str(exc) for text in NO_SPACE_TEXT):  # libraries that wrap the OSError in their own type
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def folder_size(folder: Path) -> int:
    total = 0
    for p in Path(folder).rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def disk_full_error(exc: BaseException, build_dir: Path) -> BuildFailed:
    """The one-line BuildFailed (exit 3) for a disk-full error during the build of ``build_dir``."""
    path = getattr(exc, "filename", None) or build_dir
    used = folder_size(build_dir) if build_dir.exists() else 0
    existing = next((p for p in (build_dir, *build_dir.parents) if p.exists()), Path("/"))
    try:
        free = human_bytes(shutil.disk_usage(existing).free)
    except OSError:
        free = "unknown"
    return BuildFailed(
        f"disk full: no space left on the device while writing {path}; the build needed "
        f"{human_bytes(used)} in {build_dir} at that point ({free} free now); free space and rerun the same "
        "command: it resumes where it stopped"
    )


# ---------------------------------------------------------------- shortfalls
def shortfalls(asked: dict[str, int], got: dict[str, int]) -> list[tuple[str, int, int]]:
    """(task, asked, got) for every task that got fewer examples than it asked for, in ``asked`` order."""
    return [(t, int(a), int(got.get(t, 0))) for t, a in asked.items() if a and int(got.get(t, 0)) < int(a)]


def shortfall_lines(short: list[tuple[str, int, int]]) -> list[str]:
    return [f"shortfall: {t} asked {a}, built {b} ({b / a:.1%})" for t, a, b in short]


def check_shortfalls(quality, asked: dict[str, int], got: dict[str, int], *, stage: str, see: Path) -> list:
    """The shortfalls; BuildFailed when a task is under ``quality.min_task_fraction`` (unless allowed).

    ``stage`` says which count ``got`` is ("planned": what the sources supply, "built": rows written).
    """
    short = shortfalls(asked, got)
    if quality.allow_shortfall:
        return short
    low = [(t, a, b) for t, a, b in short if b < quality.min_task_fraction * a - 1e-9]
    if low:
        what = ", ".join(f"{t} {b} of {a} asked ({b / a:.1%})" for t, a, b in low)
        who = "the sources supply only" if stage == "planned" else "the build holds only"
        raise BuildFailed(
            f"shortfall: {who} {what}, below quality.min_task_fraction {quality.min_task_fraction:.0%}: "
            f"lower mixture.total, add sources, or set quality.allow_shortfall: true to build anyway; see {see}"
        )
    return short


def check_plan(quality, state: dict, work: Path, build_dir: Path) -> None:
    """Stop before any pixel work when the plan already falls short (quarantine.parquet written first)."""
    from curate.materialize.parquet import write_quarantine

    stats, q_path = state["plan_stats"], build_dir / "quarantine.parquet"
    try:
        check_shortfalls(quality, stats["task_requested"], stats["task_planned"], stage="planned", see=q_path)
    except BuildFailed:
        write_quarantine([work / "pre_quarantine.parquet"], q_path)
        raise


# ---------------------------------------------------------------- temporary files
def remove_temporary_files(build_dir: Path) -> list[Path]:
    """Remove the temporary files of interrupted atomic writes under ``build_dir`` (caller holds the lock)."""
    found = temporary_files(build_dir)
    for p in found:
        p.unlink(missing_ok=True)
    return found
