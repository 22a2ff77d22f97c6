"""Run the build's stage functions as Ray Core tasks (``repic build --executor ray``).

:class:`RayExecutor` honours the :class:`~curate.materialize.executor.Executor`
contract: ``map(fn, items)`` yields ``fn(item)`` in input order. Each item is
one task (a crop job, a shard, a chunk of images to hash); at most
``2 x cluster CPUs`` tasks are in flight, results are collected with
``ray.wait`` as they finish and handed out in input order. Only the picklable
job specs and the small JSON summaries travel through the driver: workers read
the sources and write their outputs themselves, atomically, so every node must
see the sources and the build folder at the same absolute paths
(:meth:`RayExecutor.check_nodes` verifies it before any work starts).

Retries: a task whose worker process or node dies is rerun by Ray
(``max_retries``; every stage function is idempotent and its writes atomic, so
a rerun or a duplicate attempt cannot leave partial or doubled files). A Python
exception raised by a task is not retried (``retry_exceptions=False``): it
reaches the caller as it does with the local pool. A task that keeps failing for
a system reason fails the build with one line naming the job.

Ray is an optional extra (``pip install -e ".[ray]"``), imported only here.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from curate.errors import BuildFailed, UserError

T = TypeVar("T")
R = TypeVar("R")

MAX_RETRIES = 3  # Ray Core's default for system failures
LOOPBACK = ("127.0.0.1", "localhost")


def _is_loopback(address: str | None) -> bool:
    return address is None or address.rsplit(":", 1)[0] in LOOPBACK


def import_ray(address: str | None = None):
    """``import ray``, or a one-line UserError naming the extra.

    For a private local Ray or a cluster on 127.0.0.1 (``address`` None or loopback), Ray is told to keep to
    loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; Ray reads it once, at import): otherwise it binds every
    interface and rewrites 127.0.0.1 to the host's routable address. A remote cluster needs the default (the
    driver must advertise an address the other nodes can reach).
    """
    if "ray" not in sys.modules and _is_loopback(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise UserError('--executor ray needs the optional "ray" extra: pip install -e ".[ray]"') from None
    return ray


def _describe(item, index: int) -> str:
    """Name a job for an error message: its output file when it has one."""
    for attr in ("result_path", "out_path"):
        path = getattr(item, attr, None)
        if path:
            return f"job {getattr(item, 'index', index)} ({path})"
    return f"job {index}"


def package_fingerprint() -> str:
    """sha256 over this package's Python sources: the code that decides the bytes."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def byte_versions() -> dict[str, str]:
    """Versions of everything a build's bytes depend on (compared across nodes)."""
    import PIL
    import pyarrow
    from PIL import features

    return {
        "Pillow": PIL.__version__,
        "libjpeg": str(features.version("jpg")) + (" turbo" if features.check_feature("libjpeg_turbo") else ""),
        "pyarrow": pyarrow.__version__,
        "numpy": __import__("numpy").__version__,
        "curate": package_fingerprint()[:16],
    }


def probe_node(probe: str, token: str, paths: list[str]) -> dict:
    """Run on one node: can it read the driver's probe, write next to it, and see every source path?"""
    from curate.fileio import atomic_write_text

    host = socket.gethostname()
    report = {"host": host, "versions": byte_versions(), "problem": None}
    try:
        seen = Path(probe).read_text(encoding="utf-8")
    except OSError as exc:
        seen = f"unreadable ({exc.strerror or exc})"
    if seen != token:
        report["problem"] = f"cannot see the build folder {Path(probe).parent} (probe file: {seen[:60]})"
        return report
    try:
        atomic_write_text(f"{probe}.{host}-{os.getpid()}", token)
    except OSError as exc:
        report["problem"] = f"cannot write to the build folder {Path(probe).parent} ({exc.strerror or exc})"
        return report
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        report["problem"] = f"cannot see the source path {missing[0]}"
    return report


def source_paths(recipe) -> list[str]:
    """Every file or folder the recipe's sources name (absolute: recipe paths are resolved on load)."""
    paths = []
    for spec in recipe.sources.values():
        paths.extend(str(value) for _, value in spec if isinstance(value, Path))
    return paths


