r"""How many dimensions embeddings really use.

* :func:`numerical_rank`: singular values of the embedding matrix above
  ``max(s) * max(n, d) * eps``, NumPy's ``matrix_rank`` tolerance, with ``eps``
  the machine epsilon of the embeddings' own dtype (float32: 1.19e-7): the
  SVD runs in float64, but values below float32 resolution are noise.
* :func:`rankme`: RankMe (Garrido et al., 2023),
  :math:`\exp(-\sum_k p_k \log p_k)` with :math:`p_k = s_k / \sum_j s_j + 10^{-7}`,
  on the *uncentered* embedding matrix; 0 for an all-zero matrix, whose
  numerical rank is 0 too.
* :func:`mean_pair_cosine`: mean cosine similarity between random node pairs.
  Near 1 means every embedding points the same way, a collapse that ranks of
  centered embeddings can miss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .probe import unit_scaled

RANKME_EPS = 1e-7


def singular_values(matrix: Tensor) -> Tensor:
    """Singular values of ``matrix``, computed in float64 on the CPU.

    Returns:
        A float64 tensor, largest first.

    Example:
        >>> singular_values(torch.diag(torch.tensor([1.0, 3.0, 2.0])))
        tensor([3., 2., 1.], dtype=torch.float64)
    """
    return torch.linalg.svdvals(matrix.detach().to("cpu", torch.float64))


def rank_tolerance(values: Tensor, shape: tuple[int, int], dtype: torch.dtype = torch.float32) -> float:
    """The threshold below which a singular value counts as zero: NumPy's ``matrix_rank`` tolerance.

    Returns:
        ``max(s) * max(n, d) * eps(dtype)`` (0 for no values).

    Example:
        >>> rank_tolerance(torch.tensor([2.0, 1.0]), (1000, 16)) == 2.0 * 1000 * torch.finfo(torch.float32).eps
        True
    """
    if values.numel() == 0:
        return 0.0
    return float(values.max()) * max(shape) * torch.finfo(dtype).eps


def _count_above_tolerance(values: Tensor, matrix: Tensor) -> int:
    dtype = matrix.dtype if matrix.is_floating_point() else torch.float32
    return int((values > rank_tolerance(values, tuple(matrix.shape), dtype)).sum())


def numerical_rank(matrix: Tensor) -> int:
    """How many dimensions ``matrix`` spans, up to its dtype's precision.

    Returns:
        The number of singular values above :func:`rank_tolerance` for ``matrix``'s dtype.

    Example:
        >>> numerical_rank(torch.ones(100, 8))
        1
    """
    return _count_above_tolerance(singular_values(matrix), matrix)


def rankme_from_singular_values(values: Tensor) -> float:
    """RankMe from singular values already computed (:func:`rankme`).

    Returns:
        ``exp(-Σ p_k log p_k)`` with ``p_k = s_k / Σ s + 1e-7``; 0 when every value is 0 (all-zero embeddings
        use no direction; the formula would be 0/0).

    Example:
        >>> round(rankme_from_singular_values(torch.ones(4, dtype=torch.float64)), 3)
        4.0
        >>> rankme_from_singular_values(torch.zeros(4, dtype=torch.float64))
        0.0
    """
    total = values.sum()
    if total == 0:
        return 0.0
    p = values / total + RANKME_EPS
    return float(torch.exp(-(p * p.log()).sum()))


def rankme(matrix: Tensor) -> float:
    """RankMe (Garrido et al., 2023) of ``matrix``, rows being samples: its effective rank.

    Returns:
        A number between 1 and ``min(n, d)``; 0 for an all-zero matrix.

    Example:
        >>> round(rankme(torch.eye(8)), 3), round(rankme(torch.ones(100, 8)), 3)
        (8.0, 1.0)
    """
    return rankme_from_singular_values(singular_values(matrix))


def mean_pair_cosine(matrix: Tensor, num_pairs: int = 10000, seed: int = 0) -> float:
    """Mean cosine similarity of ``num_pairs`` random pairs of distinct rows (fixed ``seed``).

    Returns:
        A number in [-1, 1]; near 1 means every row points the same way.

    Example:
        >>> round(mean_pair_cosine(torch.ones(50, 4) + 1e-3 * torch.randn(50, 4)), 2)
        1.0
    """
    n = matrix.size(0)
    if n < 2:
        raise ValueError("mean_pair_cosine needs at least two rows")
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(n, (num_pairs,), generator=generator)
    # An offset in [1, n) makes the partner always a different row.
    second = (first + torch.randint(1, n, (num_pairs,), generator=generator)) % n
    rows = unit_scaled(matrix.detach()).float().cpu()
    return float(torch.nn.functional.cosine_similarity(rows[first], rows[second], dim=-1).mean())


def covariance_spectrum(matrix: Tensor) -> Tensor:
    """Eigenvalues of the embedding covariance ``(Z - mean)ᵀ(Z - mean) / n``.

    (The covariance is symmetric positive semi-definite, so these are also its singular values.)

    Returns:
        A float64 tensor, largest first.

    Example:
        >>> [round(v, 6) for v in covariance_spectrum(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).tolist()]
        [1.0, 0.0]
    """
    centered = matrix.detach().to("cpu", torch.float64)
    centered = centered - centered.mean(dim=0, keepdim=True)
    return torch.linalg.svdvals(centered) ** 2 / matrix.size(0)


def rank_report(matrix: Tensor) -> dict[str, object]:
    """Every rank metric of an embedding matrix at once (one SVD).

    Returns:
        ``{"rank", "rankme", "mean_pair_cosine", "singular_values"}``.

    Example:
        >>> report = rank_report(torch.randn(100, 8))
        >>> report["rank"], len(report["singular_values"])
        (8, 8)
    """
    values = singular_values(matrix)
    return {
        "rank": _count_above_tolerance(values, matrix),
        "rankme": rankme_from_singular_values(values),
        "mean_pair_cosine": mean_pair_cosine(matrix),
        "singular_values": values.tolist(),
    }
