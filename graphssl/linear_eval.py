"""Linear evaluation of a finished run, or of embeddings made by any other method.

``evaluate_run(run_dir)`` reloads a run's checkpoint (as data, never code),
recomputes the embeddings of the un-augmented graph and re-runs the probe and
the rank metrics; ``evaluate_embedding_file(path, dataset)`` does the same for
a ``.pt`` or ``.npy`` matrix with one row per node, so other models are judged
by exactly the same probe.  Both write their metrics as JSON
(:func:`metrics_file`), and neither ever replaces a run's own files or the
file it reads.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .config import dataset_name, load_config, size_settings
from .data import Graph, graph_for_config, load_graph
from .devices import memory_errors_explained, resolve_device
from .errors import DivergenceError, GraphSSLError, first_line
from .evaluate import embed, evaluate_embeddings
from .files import atomic_write, read_json, write_error, write_json
from .probe import unit_scaled
from .run_folder import load_tensor_file, load_trained_model
from .run_layout import CHECKPOINT, CONFIG, METRICS, SPECTRA
from .training_log import LOG

RUN_FILES = (CHECKPOINT, CONFIG, METRICS, SPECTRA, LOG)
INTEGER_TYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def metrics_file(source: str | Path, out: str | Path | None = None) -> Path:
    """Where eval writes its metrics: ``out`` when given, else ``eval.json`` in the run folder ``source``, else
    ``NAME.eval.json`` beside the embeddings file ``source``.

    Returns:
        The path.

    Example:
        >>> metrics_file("dgi_embeddings.npy")
        PosixPath('dgi_embeddings.eval.json')
    """
    if out is not None:
        return Path(out)
    source = Path(source)
    return source / "eval.json" if source.is_dir() else source.with_suffix(".eval.json")


def _written_by_eval(target: Path, flag: str) -> bool:
    """Whether the existing file ``target`` is one eval wrote: its metrics JSON, or an embeddings matrix."""
    if flag == "--out":
        try:
            metrics = read_json(target)
        except (OSError, ValueError):
            return False
        return isinstance(metrics, dict) and "test_acc" in metrics and ("run" in metrics or "embeddings" in metrics)
    try:
        matrix = load_tensor_file(target)
    except GraphSSLError:
        return False
    return isinstance(matrix, Tensor) and matrix.dim() == 2 and matrix.is_floating_point()


def _check_output(target: Path, flag: str, *kept: Path) -> None:
    """eval writes only files of its own, and says so before the probe runs: never one of a training run's,
    another command's (a bench table, a tune's best.yaml, a lock), nor one of ``kept`` (the file it reads, or
    its other output); an existing file only when eval wrote it; and only where it can write."""
    try:
        _check_output_path(target, flag, kept)
    except OSError as err:  # a name too long for the file system, a folder that cannot be read
        raise write_error(target, err) from None


def _check_output_path(target: Path, flag: str, kept: tuple[Path, ...]) -> None:
    if target.name in RUN_FILES:
        raise GraphSSLError(f"{flag} {target}: {target.name} is a training run's own file and is never replaced; "
                            f"choose another file name")
    if target.name.startswith("."):  # graphssl's locks and temporaries
        raise GraphSSLError(f"{flag} {target}: a hidden file name is graphssl's own (locks, temporaries); choose "
                            f"another file name")
    if any(target.resolve() == path.resolve() for path in kept):
        raise GraphSSLError(f"{flag} {target}: eval already reads or writes that file; choose another file name")
    if target.is_file() and not _written_by_eval(target, flag):
        raise GraphSSLError(f"{flag} {target}: that file exists and is not one graphssl eval wrote (files of "
                            f"other commands are never replaced); choose a new file name")
    folder = target.parent
    if folder.is_dir() and not os.access(folder, os.W_OK):  # a read-only run folder: before minutes of probing
        raise write_error(target, OSError(errno.EROFS if _read_only(folder) else errno.EACCES, "not writable"))


def _read_only(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def evaluate_run(run_dir: str | Path, *, data_root: str | Path | None = None, device: str = "auto",
                 save_embeddings: str | Path | None = None, out: str | Path | None = None) -> dict[str, Any]:
    """Probe and rank a run's embeddings again, from its checkpoint (read as data only).

    Writes the metrics to ``out`` (default ``eval.json`` in the run folder), and the embeddings to
    ``save_embeddings`` when given.

    Returns:
        The metrics written.

    Example:
        >>> evaluate_run("runs/cora-wr", save_embeddings="runs/cora-wr/embeddings.pt")["test_acc"]  # doctest: +SKIP
        0.827
    """
    run = Path(run_dir)
    model, config, dataset = load_trained_model(run, "graphssl eval")
    target = metrics_file(run, out)
    _check_output(target, "--out")
    if save_embeddings is not None:
        _check_output(Path(save_embeddings), "--save-embeddings", target)
    torch_device = resolve_device(device)
    graph = graph_for_config(load_graph(dataset, data_root), config)
    features = model.encoder.convs[0].in_channels
    if features != graph.num_features:
        raise GraphSSLError(f"graphssl eval {run}: its model takes {features} features per node but {dataset} has "
                            f"{graph.num_features}; the checkpoint was altered: restore it, or retrain")
    with memory_errors_explained(torch_device, f"{size_settings(config)}; {graph.num_nodes} nodes"):
        embeddings = embed(model.encoder.to(torch_device), graph, torch_device)
        if not torch.isfinite(embeddings).all():
            raise DivergenceError(f"graphssl eval {run}: its weights give NaN or infinite embeddings (the run "
                                  f"diverged, or the checkpoint was altered); nothing to probe")
        if save_embeddings is not None:
            cpu = embeddings.cpu()
            atomic_write(save_embeddings, lambda handle: torch.save(cpu, handle))
        metrics, _ = evaluate_embeddings(embeddings, graph, config["probe"])
    metrics = {"dataset": dataset, "run": str(run), **metrics}
    write_json(target, metrics)
    return metrics


def _load_matrix(path: Path) -> Tensor:
    """The one matrix in a ``.npy`` or ``.pt`` file, as float64 (exact for every number type accepted)."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise GraphSSLError(f"--embeddings {path}: not a readable .npy array ({first_line(err)}); "
                                f"write it with numpy.save") from None
        if array.dtype.kind not in "fiu":
            raise GraphSSLError(f"--embeddings {path}: holds {array.dtype} values; expected floats or integers")
        return torch.from_numpy(np.asarray(array, dtype=np.float64))
    with open(path, "rb") as handle:
        head = handle.read(4)
    # torch.save writes a zip archive, or with the legacy format a pickle (protocol 2 and up); torch's own
    # message on other bytes ("Unsupported operand 110") would not say what is wrong.
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        raise GraphSSLError(f"--embeddings {path}: not a file torch.save wrote; save the matrix with "
                            f"torch.save(embeddings, FILE), or numpy.save to a .npy file")
    content = load_tensor_file(path)
    tensors = [content] if isinstance(content, Tensor) else \
        [v for v in content.values() if isinstance(v, Tensor)] if isinstance(content, dict) else []
    if len(tensors) != 1:
        raise GraphSSLError(f"--embeddings {path}: holds a value of type {type(content).__name__}, not one tensor; "
                            f"save the matrix itself (torch.save(embeddings, FILE)) or a dict holding exactly one")
    matrix = tensors[0]
    if matrix.layout != torch.strided:
        matrix = matrix.to_dense()
    if not (matrix.is_floating_point() or matrix.dtype in INTEGER_TYPES):
        raise GraphSSLError(f"--embeddings {path}: holds {matrix.dtype} values; expected floats or integers")
    return matrix.double()


