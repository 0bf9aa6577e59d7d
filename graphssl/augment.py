"""Graph augmentations of BGRL: edge dropping and feature-column masking.

A view never modifies the input graph.  Feature masking is returned as a
column mask ``m`` rather than a masked copy of ``X``: BGRL zeroes whole
feature columns (one mask shared by every node), so ``X diag(m) W = X (diag(m) W)``
and the encoder folds ``m`` into its first weight matrix instead of touching
the (possibly huge) feature matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.utils import dropout_edge


@dataclass
class View:
    """One augmented view: the kept edges and the feature-column mask (``None``: keep all)."""

    edge_index: Tensor
    feature_mask: Tensor | None


def drop_edges(edge_index: Tensor, p: float) -> Tensor:
    """Drop each undirected edge (both of its directions) with probability ``p``.

    BGRL drops the two directions independently; dropping them together keeps
    every view undirected like its graph, so GCN's normalized adjacency stays
    symmetric (see :mod:`graphssl.encoders`).

    Returns:
        A new ``edge_index`` (``edge_index`` itself when ``p == 0``).

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> drop_edges(edge_index, 0.0) is edge_index
        True
    """
    if p == 0:
        return edge_index
    kept, _ = dropout_edge(edge_index, p=p, force_undirected=True, training=True)
    return kept


def feature_column_mask(num_features: int, p: float, device: torch.device | str = "cpu") -> Tensor | None:
    """A mask zeroing each feature column with probability ``p`` (one mask for every node).

    Returns:
        A ``[num_features]`` 0/1 float tensor, or ``None`` when ``p == 0`` (keep every column).

    Example:
        >>> feature_column_mask(5, 0.0) is None, feature_column_mask(5, 0.5).shape
        (True, torch.Size([5]))
    """
    if p == 0:
        return None
    return (torch.rand(num_features, device=device) >= p).float()


@dataclass
class Augmentation:
    """Draws views with edge-drop probability ``drop_edge`` and column-mask probability ``mask_feature``.

    Example:
        >>> view = Augmentation(drop_edge=0.3, mask_feature=0.3)(torch.tensor([[0, 1], [1, 0]]), num_features=8)
        >>> view.feature_mask.shape
        torch.Size([8])
    """

    drop_edge: float
    mask_feature: float

    def __call__(self, edge_index: Tensor, num_features: int) -> View:
        return View(drop_edges(edge_index, self.drop_edge),
                    feature_column_mask(num_features, self.mask_feature, edge_index.device))
