"""A `repic build` killed with SIGKILL mid-build and rerun gives the uninterrupted output, without redoing finished work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.materialize.pipeline import build
from tests.support.corpus import same_commit, tiny_corpus, write_recipe

REPO = Path(__file__).resolve().parents[3]


def _start(recipe: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "REPIC_PROGRESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "build", str(recipe), "--out", str(out), "--workers", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(proc: subprocess.Popen, pattern: str, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(folder.glob(pattern)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the build ended (rc={proc.returncode}) before {pattern} appeared: {proc.stderr.read()[-2000:]}"
            )
        time.sleep(0.001)
    proc.kill()
    raise AssertionError(f"{pattern} did not appear in {timeout}s")


@pytest.mark.slow
def test_sigkill_then_rerun_matches_an_uninterrupted_build(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    recipe = write_recipe(tmp_path, corpus, total=60, per_shard=2)
    reference = build(recipe, tmp_path / "reference", workers=1, log=lambda m: None)

    out = tmp_path / "out"
    work = out / "repic-demo" / "1.0.0" / ".work"
    # 1st run: killed during the crop stage, right after the first crop job committed
    _kill_when(_start(recipe, out), "crops/job-*.json", work)
    assert not (work.parent / "manifest.json").exists()
    # 2nd run: killed during shard writing, right after the first shard committed
    _kill_when(_start(recipe, out), "parts/part-*.json", work)
    committed = {
        p.with_suffix(".parquet").name: p.with_suffix(".parquet").stat().st_mtime_ns
        for p in work.glob("parts/part-*.json")
    }
    assert committed and not (work.parent / "manifest.json").exists()
    # 3rd run: finishes
    proc = _start(recipe, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming the unfinished build" in err
    assert f"resumed: {len(committed)} of " in err and "shards already done" in err
    done = work.parent
    assert not work.exists()
    # finished shards were not rewritten: the final shard files are the committed parts (same mtimes)
    n = len(list((done / "data").glob("*.parquet")))
    for part, mtime in committed.items():
        index = int(part.split("-")[1].split(".")[0])
        assert (done / "data" / f"train-{index:05d}-of-{n:05d}.parquet").stat().st_mtime_ns == mtime
    # and the output is byte-identical to the uninterrupted build
    for p in sorted(reference.rglob("*")):
        if p.is_file() and p.name != "README.md":
            rel = p.relative_to(reference)
            assert same_commit((done / rel).read_bytes()) == same_commit(p.read_bytes()), f"{rel} differs after resume"


def test_kill_after_the_manifest_and_stale_shards_are_handled(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    recipe = write_recipe(tmp_path, corpus, total=24, per_shard=4)
    done = build(recipe, tmp_path / "out", workers=1, log=lambda m: None)
    # a kill between writing manifest.json and removing .work leaves resume state behind: the rerun cleans it up
    (done / ".work" / "parts").mkdir(parents=True)
    (done / ".work" / "parts" / "part-00000.json").write_text("{}")
    assert build(recipe, tmp_path / "out", workers=1, log=lambda m: None) == done
    assert not (done / ".work").exists()
    # shards of an abandoned earlier plan (other shard count) never survive into a new build
    other = tmp_path / "other"
    data = other / "repic-demo" / "1.0.0" / "data"
    data.mkdir(parents=True)
    (data / "train-00000-of-00099.parquet").write_bytes(b"stale")
    fresh = build(recipe, other, workers=1, log=lambda m: None)
    assert not (fresh / "data" / "train-00000-of-00099.parquet").exists()
