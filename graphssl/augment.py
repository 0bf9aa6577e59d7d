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
    symmetric (see :mod:`graphssl.encoders`).  Returns a new tensor.
    """
    if p == 0:
        return edge_index
    kept, _ = dropout_edge(edge_index, p=p, force_undirected=True, training=True)
    return kept


def feature_column_mask(num_features: int, p: float, device: torch.device | str = "cpu") -> Tensor | None:
    """A ``[num_features]`` 0/1 float mask zeroing each column with probability ``p``."""
    if p == 0:
        return None
    return (torch.rand(num_features, device=device) >= p).float()


@dataclass
class Augmentation:
    """Draws views with edge-drop probability ``drop_edge`` and column-mask probability ``mask_feature``."""

    drop_edge: float
    mask_feature: float

    def __call__(self, edge_index: Tensor, num_features: int) -> View:
        return View(drop_edges(edge_index, self.drop_edge),
                    feature_column_mask(num_features, self.mask_feature, edge_index.device))
