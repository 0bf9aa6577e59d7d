"""Several trainings at once, for ``graphssl tune`` and ``graphssl bench``.

Small graphs do not keep many threads busy: on 2 cores, two single-threaded
Cora trainings side by side finish 1.18x as many runs per hour as one
two-threaded training (``benchmarks/tune_jobs.py``).  :func:`run_parallel`
runs ``jobs`` calls at a time, each in its own spawned process with
``cores // jobs`` torch threads, and yields results as they finish.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Any, Callable, Iterator, Sequence

import torch

from .errors import GraphSSLError, silence_known_warnings


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under ``taskset``), else all of them.

    Returns:
        A count >= 1.

    Example:
        >>> available_cores() >= 1
        True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """Trainings to run at once when ``--jobs`` is not given.

    Two single-threaded trainings when there are two cores or more (measured on Cora with 2 cores:
    1.18x the throughput of one two-threaded training; benchmarks/tune_jobs.py).

    Returns:
        1 or 2.

    Example:
        >>> default_jobs() in (1, 2)
        True
    """
    return 2 if available_cores() >= 2 else 1


def check_jobs(jobs: int | None) -> int:
    """``--jobs`` checked: at least 1, or :func:`default_jobs` when not given.

    Returns:
        The number of trainings to run at once.

    Example:
        >>> check_jobs(3)
        3
    """
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise GraphSSLError(f"--jobs {jobs}: give the number of trainings to run at once, at least 1")
    return jobs


def _init_worker(threads: int) -> None:
    silence_known_warnings()
    torch.set_num_threads(threads)


def run_parallel(function: Callable[..., Any], calls: Sequence[tuple[Any, ...]], jobs: int
                 ) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, function(*calls[i]))`` as each call finishes, ``jobs`` at a time.

    With ``jobs == 1`` the calls run here, one after the other.  Otherwise each
    runs in one of ``jobs`` spawned processes, so ``function`` must be
    importable (a module-level function).  An exception in a call is raised
    here; the calls still running are then finished or cancelled.

    Returns:
        An iterator of ``(index into calls, result)``, in the order the calls finish.

    Example:
        >>> sorted(run_parallel(pow, [(2, 3), (3, 2)], jobs=1))
        [(0, 8), (1, 9)]
    """
    if jobs == 1:  # in this process, with its own thread count
        for index, arguments in enumerate(calls):
            yield index, function(*arguments)
        return
    threads = max(1, available_cores() // jobs)
    # Spawned, not forked: a fork of a process whose OpenMP pool already started can deadlock.
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_init_worker, initargs=(threads,))
    try:
        futures = {pool.submit(function, *arguments): index for index, arguments in enumerate(calls)}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
