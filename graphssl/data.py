"""Graphs with a node-classification split, loaded through torch_geometric.

``load_graph(name, root)`` is the one entry point: Planetoid graphs (cora,
citeseer, pubmed) with their public split; ogbn-arxiv through ogb's own
``PygNodePropPredDataset`` (made undirected, the official time split, accuracy
from ogb's ``Evaluator``); and ``synthetic-arxiv``, a random graph of arxiv's
size for speed measurements.  Nothing is ever downloaded when
``GRAPHSSL_OFFLINE=1``; otherwise a missing dataset is fetched by the library
that owns it, and a failed fetch becomes one error saying which files to put
where.  Every file of a dataset folder is read as data, never run as code; a
processed file that does not read so, or whose graph is broken (edges to nodes
that do not exist, labels or masks of the wrong size, non-finite features), is
rebuilt from ``raw/``; a corrupt raw file is named, and a broken graph built
from ``raw/`` is never kept; one process at a time reads or processes a dataset
folder, and what the libraries print meanwhile is swallowed, so an error is one
line.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import functools
import io
import operator
import os
import pickle
import socket
import tempfile
import types
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
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


SPLIT_PARTS = ("train", "valid", "test")


def _node_ids_problem(what: str, ids: Any, num_nodes: int) -> str | None:
    """Why ``ids`` (int64 node ids) cannot index ``num_nodes`` nodes; ``None`` when they can."""
    if not isinstance(ids, Tensor) or ids.layout != torch.strided:
        return f"{what} is missing or not a dense tensor"
    if ids.dtype != torch.int64:
        return f"{what} holds {str(ids.dtype).removeprefix('torch.')} entries, not int64 node ids"
    if ids.numel() and not (ids.min() >= 0 and ids.max() < num_nodes):
        bad = ids[(ids < 0) | (ids >= num_nodes)][0].item()
        return f"{what} holds node {bad}, outside the graph's {num_nodes} nodes"
    return None


def graph_problem(data: Any, split: dict[str, Any]) -> str | None:
    """What makes a loaded graph unusable for training, in a few words: a tampered or corrupt file that still reads
    as data fails here rather than deep inside training (an index error in GCN's normalization, a failed SVD).

    ``data``: torch_geometric ``Data`` with ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` and ``y`` ``[N]`` (or
    ``[N, 1]``, as ogb stores it).  ``split``: ``"train"``, ``"valid"``, ``"test"`` each as a boolean node mask
    ``[N]`` or int64 node indices.

    Returns:
        The first problem found, or ``None`` when the graph is sound.

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 9]]), y=torch.tensor([0, 1, 0]))
        >>> mask = torch.tensor([True, False, True])
        >>> graph_problem(data, {"train": mask, "valid": mask, "test": mask})
        "edge_index holds node 9, outside the graph's 3 nodes"
    """
    x = getattr(data, "x", None)
    if not isinstance(x, Tensor) or x.layout != torch.strided or x.dim() != 2 or not x.numel():
        return "x is missing or not a dense [nodes, features] tensor"
    if x.is_complex() or not torch.isfinite(x).all():
        return "x holds NaN or infinite features"
    num_nodes = x.size(0)
    stored = getattr(data, "num_nodes", None)  # ogb stores a count, which _load_ogb relies on; else it is x's rows
    try:
        claimed = operator.index(stored) if stored is not None else num_nodes
    except TypeError:
        claimed = None
    if claimed != num_nodes:
        return f"it claims {stored} nodes but x has {num_nodes} rows"
    edge_index = getattr(data, "edge_index", None)
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        return "edge_index is missing or not a [2, edges] tensor"
    problem = _node_ids_problem("edge_index", edge_index, num_nodes)
    if problem:
        return problem
    y = getattr(data, "y", None)
    if not isinstance(y, Tensor) or y.layout != torch.strided:
        return "y is missing or not a dense tensor"
    if y.shape not in ((num_nodes,), (num_nodes, 1)):
        return f"y has shape {list(y.shape)}, not one label for each of the {num_nodes} nodes"
    if y.dtype != torch.int64:
        return f"y holds {str(y.dtype).removeprefix('torch.')} labels, not int64 classes"
    if y.min() < 0 or y.max() >= num_nodes:  # more classes than nodes: a label that is no class
        return f"y holds label {(y.min() if y.min() < 0 else y.max()).item()}, not a class of {num_nodes} nodes"
    for part in SPLIT_PARTS:
        nodes = split.get(part)
        if isinstance(nodes, Tensor) and nodes.dtype == torch.bool:
            if nodes.dim() != 1 or nodes.numel() != num_nodes:
                return f"the {part} mask has {nodes.numel()} entries for {num_nodes} nodes"
            if not nodes.any():
                return f"the {part} split is empty"
            continue
        problem = _node_ids_problem(f"the {part} split", nodes, num_nodes)
        if problem:
            return problem
        if nodes.dim() != 1 or not nodes.numel():
            return f"the {part} split is empty or not a list of nodes"
    return None


def _planetoid_problem(data: Any) -> str | None:
    return graph_problem(data, {part: getattr(data, key, None) for part, key in
                                zip(SPLIT_PARTS, ("train_mask", "val_mask", "test_mask"))})


@contextmanager
def _quiet() -> Iterator[None]:
    """Swallow what libraries print while they read or process a dataset: torch_geometric's "Processing..." and
    "Done!" on stderr, ogb's progress bars.  Else an error in processing comes out as several lines, not one."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        yield


# Errors that only writing raises, whichever file they name (or none, as a failed write() names none).
WRITE_ONLY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def _write_problem(error: BaseException, processed: Path, processed_files: Sequence[str]) -> tuple[str, Path] | None:
    """Whether ``error``, raised while a library built ``processed/`` from raw/, came from writing ``processed/``
    rather than from the raw files: the advice differs (make the folder writable, not replace the raw files).

    Returns:
        ``(reason, path)``: what the system said and the path it failed on; ``None`` when writing is not the problem.
    """
    if isinstance(error, OSError):
        named = Path(error.filename) if isinstance(error.filename, (str, os.PathLike)) else None
        if (named is not None and (named == processed or processed in named.parents)) or \
                (named is None and error.errno in WRITE_ONLY_ERRNOS):
            return first_line(error) if error.strerror is None else error.strerror, named or processed
    # Libraries fail to write in their own ways (torch.save's zip writer raises RuntimeError): try writing here.
    try:
        processed.mkdir(parents=True, exist_ok=True)
        for file in processed_files:
            if (processed / file).exists() and not (processed / file).is_file():
                return os.strerror(errno.EISDIR), processed / file
        with tempfile.TemporaryFile(dir=processed):
            pass
    except OSError as err:
        return first_line(err) if err.strerror is None else err.strerror, Path(err.filename or processed)
    return None


def _unwritable(name: str, processed: Path, reason: str, path: Path) -> GraphSSLError:
    """The error for ``processed/`` (or ``path`` in it) that cannot be written, with the fix that works."""
    if path.exists() and path.is_dir() != (path == processed):  # a folder where a file goes, or the other way round
        fix = f"delete {path} and it is rebuilt from raw/"
    else:
        fix = "make the data root writable or copy it elsewhere and pass --data-root"
    return GraphSSLError(f"dataset '{name}': cannot write {path} ({reason}); {fix}")


def _discard(processed: Path, processed_files: Sequence[str]) -> None:
    """Delete what a library wrote under ``processed/`` from bad raw files, so no later run loads it."""
    for file in processed_files:
        try:
            (processed / file).unlink(missing_ok=True)
        except OSError:
            pass  # unwritable: the next run checks the file again and fails the same clear way


def _load_with_library(name: str, folder: Path, raw_files: Sequence[str], processed_files: Sequence[str],
                       how: Callable[[list[str]], str], construct: Callable[[], Any],
                       check: Callable[[Any], str | None]) -> Any:
    """Run a library's dataset constructor on ``folder`` with its files read as data only, one process at a time.

    A processed file that cannot be read as data, or whose graph fails ``check``, is rebuilt from ``raw/``; a graph
    built from ``raw/`` that fails ``check`` leaves no processed file behind.  The errors name the file to replace,
    or the folder that cannot be written.  What the libraries print meanwhile is swallowed: an error is one line.
    ``processed_files``: what the library writes under ``processed/``, the file it reads back first.
    ``how(missing raw files)``: where to put the files.
    ``check(what construct returned)``: what makes the graph unusable (see :func:`graph_problem`), or ``None``.
    """
    raw, processed = folder / "raw", folder / "processed"

    def present(where: Path, names: Sequence[str]) -> list[bool]:
        try:
            return [(where / f).is_file() for f in names]
        except OSError as err:  # a name too long, a folder that cannot be entered: no file there can be read
            raise GraphSSLError(f"dataset '{name}': cannot look into {folder} ({err.strerror or first_line(err)}); "
                                f"pass --data-root (or set GRAPHSSL_DATA to) a folder that can be read") from None

    def lacking() -> list[str]:
        return [f for f, there in zip(raw_files, present(raw, raw_files)) if not there]

    def problem_with(result: Any) -> str | None:
        try:
            return check(result)
        except Exception as err:  # a tampered object may break the check itself: it is unusable all the same
            return first_line(err)

    def attempt() -> tuple[Any, str | None]:
        with _quiet():
            result = construct()
        return result, problem_with(result)

    missing = lacking()
    cached = present(processed, processed_files[:1])[0]
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
                result, problem = attempt()
                if problem is None:
                    return result
                reason, unreadable = problem, False
            except Exception as err:  # a tampered file fails in any way the library's reader does
                reason, unreadable = load_refusal(err), True
            missing = lacking()  # the library may have downloaded some meanwhile
            if missing:  # a failed download, or processed/ unreadable: either way raw/ is what is needed
                raise GraphSSLError(f"dataset '{name}' could not be loaded ({reason}), and raw/ lacks "
                                    f"{', '.join(missing)} to rebuild it: {how(missing)}")
            fault = "cannot be read as data" if unreadable else "holds a broken graph"
            warn(f"{processed} {fault} ({reason}); rebuilding it from {raw}/")
            try:
                for file in processed_files:
                    (processed / file).unlink(missing_ok=True)
            except OSError as err:
                raise GraphSSLError(f"dataset '{name}': {processed} {fault} ({reason}), and it cannot "
                                    f"be rebuilt ({err.strerror}); make it writable or delete it") from None
        try:
            result, problem = attempt()
        except GraphSSLError:
            raise
        except Exception as err:
            if missing:
                raise GraphSSLError(f"dataset '{name}' is missing and could not be downloaded "
                                    f"({first_line(err)}): {how(missing)}") from None
            unwritable = _write_problem(err, processed, processed_files)
            if unwritable:
                raise _unwritable(name, processed, *unwritable) from None
            raise GraphSSLError(f"dataset '{name}' could not be built from {raw}/ ({load_refusal(err)}); replace "
                                f"its files with the originals (README, 'Offline data')") from None
        if problem is not None:
            _discard(processed, processed_files)
            raise GraphSSLError(f"dataset '{name}': the graph built from {raw}/ is broken ({problem}); replace its "
                                f"files with the originals (README, 'Offline data')")
        return result


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
                              how, lambda: Planetoid(str(root / "Planetoid"), title)[0], _planetoid_problem)
    split = {part: mask.nonzero().view(-1) for part, mask in
             (("train", data.train_mask), ("valid", data.val_mask), ("test", data.test_mask))}
    y = data.y.view(-1)  # [N] as Planetoid writes it; graph_problem lets [N, 1] through, as ogb writes it
    return Graph(name, as_model_input(data.x), undirected(data.edge_index, data.num_nodes), y, split, int(y.max()) + 1)


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

    data, split = _load_with_library(name, folder, OGB_RAW, OGB_PROCESSED, how, construct,
                                     lambda loaded: graph_problem(*loaded))
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
