"""Mini-batches of seed nodes with sampled neighbourhoods, for graphs too big for full-batch training.

torch_geometric's ``NeighborLoader`` needs a compiled sampler (``pyg-lib`` or
``torch-sparse``), neither of which installs from PyPI for current torch; this
module samples the same kind of subgraph with plain torch operations:

* an epoch is a random permutation of all nodes cut into batches of seeds
  (under ``torch.distributed``, rank ``r`` of ``W`` takes every ``W``-th node of it);
* for hop ``l`` every frontier node draws ``num_neighbors[l]`` neighbours
  (``-1``: all of them) uniformly *with* replacement, duplicates removed (PyG
  draws without replacement; the two agree when a node has more neighbours
  than draws);
* the sampled edges, in both directions, form the batch's undirected subgraph,
  seeds first in the node order, so the loss can be taken on ``nodes[:len(seeds)]``.

Randomness comes from generators seeded by ``(seed, epoch)`` and
``(seed, step)``, so batch ``s`` is the same after a resume without replaying
the ones before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.utils import sort_edge_index
from torch_geometric.utils.sparse import index2ptr

from .data import undirected


def _generator(device: torch.device, *key: int) -> torch.Generator:
    seed = 0
    for part in key:  # a fixed, order-sensitive mix of the key into one 63-bit seed
        seed = (seed * 1_000_003 + part + 1) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(seed)


def neighbor_subgraph(rowptr: Tensor, col: Tensor, seeds: Tensor, num_neighbors: Sequence[int],
                      generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sample a neighbourhood of ``seeds`` hop by hop from a CSR graph ``(rowptr, col)``.

    Returns:
        ``(nodes, edge_index)``: global ids of the sampled nodes (``seeds`` first,
        in order) and the sampled edges as an undirected ``edge_index`` over
        positions in ``nodes``.

    Example:
        >>> rowptr, col = torch.tensor([0, 1, 3, 4]), torch.tensor([1, 0, 2, 1])  # the path 0 - 1 - 2
        >>> nodes, edge_index = neighbor_subgraph(rowptr, col, torch.tensor([0]), [-1, -1], torch.Generator())
        >>> nodes.tolist(), edge_index.size(1)
        ([0, 1, 2], 4)
    """
    num_nodes = rowptr.numel() - 1
    position = torch.full((num_nodes,), -1, dtype=torch.long, device=seeds.device)
    position[seeds] = torch.arange(seeds.numel(), device=seeds.device)
    nodes, frontier, sources, targets = [seeds], seeds, [], []
    count = seeds.numel()
    for fanout in num_neighbors:
        start, degree = rowptr[frontier], rowptr[frontier + 1] - rowptr[frontier]
        if fanout < 0:  # every neighbour
            target = frontier.repeat_interleave(degree)
            first_slot = degree.cumsum(0) - degree  # where each frontier node's run starts in `target`
            slots = torch.arange(target.numel(), device=seeds.device)
            picked = col[slots + (start - first_slot).repeat_interleave(degree)]
        else:
            has = degree > 0
            target = frontier[has].repeat_interleave(fanout)
            draws = torch.rand(int(has.sum()), fanout, generator=generator, device=seeds.device)
            offsets = (draws * degree[has, None]).long().view(-1)
            picked = col[start[has].repeat_interleave(fanout) + offsets]
        pairs = torch.unique(target * num_nodes + picked)
        target, picked = pairs // num_nodes, pairs % num_nodes
        fresh = torch.unique(picked[position[picked] < 0])
        position[fresh] = torch.arange(count, count + fresh.numel(), device=seeds.device)
        count += fresh.numel()
        nodes.append(fresh)
        sources.append(position[picked])
        targets.append(position[target])
        frontier = fresh
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    return torch.cat(nodes), undirected(edge_index, count)


def seed_rows(h: Tensor, num_seeds: int | None) -> Tensor:
    """The rows of a batch's ``h`` that a loss is taken on: the first ``num_seeds`` (the seeds come first), or
    with ``None`` (full-batch) ``h`` itself, so that no slice enters the autograd graph (its backward pass would
    copy the whole gradient into a zero-filled tensor).

    Returns:
        ``h[:num_seeds]``, or ``h``.

    Example:
        >>> h = torch.arange(6.0).view(3, 2)
        >>> seed_rows(h, None) is h, seed_rows(h, 2).shape
        (True, torch.Size([2, 2]))
    """
    return h if num_seeds is None else h[:num_seeds]


@dataclass
class NeighborBatches:
    """Batch ``step`` of an endless sequence of epochs over all nodes (see the module docstring).

    Example:
        >>> from graphssl.data import undirected
        >>> edge_index = undirected(torch.randint(100, (2, 400), generator=torch.Generator().manual_seed(0)), 100)
        >>> batches = NeighborBatches(edge_index, num_nodes=100, batch_size=16, num_neighbors=[5, 5])
        >>> nodes, sub_edges, num_seeds = batches(step=0)
        >>> num_seeds, batches.batches_per_epoch
        (16, 7)
    """

    edge_index: Tensor
    num_nodes: int
    batch_size: int
    num_neighbors: Sequence[int]
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        # CSR by source: row v lists v's neighbours (edges are stored in both directions).
        row, col = sort_edge_index(self.edge_index, num_nodes=self.num_nodes)
        self.rowptr = index2ptr(row, self.num_nodes)
        self.col = col
        # Every rank takes the same number of steps per epoch (DDP steps in lockstep).
        self.batches_per_epoch = math.ceil(math.ceil(self.num_nodes / self.world_size) / self.batch_size)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def seeds(self, step: int) -> Tensor:
        epoch, index = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            device = self.edge_index.device
            order = torch.randperm(self.num_nodes, generator=_generator(device, self.seed, 0, epoch), device=device)
            self._order = order[self.rank::self.world_size]  # this rank's shard of the epoch
            self._epoch = epoch
        return self._order[index * self.batch_size:(index + 1) * self.batch_size]

    def __call__(self, step: int) -> tuple[Tensor, Tensor, int]:
        """``(nodes, edge_index, num_seeds)`` of batch ``step``."""
        seeds = self.seeds(step)
        generator = _generator(seeds.device, self.seed, 1, step, self.rank)
        nodes, edge_index = neighbor_subgraph(self.rowptr, self.col, seeds, self.num_neighbors, generator)
        return nodes, edge_index, seeds.numel()
