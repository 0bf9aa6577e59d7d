r"""CCA-SSG: Canonical Correlation Analysis inspired Self-Supervised Graph learning (Zhang et al., NeurIPS 2021).

No head: the encoder's embeddings ``H_A, H_B ∈ R^{N × d}`` of two views are
standardized per dimension over the nodes and scaled by ``1/√N``,

.. math::
    \tilde{Z} = \frac{H - \mu(H)}{\sigma(H)\,\sqrt{N}}
    \qquad (\text{so } \tilde{Z}^\top \tilde{Z} \text{ is the correlation matrix}),

and the loss is an invariance term plus ``λ`` times a decorrelation term per view:

.. math::
    \mathcal{L} = \tfrac{1}{2}\,\lVert \tilde{Z}_A - \tilde{Z}_B \rVert_F^2
        + \lambda \big(\lVert \tilde{Z}_A^\top \tilde{Z}_A - I \rVert_F^2
                      + \lVert \tilde{Z}_B^\top \tilde{Z}_B - I \rVert_F^2\big).

The paper writes the invariance term without the ``½``; the official code
(hengruizhang98/CCA-SSG ``main.py``) computes ``-tr(Z̃_Aᵀ Z̃_B)`` instead.
Each column of ``Z̃`` has squared norm ``(N − 1)/N`` (``σ`` is torch's unbiased
std, as in the official ``model.py``), so

.. math::
    \lVert \tilde{Z}_A - \tilde{Z}_B \rVert_F^2 = 2d\,\tfrac{N-1}{N} - 2\,\mathrm{tr}(\tilde{Z}_A^\top \tilde{Z}_B):

the official invariance is half the paper's, up to a constant.  This module
keeps the official code's gradients, for which its ``λ`` was tuned, in the
paper's non-negative form: the loss here is the official code's plus
``d (N − 1)/N``, and half the paper's with ``2λ``.

Official Cora setting (README and ``main.py`` of hengruizhang98/CCA-SSG):
``λ = 1e-3``, a 2-layer GCN 1433 → 512 → 512 (ReLU between, none after),
Adam with learning rate 1e-3 and no weight decay, 50 epochs, feature-drop
rate 0.1 and edge-drop rate 0.4 in both views (each direction of an edge
dropped independently, self-loops added afterwards); linear probe: Adam,
learning rate 1e-2, weight decay 1e-4.  The paper reports 84.2 ± 0.4 on Cora.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .precision import in_float32
from .sampling import seed_rows

DEFAULT_LAMBDA = 1e-3


def standardize(h: Tensor) -> Tensor:
    """``(H − mean) / (std · √N)`` per column, with the unbiased std as the official code.

    A column that is constant over the nodes (a ReLU unit that is 0 on every
    node, or on every seed of a mini-batch) has standard deviation 0: it
    becomes a column of zeros with zero gradient, where the official code's
    ``0 / 0`` would make the loss NaN and end the training at its first dead unit.

    Returns:
        ``Z̃``, the same shape as ``h``; ``Z̃ᵀ Z̃`` is ``(N − 1)/N`` times ``H``'s correlation matrix
        (with 0 in a constant column's row and column).

    Example:
        >>> z = standardize(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))  # mean 2, std √2; a constant column
        >>> z
        tensor([[-0.5000,  0.0000],
                [ 0.5000,  0.0000]])
    """
    variance = h.var(dim=0)
    varies = variance > 0
    # The variance, not torch.std: std's gradient divides by the std, NaN at a constant column even when masked.
    std = torch.where(varies, variance, torch.ones_like(variance)).sqrt()
    # Times the mask, so a constant column is exactly 0 (its float mean may miss the constant) and passes no gradient.
    return (h - h.mean(dim=0)) / (std * math.sqrt(h.size(0))) * varies


def invariance_term(z1: Tensor, z2: Tensor) -> Tensor:
    """``½ ‖Z̃_A − Z̃_B‖_F²`` for standardized embeddings.

    Returns:
        A scalar, 0 when the two views agree.

    Example:
        >>> invariance_term(torch.ones(2, 2), torch.zeros(2, 2))
        tensor(2.)
    """
    return (z1 - z2).square().sum() / 2


def decorrelation_term(z: Tensor) -> Tensor:
    """``‖Z̃ᵀ Z̃ − I‖_F²``: how far the dimensions are from orthonormal.

    Returns:
        A scalar, 0 when ``Z̃``'s columns are orthonormal.

    Example:
        >>> decorrelation_term(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))  # Z̃ᵀZ̃ - I = [[0, 1], [1, 0]]
        tensor(2.)
    """
    gram = z.t() @ z
    return (gram - torch.eye(z.size(1), dtype=z.dtype, device=z.device)).square().sum()


def cca_ssg_loss(h1: Tensor, h2: Tensor, lambd: float = DEFAULT_LAMBDA) -> Tensor:
    """CCA-SSG's loss for two views' encoder embeddings (standardized here).

    Args:
        h1, h2: ``N × d`` embeddings of the same ``N ≥ 2`` nodes in the two views; a
            dimension that is constant over the nodes counts as zeros (:func:`standardize`).
        lambd: ``λ``, the weight of the decorrelation terms.

    Returns:
        The scalar loss.

    Example:
        >>> h1, h2 = torch.randn(64, 8), torch.randn(64, 8)
        >>> cca_ssg_loss(h1, h2, 1e-3).shape
        torch.Size([])
    """
    if h1.size(0) < 2:
        raise ValueError(f"CCA-SSG needs at least 2 nodes to standardize, got {h1.size(0)}")
    z1, z2 = standardize(h1), standardize(h2)
    return invariance_term(z1, z2) + lambd * (decorrelation_term(z1) + decorrelation_term(z2))


class CCASSGLoss(nn.Module):
    """CCA-SSG's objective on two views' encoder embeddings: :func:`cca_ssg_loss`, no head.

    Args:
        lambd: ``λ``, the weight of the decorrelation terms.

    ``head`` is None: CCA-SSG has no projector, so only the encoder's weights can be regularized.

    Example:
        >>> objective = CCASSGLoss(lambd=1e-3)
        >>> h1 = torch.randn(50, 16, requires_grad=True)  # encoder(view_1)
        >>> objective(h1, torch.randn(50, 16)).backward()
    """

    head: nn.Module | None = None

    def __init__(self, lambd: float = DEFAULT_LAMBDA) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, h1: Tensor, h2: Tensor, num_seeds: int | None = None) -> Tensor:
        """The loss of the first ``num_seeds`` nodes (a mini-batch's seeds; None: all),
        standardized with these nodes' statistics."""
        return in_float32(cca_ssg_loss, seed_rows(h1, num_seeds), seed_rows(h2, num_seeds), lambd=self.lambd)
