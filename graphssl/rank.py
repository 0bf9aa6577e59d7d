r"""How many dimensions embeddings really use.

* :func:`numerical_rank`: singular values of the embedding matrix above
  ``max(s) * max(n, d) * eps``, NumPy's ``matrix_rank`` tolerance, with ``eps``
  the machine epsilon of the embeddings' own dtype (float32: 1.19e-7): the
  SVD runs in float64, but values below float32 resolution are noise.
* :func:`rankme`: RankMe (Garrido et al., 2023),
  :math:`\exp(-\sum_k p_k \log p_k)` with :math:`p_k = s_k / \sum_j s_j + 10^{-7}`,
  on the *uncentered* embedding matrix.
* :func:`mean_pair_cosine`: mean cosine similarity between random node pairs.
  Near 1 means every embedding points the same way, a collapse that ranks of
  centered embeddings can miss.
"""

from __future__ import annotations

import torch
from torch import Tensor

RANKME_EPS = 1e-7


def singular_values(matrix: Tensor) -> Tensor:
    """Singular values, largest first, computed in float64 on the CPU."""
    return torch.linalg.svdvals(matrix.detach().to("cpu", torch.float64))


def rank_tolerance(values: Tensor, shape: tuple[int, int], dtype: torch.dtype = torch.float32) -> float:
    """``max(s) * max(n, d) * eps(dtype)``."""
    if values.numel() == 0:
        return 0.0
    return float(values.max()) * max(shape) * torch.finfo(dtype).eps


def _count_above_tolerance(values: Tensor, matrix: Tensor) -> int:
    dtype = matrix.dtype if matrix.is_floating_point() else torch.float32
    return int((values > rank_tolerance(values, tuple(matrix.shape), dtype)).sum())


def numerical_rank(matrix: Tensor) -> int:
    """Number of singular values above :func:`rank_tolerance` for ``matrix``'s dtype."""
    return _count_above_tolerance(singular_values(matrix), matrix)


def rankme_from_singular_values(values: Tensor) -> float:
    p = values / values.sum() + RANKME_EPS
    return float(torch.exp(-(p * p.log()).sum()))


def rankme(matrix: Tensor) -> float:
    """RankMe of ``matrix`` (rows are samples), between 1 and ``min(n, d)``."""
    return rankme_from_singular_values(singular_values(matrix))


def mean_pair_cosine(matrix: Tensor, num_pairs: int = 10000, seed: int = 0) -> float:
    """Mean cosine similarity of ``num_pairs`` random pairs of distinct rows (fixed ``seed``)."""
    n = matrix.size(0)
    if n < 2:
        raise ValueError("mean_pair_cosine needs at least two rows")
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(n, (num_pairs,), generator=generator)
    # An offset in [1, n) makes the partner always a different row.
    second = (first + torch.randint(1, n, (num_pairs,), generator=generator)) % n
    rows = matrix.detach().float().cpu()
    return float(torch.nn.functional.cosine_similarity(rows[first], rows[second], dim=-1).mean())


def covariance_spectrum(matrix: Tensor) -> Tensor:
    """Eigenvalues of the embedding covariance ``(Z - mean)ᵀ(Z - mean) / n``, largest first.

    (The covariance is symmetric positive semi-definite, so these are also its singular values.)
    """
    centered = matrix.detach().to("cpu", torch.float64)
    centered = centered - centered.mean(dim=0, keepdim=True)
    return torch.linalg.svdvals(centered) ** 2 / matrix.size(0)


def rank_report(matrix: Tensor) -> dict[str, object]:
    """Rank, RankMe, mean pair cosine and the singular values of an embedding matrix."""
    values = singular_values(matrix)
    return {
        "rank": _count_above_tolerance(values, matrix),
        "rankme": rankme_from_singular_values(values),
        "mean_pair_cosine": mean_pair_cosine(matrix),
        "singular_values": values.tolist(),
    }
