"""Products of a sparse CSR matrix with a dense one: GCN propagation and sparse node features.

On CPU a CSR matrix's rows are exactly the bags ``F.embedding_bag`` sums
(indices = column indices, offsets = row pointers, per-sample weights = values),
and its kernel writes each output row once, where torch's CSR product (MKL)
zero-fills its output and accumulates into it: on Cora 2-2.6x faster (README,
'Precision and speed').  On CUDA torch's own product (cuSPARSE) is used.

Two autograd functions:

* :func:`propagate`, ``Â X`` for a *symmetric* ``Â``: the gradient ``Âᵀ G`` is ``Â G``,
  so the backward pass reuses ``Â`` (torch's would transpose it at every call).
  It computes in its input's dtype, also under autocast: under ``bf16-mixed`` on
  CPU it sums bfloat16 rows in float32 inside ``embedding_bag``'s kernel (``Â``'s
  weights rounded to bfloat16) and rounds once: half the memory traffic of a
  float32 gather, and no casts around it;
* :func:`sparse_linear`, ``X diag(m) Wᵀ`` for sparse features ``X`` and a feature-column
  mask ``m``: the weight's gradient ``diag(m) Gᵀ X`` is computed from ``X``'s column-major
  (CSC) copy, made once per feature matrix (:func:`columns_of`) instead of at every
  backward pass.  It computes in float32 under autocast (sparse features are
  float32, and torch has no bfloat16 CSR kernel on CPU).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.weak import WeakIdKeyDictionary

from .precision import float32_function, input_dtype_function

# Sparse feature matrix -> its CSC copy, dropped with the matrix (a full-batch run makes one, ever).
_COLUMN_MAJOR: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _sum_rows(pointers: Tensor, indices: Tensor, values: Tensor, dense: Tensor) -> Tensor:
    """Row ``i`` of the result is ``Σ_k values[k] dense[indices[k]]`` over ``k`` in ``pointers[i]:pointers[i+1]``."""
    # Detached: a table that requires grad sends embedding_bag to its training kernel, which also builds the
    # index bookkeeping for its own backward (~1.5x slower); the autograd functions below have their own.
    return F.embedding_bag(indices, dense.detach(), pointers, mode="sum", per_sample_weights=values.to(dense.dtype),
                           include_last_offset=True)


def sparse_dense(matrix: Tensor, dense: Tensor) -> Tensor:
    """``matrix @ dense`` for a sparse CSR ``matrix`` (no autograd through ``matrix``).

    Returns:
        A dense ``[matrix rows, dense columns]`` tensor in ``dense``'s dtype (sums in at least float32).

    Example:
        >>> matrix = torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]]).to_sparse_csr()
        >>> sparse_dense(matrix, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor([[6., 8.],
                [1., 2.],
                [0., 0.]])
    """
    if dense.device.type != "cpu":
        # cuSPARSE wants one dtype: a bfloat16 ``dense`` is summed in the matrix's float32 and rounded once.
        dtype = torch.promote_types(matrix.dtype, dense.dtype)
        return (matrix.to(dtype) @ dense.to(dtype)).to(dense.dtype)
    return _sum_rows(matrix.crow_indices(), matrix.col_indices(), matrix.values(), dense)


def columns_of(matrix: Tensor) -> Tensor:
    """``matrix``'s CSC copy, made on the first call for this tensor and kept while it lives.

    Sparse feature matrices are never modified in place, so the copy stays valid.

    Returns:
        The same matrix in sparse CSC layout.

    Example:
        >>> x = torch.eye(3).to_sparse_csr()
        >>> columns_of(x) is columns_of(x), columns_of(x).layout
        (True, torch.sparse_csc)
    """
    columns = _COLUMN_MAJOR.get(matrix)
    if columns is None:
        columns = matrix.to_sparse_csc()
        _COLUMN_MAJOR[matrix] = columns
    return columns


def sparse_transposed_dense(matrix: Tensor, dense: Tensor) -> Tensor:
    """``matrix.t() @ dense`` for a sparse CSR ``matrix``, from its cached CSC copy (:func:`columns_of`).

    Returns:
        A dense ``[matrix columns, dense columns]`` tensor.

    Example:
        >>> matrix = torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]]).to_sparse_csr()
        >>> sparse_transposed_dense(matrix, torch.ones(3, 1))
        tensor([[1.],
                [2.]])
    """
    if dense.device.type != "cpu":
        return matrix.t() @ dense
    columns = columns_of(matrix)  # CSC of X is CSR of Xᵀ: column pointers, row indices
    return _sum_rows(columns.ccol_indices(), columns.row_indices(), columns.values(), dense)


@input_dtype_function
class _Propagation(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return sparse_dense(adj, x)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, sparse_dense(ctx.adj, grad)


def propagate(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a *symmetric* sparse CSR ``adj`` (GCN's ``Â``), differentiable in ``x``.

    Returns:
        ``Â X`` in ``x``'s dtype (also under autocast).

    Example:
        >>> adj = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).to_sparse_csr()
        >>> propagate(adj, torch.tensor([[2.0], [4.0]]))
        tensor([[3.],
                [3.]])
    """
    return _Propagation.apply(adj, x)


def _transposed(matrix: Tensor, scale: Tensor | None) -> Tensor:
    """``matrix.t() * scale`` (``scale`` broadcast against the transpose), contiguous.

    A contiguous copy of the transpose (torch's blocked transpose kernel), then an in-place product:
    on Cora's 1433 x 192 weight half the time of one product reading the transpose with strides.
    """
    out = matrix.t().contiguous()
    return out if scale is None else out.mul_(scale)


@float32_function
class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, column_mask: Tensor | None) -> Tensor:
        ctx.x, ctx.column_mask = x, column_mask
        # embedding_bag gathers rows of its table: the table is (W diag(m))ᵀ, one row per input feature.
        return sparse_dense(x, _transposed(weight, None if column_mask is None else column_mask.unsqueeze(1)))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        # d/dW of X diag(m) Wᵀ is (Xᵀ G)ᵀ diag(m), returned contiguous so that it is accumulated without a copy.
        return None, _transposed(sparse_transposed_dense(ctx.x, grad), ctx.column_mask), None


def sparse_linear(x: Tensor, weight: Tensor, column_mask: Tensor | None = None) -> Tensor:
    """``x @ (weight * column_mask).t()`` (``F.linear`` without bias, input columns masked) for sparse CSR
    features ``x``, differentiable in ``weight``.

    Masking the weight's input columns equals masking the features' columns,
    ``X diag(m) Wᵀ = X (W diag(m))ᵀ``, without touching ``x``.

    Returns:
        A dense ``[nodes, weight rows]`` tensor in float32 (also under autocast).

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr()
        >>> sparse_linear(x, torch.tensor([[1.0, 10.0]]))
        tensor([[10.],
                [ 2.]])
        >>> sparse_linear(x, torch.tensor([[1.0, 10.0]]), column_mask=torch.tensor([1.0, 0.0]))
        tensor([[0.],
                [2.]])
    """
    return _SparseLinear.apply(x, weight, column_mask)
