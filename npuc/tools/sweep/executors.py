"""Where a sweep's points run: in this process, a local process pool, or a Dask cluster.

Each executor takes the same jobs (`evaluate(inputs, point)`, plain picklable data) and yields the
rows as they finish, so the driver's bookkeeping (progress, resume) is one piece of code.

Dask (`dask.distributed`) is the cluster engine: it is pure Python, its `LocalCluster` runs the
very same scheduler on one machine (the tests use it), and a `Client(address)` reaches an existing
cluster of any size (`dask-scheduler` / `dask-worker`, Kubernetes, SLURM through dask-jobqueue).
Ray would serve as well but weighs several hundred MB and brings its own object store, which
points that read and write files in a shared directory do not need.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Iterator
from typing import Any

from .evaluate import SweepInputs, evaluate
from .grid import Point

EXECUTORS = ("local", "dask")


class ExecutorError(RuntimeError):
    """The chosen executor cannot run (a missing optional dependency, an unreachable scheduler)."""


def run_points(inputs: SweepInputs, points: list[Point], executor: str = "local", jobs: int = 1,
               scheduler: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of `points`, in the order they finish."""
    if executor == "local":
        yield from _local(inputs, points, jobs)
    elif executor == "dask":
        yield from _dask(inputs, points, jobs, scheduler)
    else:
        raise ExecutorError(f"executor {executor!r}: must be one of {', '.join(EXECUTORS)}")


def _local(inputs: SweepInputs, points: list[Point], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs <= 1 or len(points) <= 1:
        for p in points:
            yield evaluate(inputs, p)
        return
    # spawn: a fresh interpreter per worker, not a fork of this one's threads and open files
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [pool.submit(evaluate, inputs, p) for p in points]
        try:
            for f in cf.as_completed(futures):
                yield f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _dask(inputs: SweepInputs, points: list[Point], jobs: int, scheduler: str | None) -> Iterator[dict[str, Any]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ExecutorError("--executor dask needs dask.distributed: pip install 'npuc[cluster]'") from None
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="30s")
        else:
            # one single-threaded worker process per job: the C core is single-threaded per point
            cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
    except OSError as e:
        raise ExecutorError(f"dask scheduler {scheduler or 'local'}: {e}") from None
    try:
        futures = [client.submit(evaluate, inputs, p, pure=False) for p in points]
        for f in as_completed(futures):
            yield f.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
