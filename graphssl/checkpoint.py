"""Writing run files atomically and reading checkpoints as data, never as code.

Every file is written to a temporary name in the same folder, flushed to disk
and renamed over the target, so a kill or a full disk at any moment leaves
either the previous file or the new one, never half of one.  Checkpoints hold
only tensors and plain Python values and are read with
``torch.load(..., weights_only=True)``: a file carrying pickled code is refused.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import GraphSSLError


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``write(file)`` on a temporary file, fsync it, then rename it to ``path``.

    Any ``OSError`` (no space, no permission) becomes a :class:`GraphSSLError`,
    and whatever was at ``path`` before stays intact.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise GraphSSLError(f"cannot write {path}: {err.strerror or err}; "
                            f"free disk space or choose a writable --out (earlier files there are intact)") from None


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save tensors and plain values atomically (``torch.save`` format)."""
    atomic_write(path, lambda handle: torch.save(state, handle))


def load_tensor_file(path: str | Path) -> Any:
    """Whatever a ``torch.save`` file holds, read onto the CPU with ``weights_only=True`` (data, never code)."""
    path = Path(path)
    if not path.is_file():
        raise GraphSSLError(f"{path} does not exist; point to a file written by graphssl")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, tampering: all mean "not usable"
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise GraphSSLError(f"{path} cannot be loaded safely ({reason}); "
                            f"it is truncated, corrupt or not a graphssl file: retrain or restore it") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU, as data only."""
    state = load_tensor_file(path)
    if not isinstance(state, dict):
        raise GraphSSLError(f"checkpoint {path} is not a graphssl checkpoint (it holds a {type(state).__name__})")
    return state
