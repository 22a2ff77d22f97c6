"""Executors: results in input order, the same with 1 or N workers, spawn-safe.

The contract tests run over every executor: serial, the local process pool and Ray
(one private local Ray with 2 CPUs for the module; marker ``ray``).
"""

from __future__ import annotations

import functools
import os
import random
import time

import pytest

from curate.materialize.executor import ProcessExecutor, SerialExecutor, make_executor, map_resumed


def square_with_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def square_after_a_random_pause(x: int) -> int:
    time.sleep(random.random() / 50)  # workers finish out of order
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("three")
    return x


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray", reason="the optional ray extra is not installed")
    from ray._private import ray_constants

    from curate.materialize.ray_executor import RayExecutor

    with pytest.MonkeyPatch.context() as mp:  # loopback only (Ray read this flag at import, maybe already)
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        mp.delenv("RAY_ADDRESS", raising=False)
        ex = RayExecutor(num_cpus=2)
        try:
            yield ex
        finally:
            ex.close()


@pytest.fixture(params=["serial", "pool", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request):
    if request.param == "serial":
        yield SerialExecutor()
    elif request.param == "pool":
        with ProcessExecutor(2) as ex:
            yield ex
    else:
        yield request.getfixturevalue("ray_executor")


def add(a: int, b: int) -> int:
    return a + b


def test_every_executor_keeps_input_order(executor):
    assert list(executor.map(square_after_a_random_pause, range(40))) == [i * i for i in range(40)]
    assert list(executor.map(square_after_a_random_pause, [])) == []
    assert list(executor.map(functools.partial(add, 10), range(5))) == [10, 11, 12, 13, 14]  # any picklable callable


def test_every_executor_hands_worker_errors_to_the_caller_with_their_type(executor):
    with pytest.raises(RuntimeError, match="three"):
        list(executor.map(fail_on_three, range(6)))
    assert list(executor.map(fail_on_three, [1, 2])) == [1, 2]  # still usable afterwards


def test_every_executor_warms_up(executor):
    executor.warm(wait=True)
    assert executor.workers >= 1
    assert [v for v, _ in executor.map(square_with_pid, range(6))] == [0, 1, 4, 9, 16, 25]


def test_map_resumed_runs_committed_items_here_and_keeps_the_order(executor):
    out = list(map_resumed(executor, square_with_pid, list(range(10)), lambda x: x % 3 == 0))
    assert [v for v, _ in out] == [i * i for i in range(10)]
    assert {p for i, (_, p) in enumerate(out) if i % 3 == 0} == {os.getpid()}


def test_serial_keeps_order_and_runs_in_process():
    out = list(SerialExecutor().map(square_with_pid, range(5)))
    assert [v for v, _ in out] == [0, 1, 4, 9, 16]
    assert {p for _, p in out} == {os.getpid()}


@pytest.mark.ray
def test_ray_runs_in_other_processes(ray_executor):
    assert ray_executor.workers == 2 and ray_executor.in_flight == 4
    out = list(ray_executor.map(square_with_pid, range(20)))
    assert [v for v, _ in out] == [i * i for i in range(20)]
    assert os.getpid() not in {p for _, p in out}


def test_process_pool_keeps_input_order_and_uses_other_processes():
    with ProcessExecutor(2) as ex:
        out = list(ex.map(square_with_pid, range(20)))
    assert [v for v, _ in out] == [i * i for i in range(20)]
    assert os.getpid() not in {p for _, p in out}


def test_make_executor():
    assert isinstance(make_executor(1), SerialExecutor)
    ex = make_executor(2)
    try:
        assert isinstance(ex, ProcessExecutor) and ex.workers == 2
    finally:
        ex.close()
    with pytest.raises(ValueError):
        make_executor(0)
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor(1, "dask")


def test_warm_starts_every_worker_with_the_stage_modules():
    from curate.materialize.executor import _import_stage_modules

    with ProcessExecutor(2) as ex:
        ex.warm(wait=True)
        pids = {p for _, p in ex.map(square_with_pid, range(8))}
        assert len(pids) <= 2 and os.getpid() not in pids
    SerialExecutor().warm()  # a no-op in process
    assert _import_stage_modules() == os.getpid()


def test_frozen_heap_hands_objects_back_to_the_collector_even_after_an_error():
    import gc

    from curate.materialize.executor import frozen_heap

    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with frozen_heap():
            assert gc.get_freeze_count() > before
            raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_the_ray_executor_without_the_extra_is_a_one_line_error(monkeypatch):
    import sys

    from curate.errors import UserError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    with pytest.raises(UserError, match=r'needs the optional "ray" extra: pip install -e "\.\[ray\]"'):
        make_executor(2, "ray")


def test_build_flags_are_checked_before_anything_runs(tmp_path, capsys):
    from curate.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\n")
    assert main(["build", str(recipe), "--executor", "dask"]) == 2
    assert "--executor must be one of local, ray" in capsys.readouterr().err
    assert main(["build", str(recipe), "--executor", "local", "--ray-address", "127.0.0.1:1"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
