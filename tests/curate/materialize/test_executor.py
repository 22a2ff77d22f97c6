"""Executors: results in input order, the same with 1 or N workers, spawn-safe."""

from __future__ import annotations

import os

import pytest

from curate.materialize.executor import ProcessExecutor, SerialExecutor, make_executor


def square_with_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("three")
    return x


def test_serial_keeps_order_and_runs_in_process():
    out = list(SerialExecutor().map(square_with_pid, range(5)))
    assert [v for v, _ in out] == [0, 1, 4, 9, 16]
    assert {p for _, p in out} == {os.getpid()}


def test_process_pool_keeps_input_order_and_uses_other_processes():
    with ProcessExecutor(2) as ex:
        out = list(ex.map(square_with_pid, range(20)))
    assert [v for v, _ in out] == [i * i for i in range(20)]
    assert os.getpid() not in {p for _, p in out}


def test_worker_errors_reach_the_caller():
    with ProcessExecutor(2) as ex, pytest.raises(RuntimeError, match="three"):
        list(ex.map(fail_on_three, range(6)))


def test_make_executor():
    assert isinstance(make_executor(1), SerialExecutor)
    ex = make_executor(2)
    try:
        assert isinstance(ex, ProcessExecutor) and ex.workers == 2
    finally:
        ex.close()
    with pytest.raises(ValueError):
        make_executor(0)


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
