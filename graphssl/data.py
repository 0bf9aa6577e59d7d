"""Graphs with a node-classification split, loaded through torch_geometric.

``load_graph(name, root)`` is the one entry point: Planetoid graphs (cora,
citeseer, pubmed) with their public split; ogbn-arxiv through ogb's own
``PygNodePropPredDataset`` (made undirected, the official time split, accuracy
from ogb's ``Evaluator``); and ``synthetic-arxiv``, a random graph of arxiv's
size for speed measurements.  Nothing is ever downloaded when
``GRAPHSSL_OFFLINE=1``; otherwise a missing dataset is fetched by the library
that owns it, and a failed fetch becomes one error saying which files to put
where.  Every file of a dataset folder is read as data, never run as code; a
processed file that does not read so is rebuilt from ``raw/``, a corrupt raw
file is named; one process at a time reads or processes a dataset folder.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import os
import pickle
import socket
import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

import torch
from torch import Tensor
from torch_geometric.utils import remove_self_loops, to_undirected

from .config import dataset_name
from .errors import GraphSSLError, first_line, load_refusal, warn
from .locks import exclusive_lock

# Sparse CSR features make the first GCN layer cost O(nnz) instead of O(nodes x features).
SPARSE_FEATURE_DENSITY = 0.1
DOWNLOAD_TIMEOUT_S = 30

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
PLANETOID_PROCESSED = ("data.pt", "pre_transform.pt", "pre_filter.pt")


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
        accuracy: ``accuracy(y_true, y_pred)`` when the dataset has an official
            evaluator (OGB's); ``None`` means plain accuracy.

    Example:
        >>> graph = load_graph("cora", "data")  # doctest: +SKIP
        >>> graph.num_nodes, graph.num_features, graph.num_classes, len(graph.split["train"])  # doctest: +SKIP
        (2708, 1433, 7, 140)
    """

    name: str
    x: Tensor
    edge_index: Tensor
    y: Tensor
    split: dict[str, Tensor]
    num_classes: int
    accuracy: Callable[[Tensor, Tensor], float] | None = None

    @property
    def num_nodes(self) -> int:
        return self.y.numel()

    @property
    def num_features(self) -> int:
        return self.x.size(1)


OGB = ("ogbn-arxiv",)
OGB_RAW = ("edge.csv.gz", "node-feat.csv.gz", "node-label.csv.gz", "node_year.csv.gz", "num-node-list.csv.gz",
           "num-edge-list.csv.gz")
OGB_PROCESSED = ("geometric_data_processed.pt", "pre_transform.pt", "pre_filter.pt")
ARXIV_NODES, ARXIV_EDGES, ARXIV_SPLIT = 169_343, 1_166_243, (90_941, 29_799, 48_603)


def default_data_root() -> Path:
    """Where datasets live when no root is given.

    Returns:
        ``$GRAPHSSL_DATA`` if set, else ``./data``.

    Example:
        >>> default_data_root()  # doctest: +SKIP
        PosixPath('data')
    """
    return Path(os.environ.get("GRAPHSSL_DATA", "data"))


def offline() -> bool:
    """Whether downloads are off (``GRAPHSSL_OFFLINE`` set and not ``0``).

    Returns:
        ``True`` when nothing may be downloaded.

    Example:
        >>> offline()  # doctest: +SKIP
        False
    """
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
    """Features as the encoder wants them.

    Returns:
        Sparse CSR float32 when fewer than 10% of the entries are non-zero, else dense float32.

    Example:
        >>> as_model_input(torch.eye(20)).layout
        torch.sparse_csr
    """
    x = x.float()
    if x.is_sparse or x.layout == torch.sparse_csr:
        return x.to_sparse_csr()
    density = torch.count_nonzero(x).item() / max(x.numel(), 1)
    return x.to_sparse_csr() if density < SPARSE_FEATURE_DENSITY else x.contiguous()


