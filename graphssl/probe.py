r"""Linear evaluation: multinomial logistic regression on frozen embeddings.

Embeddings are L2-normalized row by row (as in BGRL's evaluation), then a
softmax classifier with bias is fitted on the training nodes by minimizing

.. math::
    \frac{1}{|T|}\sum_{i \in T} \mathrm{CE}(W z_i + b, y_i) + \lambda \lVert W \rVert_F^2

full-batch with L-BFGS (strong Wolfe line search), for each ``λ`` of a grid.
The ``λ`` with the best validation accuracy is kept (ties go to the larger
``λ``) and the test accuracy is reported at that choice only.  The grid is
swept from the largest ``λ`` down, each fit warm-started from the previous
one, which keeps the probe to seconds on graphs of 10⁵ nodes.  It runs on the
embeddings' device, so on the GPU when they are there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Accuracy = Callable[[Tensor, Tensor], float]


def plain_accuracy(y_true: Tensor, y_pred: Tensor) -> float:
    return float((y_true == y_pred).float().mean())


def l2_normalize_rows(embeddings: Tensor) -> Tensor:
    return F.normalize(embeddings.float(), p=2, dim=1)


def fit_logistic_regression(features: Tensor, labels: Tensor, num_classes: int, l2: float, max_iter: int = 200,
                            init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Weights ``[C, d]`` and bias ``[C]`` of an L2-regularized softmax classifier (L-BFGS)."""
    if init is None:
        weight = features.new_zeros(num_classes, features.size(1))
        bias = features.new_zeros(num_classes)
    else:
        weight, bias = (t.detach().clone() for t in init)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ weight.t() + bias, labels) + l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


@dataclass
class ProbeResult:
    """The chosen L2 strength, accuracies (fractions) at that choice, and validation accuracy per L2."""

    l2: float
    accuracy: dict[str, float]
    valid_by_l2: dict[float, float] = field(default_factory=dict)


def linear_probe(embeddings: Tensor, labels: Tensor, split: dict[str, Tensor], num_classes: int,
                 l2_grid: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1), max_iter: int = 200,
                 accuracy: Accuracy = plain_accuracy) -> ProbeResult:
    """Fit the probe on ``split["train"]``, choose L2 on ``split["valid"]``, report every split ``split`` holds
    (leave ``"test"`` out and the test labels are never read).

    Args:
        embeddings: ``[N, d]`` node embeddings (not modified).
        labels: ``[N]`` class labels.
        split: node indices under ``"train"``, ``"valid"`` and ``"test"``.
        num_classes: number of classes.
        l2_grid: candidate L2 strengths ``λ``.
        max_iter: L-BFGS iterations per fit.
        accuracy: ``accuracy(y_true, y_pred)``; e.g. an OGB evaluator.
    """
    features = l2_normalize_rows(embeddings)
    labels = labels.to(features.device)
    parts = {name: idx.to(features.device) for name, idx in split.items()}
    train_x, train_y = features[parts["train"]], labels[parts["train"]]

    def predict(params: tuple[Tensor, Tensor], name: str) -> float:
        weight, bias = params
        idx = parts[name]
        return accuracy(labels[idx].cpu(), (features[idx] @ weight.t() + bias).argmax(dim=1).cpu())

    best: tuple[float, float, tuple[Tensor, Tensor]] | None = None
    params = None
    valid_by_l2 = {}
    for l2 in sorted(set(float(v) for v in l2_grid), reverse=True):
        params = fit_logistic_regression(train_x, train_y, num_classes, l2, max_iter, init=params)
        valid_by_l2[l2] = predict(params, "valid")
        if best is None or valid_by_l2[l2] > best[0]:
            best = (valid_by_l2[l2], l2, params)
    assert best is not None
    _, l2, params = best
    return ProbeResult(l2, {name: predict(params, name) for name in ("train", "valid", "test") if name in parts},
                       valid_by_l2)
