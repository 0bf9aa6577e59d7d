"""Multi-process training on PyTorch's own engine (``torch.distributed``), started by ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init` joins the process group (gloo on CPU, NCCL on
GPU) with a timeout, so a rank that dies makes the others fail within
``GRAPHSSL_DIST_TIMEOUT`` seconds (default 300) instead of waiting forever.
Each rank trains on its own shard of the seed nodes (the graph is held by
every rank); gradients of the trainable modules (BGRL's online encoder and
predictor, or another method's encoder and head) are averaged by
``DistributedDataParallel``; BGRL's EMA target moves identically everywhere
because the online weights are identical after every step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .data import Graph, load_graph
from .devices import resolve_device
from .errors import GraphSSLError, PeerFailed, first_line

Result = TypeVar("Result")

TIMEOUT_ENV = "GRAPHSSL_DIST_TIMEOUT"


@dataclass(frozen=True)
class Context:
    """This process's place in the job.

    Example:
        >>> Context(rank=0, world_size=2, local_rank=0).is_main
        True
    """

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str) -> tuple[Context, torch.device]:
    """Join the job torchrun started (gloo on CPU, NCCL on GPU), with ``GRAPHSSL_DIST_TIMEOUT``.

    Returns:
        ``(context, device)`` of this rank.

    Example:
        >>> context, device = init("auto")  # under torchrun  # doctest: +SKIP
    """
    missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise GraphSSLError(f"--distributed needs the environment torchrun sets ({', '.join(missing)} missing); "
                            f"start with: torchrun --nproc_per_node N -m graphssl train ... --distributed")
    context = Context(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    use_cuda = resolve_device(device).type == "cuda"  # each rank then takes the GPU of its local rank
    torch_device = torch.device("cuda", context.local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, 300)))
    try:
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timeout)
    except Exception as err:  # store timeouts, refused connections: all mean the job cannot form
        raise GraphSSLError(f"rank {context.rank}: could not join the {context.world_size}-process job "
                            f"within {timeout.total_seconds():g} s ({first_line(err, 200)}); another rank failed or "
                            f"MASTER_ADDR/MASTER_PORT are wrong") from None
    return context, torch_device


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` comes from the communication backend (a peer died or timed out).

    Returns:
        ``True`` for torch.distributed errors and gloo's runtime errors.

    Example:
        >>> is_collective_failure(ValueError("bad value"))
        False
    """
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError) and "gloo" in str(error))


def shutdown() -> None:
    """Leave the process group, if this process joined one.

    Example:
        >>> shutdown()
    """
    if dist.is_initialized():
        dist.destroy_process_group()


def peer_failed(context: Context, error: BaseException) -> PeerFailed:
    """The one-line error a rank reports when another rank of its job failed.

    Returns:
        A :class:`PeerFailed` to raise.

    Example:
        >>> print(peer_failed(Context(0, 2, 0), RuntimeError("Connection closed by peer")))
        rank 0: the job lost a process (Connection closed by peer); the failing rank's own error is in its
        output above
    """
    return PeerFailed(f"rank {context.rank}: the job lost a process ({first_line(error, 200)}); the failing rank's "
                      f"own error is in its output above")


def barrier() -> None:
    """Wait for every rank (nothing outside a job).

    Example:
        >>> barrier()
    """
    if dist.is_initialized():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order.

    Returns:
        A list with one entry per rank (``[obj]`` outside a job).

    Example:
        >>> all_gather_object("runs/x")
        ['runs/x']
    """
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a collective call; the other ranks' ``obj`` is ignored).

    Returns:
        Rank 0's ``obj`` (``obj`` itself outside a job).

    Example:
        >>> broadcast_from_main(61.5)
        61.5
    """
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def parameters_agree(*modules: nn.Module) -> bool:
    """Whether every rank holds bit-identical parameters in ``modules`` (gathers them all; a collective call).

    Returns:
        ``True`` when all ranks agree.

    Example:
        >>> parameters_agree(model)  # under torchrun  # doctest: +SKIP
        True
    """
    flat = torch.cat([p.detach().reshape(-1) for module in modules for p in module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def run_job(device: str, work: Callable[[Context, torch.device], Result]) -> Result:
    """Join the torchrun job, run ``work(context, device)`` on this rank, leave the job.

    Returns:
        What ``work`` returns; a lost peer becomes one :class:`PeerFailed` error instead.

    Example:
        >>> run_job("cpu", lambda context, device: context.rank)  # under torchrun  # doctest: +SKIP
        0
    """
    context, torch_device = init(device)
    try:
        return work(context, torch_device)
    except Exception as err:
        if is_collective_failure(err):
            raise peer_failed(context, err) from None
        raise
    finally:
        shutdown()


def load_graph_in_turn(context: Context, dataset: str, data_root: str | Path | None, graph: Graph | None) -> Graph:
    """``graph``, or ``dataset`` loaded by rank 0 first (it may process the raw files, which the others then
    read) and by the other ranks after it.

    Returns:
        This rank's copy of the graph.

    Example:
        >>> graph = load_graph_in_turn(context, "ogbn-arxiv", "data", None)  # under torchrun  # doctest: +SKIP
    """
    if graph is None and context.is_main:
        graph = load_graph(dataset, data_root)
    barrier()
    return graph if graph is not None else load_graph(dataset, data_root)
