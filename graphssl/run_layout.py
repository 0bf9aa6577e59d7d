"""A run folder's file names, and the checks on a folder given to ``--resume`` or ``eval`` that need no torch.

They live apart from :mod:`graphssl.run_folder` so that the command line can
refuse a wrong folder before torch loads (seconds), as it refuses a typo.
"""

from __future__ import annotations

from pathlib import Path

from .errors import GraphSSLError

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
LOCK = ".lock"  # held by the process writing the folder (graphssl.locks)
METRICS = "metrics.json"
SPECTRA = "spectra.json"


def check_run_folder(run_dir: str | Path, purpose: str) -> Path:
    """Refuse a path that is not a run folder holding a checkpoint; ``purpose`` names the flag in errors.

    Returns:
        The folder, as a :class:`~pathlib.Path`.

    Example:
        >>> check_run_folder("runs/cora-wr", "graphssl eval")  # doctest: +SKIP
        PosixPath('runs/cora-wr')
    """
    out = Path(run_dir)
    if not out.is_dir():
        what = "not a folder" if out.exists() else "no such folder"
        raise GraphSSLError(f"{purpose} {out}: {what}; give a run folder written by 'graphssl train' (the one "
                            f"holding {CHECKPOINT})")
    if not (out / CHECKPOINT).is_file():
        if (out / CONFIG).is_file():
            raise GraphSSLError(f"{purpose} {out}: the run stopped before its first checkpoint, so there is nothing "
                                f"to continue or evaluate; train it again with --config {out / CONFIG} and a new "
                                f"--out (or delete the folder and reuse it)")
        raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} there; give a run folder written by 'graphssl train'")
    return out
