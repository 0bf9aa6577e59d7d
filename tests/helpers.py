"""What the tests share: running graphssl as a user does, stopping only what a test started, reading run folders."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import defaultdict

TIMING_KEYS = {"train_seconds", "ms_per_step", "probe_seconds", "peak_rss_mb"}
# YAML of 433 bytes standing for 9^8 values once its aliases (each repeating the one before nine times) are
# written out: minutes and gigabytes, were they built.
ALIASES_OF_ALIASES = "x:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"  a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]\n" for k in range(1, 8))


def comparable(run_dir):
    """A run's metrics.json without the timings and memory figures, which vary between identical runs."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


def log_without_timings(run_dir):
    """A run's log.csv rows without the wall_seconds column, which varies between identical runs."""
    with open(run_dir / "log.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(handle)]


def graphssl_command(*args):
    """``python -m graphssl ARGS`` with this interpreter."""
    return [sys.executable, "-m", "graphssl", *map(str, args)]


def torchrun_command(*args, processes=2):
    """A torchrun job of ``graphssl ARGS`` on this machine. ``--standalone`` lets the OS pick the rendezvous port
    and hands it to the ranks, so no port is guessed (a guessed free port can be taken before torchrun binds it)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "graphssl", *map(str, args)]


def run(command, env, cwd=None, timeout=300):
    """Run ``command`` to the end without a terminal; returns the finished process (exit status, stdout, stderr)."""
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def start(command, env, output=subprocess.DEVNULL):
    """Start ``command`` without a terminal and without waiting for it."""
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                            text=output is subprocess.PIPE)


def kill_tree(proc):
    """SIGKILL the started process ``proc`` (a ``Popen``) and every process below it, found by parent id (never by
    command line, so nothing another test or program runs is touched). torchrun starts its ranks in sessions of
    their own, so a process group would miss them. A process already reaped is left alone: its pid may belong to
    someone else by now. Returns whether it was still running."""
    if proc.poll() is not None:
        return False
    pid = proc.pid
    # Not yet reaped (poll() just said so, and only this test waits for it), so the pid is still this child's.
    os.kill(pid, signal.SIGSTOP)  # it starts no new child while the tree is read
    children = defaultdict(list)
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[parent].append(int(entry))
    tree = [pid]
    for process in tree:
        tree.extend(children[process])
    for process in tree:
        try:
            os.kill(process, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # SIGKILL is delivered, not yet done: wait until each process has exited (gone, or a zombie holding nothing).
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(process) for process in tree[1:]):
        time.sleep(0.01)
    return True


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class RunsCode:
    """Unpickled, it creates ``marker``: what a tampered file would do to whoever reads it with a full unpickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def write_code(path, marker):
    """Replace the file at ``path`` by a pickle that creates ``marker`` when loaded (a full unpickle runs it)."""
    with open(path, "wb") as handle:
        pickle.dump(RunsCode(marker), handle, protocol=2)


def spy_on_probe_splits(monkeypatch):
    """Make every call of ``graphssl.evaluate.linear_probe`` record which splits it was handed (sorted names).

    Returns:
        The list the calls append to."""
    from graphssl import evaluate

    seen_splits = []
    probe = evaluate.linear_probe

    def spy(embeddings, labels, split, *args, **kwargs):
        seen_splits.append(sorted(split))
        return probe(embeddings, labels, split, *args, **kwargs)

    monkeypatch.setattr(evaluate, "linear_probe", spy)
    return seen_splits


def interrupt_training_at(monkeypatch, step_index):
    """Make the training loop raise KeyboardInterrupt (Ctrl-C) as it starts step ``step_index``; undo it with
    ``monkeypatch.undo()``."""
    from graphssl.train import Pretrainer

    step = Pretrainer.step

    def interrupted(self, index):
        if index == step_index:
            raise KeyboardInterrupt
        return step(self, index)

    monkeypatch.setattr(Pretrainer, "step", interrupted)
