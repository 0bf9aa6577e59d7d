"""Whole training runs: a run folder, the training loop, the evaluation, on one process or under torchrun.

:func:`run_training` is the Python API behind ``graphssl train``::

    from graphssl.config import config_for_dataset, load_config
    from graphssl.pipeline import run_training
    result = run_training("cora", load_config(config_for_dataset("cora"), {"werank.alpha": 0.1}), out_dir="runs/cora")
    print(result.metrics["test_acc"], result.metrics["rank"])

:func:`resume_training` continues an interrupted run exactly where its
checkpoint left it; :func:`train_and_evaluate` is the part both share, and what
``graphssl tune`` calls without a run folder.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .config import size_settings
from .data import Graph, graph_for_config, load_graph
from .devices import memory_errors_explained, resolve_device
from .errors import GraphSSLError
from .evaluate import embed, evaluate_embeddings, run_metrics, weight_shapes, weight_spectra
from .model import SSLModel, build_model
from .precision import check_precision
from .run_folder import default_run_dir, new_run_dir, read_resumable_run, write_results, writing_run_dir
from .run_layout import METRICS
from .train import Pretrainer, pretrain
from .training_log import require_tensorboard


@dataclass
class RunResult:
    """A finished run: its folder (``None`` when nothing was written), ``metrics.json``'s content, the model."""

    out_dir: Path | None
    metrics: dict[str, Any]
    model: SSLModel


def train_and_evaluate(out: Path | None, dataset: str, config: dict[str, Any], graph: Graph, device: torch.device,
                       progress: bool = False, resume: dict[str, Any] | None = None,
                       context: distributed.Context | None = None, log_path: Path | None = None
                       ) -> RunResult | None:
    """Pre-train on ``graph`` with ``config``, then probe and rank the embeddings.

    ``out``: the run folder to checkpoint into and to write ``log.csv``,
    ``metrics.json`` and ``spectra.json`` in; ``None`` trains without writing
    anything but ``log_path`` (as ``graphssl tune`` does).  The probe reports
    the splits ``graph.split`` holds, so a graph without a ``"test"`` split
    never has its test labels read (the probe during training never reads them).

    Returns:
        The result; under torchrun only on rank 0, ``None`` on the other ranks.

    Example:
        >>> result = train_and_evaluate(None, "cora", load_config(None), load_graph("cora"),
        ...                             torch.device("cpu"))  # doctest: +SKIP
    """
    seed = config["train"]["seed"]
    graph = graph_for_config(graph, config)
    if resume is not None and resume["in_channels"] != graph.num_features:
        raise GraphSSLError(f"--resume {out}: checkpoint.pt says the run had {resume['in_channels']} input "
                            f"features, but {dataset} has {graph.num_features}; it was altered, or the dataset's "
                            f"files changed: restore it, or start a new run")
    sizes = f"{size_settings(config)}; {graph.num_nodes} nodes x {graph.num_features} features"
    with memory_errors_explained(device, sizes):  # the model, training, and the evaluation's big matrices
        torch.manual_seed(seed)
        model = build_model(config, graph.num_features).to(device)
        if context is not None:  # same initial weights on every rank, different views and batches
            torch.manual_seed(seed * 1_000_003 + context.rank + 1)
        trainer = Pretrainer(model, graph, config, device, context)
        metadata = {"dataset": dataset, "in_channels": graph.num_features, "config": config}
        training = pretrain(trainer, out, progress, resume, metadata, log_path)
        history = training.pop("spectra")
        extra: dict[str, Any] = {}
        if context is not None:
            agree = distributed.parameters_agree(model)
            extra["distributed"] = {"world_size": context.world_size, "global_batch_size":
                                    context.world_size * config["train"]["batch_size"],
                                    "parameters_equal_across_ranks": agree}
            if not context.is_main:
                return None
        embeddings = embed(model.encoder, graph, device)
        evaluation, spectra = evaluate_embeddings(embeddings, graph, config["probe"])
        spectra["weights"] = weight_spectra(model.encoder)
    metrics = run_metrics(dataset, config, evaluation, training, device, extra)
    if out is not None:
        write_results(out, metrics, {"final": spectra, "history": history,
                                     "weight_shapes": weight_shapes(model.encoder)})
    return RunResult(out, metrics, model)


