"""Several trainings at once, for ``graphssl tune`` and ``graphssl bench``.

Small graphs do not keep many threads busy: on 2 cores, two single-threaded
Cora trainings side by side finish 1.18x as many runs per hour as one
two-threaded training (``benchmarks/tune_jobs.py``).  :func:`run_parallel`
runs ``jobs`` calls at a time, each in its own spawned process with
``cores // jobs`` torch threads, and yields results as they finish.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from typing import Any, Callable, Iterator, Sequence

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
        The number of trainings to run at once, at most the cores this process may use.

    Example:
        >>> check_jobs(1)
        1
    """
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise GraphSSLError(f"--jobs {jobs}: give the number of trainings to run at once, at least 1")
    cores = available_cores()
    if jobs > cores:  # each job is a process of its own holding torch and a graph: hundreds would exhaust memory
        raise GraphSSLError(f"--jobs {jobs}: this machine gives graphssl {cores} cores; give at most {cores} "
                            f"(each training gets cores / J torch threads)")
    return jobs


MAX_RUNS = 100_000  # years of trainings on one machine: a larger count is a typo, and its list alone fills memory


def check_run_count(count: int, flags: str) -> None:
    """Refuse a bench or tune asking for more than :data:`MAX_RUNS` trainings (before any list of them is made).

    Example:
        >>> check_run_count(64 * 3, "--trials and --seeds")
    """
    if count > MAX_RUNS:
        raise GraphSSLError(f"{flags}: {count} trainings in all; graphssl runs at most {MAX_RUNS} in one command, "
                            f"so ask for fewer")


def _die_with_parent(parent: int) -> None:
    # Linux: the kernel SIGKILLs this worker when its parent dies, so a parent killed with SIGKILL leaves no
    # workers training on for nobody. Elsewhere a worker finishes its call and then finds its queue gone.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone answers it (stopping the workers
    # with one line), so no worker prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    silence_known_warnings()
    import torch  # here, not above: the CLI checks --jobs with this module before torch loads (seconds)

    torch.set_num_threads(threads)


def _indexed_call(packed: tuple[Callable[..., Any], int, tuple[Any, ...]]) -> tuple[int, Any]:
    function, index, arguments = packed
    return index, function(*arguments)


def run_parallel(function: Callable[..., Any], calls: Sequence[tuple[Any, ...]], jobs: int
                 ) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, function(*calls[i]))`` as each call finishes, ``jobs`` at a time.

    With ``jobs == 1`` the calls run here, one after the other.  Otherwise each
    runs in one of ``jobs`` spawned processes, so ``function`` must be
    importable (a module-level function).  An exception in a call is raised
    here; when the caller stops (that exception, Ctrl-C, or it stops reading),
    the calls still running are stopped with their processes, and a worker
    never outlives this process, even one killed with SIGKILL (Linux). When
    every call has finished, the iterator ends once the workers have exited.

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
    if not calls:
        return
    # Each call gets the threads of ``jobs`` at once even when fewer calls are left (the thread count changes
    # the numbers), in a process of its own; no idle process is started for calls that do not exist.
    threads = max(1, available_cores() // jobs)
    # Spawned, not forked: a fork of a process whose OpenMP pool already started can deadlock.
    pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(calls)), initializer=_init_worker,
                                                     initargs=(threads, os.getpid()))
    try:
        yield from pool.imap_unordered(_indexed_call, [(function, i, args) for i, args in enumerate(calls)])
        # Every call finished: the workers exit on their own. Killed (terminate) before their exit cleanup, they
        # left their multiprocessing locks (tqdm's, for one) registered, and Python warned at the end of a tune
        # or bench of "leaked semaphore objects".
        pool.close()
        pool.join()
    except BaseException:  # an error, Ctrl-C (also while waiting for the exits), or the caller stopped reading
        pool.terminate()
        pool.join()
        raise
