"""Issue 9 item 16: one build at a time per build folder; publish / inspect / export refuse a build in progress.

Every test uses a real second process: either one that holds the lock with the library's own code, or a
real ``repic build``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.cli import main
from curate.errors import UserError
from curate.materialize.lock import build_lock, lock_path, refuse_if_in_use
from curate.materialize.manifest import read_manifest, verify_build
from curate.materialize.pipeline import build
from curate.publish.upload import publish
from tests.support.corpus import tiny_corpus, write_recipe

REPO = Path(__file__).resolve().parents[3]
HOLD = (
    "import sys; from pathlib import Path; from curate.materialize.lock import build_lock\n"
    "with build_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.read()\n"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def _env() -> dict:
    return {**os.environ, "REPIC_PROGRESS": "0", "PYTHONPATH": str(REPO)}


def _holder(build_dir: Path) -> subprocess.Popen:
    """A second process that takes the build folder's lock and keeps it until killed (or its stdin closes)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(build_dir)],
        cwd=REPO,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_build_on_a_folder_in_use_exits_2_at_once(tmp_path, corpus, capsys):
    recipe = write_recipe(tmp_path, corpus, total=24, per_shard=4)
    out = tmp_path / "out"
    build_dir = out / "repic-demo" / "1.0.0"
    build_dir.parent.mkdir(parents=True)
    holder = _holder(build_dir)
    try:
        t = time.monotonic()
        assert main(["build", str(recipe), "--out", str(out), "--workers", "1"]) == 2
        assert time.monotonic() - t < 10
        err = capsys.readouterr().err
        assert f"build folder {build_dir} is in use by process {holder.pid}" in " ".join(err.split())
        assert "Traceback" not in err
        assert not build_dir.exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed build never leaves a stale lock
        holder.wait()
    assert lock_path(build_dir).exists()  # the file stays, the lock died with the process
    done = build(recipe, out, workers=1, log=lambda m: None)
    assert done == build_dir and verify_build(done) == []
    # the lock file lives beside the build folder: never one of the build's (manifest or published) files
    assert lock_path(done).parent == done.parent
    assert not any("lock" in rel for rel in read_manifest(done)["files"])


def test_publish_inspect_and_export_refuse_a_build_in_progress(tmp_path, corpus, hub, capsys):
    recipe = write_recipe(tmp_path, corpus, total=24, per_shard=4)
    done = build(recipe, tmp_path / "out", workers=1, log=lambda m: None)
    holder = _holder(done)  # e.g. a rebuild of the same folder that is running now
    try:
        message = f"build folder {done} is in use by process {holder.pid}"
        with pytest.raises(UserError, match="in use by process"):
            publish(done, "org/locked")
        for argv in (["inspect", str(done)], ["export", str(done), str(tmp_path / "export")]):
            assert main(argv) == 2
            assert message in " ".join(capsys.readouterr().err.split())
        assert main(["publish", str(done), "--repo", "org/locked"]) == 2
        assert message in " ".join(capsys.readouterr().err.split())
    finally:
        holder.stdin.close()
        holder.wait()
    refuse_if_in_use(done)  # released: readers go ahead
    assert main(["inspect", str(done)]) == 0
    assert publish(done, "org/locked").tag == "v1.0.0"


def test_two_real_builds_on_the_same_folder(tmp_path, corpus):
    recipe = write_recipe(tmp_path, corpus, total=60, per_shard=4)
    out = tmp_path / "out"
    build_dir = out / "repic-demo" / "1.0.0"
    first = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "build", str(recipe), "--out", str(out), "--workers", "1"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (lock_path(build_dir).is_file() and lock_path(build_dir).read_text().strip() == str(first.pid)):
        assert first.poll() is None and time.monotonic() < deadline, "the first build did not take the lock"
        time.sleep(0.005)
    with pytest.raises(UserError) as exc:
        build(recipe, out, workers=1, log=lambda m: None)
    _, err = first.communicate(timeout=300)
    assert f"build folder {build_dir} is in use by process {first.pid}" in str(exc.value)
    assert first.returncode == 0, err
    assert verify_build(build_dir) == [] and not (build_dir / ".work").exists()


def test_the_lock_is_exclusive_and_released_on_exit(tmp_path):
    folder = tmp_path / "b" / "1.0.0"
    folder.parent.mkdir(parents=True)
    with build_lock(folder) as path:
        assert path.read_text().strip() == str(os.getpid())
        proc = subprocess.run(
            [sys.executable, "-c", HOLD, str(folder)], cwd=REPO, env=_env(), input="", capture_output=True, text=True
        )
        assert proc.returncode != 0 and f"in use by process {os.getpid()}" in proc.stderr
    holder = _holder(folder)  # free again once the block ends
    holder.stdin.close()
    holder.wait()
