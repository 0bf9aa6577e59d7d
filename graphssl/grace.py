r"""GRACE: deep GRAph Contrastive rEpresentation learning (Zhu et al., 2020).

Each node's embedding in one view is pulled towards the same node's
embedding in the other view and pushed away from every *other* node's
embedding, in the other view (inter-view negatives) and in its own view
(intra-view negatives).  With ``u_i`` and ``v_i`` the projected embeddings of
node ``i`` in the two views, ``θ`` the cosine similarity and ``τ`` the
temperature:

.. math::
    \ell(u_i, v_i) = -\log \frac{e^{\theta(u_i, v_i)/\tau}}
        {e^{\theta(u_i, v_i)/\tau}
         + \sum_{k \ne i} e^{\theta(u_i, v_k)/\tau}
         + \sum_{k \ne i} e^{\theta(u_i, u_k)/\tau}},
    \qquad
    \mathcal{L} = \frac{1}{2N} \sum_{i=1}^{N} \big(\ell(u_i, v_i) + \ell(v_i, u_i)\big),

where ``u = g(f(X̃₁, Ã₁))`` and ``v = g(f(X̃₂, Ã₂))`` for the shared encoder
``f`` and the projection head ``g`` (Linear → ELU → Linear, as in the official
code, CRIPAC-DIG/GRACE ``model.py``).

The similarities form three ``N × N`` matrices; on ogbn-arxiv (169,343 nodes)
one of them is 115 GB in float32.  :func:`grace_loss_chunked` computes the same
value and gradient from blocks of ``chunk_size`` rows, in ``O(chunk_size · N)``
memory, with a hand-written backward that recomputes each block (on a graph
whose matrices fit ``MAX_KEPT_BYTES``, Cora's, it keeps them instead).

The official Cora setting (``config.yaml`` and ``train.py``): τ = 0.4, a
2-layer GCN 1433 → 256 → 128 with ReLU after both layers, projection hidden
size 128, Adam with learning rate 5e-4 and weight decay 1e-5, 200 epochs,
row-normalized features, edge-drop rates 0.2 / 0.4 (``dropout_adj``: each
direction of an edge dropped independently) and feature-mask rates 0.3 / 0.4
for the two views.  Its evaluation is a random 10 % / 90 % split, not the
public one.  τ = 0.5 below is the official ``Model``'s default.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .precision import float32_function, in_float32
from .sampling import seed_rows

DEFAULT_TEMPERATURE = 0.5
DEFAULT_CHUNK_SIZE = 1024
# Up to this many bytes of similarities, the forward keeps its blocks for the backward instead of recomputing them,
# which saved 0.15 of a GRACE step on Cora with a 512-wide encoder (README, "What a step costs"): Cora's three
# N x N matrices are 88 MB in float32, ogbn-arxiv's 344 GB.
MAX_KEPT_BYTES = 2**28


class ProjectionHead(nn.Sequential):
    """GRACE's projection head ``g``: Linear → ELU → Linear, back to the embedding size.

    Args:
        channels: embedding size (input and output).
        hidden: hidden layer size.

    Example:
        >>> head = ProjectionHead(128, 128)
        >>> head(torch.randn(5, 128)).shape
        torch.Size([5, 128])
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__(nn.Linear(channels, hidden), nn.ELU(), nn.Linear(hidden, channels))

    def reset_parameters(self) -> None:
        for module in self:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def off_diagonal_logsumexp(similarity: Tensor, dim: int = 1) -> Tensor:
    """``log Σ_{k≠i} exp(similarity[i, k])`` for a square matrix: the intra-view negatives' term.

    Returns:
        One value per row (``dim=1``) or column (``dim=0``).

    Example:
        >>> off_diagonal_logsumexp(torch.zeros(3, 3))  # log(1 + 1)
        tensor([0.6931, 0.6931, 0.6931])
    """
    diagonal = torch.eye(similarity.size(0), dtype=torch.bool, device=similarity.device)
    return torch.logsumexp(similarity.masked_fill(diagonal, float("-inf")), dim=dim)


