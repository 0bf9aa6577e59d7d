r"""Linear evaluation: logistic regression on frozen embeddings, by one of two protocols.

``lbfgs`` (the default, :func:`linear_probe`): embeddings are L2-normalized
row by row (as in BGRL's evaluation), then a softmax classifier with bias is
fitted on the training nodes by minimizing

.. math::
    \frac{1}{|T|}\sum_{i \in T} \mathrm{CE}(W z_i + b, y_i) + \lambda \lVert W \rVert_F^2

full-batch with L-BFGS (strong Wolfe line search), for each ``λ`` of a grid.
The ``λ`` with the best validation accuracy is kept (ties go to the larger
``λ``) and the test accuracy is reported at that choice only.  The grid is
swept from the largest ``λ`` down, each fit warm-started from the previous
one, which keeps the probe to seconds on graphs of 10⁵ nodes.  It runs on the
embeddings' device, so on the GPU when they are there.  It is the same model
as scikit-learn's multinomial ``LogisticRegression(C=1 / (2 λ n_train))``, which
minimizes ``C Σ CE + ½‖W‖²`` (a test checks that the two agree on Cora).

``bgrl-official`` (:func:`bgrl_official_probe`): the official BGRL code's
evaluation for preset splits (``fit_logistic_regression_preset_splits`` in
nerdslab/bgrl): scikit-learn one-vs-rest logistic regression (liblinear) on
L2-normalized embeddings, ``C`` over 2⁻¹⁰ … 2¹⁰ chosen on the validation nodes,
for setting results beside published ones protocol for protocol.  It runs on
the CPU and is slow on graphs of 10⁵ nodes (21 × classes liblinear fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Accuracy = Callable[[Tensor, Tensor], float]


OFFICIAL_C_GRID = tuple(2.0 ** k for k in range(-10, 11))


def plain_accuracy(y_true: Tensor, y_pred: Tensor) -> float:
    """The fraction of ``y_pred`` equal to ``y_true``.

    Returns:
        A float in [0, 1].

    Example:
        >>> plain_accuracy(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        0.75
    """
    return float((y_true == y_pred).float().mean())


def unit_scaled(matrix: Tensor) -> Tensor:
    """``matrix`` divided by the power of two that brings its largest magnitude into [0.5, 1).

    A power of two divides exactly, so whatever depends only on directions
    (L2-normalized rows, cosines, the probes) is bit for bit what ``matrix``
    gives, and none of it overflows: the norms of float32 embeddings near 1e38
    lie beyond float32's range.  An all-zero matrix is returned as it is; one
    whose largest value is below float32's normal range is scaled by 2¹²⁶.

    Returns:
        A tensor of ``matrix``'s shape and dtype.

    Example:
        >>> unit_scaled(torch.tensor([[3e38, -1e38]]))
        tensor([[ 0.8816, -0.2939]])
    """
    largest = matrix.detach().abs().max() if matrix.numel() else matrix.new_zeros(())
    if not largest > 0:
        return matrix
    return torch.ldexp(matrix, -torch.frexp(largest).exponent.clamp(min=-126))


def l2_normalize_rows(embeddings: Tensor) -> Tensor:
    """Each row divided by its Euclidean norm, as the probes see embeddings; embeddings of any scale, near
    float32's limits too, give the same rows (:func:`unit_scaled`).

    Returns:
        A float32 tensor of the same shape.

    Example:
        >>> l2_normalize_rows(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
        >>> l2_normalize_rows(torch.tensor([[3e37, 4e37]]))
        tensor([[0.6000, 0.8000]])
    """
    return F.normalize(unit_scaled(embeddings).float(), p=2, dim=1)


def fit_logistic_regression(features: Tensor, labels: Tensor, num_classes: int, l2: float, max_iter: int = 200,
                            init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """An L2-regularized softmax classifier (``mean CE + l2 ‖W‖²``, bias unpenalized), fitted with L-BFGS.

    ``init``: weights and bias to start from (a warm start), else zeros.

    Returns:
        Weights ``[C, d]`` and bias ``[C]``.

    Example:
        >>> x, y = torch.randn(60, 5), torch.arange(3).repeat(20)
        >>> weight, bias = fit_logistic_regression(l2_normalize_rows(x), y, num_classes=3, l2=1e-3)
        >>> weight.shape, bias.shape
        (torch.Size([3, 5]), torch.Size([3]))
    """
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
    """What a probe chose on the validation nodes, and the accuracies at that choice.

    Attributes:
        knob: the regularization chosen: ``"l2"`` (λ of :func:`linear_probe`) or ``"c"`` (scikit-learn's
            inverse strength ``C`` in :func:`bgrl_official_probe`).
        value: its chosen value.
        accuracy: accuracy (a fraction) per split, at that choice.
        valid_by_value: validation accuracy for every value tried.
    """

    knob: str
    value: float
    accuracy: dict[str, float]
    valid_by_value: dict[float, float] = field(default_factory=dict)


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

    Returns:
        The chosen ``λ`` (``knob == "l2"``) and the accuracies there.

    Example:
        >>> x, y = torch.randn(90, 8), torch.arange(3).repeat(30)
        >>> split = {"train": torch.arange(0, 30), "valid": torch.arange(30, 60), "test": torch.arange(60, 90)}
        >>> result = linear_probe(x, y, split, num_classes=3)
        >>> result.knob, sorted(result.accuracy)
        ('l2', ['test', 'train', 'valid'])
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
    valid_by_l2: dict[float, float] = {}
    for l2 in sorted(set(float(v) for v in l2_grid), reverse=True):
        params = fit_logistic_regression(train_x, train_y, num_classes, l2, max_iter, init=params)
        valid_by_l2[l2] = predict(params, "valid")
        if best is None or valid_by_l2[l2] > best[0]:
            best = (valid_by_l2[l2], l2, params)
    assert best is not None
    _, l2, params = best
    return ProbeResult("l2", l2, {name: predict(params, name) for name in ("train", "valid", "test") if name in parts},
                       valid_by_l2)


def bgrl_official_probe(embeddings: Tensor, labels: Tensor, split: dict[str, Tensor],
                        accuracy: Accuracy = plain_accuracy) -> ProbeResult:
    """The official BGRL evaluation on preset splits: one-vs-rest logistic regression (scikit-learn, liblinear)
    on L2-normalized embeddings for each ``C`` of 2⁻¹⁰ … 2¹⁰, the ``C`` with the best validation accuracy kept
    (the smallest on a tie), every split ``split`` holds reported at it.

    Args:
        embeddings: ``[N, d]`` node embeddings (not modified).
        labels: ``[N]`` class labels.
        split: node indices under ``"train"``, ``"valid"`` and ``"test"`` (without ``"test"``, no test label is read).
        accuracy: ``accuracy(y_true, y_pred)``; e.g. an OGB evaluator.

    Returns:
        The chosen ``C`` (``knob == "c"``) and the accuracies there.

    Example:
        >>> x, y = torch.randn(90, 8), torch.arange(3).repeat(30)
        >>> split = {"train": torch.arange(0, 30), "valid": torch.arange(30, 60)}
        >>> result = bgrl_official_probe(x, y, split)
        >>> result.knob, sorted(result.accuracy), len(result.valid_by_value)
        ('c', ['train', 'valid'], 21)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import normalize

    features = normalize(unit_scaled(embeddings.detach()).float().cpu().numpy(), norm="l2")
    labels = labels.cpu()
    parts = {name: idx.cpu().numpy() for name, idx in split.items()}

    def predict(classifier: OneVsRestClassifier, name: str) -> float:
        idx = parts[name]
        # As the official code: the class of the highest one-vs-rest probability.
        predicted = classifier.classes_[classifier.predict_proba(features[idx]).argmax(axis=1)]
        return accuracy(labels[idx], torch.from_numpy(predicted))

    best: tuple[float, float, OneVsRestClassifier] | None = None
    valid_by_c = {}
    for c in OFFICIAL_C_GRID:
        classifier = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=c))
        classifier.fit(features[parts["train"]], labels[parts["train"]].numpy())
        valid_by_c[c] = predict(classifier, "valid")
        if best is None or valid_by_c[c] > best[0]:
            best = (valid_by_c[c], c, classifier)
    assert best is not None
    _, c, classifier = best
    return ProbeResult("c", c, {name: predict(classifier, name) for name in ("train", "valid", "test")
                                if name in parts}, valid_by_c)
