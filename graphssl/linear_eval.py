"""Linear evaluation of a finished run, or of embeddings made by any other method.

``evaluate_run(run_dir)`` reloads a run's checkpoint (as data, never code),
recomputes the embeddings of the un-augmented graph and re-runs the probe and
the rank metrics; ``evaluate_embedding_file(path, dataset)`` does the same for
a ``.pt`` or ``.npy`` matrix with one row per node, so other models are judged
by exactly the same probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .config import dataset_name, load_config, size_settings
from .data import Graph, graph_for_config, load_graph
from .devices import memory_errors_explained, resolve_device
from .errors import GraphSSLError
from .evaluate import embed, evaluate_embeddings
from .run_folder import atomic_write, load_tensor_file, load_trained_model, write_json


def evaluate_run(run_dir: str | Path, *, data_root: str | Path | None = None, device: str = "auto",
                 save_embeddings: str | Path | None = None) -> dict[str, Any]:
    """Probe and rank a run's embeddings again, from its checkpoint (read as data only).

    Writes ``eval.json`` in the run folder, and the embeddings to ``save_embeddings`` when given.

    Returns:
        The metrics written to ``eval.json``.

    Example:
        >>> evaluate_run("runs/cora-wr", save_embeddings="runs/cora-wr/embeddings.pt")["test_acc"]  # doctest: +SKIP
        0.827
    """
    out = Path(run_dir)
    model, config, dataset = load_trained_model(out, "graphssl eval")
    torch_device = resolve_device(device)
    graph = graph_for_config(load_graph(dataset, data_root), config)
    features = model.encoder.convs[0].in_channels
    if features != graph.num_features:
        raise GraphSSLError(f"graphssl eval {out}: its model takes {features} features per node but {dataset} has "
                            f"{graph.num_features}; the checkpoint was altered: restore it, or retrain")
    with memory_errors_explained(torch_device, f"{size_settings(config)}; {graph.num_nodes} nodes"):
        embeddings = embed(model.encoder.to(torch_device), graph, torch_device)
        if save_embeddings is not None:
            cpu = embeddings.cpu()
            atomic_write(save_embeddings, lambda handle: torch.save(cpu, handle))
        metrics, _ = evaluate_embeddings(embeddings, graph, config["probe"])
    metrics = {"dataset": dataset, "run": str(out), **metrics}
    write_json(out / "eval.json", metrics)
    return metrics


def read_embeddings(path: str | Path) -> Tensor:
    """A 2-D float matrix from a ``.pt`` file (a tensor, or a dict holding one) or a ``.npy`` file.

    Returns:
        A float32 ``[N, d]`` tensor without NaN or infinite values.

    Example:
        >>> matrix = read_embeddings("dgi_embeddings.npy")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise GraphSSLError(f"--embeddings {path}: no such file")
    if path.suffix == ".npy":
        try:
            matrix = torch.from_numpy(np.load(path, allow_pickle=False))
        except (ValueError, OSError) as err:
            raise GraphSSLError(f"--embeddings {path}: not a readable .npy array ({err})") from None
    elif path.suffix == ".pt":
        content = load_tensor_file(path)
        tensors = [content] if isinstance(content, Tensor) else \
            [v for v in content.values() if isinstance(v, Tensor)] if isinstance(content, dict) else []
        if len(tensors) != 1:
            raise GraphSSLError(f"--embeddings {path}: expected one tensor (or a dict holding exactly one)")
        matrix = tensors[0]
    else:
        raise GraphSSLError(f"--embeddings {path}: expected a .pt or .npy file")
    if matrix.dim() != 2 or not matrix.is_floating_point() and matrix.dtype not in (torch.int32, torch.int64):
        raise GraphSSLError(f"--embeddings {path}: expected a 2-D numeric matrix, got shape {tuple(matrix.shape)}")
    matrix = matrix.float()
    if not torch.isfinite(matrix).all():
        raise GraphSSLError(f"--embeddings {path}: the matrix holds NaN or infinite values")
    return matrix


def evaluate_embedding_file(path: str | Path, dataset: str, *, data_root: str | Path | None = None,
                            config: str | Path | None = None) -> dict[str, Any]:
    """Probe and rank embeddings from ``path`` (one row per node of ``dataset``, made by any method) with
    the same probe as ``graphssl train``; ``config`` supplies the ``probe`` settings.

    Returns:
        The metrics (as in ``metrics.json``'s evaluation part).

    Example:
        >>> evaluate_embedding_file("dgi_embeddings.npy", "cora")["test_acc"]  # doctest: +SKIP
        0.81
    """
    dataset = dataset_name(dataset)
    matrix = read_embeddings(path)
    graph: Graph = load_graph(dataset, data_root)
    if matrix.size(0) != graph.num_nodes:
        raise GraphSSLError(f"--embeddings {path}: {matrix.size(0)} rows but {dataset} has {graph.num_nodes} "
                            f"nodes; give one row per node, in the dataset's node order")
    probe = load_config(config)["probe"]
    metrics, _ = evaluate_embeddings(matrix, graph, probe)
    return {"dataset": dataset, "embeddings": str(path), **metrics}
