r"""BGRL: Bootstrapped Graph Latents (Thakoor et al., ICLR 2022).

An online encoder and predictor learn to predict, for every node, the target
encoder's embedding of the *other* augmented view:

.. math::
    \mathcal{L} = \Big(1 - \tfrac{1}{N}\sum_i \cos(p^{(1)}_i, t^{(2)}_i)\Big)
                + \Big(1 - \tfrac{1}{N}\sum_i \cos(p^{(2)}_i, t^{(1)}_i)\Big),

where ``p = predictor(online_encoder(view))`` and ``t = target_encoder(view)``.
The target encoder gets no gradients: it is an exponential moving average of
the online encoder, moved by :meth:`BGRL.update_target_network`.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .precision import float32_function
from .sampling import seed_rows


def _row_dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(1)`` without materializing ``a * b``."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


@float32_function
class _CosineLoss(torch.autograd.Function):
    """``1 - mean_i cos(p_i, t_i)`` for a constant target, in few passes over memory (in float32 under autocast).

    ATen's ``cosine_similarity`` forward and backward make about ten full-size
    temporaries; at 169k x 256 they cost ~1.5 s of a ~9 s step.  With
    ``p̂ = p/‖p‖`` and ``t̂ = t/‖t‖`` the gradient is
    ``-(t̂ - cos·p̂) / (N ‖p‖)``, one full-size result.
    """

    EPS = 1e-8

    @staticmethod
    def forward(ctx: Any, prediction: Tensor, target: Tensor) -> Tensor:
        unit_target = target / target.norm(dim=1, keepdim=True).clamp_min(_CosineLoss.EPS)
        norm = prediction.norm(dim=1).clamp_min(_CosineLoss.EPS)
        cosine = _row_dot(prediction, unit_target) / norm
        ctx.save_for_backward(prediction, unit_target, norm, cosine)
        return 1 - cosine.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        prediction, unit_target, norm, cosine = ctx.saved_tensors
        scale = grad / prediction.size(0)
        result = unit_target * (-scale / norm).unsqueeze(1)
        result.addcmul_(prediction, (scale * cosine / norm.square()).unsqueeze(1))
        return result, None


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter, in place.

    Example:
        >>> teacher, student = nn.Linear(4, 4), nn.Linear(4, 4)
        >>> ema_update(teacher, student, 0.99)
    """
    torch._foreach_lerp_(list(target.parameters()), [p.detach() for p in online.parameters()], 1.0 - momentum)


def cosine_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """BGRL's regression loss for a constant target (BGRL's target network gets no gradient).

    Returns:
        ``1 - mean_i cos(prediction_i, target_i)``: 0 when aligned, 2 when opposite.

    Example:
        >>> z = torch.randn(10, 4)
        >>> abs(float(cosine_loss(z, 3 * z))) < 1e-5, abs(float(cosine_loss(z, -z)) - 2) < 1e-5
        (True, True)
    """
    return _CosineLoss.apply(prediction, target.detach())


class BGRL(nn.Module):
    """Online encoder + predictor, and an EMA target encoder.

    Args:
        encoder: the online encoder, called as ``encoder(x, adj_t, feature_mask)``.
        predictor: maps online embeddings to predictions of target embeddings.

    Example:
        >>> from graphssl.encoders import GCNEncoder, Predictor, gcn_adjacency
        >>> model = BGRL(GCNEncoder(16, [32, 8]), Predictor(8, 32))
        >>> x, adj = torch.randn(3, 16), gcn_adjacency(torch.tensor([[0, 1], [1, 0]]), 3)
        >>> loss = model.symmetric_loss(x, adj, None, adj, None)  # two views: adjacency and feature mask each
        >>> loss.backward(); model.update_target_network(0.99)
    """

    def __init__(self, encoder: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.online_encoder = encoder
        self.predictor = predictor
        self.target_encoder = copy.deepcopy(encoder)
        # As in the official code, the target starts from its own random weights, not a copy.
        self.target_encoder.reset_parameters()
        self.target_encoder.requires_grad_(False)

    @property
    def encoder(self) -> nn.Module:
        """The encoder whose embeddings are the result: the online one."""
        return self.online_encoder

    @property
    def head(self) -> nn.Module:
        """The predictor (what ``werank.scope: encoder+head`` regularizes besides the encoder)."""
        return self.predictor

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """What the optimizer updates: the online encoder and the predictor, never the target."""
        yield from self.online_encoder.parameters()
        yield from self.predictor.parameters()

    def update_target_network(self, momentum: float) -> None:
        """Move the target encoder towards the online encoder (:func:`ema_update`)."""
        ema_update(self.target_encoder, self.online_encoder, momentum)

    @torch.no_grad()
    def target_embeddings(self, x: Tensor, adj: Tensor, mask: Tensor | None, num_seeds: int | None = None) -> Tensor:
        """The target encoder's embedding of one view (no autograd graph is built)."""
        return seed_rows(self.target_encoder(x, adj, mask), num_seeds)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None, target_of_other_view: Tensor,
                num_seeds: int | None = None) -> Tensor:
        """One half of the symmetric loss: this view's prediction against the other view's target.

        Training back-propagates each half before building the other (same gradients as the
        sum, half the activation memory); this is also the call ``DistributedDataParallel`` wraps.
        ``num_seeds``: score only the first ``num_seeds`` nodes (a mini-batch's seeds).
        """
        online = seed_rows(self.online_encoder(x, adj, mask), num_seeds)
        return cosine_loss(self.predictor(online), target_of_other_view)

    def symmetric_loss(self, x: Tensor, adj_1: Tensor, mask_1: Tensor | None, adj_2: Tensor,
                       mask_2: Tensor | None, num_seeds: int | None = None) -> Tensor:
        """BGRL's loss for two views of ``x`` (adjacency and feature mask each), in one graph."""
        target_1 = self.target_embeddings(x, adj_1, mask_1, num_seeds)
        target_2 = self.target_embeddings(x, adj_2, mask_2, num_seeds)
        return self(x, adj_1, mask_1, target_2, num_seeds) + self(x, adj_2, mask_2, target_1, num_seeds)
