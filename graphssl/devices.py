"""Where a run computes, and how much memory it took there."""

from __future__ import annotations

import resource

import torch

from .errors import GraphSSLError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device, which must exist.

    Returns:
        The device.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GraphSSLError(f"--device {name}: not a device name; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraphSSLError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return device


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