def read_embeddings(path: str | Path) -> Tensor:
    """A 2-D matrix from a ``.pt`` file (a tensor, or a dict holding one) or a ``.npy`` file, of floats or
    integers, every value finite.

    It is returned divided by the power of two that brings its largest
    magnitude into [0.5, 1) (:func:`graphssl.probe.unit_scaled`): exact, and
    every metric eval reports (the probe on L2-normalized rows, rank, RankMe,
    cosines) is unchanged by a common scale, while a float64 file's values
    beyond float32's range (1e300) become float32 without overflowing.

    Returns:
        A float32 ``[N, d]`` tensor.

    Example:
        >>> matrix = read_embeddings("dgi_embeddings.npy")  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix not in (".pt", ".npy"):
        raise GraphSSLError(f"--embeddings {path}: expected a .pt or .npy file")
    try:
        if not path.is_file():
            raise GraphSSLError(f"--embeddings {path}: no such file; give a .pt or .npy matrix, one row per node")
        empty = path.stat().st_size == 0
    except OSError as err:  # a name too long, a folder that cannot be read
        raise GraphSSLError(f"--embeddings {path}: cannot read it ({err.strerror})") from None
    if empty:
        raise GraphSSLError(f"--embeddings {path}: the file is empty (0 bytes); write the matrix again")
    matrix = _load_matrix(path)
    if matrix.dim() != 2 or matrix.numel() == 0:
        raise GraphSSLError(f"--embeddings {path}: expected a 2-D matrix, one row per node and at least one "
                            f"column, got shape {tuple(matrix.shape)}")
    finite = torch.isfinite(matrix)
    if not finite.all():
        row = int((~finite).any(dim=1).nonzero()[0])
        raise GraphSSLError(f"--embeddings {path}: {int((~finite).sum())} NaN or infinite value(s), the first in "
                            f"row {row}; the model that made them diverged, or the file is corrupt")
    return unit_scaled(matrix).float()


def evaluate_embedding_file(path: str | Path, dataset: str, *, data_root: str | Path | None = None,
                            config: str | Path | None = None, out: str | Path | None = None) -> dict[str, Any]:
    """Probe and rank embeddings from ``path`` (one row per node of ``dataset``, made by any method) with
    the same probe as ``graphssl train``; ``config`` supplies the ``probe`` settings.  The metrics are
    written to ``out`` (default ``NAME.eval.json`` beside the file, :func:`metrics_file`).

    An all-zero matrix is a complete collapse: rank 0, RankMe 0, mean pair
    cosine 0, and the probe, seeing only zeros, predicts the same class for
    every node.

    Returns:
        The metrics (as in ``metrics.json``'s evaluation part).

    Example:
        >>> evaluate_embedding_file("dgi_embeddings.npy", "cora")["test_acc"]  # doctest: +SKIP
        0.81
    """
    dataset = dataset_name(dataset)
    matrix = read_embeddings(path)
    target = metrics_file(path, out)
    _check_output(target, "--out", Path(path))
    graph: Graph = load_graph(dataset, data_root)
    if matrix.size(0) != graph.num_nodes:
        raise GraphSSLError(f"--embeddings {path}: {matrix.size(0)} rows but {dataset} has {graph.num_nodes} "
                            f"nodes; give one row per node, in the dataset's node order")
    probe = load_config(config)["probe"]
    metrics, _ = evaluate_embeddings(matrix, graph, probe)
    metrics = {"dataset": dataset, "embeddings": str(path), **metrics}
    write_json(target, metrics)
    return metrics
