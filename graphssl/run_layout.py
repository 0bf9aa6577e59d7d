"""A run folder's file names, and the checks on a folder given to ``--resume`` or ``eval`` that need no torch.

They live apart from :mod:`graphssl.run_folder` so that the command line can
refuse a wrong folder before torch loads (seconds), as it refuses a typo.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GraphSSLError, reason
from .locks import other_live_holder

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
LOCK = ".lock"  # held by the process writing the folder (graphssl.locks)
METRICS = "metrics.json"
SPECTRA = "spectra.json"


def run_folder_path(run_dir: str | Path, purpose: str) -> Path:
    """Refuse a path that is not a folder; ``purpose`` names the flag in errors.

    ``--resume`` checks no more before it holds the folder's lock: a folder
    without a checkpoint may belong to a run still training.

    Returns:
        The folder, as a :class:`~pathlib.Path`.

    Example:
        >>> run_folder_path("runs/cora-wr", "--resume")  # doctest: +SKIP
        PosixPath('runs/cora-wr')
    """
    if not str(run_dir):  # Path("") would be the current folder
        raise GraphSSLError(f"{purpose}: an empty path; give a run folder written by 'graphssl train'")
    out = Path(run_dir)
    try:
        is_folder, exists = out.is_dir(), out.exists()
    except OSError as err:  # a name too long, a folder above it that cannot be entered
        raise _unreadable(out, purpose, reason(err)) from None
    if not is_folder:
        raise GraphSSLError(f"{purpose} {out}: {'not a folder' if exists else 'no such folder'}; give a run folder "
                            f"written by 'graphssl train' (the one holding {CHECKPOINT})")
    # A folder that cannot be listed would otherwise fail later, on the first file looked up in it.
    if not os.access(out, os.R_OK | os.X_OK):
        raise _unreadable(out, purpose, "permission denied")
    return out


def _unreadable(out: Path, purpose: str, why: str) -> GraphSSLError:
    return GraphSSLError(f"{purpose} {out}: cannot read it ({why}); give a run folder you can read, by a path the "
                         f"file system accepts")


def check_run_folder(run_dir: str | Path, purpose: str) -> Path:
    """Refuse a path that is not a run folder holding a checkpoint (:func:`run_folder_path` first).

    Returns:
        The folder, as a :class:`~pathlib.Path`.

    Example:
        >>> check_run_folder("runs/cora-wr", "graphssl eval")  # doctest: +SKIP
        PosixPath('runs/cora-wr')
    """
    out = run_folder_path(run_dir, purpose)
    try:
        has = {name: (out / name).is_file() for name in (CHECKPOINT, CONFIG, METRICS)}
    except OSError as err:
        raise _unreadable(out, purpose, reason(err)) from None
    if has[CHECKPOINT]:
        return out
    if has[METRICS]:
        raise GraphSSLError(f"{purpose} {out}: the run finished but its {CHECKPOINT} is gone; restore it (the "
                            f"results are in {out / METRICS})")
    writer = other_live_holder(out / LOCK)  # eval takes no lock: the run may still be before its first checkpoint
    if writer is not None:
        raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} yet; the run is still training (process {writer}): "
                            f"wait for its first checkpoint")
    if has[CONFIG]:
        raise GraphSSLError(f"{purpose} {out}: the run stopped before its first checkpoint, so there is nothing "
                            f"to continue or evaluate; train it again with --config {out / CONFIG} and a new "
                            f"--out (or delete the folder and reuse it)")
    raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} there; give a run folder written by 'graphssl train'")
