r"""Encoders and heads: the GCN encoder of BGRL and its MLP predictor.

The encoder is a stack of torch_geometric ``GCNConv`` layers, each followed by
normalization and an activation, as in the official BGRL code:

.. math::
    H^{(l+1)} = \sigma\big(\mathrm{norm}(\hat{A} H^{(l)} W_l + b_l)\big),
    \qquad \hat{A} = D^{-1/2}(A + I)D^{-1/2}.

``\hat{A}`` is built once per view by :func:`gcn_adjacency` and shared by all
layers: a sparse CSR matrix, so each layer's propagation is one sparse-dense
product rather than a gather/scatter over edges.  graphssl's graphs and views
are undirected, so ``\hat{A}`` is symmetric and the backward pass of the
propagation reuses it instead of transposing it (:func:`graphssl.sparse.propagate`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import to_torch_csr_tensor

from .precision import input_dtype_function
from .sparse import propagate, sparse_linear


def gcn_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""The normalized adjacency :math:`\hat{A} = D^{-1/2}(A + I)D^{-1/2}` of an undirected ``edge_index``
    (both directions present), built once per view and shared by every layer.

    Returns:
        A sparse CSR ``[num_nodes, num_nodes]`` tensor.

    Example:
        >>> adj = gcn_adjacency(torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
        >>> adj.to_dense()
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    edge_index, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
    return to_torch_csr_tensor(edge_index, weight, size=(num_nodes, num_nodes))


class GCNLayer(GCNConv):
    """torch_geometric's ``GCNConv`` (``normalize=False``, same parameters and initialization) fed a
    symmetric ``Â`` from :func:`gcn_adjacency`, computed without the message-passing machinery:
    ``Â (X Wᵀ) + b`` with graphssl's sparse products (:mod:`graphssl.sparse`).

    ``feature_mask`` zeroes input feature columns by masking the weight's columns
    (``X diag(m) Wᵀ = X (W diag(m))ᵀ``), never the features.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, normalize=False)

    def forward(self, x: Tensor, adj_t: Tensor, feature_mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if x.layout == torch.sparse_csr:
            h = sparse_linear(x, self.lin.weight, feature_mask)
        else:
            h = F.linear(x, self.lin.weight if feature_mask is None else self.lin.weight * feature_mask)
        out = propagate(adj_t, h)
        # In place: at ogbn-arxiv's size a new output would cost as much in page faults as the addition itself.
        return out if self.bias is None else out.add_(self.bias.to(out.dtype))  # bfloat16 + float32: 3x slower


@input_dtype_function
class _PReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return torch.prelu(x, weight.to(x.dtype))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        grad_x = torch.ops.aten.leaky_relu_backward(grad, x, weight.item(), False)
        # torch's bfloat16 dot is 2x slower than casting both to float32 first (a no-op for float32 inputs).
        grad_weight = torch.dot(grad.reshape(-1).float(), x.clamp(max=0).reshape(-1).float()).view_as(weight)
        return grad_x, grad_weight


class PReLU(nn.PReLU):
    """``nn.PReLU`` (one shared slope) whose CPU backward is ~10x faster.

    ATen's PReLU backward kernel takes ~5 ms for a 2708 x 512 input on our CPUs,
    more than the layer's matrix product; the same gradients come from the
    vectorized leaky-ReLU backward and one dot product.  It computes in its
    input's dtype (bfloat16 activations under ``bf16-mixed`` stay bfloat16).
    CUDA, and per-channel slopes, use the stock kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.is_cuda or self.num_parameters != 1:
            return super().forward(x)
        return _PReLUFunction.apply(x, self.weight)


class WeightStandardization(nn.Module):
    r"""Parametrization :math:`\hat{W}_{o,:} = (W_{o,:} - \mu_o) / (\sigma_o + \epsilon)`, per output unit.

    Registered with :func:`torch.nn.utils.parametrize.register_parametrization`,
    so the optimizer updates the raw weight and every forward pass sees the
    standardized one.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, weight: Tensor) -> Tensor:
        mean = weight.mean(dim=1, keepdim=True)
        std = weight.std(dim=1, keepdim=True, unbiased=False)
        return (weight - mean) / (std + self.eps)


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalization layer named by ``encoder.norm``.

    Returns:
        ``BatchNorm1d``, ``LayerNorm`` or ``Identity`` over ``channels``.

    Example:
        >>> [type(make_norm(kind, 8)).__name__ for kind in ("batch", "layer", "none")]
        ['BatchNorm1d', 'LayerNorm', 'Identity']
    """
    return {"batch": lambda: nn.BatchNorm1d(channels),
            "layer": lambda: nn.LayerNorm(channels),
            "none": nn.Identity}[kind]()


def make_activation(kind: str) -> nn.Module:
    """The activation named by ``encoder.activation``.

    Returns:
        A fresh module (graphssl's faster :class:`PReLU` for ``"prelu"``).

    Example:
        >>> make_activation("relu")
        ReLU()
    """
    return {"prelu": PReLU, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}[kind]()


class GCNEncoder(nn.Module):
    r"""GCN encoder: ``len(layers)`` GCN layers, each followed by normalization and activation.

    Args:
        in_channels: number of input features.
        layers: output size of each layer; the last one is the embedding size.
        norm: ``"batch"``, ``"layer"`` (node-wise LayerNorm) or ``"none"``; the default is the config's.
        activation: ``"prelu"``, ``"relu"``, ``"elu"`` or ``"gelu"``.
        weight_standardization: standardize each layer's weight rows at every
            forward pass (the optimizer still updates the raw weights).
        last_activation: apply the activation after the last layer too (BGRL, GRACE);
            ``False``: between layers only (CCA-SSG), so the embeddings can be negative.

    Example:
        >>> encoder = GCNEncoder(16, [32, 8])
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> encoder(torch.randn(3, 16), gcn_adjacency(edge_index, 3)).shape
        torch.Size([3, 8])
    """

    def __init__(self, in_channels: int, layers: Sequence[int], norm: str = "none",
                 activation: str = "prelu", weight_standardization: bool = False, last_activation: bool = True) -> None:
        super().__init__()
        sizes = [in_channels, *layers]
        self.convs = nn.ModuleList(GCNLayer(i, o) for i, o in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(make_norm(norm, o) for o in layers)
        self.activations = nn.ModuleList(make_activation(activation) if last_activation or i < len(layers) - 1
                                         else nn.Identity() for i in range(len(layers)))
        if weight_standardization:
            for conv in self.convs:
                parametrize.register_parametrization(conv.lin, "weight", WeightStandardization())
        self.out_channels = sizes[-1]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv, norm, act in zip(self.convs, self.norms, self.activations):
            conv.reset_parameters()
            if parametrize.is_parametrized(conv.lin):
                glorot(conv.lin.parametrizations.weight.original)
            for module in (norm, act):
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    def forward(self, x: Tensor, adj_t: Tensor, feature_mask: Tensor | None = None) -> Tensor:
        """Embed nodes ``x`` (dense or sparse CSR) over ``adj_t`` (from :func:`gcn_adjacency`);
        ``feature_mask`` zeroes input feature columns."""
        for i, (conv, norm, act) in enumerate(zip(self.convs, self.norms, self.activations)):
            x = act(norm(conv(x, adj_t, feature_mask if i == 0 else None)))
        return x


class Predictor(nn.Sequential):
    """BGRL's predictor: Linear -> PReLU -> Linear, no normalization (online side only).

    Args:
        channels: embedding size (input and output).
        hidden: hidden layer size.

    Example:
        >>> Predictor(8, hidden=32)(torch.randn(5, 8)).shape
        torch.Size([5, 8])
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__(nn.Linear(channels, hidden), PReLU(), nn.Linear(hidden, channels))

    def reset_parameters(self) -> None:
        for module in self:
            module.reset_parameters()