def select_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of dense or sparse CSR features (CSR has no row gather of its own).

    Returns:
        The rows, in the layout of ``x``.

    Example:
        >>> select_rows(torch.eye(20).to_sparse_csr(), torch.tensor([3, 5])).to_dense()[:, :6]
        tensor([[0., 0., 0., 1., 0., 0.],
                [0., 0., 0., 0., 0., 1.]])
    """
    if x.layout == torch.sparse_csr:
        return x.to_sparse_coo().index_select(0, index).to_sparse_csr()
    return x[index]


def undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The form every graph here takes: both directions of every edge, each once, no self-loops.

    Returns:
        A new ``edge_index``, sorted.

    Example:
        >>> undirected(torch.tensor([[0, 1, 2], [1, 1, 0]]), num_nodes=3)
        tensor([[0, 0, 1, 2],
                [1, 2, 0, 0]])
    """
    return to_undirected(remove_self_loops(edge_index)[0], num_nodes=num_nodes)


def normalize_features(graph: Graph) -> Graph:
    """Each node's features shifted to start at 0 and divided by their sum: torch_geometric's
    ``NormalizeFeatures``, which the official BGRL code applies to every dataset.

    Returns:
        A copy of ``graph`` with the new features.

    Example:
        >>> normalize_features(graph).x.to_dense().sum(dim=1)  # doctest: +SKIP
        tensor([1., 1., 1.,  ..., 1., 1., 1.])
    """
    from torch_geometric.data import Data
    from torch_geometric.transforms import NormalizeFeatures

    dense = graph.x.to_dense() if graph.x.layout == torch.sparse_csr else graph.x
    return dataclasses.replace(graph, x=as_model_input(NormalizeFeatures()(Data(x=dense)).x))


def graph_for_config(graph: Graph, config: dict[str, Any]) -> Graph:
    """``graph`` as a run with ``config`` sees it (``data.normalize_features``).

    Returns:
        ``graph`` itself, or its copy with normalized features.

    Example:
        >>> graph_for_config(graph, load_config(None)) is graph  # doctest: +SKIP
        True
    """
    return normalize_features(graph) if config["data"]["normalize_features"] else graph


# Taken while a dataset folder is read or processed: two processes on a fresh data root (graphssl tune --jobs 2)
# would otherwise process it at once, and one would read the other's half-written processed file.
DATASET_LOCK = ".graphssl.lock"

# What Planetoid's raw pickles are made of: scipy sparse features, numpy labels, an adjacency dict of lists.
# Python 2 wrote them, hence __builtin__; numpy and scipy have since moved the names, hence both spellings.
PLANETOID_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("scipy.sparse.csr", "csr_matrix"),
    ("scipy.sparse._csr", "csr_matrix"), ("collections", "defaultdict"), ("__builtin__", "list"),
    ("builtins", "list")})


class _DataOnlyUnpickler(pickle.Unpickler):
    """Builds arrays, sparse matrices, lists and dicts; a pickle naming any other callable is refused unrun."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in PLANETOID_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a Planetoid file never does")
        return super().find_class(module, name)


def _load_pickled_data(file: Any, **options: Any) -> Any:
    return _DataOnlyUnpickler(file, **options).load()


def _naming_the_file(read_file: Callable[[str, str, str], Any]) -> Callable[[str, str, str], Any]:
    """torch_geometric's reader of one Planetoid raw file, with its failure naming that file."""
    def read(folder: str, prefix: str, name: str) -> Any:
        path = Path(folder) / f"ind.{prefix.lower()}.{name}"
        try:
            content = read_file(folder, prefix, name)
            if not len(content):  # an empty test.index reads as no test nodes at all
                raise ValueError("it holds no entries")
            return content
        except Exception as err:  # truncated, empty, garbage or foreign: each fails its own way
            raise GraphSSLError(f"{path} is corrupt or not a Planetoid file ({first_line(err)}); replace it with "
                                f"the original (README, 'Offline data')") from None
    return read


@contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` is ``value`` inside the block and what it was outside it."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` in the block reads data only, whatever its caller asks: torch's own switch."""
    names = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # torch refuses to load with both set
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _files_as_data() -> Iterator[None]:
    """While a library reads a dataset folder, every file there is read as data, never run as code.

    torch_geometric falls back to a full unpickle when a processed file does not load with ``weights_only``,
    reads ``pre_transform.pt`` and ``pre_filter.pt`` without it, and reads Planetoid's raw files with
    ``pickle.load``; ogb reads its processed file with a bare ``torch.load``.  So here every ``torch.load``
    is data-only (allow-listing the PyG data classes ogb's file holds), and the raw pickles go through
    :class:`_DataOnlyUnpickler`, with a failure naming the file.
    """
    import torch_geometric.io.planetoid as planetoid_io
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    with _weights_only_loads(), torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage]), \
            _replaced(planetoid_io, "pickle", types.SimpleNamespace(load=_load_pickled_data)), \
            _replaced(planetoid_io, "read_file", _naming_the_file(planetoid_io.read_file)):
        yield


