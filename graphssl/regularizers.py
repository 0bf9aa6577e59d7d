r"""WERank: weight regularization against rank degradation (Saheb Pasand et al., NeurIPS 2023).

.. math::
    \mathcal{L}_{reg} = \sum_{l=1}^{L} \alpha_l \, \lVert G_l - I \rVert_F,
    \qquad G_l = \begin{cases} W_l^\top W_l & d_{in} \ge d_{out} \\ W_l W_l^\top & \text{otherwise} \end{cases}

``G_l`` is the Gram matrix of the *smaller* side of ``W_l``, the
``min(d_in, d_out)``-square one, whose identity target is reachable: all of
``W_l``'s singular values equal to 1 makes the penalty exactly zero.  The norm
is the plain Frobenius norm, as in the paper, or its square (``squared=True``),
whose gradient does not blow up near the optimum.

The penalty is built from small pure functions (:func:`gram_of_smaller_side`,
:func:`orthogonality_gap`, :func:`werank_terms`, :func:`werank_penalty`); :class:`WERank` attaches it
to any ``torch.nn.Module`` so it can be added to any self-supervised loss.
Give it the *encoder* whose representations should keep their rank, not a whole
model: a projection head or a discriminator's matrices are not what the paper
regularizes (it warns when it sees that happen).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .precision import float32_function


def gram_of_smaller_side(weight: Tensor) -> Tensor:
    """The Gram matrix WERank compares with the identity.

    Returns:
        ``W Wᵀ`` or ``Wᵀ W``, whichever is ``min(rows, cols)`` square.

    Example:
        >>> gram_of_smaller_side(torch.ones(2, 5)).shape
        torch.Size([2, 2])
    """
    return weight @ weight.t() if weight.size(0) <= weight.size(1) else weight.t() @ weight


@float32_function
class _OrthogonalityGap(torch.autograd.Function):
    """``‖G - I‖_F`` (or its square) with a closed-form gradient, the Gram matrix in float32 under autocast.

    With ``D = G - I`` (symmetric), ``d‖D‖²/dW`` is ``4 D W`` for ``G = W Wᵀ`` and
    ``4 W D`` for ``G = Wᵀ W``: one matrix product, where autograd through
    ``W @ W.t()`` spends two (the penalty's cost is dominated by these products).
    """

    @staticmethod
    def forward(ctx: Any, weight: Tensor, squared: bool) -> Tensor:
        gap = gram_of_smaller_side(weight)
        gap.diagonal().sub_(1.0)
        squares = gap.square().sum()
        value = squares if squared else squares.sqrt()
        ctx.save_for_backward(weight, gap, value)
        ctx.squared = squared
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        weight, gap, value = ctx.saved_tensors
        if ctx.squared:
            scale = 4 * grad
        else:  # d‖D‖ = d‖D‖² / (2‖D‖); at D = 0 (the optimum) take the zero subgradient
            scale = torch.where(value > 0, 2 * grad / value, torch.zeros_like(value))
        direction = gap @ weight if weight.size(0) <= weight.size(1) else weight @ gap
        return direction * scale, None


def orthogonality_gap(weight: Tensor, squared: bool = False) -> Tensor:
    """How far ``weight`` is from having every singular value equal to 1.

    Returns:
        ``‖G - I‖_F`` (or its square) for the smaller-side Gram matrix ``G`` of
        ``weight``, a scalar with a closed-form gradient.

    Example:
        >>> float(orthogonality_gap(torch.eye(3, 5)))
        0.0
        >>> float(orthogonality_gap(2 * torch.eye(2), squared=True))  # G - I = 3 I
        18.0
    """
    return _OrthogonalityGap.apply(weight, squared)


def _coefficient(value: Any, alpha: Any) -> float:
    # bool is an int to Python and a string is a sequence: neither is a coefficient someone meant.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"WERank coefficients must be numbers >= 0, got {alpha!r}")
    return float(value)


def _per_weight(alpha: float | Sequence[float], count: int) -> list[float]:
    if isinstance(alpha, (int, float, bool)):
        coefficients = [_coefficient(alpha, alpha)] * count
    elif isinstance(alpha, Sequence) and not isinstance(alpha, str):
        coefficients = [_coefficient(a, alpha) for a in alpha]
    else:
        raise ValueError(f"WERank coefficients must be numbers >= 0, got {alpha!r}")
    if len(coefficients) != count:
        raise ValueError(f"WERank got {len(coefficients)} coefficients for {count} weight matrices; "
                         f"give one per weight matrix or a single number")
    if not all(math.isfinite(a) and a >= 0 for a in coefficients):
        # A negative coefficient would push the singular values away from 1: the collapse WERank prevents.
        raise ValueError(f"WERank coefficients must be numbers >= 0, got {alpha}")
    return coefficients


def werank_terms(weights: Sequence[Tensor], alpha: float | Sequence[float],
                 squared: bool = False) -> tuple[Tensor, list[Tensor]]:
    """WERank's penalty of the 2-D ``weights`` and each weight's share of it, from one computation.

    ``alpha`` is one coefficient (>= 0) or one per weight; weights with ``α_l = 0``
    cost nothing (their term is a constant 0).  The per-weight terms are what a
    training log records per layer, at no extra cost.

    Returns:
        ``(Σ_l α_l ‖G_l − I‖_F, [α_l ‖G_l − I‖_F for each weight])`` (squared norms with ``squared``);
        the total is a scalar to add to a loss.

    Example:
        >>> w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])  # W Wᵀ - I = [[4, 2], [2, 1]]
        >>> total, terms = werank_terms([w, 2 * torch.eye(2)], [0.5, 0.0])
        >>> float(total), [float(t) for t in terms]
        (2.5, [2.5, 0.0])
    """
    if not weights:
        raise ValueError("WERank needs at least one weight matrix")
    total = weights[0].new_zeros(())
    terms = []
    for weight, a in zip(weights, _per_weight(alpha, len(weights))):
        if weight.dim() != 2:
            raise ValueError(f"WERank acts on 2-D weight matrices, got a tensor of shape {tuple(weight.shape)}")
        term = a * orthogonality_gap(weight, squared) if a != 0 else weight.new_zeros(())
        total = total + term
        terms.append(term)
    return total, terms


def werank_penalty(weights: Sequence[Tensor], alpha: float | Sequence[float], squared: bool = False) -> Tensor:
    """WERank's penalty of the 2-D ``weights``; ``alpha`` is one coefficient (>= 0) or one per weight.

    Weights with ``α_l = 0`` cost nothing.

    Returns:
        ``Σ_l α_l ‖G_l − I‖_F`` (``‖G_l − I‖_F²`` with ``squared``), a scalar to add to a loss.

    Example:
        >>> w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])  # W Wᵀ - I = [[4, 2], [2, 1]]
        >>> float(werank_penalty([w, torch.eye(3)], [0.5, 1.0]))
        2.5
    """
    return werank_terms(weights, alpha, squared)[0]


def weight_matrices(module: nn.Module) -> dict[str, Tensor]:
    """The matrices WERank takes from ``module`` by default.

    For a parametrized weight (e.g. weight standardization) this is the raw
    parameter the optimizer updates, not the tensor the forward pass computes.

    Returns:
        Every 2-D parameter of ``module`` by name, in registration order.

    Example:
        >>> list(weight_matrices(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))))
        ['0.weight', '2.weight']
    """
    return {name: p for name, p in module.named_parameters() if p.dim() == 2}


def _looks_like_encoder(name: str, module: nn.Module) -> bool:
    return "encoder" in name.rsplit(".", 1)[-1].lower() or "encoder" in type(module).__name__.lower()


def _warn_outside_encoder(module: nn.Module, names: Sequence[str]) -> None:
    """Warn when ``module`` holds an encoder but some of the picked matrices lie outside it."""
    if _looks_like_encoder("", module):
        return
    encoders = [name for name, sub in module.named_modules() if name and _looks_like_encoder(name, sub)]
    outside = [name for name in names if not any(name.startswith(f"{encoder}.") for encoder in encoders)]
    if encoders and outside:
        warnings.warn(f"WERank({type(module).__name__}) regularizes {', '.join(outside)} outside its encoder "
                      f"({encoders[0]}); pass the encoder itself, WERank(model.{encoders[0]}, ...), or name the "
                      f"matrices with weights=[...]", UserWarning, stacklevel=3)


class WERank:
    """The WERank penalty of a module's weight matrices, attached to any ``torch.nn.Module``.

    Calling the object returns the penalty for the module's *current* weights,
    ready to be added to a loss.  Pass the encoder, not the whole model: given
    a model that holds an encoder (a submodule whose name or class says
    ``encoder``), WERank warns about each matrix it picks outside it, e.g. the
    512 x 512 discriminator of torch_geometric's ``DeepGraphInfomax``.  The
    picked names are in :attr:`names` and the object's ``repr``.

    Args:
        module: the network to regularize, normally the encoder.
        alpha: one coefficient (>= 0) for every weight matrix, or one per matrix in order.
        squared: use ``‖G - I‖_F²`` instead of the paper's ``‖G - I‖_F``.
        weights: names (from ``module.named_parameters()``) of the matrices to
            regularize; by default every 2-D parameter, which for layers holding
            a parametrized weight (e.g. weight standardization) is the raw
            parameter the optimizer updates.

    Example:
        >>> encoder = nn.Sequential(nn.Linear(16, 32), nn.PReLU(), nn.Linear(32, 8))
        >>> werank = WERank(encoder, alpha=0.1)
        >>> werank
        WERank(alpha=[0.1, 0.1], squared=False, weights=['0.weight', '2.weight'])
        >>> loss = werank()  # + your self-supervised loss; backward() reaches the encoder's weights
    """

    def __init__(self, module: nn.Module, alpha: float | Sequence[float], squared: bool = False,
                 weights: Sequence[str] | None = None) -> None:
        params = dict(module.named_parameters())
        if weights is None:
            self.names = list(weight_matrices(module))
        else:
            unknown = [name for name in weights if name not in params]
            if unknown:
                raise ValueError(f"WERank: no parameter named {', '.join(unknown)}; "
                                 f"choose from {', '.join(params)}")
            self.names = list(weights)
        if not self.names:
            raise ValueError(f"WERank: {type(module).__name__} has no 2-D weight matrices")
        if weights is None:
            _warn_outside_encoder(module, self.names)
        self.module = module
        self.alpha = _per_weight(alpha, len(self.names))
        self.squared = squared

    def set_alpha(self, alpha: float | Sequence[float]) -> None:
        """Use ``alpha`` (one coefficient >= 0, or one per matrix) from now on, e.g. as a schedule moves it.

        Example:
            >>> werank = WERank(nn.Linear(4, 4), alpha=0.1)
            >>> werank.set_alpha(0.2)
            >>> werank.alpha
            [0.2]
        """
        self.alpha = _per_weight(alpha, len(self.names))

    def weights(self) -> list[Tensor]:
        """The regularized matrices, as the module holds them now (in the order of :attr:`names`)."""
        params = dict(self.module.named_parameters())
        return [params[name] for name in self.names]

    def __call__(self) -> Tensor:
        """The penalty of the current weights (:func:`werank_penalty`), a scalar to add to a loss."""
        return werank_penalty(self.weights(), self.alpha, self.squared)

    def terms(self) -> tuple[Tensor, list[Tensor]]:
        """The penalty of the current weights and each weight's term, in the order of :attr:`names`
        (:func:`werank_terms`): what ``self()`` computes, split by weight at no extra cost."""
        return werank_terms(self.weights(), self.alpha, self.squared)

    def __repr__(self) -> str:
        return f"WERank(alpha={self.alpha}, squared={self.squared}, weights={self.names})"
