"""Where chunks of paths run: in this process, or on a Dask cluster.

A chunk is a pure function of (inputs, seed, first pair): :class:`KernelJob` holds the inputs as
plain arrays, so it can be shipped to a worker, and any worker (or a retry after a worker dies)
returns the same numbers. Runners yield results in chunk order, so totals merge in the same
order as a local run and are bit-identical to it.

>>> list(LocalRunner().map(abs, [-2, 3]))
[2, 3]
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numba
import numpy as np

from engine.mc import kernel as K
from engine.mc import sobol


@contextlib.contextmanager
def numba_threads(threads: int | None):
    """Numba's thread count for one kernel call (results never depend on it)."""
    prev = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(prev)


@dataclass(frozen=True)
class KernelJob:
    """One simulation's kernel inputs (a ``Simulation`` and a request laid out for the kernel);
    ``job(pair_start)`` runs that chunk: ``(pairs, kernel outputs)``, the rewards in request order,
    the per-scramble sums last."""

    seed: int
    block_pairs: int
    chunk_pairs: int
    n_pairs: int
    steps: np.ndarray
    par: np.ndarray
    init: np.ndarray
    req: object  # engine.mc.simulation._Request
    n_samples: int
    threads: int | None
    store_paths: bool
    window_moments: bool
    daily: bool = True  # the per-day pair-mean sums
    difficulty_x_blocks: bool = True
    scrambles: int = 0  # 0: the counter RNG; R > 0: R scrambles of Sobol points (engine.mc.sobol)

    def __call__(self, start: int):
        r = self.req
        n = min(self.chunk_pairs, self.n_pairs - start)
        tables = sobol.kernel_tables(self.seed, self.scrambles, self.steps.shape[0]) if self.scrambles else None
        with numba_threads(self.threads):
            out = K.simulate_chunk(
                self.seed, start, n, self.block_pairs, self.steps, self.par, self.init, r.cp, r.cp0, r.cp1, r.wlen,
                self.n_samples if start == 0 else 0, r.n_epochs, self.store_paths, r.n_epoch_hist, r.day_slot,
                numba.get_num_threads(), r.ep_req, r.rw_day, r.rw_blocks,
                self.window_moments or not self.store_paths, self.daily, self.difficulty_x_blocks, tables)
        rw = out[-2]
        if r.rw_day.size:
            rw = rw[:, r.rw_unsort]
        return n, out[:-2] + (rw, out[-1])


@dataclass(frozen=True)
class Then:
    """``then(job(start), start)`` on the worker: reduce a chunk where it was made."""

    job: Callable
    then: Callable

    def __call__(self, start: int):
        return self.then(self.job(start), start)


class LocalRunner:
    """Chunks one after another in this process."""

    workers = 1

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        for item in items:
            yield fn(item)


class DaskRunner:
    """Chunks as tasks on a Dask cluster, at most ``in_flight`` at a time, gathered in order. A
    task lost with its worker is rerun by the scheduler; being pure, it gives the same result."""

    def __init__(self, client, in_flight: int | None = None):
        self.client = client
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.in_flight = in_flight or 2 * self.workers

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        fn_future = self.client.scatter(fn, broadcast=True, hash=False)
        pending = deque()
        for item in items:
            pending.append(self.client.submit(_call, fn_future, item, pure=False, retries=3))
            if len(pending) >= self.in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _call(fn, item):
    return fn(item)


def dask_client(cluster: str | None = None, workers: int | None = None):
    """A client of the scheduler at ``cluster``, or of a local cluster of ``workers`` processes
    (one thread each; each worker's kernel uses its share of the cores)."""
    from distributed import Client, LocalCluster

    if cluster is not None:
        return Client(cluster, timeout="5s")
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                         worker_dashboard_address=None, scheduler_kwargs={"dashboard": False},
                         env={"NUMBA_NUM_THREADS": str(threads)})
    return Client(local)
