"""Issue 9 item 9: a full disk stops a build with one line (exit 3) naming the file and the space used, and the
rerun after freeing space resumes to the byte-identical build.

A write raises ENOSPC at the Nth call (in this process, or in a pool worker), and, where this machine lets
the test mount one, a real 2 MB tmpfs fills up.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curate.cli import main
from curate.materialize import pipeline
from curate.materialize.guards import disk_full
from curate.materialize.pipeline import build
from curate.materialize.shards import materialize_part
from tests.support.corpus import same_commit, tiny_corpus, write_recipe

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(corpus, recipe, reference build): the uninterrupted build every resumed one must equal."""
    tmp = tmp_path_factory.mktemp("diskfull")
    corpus = tiny_corpus(tmp / "corpus")
    recipe = write_recipe(tmp, corpus, total=24, per_shard=4)
    return corpus, recipe, build(recipe, tmp / "reference", workers=1, log=lambda m: None)


def assert_same_build(done: Path, reference: Path) -> None:
    assert not (done / ".work").exists()
    names = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(done) for p in done.rglob("*") if p.is_file())
    for rel in names:
        if rel.name != "README.md":
            a, b = (reference / rel).read_bytes(), (done / rel).read_bytes()
            assert same_commit(a) == same_commit(b), f"{rel} differs after the resumed build"


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def materialize_part_disk_full(spec):
    """A pool worker's stage function whose shard write finds the disk full (part 1 only)."""
    import pyarrow.parquet as pq

    if spec.index != 1:
        return materialize_part(spec)
    real = pq.write_table

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    pq.write_table = full
    try:
        return materialize_part(spec)
    finally:
        pq.write_table = real


def test_disk_full_in_this_process_is_one_line_and_the_rerun_resumes(setup, tmp_path, monkeypatch, capsys):
    _, recipe, reference = setup
    import pyarrow.parquet as pq

    real, calls = pq.write_table, []

    def write_table(*args, **kwargs):  # the 4th Parquet write (a shard) finds the disk full
        calls.append(args[1])
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)
    out = tmp_path / "out"
    assert main(["build", str(recipe), "--out", str(out), "--workers", "1"]) == 3
    line = _one_error_line(capsys.readouterr().err)
    build_dir = out / "repic-demo" / "1.0.0"
    assert "disk full: no space left on the device while writing" in line
    assert str(build_dir / ".work" / "parts" / "part-00") in line  # the shard being written
    assert "KiB in" in line and str(build_dir) in line and "rerun" in line
    assert not (build_dir / "manifest.json").exists()
    monkeypatch.undo()
    assert build(recipe, out, workers=1, log=lambda m: None) == build_dir
    assert_same_build(build_dir, reference)


def test_disk_full_in_a_pool_worker_is_recognized(setup, tmp_path, monkeypatch, capsys):
    _, recipe, reference = setup
    monkeypatch.setattr(pipeline, "materialize_part", materialize_part_disk_full)
    out = tmp_path / "out"
    assert main(["build", str(recipe), "--out", str(out), "--workers", "2"]) == 3
    line = _one_error_line(capsys.readouterr().err)
    build_dir = out / "repic-demo" / "1.0.0"
    assert f"while writing {build_dir / '.work' / 'parts' / 'part-00001.parquet'}" in line
    monkeypatch.undo()
    assert build(recipe, out, workers=2, log=lambda m: None) == build_dir
    assert_same_build(build_dir, reference)


def test_disk_full_is_found_behind_wrapping_errors():
    inner = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise inner
        except OSError as exc:
            raise RuntimeError("writing failed") from exc
    except RuntimeError as outer:
        assert disk_full(outer) is inner
    assert disk_full(ValueError("polars: No space left on device (os error 28)")) is not None
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if sys.platform != "linux" or shutil.which("mount") is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_tmpfs(setup, tmp_path):
    corpus, recipe, reference = setup
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip(
            "mounting a tmpfs is not permitted here (needs root / CAP_SYS_ADMIN); the ENOSPC tests above cover it"
        )
    try:
        filler = mnt / "filler"
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * (free - 400 * 1024))  # leave 400 KiB: the build needs more (about 1.4 MB)
        out = mnt / "out"
        env = {**os.environ, "REPIC_PROGRESS": "0", "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "curate.cli", "build", str(recipe), "--out", str(out), "--workers", "2"]
        first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 3, first.stderr
        line = _one_error_line(first.stderr)
        assert "disk full: no space left on the device while writing" in line and str(out) in line
        filler.unlink()  # free space, then the same command resumes
        second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        assert "resuming the unfinished build" in second.stderr
        assert_same_build(out / "repic-demo" / "1.0.0", reference)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
