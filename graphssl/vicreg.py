r"""VICReg: Variance-Invariance-Covariance Regularization (Bardes, Ponce & LeCun, ICLR 2022), on nodes.

Node embeddings of two graph views go through an expander head ``h``
(:class:`Expander`) to ``Z, Z' ∈ R^{N × d}``; the loss is

.. math::
    \mathcal{L} = \lambda\, s(Z, Z') + \mu\, \tfrac{1}{2}\big(v(Z) + v(Z')\big) + \nu\, \big(c(Z) + c(Z')\big),

    s(Z, Z') = \frac{1}{N d} \sum_{i, j} (Z_{ij} - Z'_{ij})^2, \qquad
    v(Z) = \frac{1}{d} \sum_j \max\big(0, \gamma - \sqrt{\mathrm{Var}(Z_{:, j}) + \epsilon}\big),

    c(Z) = \frac{1}{d} \sum_{j \ne k} C(Z)_{jk}^2, \qquad
    C(Z) = \frac{1}{N - 1} \sum_i (z_i - \bar{z})(z_i - \bar{z})^\top,

with ``Var`` the unbiased variance, ``γ = 1``, ``ε = 1e-4`` and
``(λ, μ, ν) = (25, 25, 1)``.

The paper and the official code differ in two factors; this module follows
the official code (facebookresearch/vicreg ``main_vicreg.py``, also followed by
lightly's ``VICRegLoss``), whose training produced the published numbers and
for which (25, 25, 1) were tuned:

* invariance: the paper's ``s`` is ``(1/N) Σ_i ‖z_i − z'_i‖²``, a sum over
  dimensions; the code uses ``F.mse_loss``, a mean over them (``1/d`` of the paper's);
* variance: the paper's loss has ``μ (v(Z) + v(Z'))``; the code averages the
  two branches, ``(std_loss_x + std_loss_y) / 2``.

So ``VICRegLoss(λ, μ, ν)`` here equals the paper's formula with ``(λ/d, μ/2, ν)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .precision import in_float32
from .sampling import seed_rows

# (invariance λ, variance μ, covariance ν): the paper's and the official code's defaults.
DEFAULT_WEIGHTS = (25.0, 25.0, 1.0)
# Three layers of 4x the embedding size, as the paper's 8192-8192-8192 expander on ResNet-50's
# 2048-d output; 512 = 4 x graphssl's 128-d Cora embedding.
DEFAULT_EXPANDER = (512, 512, 512)


class Expander(nn.Sequential):
    """VICReg's expander: (Linear → BatchNorm → ReLU) per hidden layer, then a Linear without bias.

    As the official ``Projector``; each view is normalized with its own batch statistics.

    Args:
        in_channels: embedding size of the encoder.
        layers: output size of each Linear layer; the last is the size ``d`` the loss sees.

    Example:
        >>> Expander(128, [512, 512, 512])(torch.randn(5, 128)).shape
        torch.Size([5, 512])
    """

    def __init__(self, in_channels: int, layers: Sequence[int]) -> None:
        if not layers:
            raise ValueError("the VICReg expander needs at least one layer size")
        sizes = [in_channels, *layers]
        modules: list[nn.Module] = []
        for size_in, size_out in zip(sizes[:-2], sizes[1:-1]):
            modules += [nn.Linear(size_in, size_out), nn.BatchNorm1d(size_out), nn.ReLU()]
        modules.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        super().__init__(*modules)

    def reset_parameters(self) -> None:
        for module in self:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def invariance_term(z1: Tensor, z2: Tensor) -> Tensor:
    """``s(Z, Z')``: the mean squared difference over nodes and dimensions.

    Returns:
        A scalar.

    Example:
        >>> invariance_term(torch.zeros(2, 2), torch.ones(2, 2))
        tensor(1.)
    """
    return F.mse_loss(z1, z2)


def variance_term(z: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """``v(Z)``: the hinge ``max(0, γ − std)`` on each dimension's regularized std, averaged over dimensions.

    Returns:
        A scalar, 0 when every dimension's std is at least ``γ``.

    Example:
        >>> variance_term(torch.zeros(4, 3))  # constant embeddings: std sqrt(1e-4)
        tensor(0.9900)
    """
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()


def covariance_term(z: Tensor) -> Tensor:
    """``c(Z)``: the sum of squared off-diagonal entries of ``Z``'s covariance, divided by ``d``.

    Returns:
        A scalar, 0 when the dimensions are uncorrelated.

    Example:
        >>> z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # covariance [[2, 2], [2, 2]]
        >>> covariance_term(z)  # (2² + 2²) / 2
        tensor(4.)
    """
    centered = z - z.mean(dim=0)
    covariance = centered.t() @ centered / (z.size(0) - 1)
    diagonal = torch.eye(z.size(1), dtype=torch.bool, device=z.device)
    return covariance.masked_fill(diagonal, 0.0).square().sum() / z.size(1)


def vicreg_loss(z1: Tensor, z2: Tensor, invariance_weight: float = DEFAULT_WEIGHTS[0],
                variance_weight: float = DEFAULT_WEIGHTS[1], covariance_weight: float = DEFAULT_WEIGHTS[2],
                gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """``λ s(Z, Z') + μ (v(Z) + v(Z')) / 2 + ν (c(Z) + c(Z'))`` for two views' (expanded) embeddings.

    Args:
        z1, z2: ``N × d`` embeddings of the same ``N ≥ 2`` nodes in the two views.
        invariance_weight: ``λ``.
        variance_weight: ``μ``; the two branches' variance terms are averaged (official code).
        covariance_weight: ``ν``.
        gamma: target standard deviation ``γ``.
        eps: ``ε`` added to the variance (keeps the gradient of the square root finite).

    Returns:
        The scalar loss.

    Example:
        >>> z1, z2 = torch.randn(64, 8), torch.randn(64, 8)
        >>> vicreg_loss(z1, z2, 25.0, 25.0, 1.0).shape
        torch.Size([])
    """
    if z1.size(0) < 2:
        raise ValueError(f"VICReg needs at least 2 nodes for a variance, got {z1.size(0)}")
    return (invariance_weight * invariance_term(z1, z2)
            + variance_weight * ((variance_term(z1, gamma, eps) + variance_term(z2, gamma, eps)) / 2)
            + covariance_weight * (covariance_term(z1) + covariance_term(z2)))


class VICRegLoss(nn.Module):
    """VICReg's objective on two views' encoder embeddings: expander head, then :func:`vicreg_loss`.

    Args:
        in_channels: embedding size of the encoder.
        expander_layers: sizes of the expander's Linear layers (:class:`Expander`).
        invariance_weight: ``λ``.
        variance_weight: ``μ``.
        covariance_weight: ``ν``.

    ``head`` is the expander (its 2-D weights can be regularized like the encoder's).

    Example:
        >>> objective = VICRegLoss(16, expander_layers=[64, 64])
        >>> h1, h2 = torch.randn(50, 16), torch.randn(50, 16)  # encoder(view_1), encoder(view_2)
        >>> objective(h1, h2).backward()
    """

    def __init__(self, in_channels: int, expander_layers: Sequence[int] = DEFAULT_EXPANDER,
                 invariance_weight: float = DEFAULT_WEIGHTS[0], variance_weight: float = DEFAULT_WEIGHTS[1],
                 covariance_weight: float = DEFAULT_WEIGHTS[2]) -> None:
        super().__init__()
        self.head = Expander(in_channels, expander_layers)
        self.coefficients = (invariance_weight, variance_weight, covariance_weight)

    def reset_parameters(self) -> None:
        self.head.reset_parameters()

    def forward(self, h1: Tensor, h2: Tensor, num_seeds: int | None = None) -> Tensor:
        """The loss of the first ``num_seeds`` nodes (a mini-batch's seeds; None: all); the
        statistics (batch norm, variance, covariance) are those of these nodes."""
        z1, z2 = self.head(seed_rows(h1, num_seeds)), self.head(seed_rows(h2, num_seeds))
        invariance, variance, covariance = self.coefficients
        return in_float32(vicreg_loss, z1, z2, invariance_weight=invariance, variance_weight=variance,
                          covariance_weight=covariance)
