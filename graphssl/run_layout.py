"""A run folder's file names, and the checks on a folder given to ``--resume`` or ``eval`` that need no torch.

They live apart from :mod:`graphssl.run_folder` so that the command line can
refuse a wrong folder before torch loads (seconds), as it refuses a typo.
"""

from __future__ import annotations

from pathlib import Path

from .errors import GraphSSLError, reason

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
    except OSError as err:  # a name too long, a folder that cannot be read
        raise GraphSSLError(f"{purpose} {out}: cannot read it ({reason(err)})") from None
    if not is_folder:
        raise GraphSSLError(f"{purpose} {out}: {'not a folder' if exists else 'no such folder'}; give a run folder "
                            f"written by 'graphssl train' (the one holding {CHECKPOINT})")
    return out


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
        has_checkpoint, has_config = (out / CHECKPOINT).is_file(), (out / CONFIG).is_file()
    except OSError as err:
        raise GraphSSLError(f"{purpose} {out}: cannot read it ({reason(err)})") from None
    if not has_checkpoint:
        if has_config:
            raise GraphSSLError(f"{purpose} {out}: the run stopped before its first checkpoint, so there is nothing "
                                f"to continue or evaluate; train it again with --config {out / CONFIG} and a new "
                                f"--out (or delete the folder and reuse it)")
        raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} there; give a run folder written by 'graphssl train'")
    return out
