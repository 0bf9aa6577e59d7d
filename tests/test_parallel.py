"""Several trainings at once: results as they finish, errors raised, and no worker outliving its parent."""

import os
import signal
import subprocess
import sys
import time

import pytest

from graphssl.errors import GraphSSLError
from graphssl.parallel import available_cores, check_jobs, run_parallel
from helpers import start

# A parent whose two workers each write their pid, then wait far longer than any test.
PARENT = """\
import pathlib, signal, sys, time
from graphssl.errors import GraphSSLError
from graphssl.parallel import available_cores, check_jobs, run_parallel

# As in a terminal: a test suite started in the background (a non-interactive shell's `cmd &`) hands its children
# SIGINT ignored, and this parent would then never see the Ctrl-C the test sends.
signal.signal(signal.SIGINT, signal.default_int_handler)

def wait_long(folder, name):
    pathlib.Path(folder, name).write_text(str(__import__("os").getpid()))
    time.sleep(600)

if __name__ == "__main__":
    list(run_parallel(wait_long, [(sys.argv[1], "a"), (sys.argv[1], "b")], jobs=2))
"""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _start_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = start([sys.executable, str(script), str(tmp_path)], {**os.environ}, output=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not all((tmp_path / n).is_file() and (tmp_path / n).read_text()
                                             for n in "ab"):
        time.sleep(0.05)
    return parent, [int((tmp_path / n).read_text()) for n in "ab"]


# Each worker holds a multiprocessing lock, as tqdm's in a training, and notes at its exit (in a multiprocessing
# finalizer, where such a lock is released) that it exited; the finalizer takes a while, as a worker's exit with
# torch loaded does.
EXITING = """\
import multiprocessing.util, os, pathlib, sys, time
from graphssl.parallel import run_parallel

def note_exit(folder):
    time.sleep(0.3)
    pathlib.Path(folder, str(os.getpid())).touch()

def work(folder):
    if not getattr(work, "noted", False):
        multiprocessing.util.Finalize(None, note_exit, args=(folder,), exitpriority=0)
        work.noted, work.lock = True, multiprocessing.Lock()
    time.sleep(0.5)
    return os.getpid()

if __name__ == "__main__":
    print(*sorted({pid for _, pid in run_parallel(work, [(sys.argv[1],)] * 4, jobs=2)}))
"""


def test_workers_that_finished_every_call_exit_on_their_own(tmp_path):
    # Killed before its exit cleanup, a worker left its lock registered, and Python warned of "leaked semaphore
    # objects" after a tune or bench.
    script, folder = tmp_path / "exiting.py", tmp_path / "exited"
    script.write_text(EXITING)
    folder.mkdir()
    done = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in folder.iterdir()) == sorted(done.stdout.split())
    assert "leaked" not in done.stderr


def test_a_caller_that_stops_reading_stops_the_calls_still_running():
    results = run_parallel(time.sleep, [(0,), (600,)], jobs=2)
    started = time.time()
    assert next(results) == (0, None)
    results.close()  # as a caller leaving its loop: the 600 s call is stopped, not waited for
    assert time.time() - started < 60


def test_results_come_back_with_their_index_and_errors_are_raised():
    assert sorted(run_parallel(pow, [(2, 3), (3, 2), (2, 5)], jobs=2)) == [(0, 8), (1, 9), (2, 32)]
    with pytest.raises(ZeroDivisionError):
        list(run_parallel(divmod, [(1, 0), (2, 1)], jobs=2))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_workers_die_with_a_parent_killed_by_sigkill(tmp_path):
    parent, workers = _start_parent(tmp_path)
    parent.kill()  # SIGKILL: the parent can clean nothing up
    parent.communicate()
    deadline = time.time() + 30
    while time.time() < deadline and not all(_gone(pid) for pid in workers):
        time.sleep(0.05)
    assert all(_gone(pid) for pid in workers), "workers outlived their parent"


def test_ctrl_c_stops_the_workers_without_a_traceback_from_each(tmp_path):
    parent, workers = _start_parent(tmp_path)
    # What Ctrl-C in a terminal does: SIGINT to every process of the foreground group, here parent and workers.
    for pid in (parent.pid, *workers):
        os.kill(pid, signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    # The parent's own KeyboardInterrupt only (graphssl's commands turn it into one line); none from a worker.
    assert err.rstrip().endswith("KeyboardInterrupt") and "in worker" not in err and "in wait_long" not in err
    deadline = time.time() + 30
    while time.time() < deadline and not all(_gone(pid) for pid in workers):
        time.sleep(0.05)
    assert all(_gone(pid) for pid in workers)


def test_more_jobs_than_cores_is_refused_before_any_process_starts():
    cores = available_cores()
    assert check_jobs(cores) == cores
    with pytest.raises(GraphSSLError, match=f"give at most {cores}"):
        check_jobs(1000)  # a thousand processes each importing torch would exhaust the machine's memory