def _call(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def _warm_worker(_: int = 0) -> int:
    from curate.materialize.executor import _import_stage_modules, tune_malloc

    tune_malloc()
    return _import_stage_modules()


class RayExecutor:
    """Stage functions as Ray tasks on a private local Ray (``address=None``) or on the cluster at ``address``.

    Without an address (and without ``RAY_ADDRESS``) it starts a private local
    Ray with ``num_cpus`` CPUs (``ray.init(address="local")``: it never
    attaches to a cluster nobody named) and stops it in :meth:`close`. If this
    process is already connected to Ray, that connection is used and left open.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = MAX_RETRIES):
        address = address or os.environ.get("RAY_ADDRESS") or None
        ray = import_ray(address)
        self._ray = ray
        self.max_retries = max_retries
        self.owns = not ray.is_initialized()
        if self.owns:
            if address is None:
                # a private Ray on this machine: no dashboard, no usage reporting
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                try:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
                except ConnectionError as exc:
                    raise UserError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.in_flight = 2 * self.workers
        self._remote: dict[Callable, object] = {}

    def _task(self, fn: Callable, **options):
        """``fn`` as a Ray task (called ``task.remote(item)``): retried after system failures only."""
        if inspect.isfunction(fn):
            remote = self._remote.get(fn)
            if remote is None:
                remote = self._remote[fn] = self._ray.remote(fn)
            return remote.options(max_retries=self.max_retries, retry_exceptions=False, **options)
        # another callable (a functools.partial, ...): Ray tasks must be functions, so call it through one
        call = self._task(_call, **options)
        return types.SimpleNamespace(remote=lambda item: call.remote(fn, item))

    def _alive_nodes(self) -> list[dict]:
        return [n for n in self._ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]

    def warm(self, wait: bool = False) -> None:
        """Start a worker on every CPU and import the stage modules there."""
        refs = [self._task(_warm_worker, scheduling_strategy="SPREAD").remote(i) for i in range(self.workers)]
        if wait:
            self._ray.get(refs)

    def check_nodes(self, folder: str | Path, recipe) -> None:
        """UserError naming the node unless every node sees ``folder`` and the recipe's sources and runs the
        driver's versions of the libraries that decide the bytes."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from curate.fileio import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        probe = folder / f".ray-probe-{token}"
        atomic_write_text(probe, token)
        paths = source_paths(recipe)
        mine = byte_versions()
        try:
            nodes = self._alive_nodes()
            refs = [
                self._task(
                    probe_node, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                ).remote(str(probe), token, paths)
                for n in nodes
            ]
            for node, report in zip(nodes, self._ray.get(refs)):
                name = f"{node.get('NodeManagerAddress')} ({report['host']})"
                if report["problem"]:
                    raise UserError(f"Ray node {name} {report['problem']}; sources and --out must be shared")
                diff = [k for k in mine if report["versions"].get(k) != mine[k]]
                if diff:
                    k = diff[0]
                    raise UserError(
                        f"Ray node {name} runs {k} {report['versions'].get(k)}, this machine {mine[k]}: "
                        "install the same versions on every node"
                    )
        finally:
            for p in folder.glob(f"{probe.name}*"):
                p.unlink(missing_ok=True)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        ray = self._ray
        task = self._task(fn)
        source = iter(enumerate(items))
        running: dict = {}  # object ref -> item index
        done: dict[int, object] = {}  # finished, not yet yielded
        names: dict[int, str] = {}
        next_out = 0
        exhausted = False
        try:
            while True:
                # submit while fewer than in_flight tasks run and the in-order buffer stays bounded
                while not exhausted and len(running) < self.in_flight and len(running) + len(done) < 4 * self.in_flight:
                    try:
                        i, item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    running[task.remote(item)] = i
                    names[i] = _describe(item, i)
                if not running and not done:
                    return
                if running:
                    ready, _ = ray.wait(list(running), num_returns=1)
                    for ref in ready:
                        i = running.pop(ref)
                        done[i] = self._result(ref, names[i])
                while next_out in done:
                    names.pop(next_out, None)
                    yield done.pop(next_out)
                    next_out += 1
        finally:
            for ref in running:  # the caller stopped early or a job failed: drop the rest
                ray.cancel(ref, force=False)

    def _result(self, ref, name: str):
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the function raised: hand its own exception on
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BuildFailed(
                f"{name} failed on Ray after {self.max_retries} retries ({type(exc).__name__}: {first[:200]})"
            ) from None

    def close(self) -> None:
        if self.owns and self._ray.is_initialized():
            self._ray.shutdown()
        self.owns = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