def run_training(dataset: str, config: dict[str, Any], *, data_root: str | Path | None = None,
                 out_dir: str | Path | None = None, device: str = "auto", progress: bool = True,
                 graph: Graph | None = None, distributed_job: bool = False) -> RunResult | None:
    """Pre-train ``config``'s method (+ WERank) on ``dataset``, evaluate it, and write the run folder.

    Args:
        dataset: a name known to :func:`graphssl.data.load_graph`.
        config: a validated config (:func:`graphssl.config.load_config`).
        data_root: where datasets live (default ``$GRAPHSSL_DATA`` or ``./data``).
        out_dir: the run folder (default: a new folder under ``runs/``); must be new or empty.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a progress bar.
        graph: an already loaded graph (skips loading ``dataset``).
        distributed_job: this process is one rank of a ``torchrun`` job (:mod:`graphssl.distributed`);
            only rank 0 writes the run folder and gets a result, the others get ``None``.

    Returns:
        The run's folder, metrics and trained model (``None`` on ranks other than 0).

    Example:
        >>> result = run_training("cora", load_config(None, {"werank.alpha": 0.1}),
        ...                       out_dir="runs/cora-wr")  # doctest: +SKIP
        >>> result.metrics["test_acc"], result.metrics["rankme"]  # doctest: +SKIP
        (0.827, 88.4)
    """
    if config["train"]["tensorboard"]:
        require_tensorboard()  # before any folder or training
    if not distributed_job:
        torch_device = resolve_device(device)
        check_precision(config["train"]["precision"], torch_device)  # before the run folder is made
        graph = graph if graph is not None else load_graph(dataset, data_root)
        with new_run_dir(out_dir if out_dir is not None else default_run_dir(dataset, config), config) as out:
            return train_and_evaluate(out, dataset, config, graph, torch_device, progress)
    if not config["train"]["batch_size"]:
        raise GraphSSLError("--distributed trains on shards of seed nodes: give --batch-size (and --num-neighbors)")

    def start(context: distributed.Context, torch_device: torch.device) -> RunResult | None:
        # Rank 0 names, creates and holds the folder, then the others follow it.
        out = Path(distributed.all_gather_object(str(out_dir if out_dir is not None
                                                     else default_run_dir(dataset, config)))[0])
        with new_run_dir(out, config) if context.is_main else contextlib.nullcontext():
            job_graph = distributed.load_graph_in_turn(context, dataset, data_root, graph)
            return train_and_evaluate(out, dataset, config, job_graph, torch_device, progress, context=context)

    return distributed.run_job(device, start)


def resume_training(run_dir: str | Path, *, data_root: str | Path | None = None, device: str = "auto",
                    progress: bool = True, graph: Graph | None = None,
                    distributed_job: bool = False) -> RunResult | None:
    """Continue an interrupted run from its last checkpoint, in the same folder.

    The result equals the uninterrupted run's (bit for bit on CPU): the
    checkpoint holds the config, models, optimizer and random-generator states.
    A run trained under torchrun resumes under torchrun with as many processes
    (``distributed_job=True``; rank 0 gets the result, the others ``None``).

    Returns:
        As :func:`run_training`.

    Example:
        >>> result = resume_training("runs/cora-werank0.1-seed0-20261122-101500")  # doctest: +SKIP
    """
    out = Path(run_dir)
    if not distributed_job:
        with writing_run_dir(out, "--resume"):
            state, config, dataset = _read_unfinished(out)
            _check_processes(out, len(state["rng"]), 1)
            graph = graph if graph is not None else load_graph(dataset, data_root)
            return train_and_evaluate(out, dataset, config, graph, resolve_device(device), progress, resume=state)

    def resume(context: distributed.Context, torch_device: torch.device) -> RunResult | None:
        # Rank 0 holds the folder while the job writes it.
        with writing_run_dir(out, "--resume") if context.is_main else contextlib.nullcontext():
            state, config, dataset = _read_unfinished(out)
            _check_processes(out, len(state["rng"]), context.world_size)
            job_graph = distributed.load_graph_in_turn(context, dataset, data_root, graph)
            return train_and_evaluate(out, dataset, config, job_graph, torch_device, progress, resume=state,
                                      context=context)

    return distributed.run_job(device, resume)


def _read_unfinished(out: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The checkpoint of a run that has not finished yet, checked for resuming."""
    if (out / METRICS).is_file():
        raise GraphSSLError(f"--resume {out}: this run already finished (metrics.json exists); "
                            f"start a new run instead")
    state, config, dataset = read_resumable_run(out)
    if config["train"]["tensorboard"]:
        require_tensorboard()
    return state, config, dataset


def _check_processes(out: Path, processes: int, world_size: int) -> None:
    """A run resumes with as many processes as it was trained with (one random-generator state each)."""
    if world_size != processes:
        how = ("resume it in one process (drop --distributed)" if processes == 1 else
               f"resume it with a job of {processes} processes: torchrun --nproc_per_node {processes} "
               f"-m graphssl train --resume {out} --distributed")
        raise GraphSSLError(f"--resume {out}: the run was trained by {processes} process(es), "
                            f"this job has {world_size}; {how}")
