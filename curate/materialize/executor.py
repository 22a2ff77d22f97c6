"""One small executor interface for the build stages.

``Executor.map(fn, items)`` yields ``fn(item)`` for every item, in input order.
Stage functions (:func:`curate.materialize.crops.run_crop_job`,
:func:`curate.materialize.shards.materialize_part`) are top-level pure
functions of one picklable argument that write their own output files
atomically and return a small JSON-able summary. Because of that, the same
functions run unchanged on the in-process :class:`SerialExecutor`, on the
local :class:`ProcessExecutor` (a spawn-based process pool, safe on every
platform and with threaded libraries such as polars), or as Ray Core tasks on
a cluster (:class:`curate.materialize.ray_executor.RayExecutor`, the ``ray``
extra; the build folder and the sources on a shared filesystem). Results never
depend on the executor or the number of workers: each item's output is a
function of the item alone.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Modules whose stage functions run in workers: imported once per worker by warm().
STAGE_MODULES = ("curate.materialize.crops", "curate.materialize.shards")


def tune_malloc() -> bool:
    """Worker initializer: let glibc keep freed image-sized blocks instead of unmapping them.

    Every decoded 640x480 image is a ~1 MB buffer; by default glibc serves such
    blocks with mmap and unmaps them on free, so each image costs fresh page
    faults, and two workers faulting at once slow each other down (measured:
    crop jobs ~20% slower per job with 2 workers than alone). Raising the mmap
    and trim thresholds keeps those pages in the process. Linux/glibc only;
    returns False (and changes nothing) elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 128 << 20))
    except (OSError, AttributeError):
        return False


def _import_stage_modules(_: int = 0) -> int:
    """Import the stage modules and run their ``warm_up()`` (first-call costs such as lazy imports).

    The imported modules live as long as the worker, so they are then frozen
    out of the cyclic garbage collector's sight (see :func:`frozen_heap`).
    """
    for name in STAGE_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "warm_up"):
            module.warm_up()
    gc.freeze()
    return os.getpid()


@contextmanager
def frozen_heap():
    """Hide every object alive now from the cyclic garbage collector until the block ends.

    The pixel stages allocate many short-lived objects, which triggers
    collections; each full collection walks every live object, and a build's
    parent holds hundreds of thousands that stay alive until the end (imported
    libraries, source tables, the plans). Measured on the crop benchmark
    (1,000 images, 1 worker): 0.1-0.2 s of 2.9 s went to collections that
    found nothing. ``gc.freeze()`` moves those objects to a generation that is
    never collected; nothing is lost: ``gc.unfreeze()`` at the end hands them
    back (any garbage among them is collected later as usual).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Executor(Protocol):
    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn(item)`` for each item, yielded in input order."""
        ...

    def warm(self, wait: bool = False) -> None:
        """Start workers ahead of the first map (no-op for in-process executors)."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs everything in the calling process (1 worker)."""

    workers = 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def warm(self, wait: bool = False) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProcessExecutor:
    """A local pool of ``workers`` spawned processes; results come back in input order."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=tune_malloc
        )

    def warm(self, wait: bool = False) -> None:
        """Start every worker and import the stage modules there (spawn start-up is ~0.5 s a worker).

        Call it early (e.g. before planning) so the start-up overlaps other work.
        """
        futures = [self._pool.submit(_import_stage_modules, i) for i in range(self.workers)]
        if wait:
            for f in futures:
                f.result()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        # one item per task: items are coarse (a shard, a job of source images)
        return self._pool.map(fn, items, chunksize=1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


EXECUTORS = ("local", "ray")


def make_executor(workers: int | None, kind: str = "local", address: str | None = None):
    """The executor a build runs its stages on.

    ``local``: a serial executor for 1 worker, else a process pool (``None``: one per CPU).
    ``ray``: Ray tasks on the cluster at ``address`` (or ``RAY_ADDRESS``), else on a
    private local Ray with ``workers`` CPUs (imports Ray only now).
    """
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError("workers must be >= 1")
    if kind == "ray":
        from curate.materialize.ray_executor import RayExecutor

        return RayExecutor(address, num_cpus=n)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    return SerialExecutor() if n == 1 else ProcessExecutor(n)


def map_resumed(executor, fn: Callable[[T], R], items: list[T], committed: Callable[[T], bool]) -> Iterator[R]:
    """``executor.map(fn, items)``, except that committed items are not sent to the workers.

    For a committed item ``fn`` only reads back its saved result, so it runs here,
    in this process, instead of costing a round trip to a worker (on a cluster:
    a task). Results are yielded in input order, as from ``map``.
    """
    done = [committed(item) for item in items]
    results = executor.map(fn, [item for item, d in zip(items, done) if not d])
    for item, d in zip(items, done):
        yield fn(item) if d else next(results)
