"""Judging embeddings: the linear probe, the rank metrics and the spectra, in one report.

Works on any ``[N, d]`` embedding matrix, so graphssl's evaluation can judge
embeddings from other models too; :func:`embed` makes them from a trained
encoder on the un-augmented graph.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import Tensor, nn

from . import __version__
from .data import Graph
from .devices import peak_memory_mb
from .encoders import gcn_adjacency
from .probe import ProbeResult, bgrl_official_probe, linear_probe, plain_accuracy
from .rank import covariance_spectrum, rank_report, singular_values
from .regularizers import weight_matrices


@torch.no_grad()
def embed(encoder: nn.Module, graph: Graph, device: torch.device | str = "cpu") -> Tensor:
    """Embeddings of the whole un-augmented graph from ``encoder`` in eval mode, without an autograd graph.

    Returns:
        ``[N, d]`` embeddings on ``device``.

    Example:
        >>> embeddings = embed(model.encoder, graph)  # doctest: +SKIP
    """
    was_training = encoder.training
    encoder.eval()
    try:
        adj_t = gcn_adjacency(graph.edge_index.to(device), graph.num_nodes)
        return encoder(graph.x.to(device), adj_t)
    finally:
        encoder.train(was_training)


def weight_spectra(module: nn.Module) -> dict[str, list[float]]:
    """Singular values of each weight matrix of ``module`` (the matrices WERank acts on).

    Returns:
        ``{parameter name: singular values, largest first}``.

    Example:
        >>> from graphssl.encoders import GCNEncoder
        >>> {name: len(values) for name, values in weight_spectra(GCNEncoder(16, [32, 8])).items()}
        {'convs.0.lin.weight': 16, 'convs.1.lin.weight': 8}
    """
    return {name: singular_values(weight).tolist() for name, weight in weight_matrices(module).items()}


def weight_shapes(module: nn.Module) -> dict[str, list[int]]:
    """The shape of each weight matrix of ``module``, named as in :func:`weight_spectra` (for figure titles).

    Returns:
        ``{parameter name: [rows, columns]}``.

    Example:
        >>> from graphssl.encoders import GCNEncoder
        >>> weight_shapes(GCNEncoder(16, [32, 8]))
        {'convs.0.lin.weight': [32, 16], 'convs.1.lin.weight': [8, 32]}
    """
    return {name: list(weight.shape) for name, weight in weight_matrices(module).items()}


def validation_only(graph: Graph) -> Graph:
    """``graph`` without its test split: a probe given it cannot read a test label.

    Returns:
        A copy of ``graph`` whose split has ``"train"`` and ``"valid"`` only.

    Example:
        >>> sorted(validation_only(graph).split)  # doctest: +SKIP
        ['train', 'valid']
    """
    return dataclasses.replace(graph, split={k: v for k, v in graph.split.items() if k != "test"})


def _probe(embeddings: Tensor, graph: Graph, probe: dict[str, Any]) -> ProbeResult:
    """The probe ``probe["protocol"]`` names, on the splits ``graph.split`` holds."""
    accuracy = graph.accuracy or plain_accuracy
    if probe["protocol"] == "bgrl-official":
        return bgrl_official_probe(embeddings, graph.y, graph.split, accuracy=accuracy)
    return linear_probe(embeddings, graph.y, graph.split, graph.num_classes,
                        l2_grid=probe["l2_grid"], max_iter=probe["max_iter"], accuracy=accuracy)


def validation_accuracy(embeddings: Tensor, graph: Graph, probe: dict[str, Any]) -> float:
    """The probe's validation accuracy on ``embeddings``, fitted on the training nodes; the test split is
    removed first (:func:`validation_only`), so no test label is read.  The probes draw no random numbers
    from torch, so calling this during training leaves the run unchanged.

    Returns:
        A fraction in [0, 1].

    Example:
        >>> validation_accuracy(embeddings, graph, load_config(None)["probe"])  # doctest: +SKIP
        0.786
    """
    return _probe(embeddings, validation_only(graph), probe).accuracy["valid"]


def evaluate_embeddings(embeddings: Tensor, graph: Graph, probe: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Probe and rank ``embeddings`` of ``graph`` with the ``probe`` settings of a config.

    Returns:
        ``(metrics, spectra)``: scalar metrics (accuracies as fractions in [0, 1], by
        the dataset's official evaluator when it has one, for the splits
        ``graph.split`` holds: ``test_acc`` only when it has ``"test"``; the chosen
        ``probe_l2`` or ``probe_c``, rank, RankMe, mean pair cosine, timings) and the
        embedding singular values and covariance eigenvalues.

    Example:
        >>> metrics, spectra = evaluate_embeddings(embeddings, graph, load_config(None)["probe"])  # doctest: +SKIP
        >>> metrics["test_acc"], metrics["rankme"]  # doctest: +SKIP
        (0.827, 88.4)
    """
    if embeddings.dim() != 2 or embeddings.size(0) != graph.num_nodes:
        raise ValueError(f"expected embeddings of shape [{graph.num_nodes}, d], got {tuple(embeddings.shape)}")
    start = time.perf_counter()
    result = _probe(embeddings, graph, probe)
    probe_seconds = time.perf_counter() - start
    ranks = rank_report(embeddings)
    accuracies = {f"{name}_acc": result.accuracy[split] for name, split in
                  (("train", "train"), ("val", "valid"), ("test", "test")) if split in result.accuracy}
    metrics = {
        **accuracies,
        f"probe_{result.knob}": result.value,
        "probe_seconds": round(probe_seconds, 3),
        "embedding_dim": embeddings.size(1),
        "rank": ranks["rank"],
        "rankme": ranks["rankme"],
        "mean_pair_cosine": ranks["mean_pair_cosine"],
    }
    spectra = {
        "embedding_singular_values": ranks["singular_values"],
        "embedding_covariance_eigenvalues": covariance_spectrum(embeddings).tolist(),
    }
    return metrics, spectra


def run_metrics(dataset: str, config: dict[str, Any], evaluation: dict[str, Any], training: dict[str, Any],
                device: torch.device, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A training run's ``metrics.json``: what was trained, how its embeddings score, how training went.

    Args:
        dataset: the dataset's name.
        config: the run's config.
        evaluation: the metrics of :func:`evaluate_embeddings`.
        training: the loop's summary (:func:`graphssl.train.pretrain`, without its spectra history).
        device: where it ran.
        extra: more entries (e.g. ``distributed``).

    Returns:
        One flat dictionary, in the order metrics.json lists it.

    Example:
        >>> metrics = run_metrics("cora", config, evaluation, training, torch.device("cpu"))  # doctest: +SKIP
        >>> metrics["deterministic"]  # doctest: +SKIP
        True
    """
    return {"dataset": dataset, "method": config["method"], "seed": config["train"]["seed"],
            "steps": config["optim"]["steps"],
            "werank": config["werank"]["alpha"], "precision": config["train"]["precision"], **evaluation, **training,
            "device": str(device), "deterministic": device.type == "cpu", "threads": torch.get_num_threads(),
            **peak_memory_mb(device), **(extra or {}),
            "graphssl_version": __version__, "torch_version": torch.__version__}