def _load_with_library(name: str, folder: Path, raw_files: Sequence[str], processed_files: Sequence[str],
                       how: Callable[[list[str]], str], construct: Callable[[], Any]) -> Any:
    """Run a library's dataset constructor on ``folder`` with its files read as data only, one process at a time.

    A processed file that cannot be read as data is rebuilt from ``raw/``; the errors name the file to replace.
    ``processed_files``: what the library writes under ``processed/``, the file it reads back first.
    ``how(missing raw files)``: where to put the files.
    """
    raw, processed = folder / "raw", folder / "processed"

    def lacking() -> list[str]:
        return [f for f in raw_files if not (raw / f).is_file()]

    missing = lacking()
    cached = (processed / processed_files[0]).is_file()
    if missing and offline():  # the libraries download missing raw files even when processed/ is there
        raise GraphSSLError(f"dataset '{name}' {'incomplete' if cached else 'not found'} and GRAPHSSL_OFFLINE is "
                            f"set: {how(missing)}")
    try:
        folder.mkdir(parents=True, exist_ok=True)  # to hold the lock
    except OSError:
        pass  # a read-only data root: nothing can be processed there, so nothing needs the lock
    with exclusive_lock(folder / DATASET_LOCK, wait=True), _bounded_download(), _no_prompts(), _files_as_data(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cached:
            try:
                return construct()
            except Exception as err:  # a tampered file fails in any way the library's reader does
                reason = load_refusal(err)
            missing = lacking()  # the library may have downloaded some meanwhile
            if missing:  # a failed download, or processed/ unreadable: either way raw/ is what is needed
                raise GraphSSLError(f"dataset '{name}' could not be loaded ({reason}), and raw/ lacks "
                                    f"{', '.join(missing)} to rebuild it: {how(missing)}")
            warn(f"{processed} cannot be read as data ({reason}); rebuilding it from {raw}/")
            try:
                for file in processed_files:
                    (processed / file).unlink(missing_ok=True)
            except OSError as err:
                raise GraphSSLError(f"dataset '{name}': {processed} cannot be read as data ({reason}), and it cannot "
                                    f"be rebuilt ({err.strerror}); make it writable or delete it") from None
        try:
            return construct()
        except GraphSSLError:
            raise
        except Exception as err:
            if missing:
                raise GraphSSLError(f"dataset '{name}' is missing and could not be downloaded "
                                    f"({first_line(err)}): {how(missing)}") from None
            raise GraphSSLError(f"dataset '{name}' could not be built from {raw}/ ({load_refusal(err)}); replace "
                                f"its files with the originals (README, 'Offline data')") from None


def _no_prompts() -> ContextManager[None]:
    """Answer "no" to library questions on stdin (ogb asks whether to delete a dataset folder that lacks its
    release marker), so a run without a terminal never hangs or dies on EOF; the files are kept."""
    return _replaced(builtins, "input", lambda prompt="": "n")


def _load_planetoid(name: str, root: Path) -> Graph:
    from torch_geometric.datasets import Planetoid

    title = PLANETOID[name]
    folder = root / "Planetoid" / title

    def how(missing: list[str]) -> str:
        return (f"put the Planetoid files {', '.join(missing)} in {folder / 'raw'}/ (see README, 'Offline data'), "
                f"or set --data-root/GRAPHSSL_DATA to a folder that has Planetoid/{title}/raw")

    data = _load_with_library(name, folder, [f"ind.{name}.{part}" for part in PLANETOID_RAW], PLANETOID_PROCESSED,
                              how, lambda: Planetoid(str(root / "Planetoid"), title)[0])
    split = {part: mask.nonzero().view(-1) for part, mask in
             (("train", data.train_mask), ("valid", data.val_mask), ("test", data.test_mask))}
    return Graph(name, as_model_input(data.x), undirected(data.edge_index, data.num_nodes), data.y, split,
                 int(data.y.max()) + 1)


def ogb_accuracy(name: str) -> Callable[[Tensor, Tensor], float]:
    """Accuracy as OGB's own ``Evaluator(name)`` computes it.

    Returns:
        ``accuracy(y_true, y_pred) -> float``.

    Example:
        >>> ogb_accuracy("ogbn-arxiv")(torch.tensor([1, 2]), torch.tensor([1, 0]))
        0.5
    """
    from ogb.nodeproppred import Evaluator

    evaluator = Evaluator(name)
    return lambda y_true, y_pred: float(evaluator.eval({"y_true": y_true.view(-1, 1),
                                                        "y_pred": y_pred.view(-1, 1)})["acc"])


def _load_ogb(name: str, root: Path) -> Graph:
    from ogb.nodeproppred import PygNodePropPredDataset

    folder = root / name.replace("-", "_")

    def how(missing: list[str]) -> str:
        return (f"put ogb's {name} files in {folder}/ (raw/{', raw/'.join(OGB_RAW)}, split/time/*.csv.gz and "
                f"RELEASE_v1.txt, as unzipped from {name.split('-')[1]}.zip of the OGB release), or run once with a "
                f"network and ogb downloads them there itself")

    def construct() -> Any:
        dataset = PygNodePropPredDataset(name, root=str(root))
        return dataset[0], dataset.get_idx_split()

    data, split = _load_with_library(name, folder, OGB_RAW, OGB_PROCESSED, how, construct)
    num_nodes = data.num_nodes
    y = data.y.view(-1)
    return Graph(name, as_model_input(data.x), undirected(data.edge_index, num_nodes), y,
                 {part: split[part] for part in ("train", "valid", "test")}, int(y.max()) + 1,
                 accuracy=ogb_accuracy(name))


def synthetic_arxiv(seed: int = 0) -> Graph:
    """A random graph of ogbn-arxiv's exact size, for measuring speed and memory without the data.

    169,343 nodes; 1,166,243 uniformly random edges, made undirected; 128 Gaussian features; 40 random
    classes; a random split with arxiv's sizes (90,941 / 29,799 / 48,603).  Fixed ``seed``.

    Returns:
        The graph.

    Example:
        >>> synthetic_arxiv().num_nodes  # doctest: +SKIP
        169343
    """
    generator = torch.Generator().manual_seed(seed)
    n = ARXIV_NODES
    edge_index = torch.randint(n, (2, ARXIV_EDGES), generator=generator)
    x = torch.randn(n, 128, generator=generator)
    y = torch.randint(40, (n,), generator=generator)
    perm = torch.randperm(n, generator=generator)
    train, valid = ARXIV_SPLIT[0], ARXIV_SPLIT[0] + ARXIV_SPLIT[1]
    split = {"train": perm[:train], "valid": perm[train:valid], "test": perm[valid:]}
    return Graph("synthetic-arxiv", x, undirected(edge_index, n), y, split, 40)


@functools.lru_cache(maxsize=4)
def cached_graph(name: str, root: str | None = None) -> Graph:
    """:func:`load_graph`, loaded once per process (for many trainings on one graph; treat it as read-only).

    Returns:
        The same :class:`Graph` object for the same arguments.

    Example:
        >>> cached_graph("cora", "data") is cached_graph("cora", "data")  # doctest: +SKIP
        True
    """
    return load_graph(name, root)


def load_graph(name: str, root: str | Path | None = None) -> Graph:
    """Load dataset ``name`` (any case; :func:`graphssl.config.dataset_name`) from ``root``
    (default: :func:`default_data_root`); a missing dataset is downloaded by its library unless offline.

    Returns:
        The graph with its official split.

    Example:
        >>> cora = load_graph("Cora", "data")  # doctest: +SKIP
        >>> cora.name, cora.num_nodes  # doctest: +SKIP
        ('cora', 2708)
    """
    key = dataset_name(name)
    root = Path(root) if root is not None else default_data_root()
    if key in PLANETOID:
        return _load_planetoid(key, root)
    if key in OGB:
        return _load_ogb(key, root)
    return synthetic_arxiv()
