"""Where a run computes, and how much memory it took there."""

from __future__ import annotations

import re
import resource
from contextlib import contextmanager
from typing import Iterator

import torch

from .config import device_name
from .errors import GraphSSLError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device, which must be the CPU or a GPU
    this machine has.

    Returns:
        The device.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device_name(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraphSSLError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise GraphSSLError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
                            f"cuda:{torch.cuda.device_count() - 1}; use one of those, or auto")
    return device


# How torch words a failed allocation: the CPU allocator in bytes, the CUDA one in its own units, and a size
# beyond 64-bit addresses before any allocator is asked.
_ASKED_BYTES = re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE)
_ASKED_CUDA = re.compile(r"Tried to allocate ([\d.]+ [KMGTP]?i?B)")
_OVERFLOW = "Storage size calculation overflowed"


def _asked_for(error: BaseException) -> str | None:
    """How much memory the allocation that raised ``error`` asked for, or ``None`` when it is no allocation failure."""
    text = str(error)
    if match := _ASKED_BYTES.search(text):
        return f"{int(match.group(1)) / 2**30:,.1f} GiB"
    if match := _ASKED_CUDA.search(text):
        return match.group(1)
    if _OVERFLOW in text:
        return "more bytes than 64 bits can count"
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return "more than was free"
    return None


@contextmanager
def memory_errors_explained(device: torch.device, sizes: str) -> Iterator[None]:
    """Turn a failed memory allocation in the block into one :class:`GraphSSLError` saying what was asked for.

    ``sizes``: what the run asked for, in config keys, for the message.

    Yields:
        Nothing; a memory error inside the block leaves it as that one-line error.

    Example:
        >>> with memory_errors_explained(torch.device("cpu"), "encoder.layers [64]"):
        ...     pass
    """
    try:
        yield
    except (RuntimeError, MemoryError) as err:  # torch.OutOfMemoryError is a RuntimeError
        asked = _asked_for(err)
        if asked is None:
            raise
        raise GraphSSLError(f"out of memory on {device}: one tensor needed {asked} ({sizes}); choose smaller "
                            f"sizes, or --batch-size N to train on mini-batches") from None


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process so far, and on a GPU the peak CUDA memory torch allocated.

    Returns:
        ``{"peak_rss_mb": ...}``, plus ``"peak_cuda_mb"`` on a CUDA device.

    Example:
        >>> sorted(peak_memory_mb(torch.device("cpu")))
        ['peak_rss_mb']
    """
    usage = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        usage["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return usage