def infonce_per_node(u: Tensor, v: Tensor, temperature: float = DEFAULT_TEMPERATURE,
                     intra_view_negatives: bool = True) -> Tensor:
    r"""``ℓ(u_i, v_i)`` for every node ``i``: the plain ``O(N²)``-memory definition.

    Args:
        u: anchors, ``N × d`` (any scale: similarities are cosines).
        v: the other view, ``N × d``; ``v_i`` is ``u_i``'s positive.
        temperature: ``τ``.
        intra_view_negatives: include ``Σ_{k≠i} exp(θ(u_i, u_k)/τ)`` in the
            denominator (GRACE); without it this is the InfoNCE of SimCLR-style
            cross-view contrast (graphssl's toy).

    Returns:
        ``N`` losses.

    Example:
        >>> infonce_per_node(torch.eye(3), torch.eye(3), 1.0)  # -log(e / (e + 2 + 2)) = log(e + 4) - 1
        tensor([0.9048, 0.9048, 0.9048])
    """
    u, v = F.normalize(u, dim=1), F.normalize(v, dim=1)
    between = u @ v.t() / temperature
    log_denominator = torch.logsumexp(between, dim=1)
    if intra_view_negatives:
        log_denominator = torch.logaddexp(log_denominator, off_diagonal_logsumexp(u @ u.t() / temperature))
    return log_denominator - between.diagonal()


def grace_loss_dense(u: Tensor, v: Tensor, temperature: float = DEFAULT_TEMPERATURE,
                     intra_view_negatives: bool = True) -> Tensor:
    """``mean_i (ℓ(u_i, v_i) + ℓ(v_i, u_i)) / 2`` with plain autograd, ``O(N²)`` memory.

    Arguments as in :func:`infonce_per_node`.

    Returns:
        The scalar loss.

    Example:
        >>> u = torch.randn(6, 4)
        >>> bool(grace_loss_dense(u, u) < grace_loss_dense(u, -u))
        True
    """
    return ((infonce_per_node(u, v, temperature, intra_view_negatives)
             + infonce_per_node(v, u, temperature, intra_view_negatives)) / 2).mean()


