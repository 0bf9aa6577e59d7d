"""Graphs with a node-classification split, loaded through torch_geometric.

``load_graph(name, root)`` is the one entry point: Planetoid graphs (cora,
citeseer, pubmed) with their public split.  Nothing is ever downloaded when
``GRAPHSSL_OFFLINE=1``; otherwise a missing dataset is fetched by the library
that owns it, and a failed fetch becomes one error saying which files to put
where.
"""

from __future__ import annotations

import os
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor
from torch_geometric.utils import remove_self_loops, to_undirected

from .errors import GraphSSLError

# Sparse CSR features make the first GCN layer cost O(nnz) instead of O(nodes x features).
SPARSE_FEATURE_DENSITY = 0.1
DOWNLOAD_TIMEOUT_S = 30

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@dataclass
class Graph:
    """A graph ready for training and a linear probe.

    Attributes:
        name: dataset name as given on the command line.
        x: node features ``[N, F]``; a sparse CSR tensor when the features are sparse.
        edge_index: undirected edges ``[2, E]``, each stored in both directions,
            without self-loops (GCN adds its own); see :func:`undirected`.
        y: node labels ``[N]``.
        split: node indices under ``"train"``, ``"valid"`` and ``"test"``.
        num_classes: number of label classes.
    """

    name: str
    x: Tensor
    edge_index: Tensor
    y: Tensor
    split: dict[str, Tensor]
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return self.y.numel()

    @property
    def num_features(self) -> int:
        return self.x.size(1)


DATASETS = tuple(PLANETOID)


def default_data_root() -> Path:
    """``$GRAPHSSL_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("GRAPHSSL_DATA", "data"))


def offline() -> bool:
    return os.environ.get("GRAPHSSL_OFFLINE", "") not in ("", "0")


@contextmanager
def _bounded_download() -> Iterator[None]:
    # Library downloaders call urlopen without a timeout; a firewalled network would hang forever.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def as_model_input(x: Tensor) -> Tensor:
    """Features as the encoder wants them: sparse CSR when mostly zeros, else dense float."""
    x = x.float()
    if x.is_sparse or x.layout == torch.sparse_csr:
        return x.to_sparse_csr()
    density = torch.count_nonzero(x).item() / max(x.numel(), 1)
    return x.to_sparse_csr() if density < SPARSE_FEATURE_DENSITY else x.contiguous()


def undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Both directions of every edge, each once, no self-loops: the form every graph here takes."""
    return to_undirected(remove_self_loops(edge_index)[0], num_nodes=num_nodes)


def _load_planetoid(name: str, root: Path) -> Graph:
    from torch_geometric.datasets import Planetoid

    title = PLANETOID[name]
    folder = root / "Planetoid" / title
    raw = folder / "raw"
    missing = [f"ind.{name}.{part}" for part in PLANETOID_RAW if not (raw / f"ind.{name}.{part}").is_file()]
    have_processed = (folder / "processed" / "data.pt").is_file()
    how = (f"put the Planetoid files {', '.join(missing)} in {raw}/ (see README, 'Offline data'), "
           f"or set --data-root/GRAPHSSL_DATA to a folder that has Planetoid/{title}/raw")
    if missing and not have_processed and offline():
        raise GraphSSLError(f"dataset '{name}' not found and GRAPHSSL_OFFLINE is set: {how}")
    try:
        with _bounded_download(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = Planetoid(str(root / "Planetoid"), title)[0]
    except (OSError, ValueError, RuntimeError) as err:
        if missing:
            raise GraphSSLError(f"dataset '{name}' is missing and could not be downloaded ({err}): {how}") from None
        raise GraphSSLError(f"dataset '{name}' in {folder} could not be read ({err}); "
                            f"delete {folder / 'processed'} to rebuild it from raw/") from None
    split = {part: mask.nonzero().view(-1) for part, mask in
             (("train", data.train_mask), ("valid", data.val_mask), ("test", data.test_mask))}
    return Graph(name, as_model_input(data.x), undirected(data.edge_index, data.num_nodes), data.y, split,
                 int(data.y.max()) + 1)


def load_graph(name: str, root: str | Path | None = None) -> Graph:
    """Load dataset ``name`` from ``root`` (default: :func:`default_data_root`)."""
    key = name.lower()
    root = Path(root) if root is not None else default_data_root()
    if key in PLANETOID:
        return _load_planetoid(key, root)
    raise GraphSSLError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
