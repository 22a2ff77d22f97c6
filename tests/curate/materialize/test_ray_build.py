"""`repic build --executor ray`: byte-identical to the local build on a private local Ray and on a two-node Ray
(both nodes on 127.0.0.1, Ray's own ``ray.cluster_utils.Cluster``), through killed workers, a removed node and a
killed driver; Python exceptions are not retried, system failures are, then fail with the job's name.

Nothing here binds or connects to anything but loopback: no ``ray start``; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
keeps Ray's listeners on 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from curate.errors import BuildFailed, UserError
from curate.materialize import pipeline
from curate.materialize.crops import run_crop_job
from curate.materialize.pipeline import build
from curate.materialize.shards import materialize_part
from curate.recipe import load_recipe
from tests.curate.materialize.test_resume import _kill_when
from tests.support.corpus import same_commit, tiny_corpus, write_recipe

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray", reason="the optional ray extra is not installed")

REPO = Path(__file__).resolve().parents[3]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "REPIC_PROGRESS": "0"}
quiet = lambda m: None  # noqa: E731


def _files(build_dir: Path) -> dict[str, bytes]:
    names = [p for p in sorted(build_dir.rglob("*")) if p.is_file() and p.name != "README.md"]
    return {p.relative_to(build_dir).as_posix(): same_commit(p.read_bytes()) for p in names}


def _assert_identical(build_dir: Path, reference: dict[str, bytes]) -> None:
    got = _files(build_dir)
    assert got.keys() == reference.keys()
    for name, data in reference.items():
        assert got[name] == data, f"{name} differs from the local build"


@pytest.fixture(scope="module")
def env():
    """Loopback only: for the Ray processes started here (environment) and for this process, where Ray read
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it was imported at collection."""
    from ray._private import ray_constants

    with pytest.MonkeyPatch.context() as mp:
        for k, v in LOOPBACK_ENV.items():
            mp.setenv(k, v)
        mp.delenv("RAY_ADDRESS", raising=False)
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        yield


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """The demo mixture with small shards, and one COCO photo declared an evaluation image (so the exclusion
    hashing runs on the executor too)."""
    folder = tmp_path_factory.mktemp("ray-build")
    corpus = tiny_corpus(folder / "corpus")
    (folder / "eval").mkdir()
    photo = sorted((corpus / "coco" / "train2017").glob("*.jpg"))[0]
    shutil.copy(photo, folder / "eval" / photo.name)
    return write_recipe(folder, corpus, total=48, per_shard=5, exclude={"paths": [str(folder / "eval")]})


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory) -> dict[str, bytes]:
    out = build(recipe, tmp_path_factory.mktemp("local"), workers=2, log=quiet)
    files = _files(out)
    assert len([n for n in files if n.startswith("data/")]) >= 8
    assert {"manifest.json", "quarantine.parquet"} <= set(files)
    assert json.loads(files["manifest.json"])["excluded_eval_images"] >= 1
    return files


def test_a_private_local_ray_build_is_byte_identical(env, recipe, reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out is made absolute before any task runs
    assert not ray.is_initialized()
    out = build(recipe, "out", workers=2, executor="ray", log=quiet)
    assert out.is_absolute() and out.is_relative_to(tmp_path)
    assert not ray.is_initialized()  # the private Ray was stopped
    _assert_identical(out, reference)


@pytest.fixture(scope="module")
def cluster(env):
    """Two Ray nodes with one CPU each, both on 127.0.0.1; torn down even when a test fails."""
    from ray.cluster_utils import Cluster

    c = Cluster()
    try:
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1", include_dashboard=False)
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        c.wait_for_nodes()
        assert c.address.startswith("127.0.0.1:")
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def crop_killing_its_worker_once(marks: str, job):
    """run_crop_job, except that the first attempt of job 0 SIGKILLs its own worker process mid-task."""
    marks = Path(marks)
    with open(marks / "nodes.txt", "a") as f:
        f.write(ray.get_runtime_context().get_node_id() + "\n")
    kill = marks / f"killed-{job.index}"
    if job.index == 0 and not kill.exists():
        kill.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return run_crop_job(job)


def slow_part(marks: str, spec):
    """materialize_part, slowed down so that a node can be removed while shards are written."""
    with open(Path(marks) / "nodes.txt", "a") as f:
        f.write(ray.get_runtime_context().get_node_id() + "\n")
    time.sleep(0.5)
    return materialize_part(spec)


def test_two_nodes_a_killed_worker_and_a_removed_node_still_give_the_same_bytes(
    cluster, recipe, reference, tmp_path, monkeypatch
):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(pipeline, "run_crop_job", functools.partial(crop_killing_its_worker_once, str(marks)))
    monkeypatch.setattr(pipeline, "materialize_part", functools.partial(slow_part, str(marks)))
    second = next(iter(cluster.worker_nodes))
    out = tmp_path / "out"
    work = out / "repic-demo" / "1.0.0" / ".work"
    removed, stop = [], threading.Event()

    def ran_on_both() -> bool:
        return (marks / "nodes.txt").exists() and len(set((marks / "nodes.txt").read_text().split())) == 2

    def remove_second_node():  # once both nodes ran jobs and two shards are committed: mid-way through the shards
        while not stop.is_set() and (len(list(work.glob("parts/part-*.json"))) < 2 or not ran_on_both()):
            time.sleep(0.05)
        if not stop.is_set() and not (work.parent / "manifest.json").exists():
            cluster.remove_node(second, allow_graceful=False)
            removed.append(True)

    remover = threading.Thread(target=remove_second_node)
    remover.start()
    try:
        done = build(recipe, out, executor="ray", ray_address=cluster.address, log=quiet)
    finally:
        stop.set()
        remover.join()
        if not removed:
            cluster.remove_node(second, allow_graceful=False)
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")  # back to two nodes for the next test
        cluster.wait_for_nodes()
    assert (marks / "killed-0").exists(), "the crop worker was not killed"
    assert removed, "the build finished before the node could be removed"
    assert len(set((marks / "nodes.txt").read_text().split())) == 2, "the jobs did not run on both nodes"
    assert not ray.is_initialized()  # the driver disconnected; the cluster stays up
    _assert_identical(done, reference)


def _start(recipe: Path, out: Path, address: str) -> subprocess.Popen:
    argv = ["build", str(recipe), "--out", str(out), "--executor", "ray", "--ray-address", address]
    return subprocess.Popen(
        [sys.executable, "-m", "curate.cli", *argv],
        cwd=REPO,
        env={**os.environ, **LOOPBACK_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_driver_resumes_on_ray_or_locally_with_the_same_bytes(cluster, recipe, reference, tmp_path):
    out = tmp_path / "out"
    work = out / "repic-demo" / "1.0.0" / ".work"
    _kill_when(_start(recipe, out, cluster.address), "crops/job-*.json", work, timeout=300)
    assert not (work.parent / "manifest.json").exists()
    _kill_when(_start(recipe, out, cluster.address), "parts/part-*.json", work, timeout=300)
    committed = len(list(work.glob("parts/part-*.json")))
    assert committed and not (work.parent / "manifest.json").exists()
    logs = []
    done = build(recipe, out, workers=1, log=logs.append)  # the last run on this machine's executor
    assert any(m.startswith("resumed: ") and m.endswith("crop jobs already done") for m in logs), logs
    assert any(m.startswith(f"resumed: {committed} of ") for m in logs), logs
    _assert_identical(done, reference)


def fail_and_count(marks: str, x: int) -> int:
    with open(Path(marks) / f"attempts-{x}", "a") as f:
        f.write("attempt\n")
    if x == 1:
        raise ValueError("bad record")
    return x


def die(x: int) -> int:
    os._exit(1)


def test_python_exceptions_are_not_retried_and_system_failures_name_the_job(cluster, tmp_path):
    from curate.materialize.ray_executor import RayExecutor

    with RayExecutor(cluster.address, max_retries=1) as ex:
        assert ex.workers == 2
        with pytest.raises(ValueError, match="bad record"):
            list(ex.map(functools.partial(fail_and_count, str(tmp_path)), range(3)))
        assert (tmp_path / "attempts-1").read_text() == "attempt\n"  # ran once
        with pytest.raises(BuildFailed, match=r"^job 0 failed on Ray after 1 retries"):
            list(ex.map(die, [0]))


def test_every_node_must_see_the_sources_and_the_build_folder(cluster, recipe, tmp_path):
    from curate.materialize.ray_executor import RayExecutor

    good = load_recipe(recipe)
    coco = good.sources["coco"].model_copy(update={"images": tmp_path / "not-mounted"})
    bad = good.model_copy(update={"sources": {**good.sources, "coco": coco}})
    with RayExecutor(cluster.address) as ex:
        ex.check_nodes(tmp_path / "build", good)
        with pytest.raises(UserError, match=r"^Ray node 127\.0\.0\.1 .* cannot see the source path .*not-mounted"):
            ex.check_nodes(tmp_path / "build", bad)
    assert list((tmp_path / "build").iterdir()) == []  # the probe files are gone