def row_blocks(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in blocks of at most ``chunk_size`` rows.

    Returns:
        The blocks in order, the last one possibly shorter.

    Example:
        >>> row_blocks(5, 2)
        [(0, 2), (2, 4), (4, 5)]
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def self_similarity_rows(x: Tensor, start: int, stop: int, temperature: float) -> Tensor:
    """Rows ``start:stop`` of ``x xᵀ / τ`` from column ``start`` on, each node's similarity to itself ``-inf``.

    ``x xᵀ`` is symmetric, so the columns before ``start`` are rows of earlier
    blocks: a pair in two different blocks is computed once (a pair within one
    block twice).  ``-inf`` drops the ``k = i`` pair from every ``logsumexp``
    and ``exp``.

    Returns:
        A ``(stop - start) × (N - start)`` block.

    Example:
        >>> self_similarity_rows(torch.eye(3), 1, 3, 1.0)
        tensor([[-inf, 0.],
                [0., -inf]])
    """
    block = torch.mm(x[start:stop], x[start:].t()).div_(temperature)
    block.diagonal().fill_(float("-inf"))
    return block


def _similarity_blocks(u: Tensor, v: Tensor, start: int, stop: int, temperature: float,
                       intra_view_negatives: bool) -> list[Tensor]:
    """Rows ``start:stop`` of ``S_uv``, then (with intra-view negatives) of ``S_uu`` and ``S_vv`` from column
    ``start`` on (:func:`self_similarity_rows`)."""
    blocks = [torch.mm(u[start:stop], v.t()).div_(temperature)]
    if intra_view_negatives:
        blocks += [self_similarity_rows(x, start, stop, temperature) for x in (u, v)]
    return blocks


def _softmax_weights(logits: Tensor, log_denominator_rows: Tensor, log_denominator_columns: Tensor) -> Tensor:
    """``exp(logits - logD_rows[:, None]) + exp(logits - logD_columns[None, :])``, consuming ``logits``.

    A similarity ``s_ik`` appears in two softmaxes, anchor ``i``'s (row) and
    anchor ``k``'s (column); its gradient is the sum of both probabilities.
    """
    weights = (logits - log_denominator_rows.unsqueeze(1)).exp_()
    return weights.add_(logits.sub_(log_denominator_columns).exp_())


@float32_function
class _ChunkedGRACELoss(torch.autograd.Function):
    r"""GRACE's loss for unit-norm ``u`` and ``v``, one block of rows at a time.

    Forward keeps only each anchor's log-denominator (``N`` values per view):
    row blocks of ``S_uv = u vᵀ/τ`` give ``logD_u`` directly and ``logD_v`` as
    running column-wise ``logsumexp``; ``S_uu`` and ``S_vv`` give the intra-view
    terms.  Those two are symmetric, so a block computes them only from its
    first row's column on (:func:`self_similarity_rows`) and hands the columns
    past its last row to those later rows: about ``(1 + chunk/N) / 2`` of
    their products (0.67 on Cora in blocks of 1024; README, "What a step
    costs").  Backward takes each block again (kept from the forward if all of
    them fit ``max_kept_bytes``, else recomputed) and uses, with ``P`` the
    softmax probabilities ``exp(s - logD)``,

    .. math::
        \frac{\partial \mathcal{L}}{\partial s^{uv}_{ik}}
            = \frac{P^u_{ik} + P^v_{ki} - 2\delta_{ik}}{2N},
        \qquad
        \frac{\partial \mathcal{L}}{\partial s^{uu}_{ik}}
            = \frac{P^u_{ik} + P^u_{ki}}{2N} \quad (i \ne k),

    where ``P^v_{ki}`` is anchor ``v_k``'s probability of ``u_i``, and
    ``s^{uu}_{ik} = s^{uu}_{ki}`` is one quantity in the softmaxes of both
    ``u_i`` and ``u_k``; then ``∂s_ik/∂u_i = v_k/τ`` etc.: per block
    products of at most ``chunk × N`` by ``N × d``, and never an ``N × N`` tensor.
    Recomputing holds one block at a time, ``O(chunk · N)`` memory; keeping
    holds all of them, ``O(N²)``, which ``max_kept_bytes`` caps.  The kept
    blocks are ``ctx`` attributes, not saved tensors: saved-tensor hooks
    (``save_on_cpu``) do not see them.
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, v: Tensor, temperature: float, chunk_size: int,
                intra_view_negatives: bool, max_kept_bytes: int) -> Tensor:
        n = u.size(0)
        # An upper bound: the intra-view blocks hold (1 + chunk/N)/2 of their matrices.
        keep = (1 + 2 * intra_view_negatives) * n * n * u.element_size() <= max_kept_bytes
        ctx.kept = []
        log_denominator_u = u.new_empty(n)
        log_denominator_v = u.new_full((n,), float("-inf"))
        within_u, within_v = u.new_full((n,), float("-inf")), u.new_full((n,), float("-inf"))
        for start, stop in row_blocks(n, chunk_size):
            between, *within = _similarity_blocks(u, v, start, stop, temperature, intra_view_negatives)
            log_denominator_u[start:stop] = torch.logsumexp(between, dim=1)
            torch.logaddexp(log_denominator_v, torch.logsumexp(between, dim=0), out=log_denominator_v)
            for block, log_sums in zip(within, (within_u, within_v)):
                # The block's rows, and (by symmetry) the later rows its columns stand for.
                torch.logaddexp(log_sums[start:stop], torch.logsumexp(block, dim=1), out=log_sums[start:stop])
                torch.logaddexp(log_sums[stop:], torch.logsumexp(block[:, stop - start:], dim=0),
                                out=log_sums[stop:])
            if keep:
                ctx.kept.append([between, *within])
        if intra_view_negatives:
            torch.logaddexp(log_denominator_u, within_u, out=log_denominator_u)
            torch.logaddexp(log_denominator_v, within_v, out=log_denominator_v)
        positives = (u * v).sum(dim=1) / temperature
        ctx.save_for_backward(u, v, log_denominator_u, log_denominator_v)
        ctx.temperature, ctx.chunk_size, ctx.intra_view_negatives = temperature, chunk_size, intra_view_negatives
        return ((log_denominator_u + log_denominator_v) / 2 - positives).mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None, None, None]:
        u, v, log_denominator_u, log_denominator_v = ctx.saved_tensors
        temperature = ctx.temperature
        # The weights below consume the blocks, so a second backward (retain_graph) recomputes them.
        kept, ctx.kept = ctx.kept, []
        grad_u, grad_v = torch.zeros_like(u), torch.zeros_like(v)
        for index, (start, stop) in enumerate(row_blocks(u.size(0), ctx.chunk_size)):
            if kept:
                (between, *within), kept[index] = kept[index], []  # freed as they are used
            else:
                between, *within = _similarity_blocks(u, v, start, stop, temperature, ctx.intra_view_negatives)
            weights = _softmax_weights(between, log_denominator_u[start:stop], log_denominator_v)
            weights.diagonal(offset=start).sub_(2.0)  # the positive pair's -2δ_ik
            grad_u[start:stop].addmm_(weights, v)
            grad_v.addmm_(weights.t(), u[start:stop])
            for block, x, log_denominator, grad_x in zip(within, (u, v), (log_denominator_u, log_denominator_v),
                                                         (grad_u, grad_v)):
                weights = _softmax_weights(block, log_denominator[start:stop], log_denominator[start:])
                grad_x[start:stop].addmm_(weights, x[start:])
                grad_x[stop:].addmm_(weights[:, stop - start:].t(), x[start:stop])  # the symmetric pairs
        scale = grad / (2 * u.size(0) * temperature)
        return grad_u.mul_(scale), grad_v.mul_(scale), None, None, None, None


def grace_loss_chunked(u: Tensor, v: Tensor, temperature: float = DEFAULT_TEMPERATURE,
                       chunk_size: int = DEFAULT_CHUNK_SIZE,
                       intra_view_negatives: bool = True, max_kept_bytes: int = MAX_KEPT_BYTES) -> Tensor:
    """:func:`grace_loss_dense`'s value and gradient, in ``O(chunk_size · N)`` memory above ``max_kept_bytes``.

    Arguments as in :func:`infonce_per_node`; ``chunk_size``: rows per block;
    ``max_kept_bytes``: if the ``N × N`` matrices (three, or one without
    intra-view negatives) fit in it and a backward can follow (gradients
    enabled and wanted), the forward's blocks are kept for the backward
    (``O(N²)`` memory; a fifth less time for the loss on Cora with 512-wide
    projections) instead of recomputed; 0 always recomputes.  Not twice
    differentiable.

    Returns:
        The scalar loss.

    Example:
        >>> u, v = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)
        >>> torch.allclose(grace_loss_chunked(u, v, chunk_size=3), grace_loss_dense(u, v))
        True
    """
    backward_follows = torch.is_grad_enabled() and (u.requires_grad or v.requires_grad)
    return _ChunkedGRACELoss.apply(F.normalize(u, dim=1), F.normalize(v, dim=1), temperature, chunk_size,
                                   intra_view_negatives, max_kept_bytes if backward_follows else 0)


def grace_loss(u: Tensor, v: Tensor, temperature: float = DEFAULT_TEMPERATURE, chunk_size: int | None = None,
               intra_view_negatives: bool = True) -> Tensor:
    """GRACE's loss: :func:`grace_loss_dense` if ``chunk_size`` is None, else :func:`grace_loss_chunked`.

    Returns:
        The scalar loss.

    Example:
        >>> u, v = torch.randn(10, 4), torch.randn(10, 4)
        >>> grace_loss(u, v).shape
        torch.Size([])
    """
    if chunk_size is None:
        return grace_loss_dense(u, v, temperature, intra_view_negatives)
    return grace_loss_chunked(u, v, temperature, chunk_size, intra_view_negatives)


class GRACELoss(nn.Module):
    """GRACE's objective on two views' encoder embeddings: projection head, then :func:`grace_loss`.

    Args:
        channels: embedding size of the encoder.
        projection_hidden: hidden size of the projection head (default ``channels``,
            as the official Cora setting, 128 and 128).
        temperature: ``τ``.
        chunk_size: rows of similarities per block, for ``O(chunk_size · N)`` memory
            on graphs too large to keep them all (:func:`grace_loss_chunked`; on Cora
            also faster than the plain definition); None: all ``N × N`` at once with
            plain autograd (:func:`grace_loss_dense`, twice differentiable).

    ``head`` is the projection head (its 2-D weights can be regularized like the encoder's).

    Example:
        >>> objective = GRACELoss(16, temperature=0.4)
        >>> h1, h2 = torch.randn(50, 16), torch.randn(50, 16)  # encoder(view_1), encoder(view_2)
        >>> objective(h1, h2).backward()
    """

    def __init__(self, channels: int, projection_hidden: int | None = None,
                 temperature: float = DEFAULT_TEMPERATURE, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"GRACE temperature must be > 0, got {temperature}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 or None, got {chunk_size}")
        self.head = ProjectionHead(channels, channels if projection_hidden is None else projection_hidden)
        self.temperature = temperature
        self.chunk_size = chunk_size

    def reset_parameters(self) -> None:
        self.head.reset_parameters()

    def forward(self, h1: Tensor, h2: Tensor, num_seeds: int | None = None) -> Tensor:
        """The loss of the first ``num_seeds`` nodes (a mini-batch's seeds; None: all), each
        contrasted with the others among them."""
        u, v = self.head(seed_rows(h1, num_seeds)), self.head(seed_rows(h2, num_seeds))
        return in_float32(grace_loss, u, v, temperature=self.temperature, chunk_size=self.chunk_size)
