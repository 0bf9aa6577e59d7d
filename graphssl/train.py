"""The training loop and the run folder: pre-train BGRL (+ WERank), then evaluate.

:func:`run_training` is the Python API behind ``graphssl train``::

    from graphssl.config import load_config
    from graphssl.train import run_training
    result = run_training("cora", load_config("configs/cora.yaml"), out_dir="runs/cora")
    print(result.metrics["test_acc"], result.metrics["rank"])

A run folder holds ``config.yaml`` (the effective config, written first),
``checkpoint.pt`` (online encoder, predictor, target encoder, optimizer,
random-generator states, step; replaced atomically every
``train.checkpoint_every`` steps), and ``metrics.json`` and ``spectra.json``,
written last and only by a run that finished.  ``resume_training(run_dir)``
continues an interrupted run exactly where its checkpoint left it.
"""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import __version__, distributed
from .augment import Augmentation
from .bgrl import BGRL
from .checkpoint import load_checkpoint, save_checkpoint, write_json, write_text
from .config import dump_config, validate
from .data import Graph, graph_for_config, load_graph, select_rows
from .encoders import GCNEncoder, Predictor, gcn_adjacency
from .errors import DivergenceError, GraphSSLError, Interrupted
from .evaluate import embed, evaluate_embeddings, weight_spectra
from .rank import covariance_spectrum
from .regularizers import WERank
from .sampling import NeighborBatches
from .schedulers import CosineMomentum, WarmupCosineLR

CHECKPOINT = "checkpoint.pt"


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device, which must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GraphSSLError(f"--device {name}: not a device name; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraphSSLError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return device


def build_model(config: dict[str, Any], in_channels: int) -> BGRL:
    enc = config["encoder"]
    encoder = GCNEncoder(in_channels, enc["layers"], enc["norm"], enc["activation"], enc["weight_standardization"])
    return BGRL(encoder, Predictor(encoder.out_channels, config["predictor"]["hidden"]))


def build_werank(model: BGRL, config: dict[str, Any]) -> WERank | None:
    """The WERank hook on the online encoder's weights; ``None`` (no cost at all) when every α is 0."""
    alpha = config["werank"]["alpha"]
    if not any(alpha) if isinstance(alpha, list) else alpha == 0:
        return None
    return WERank(model.online_encoder, alpha, squared=config["werank"]["squared"])


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    usage = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        usage["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return usage


@dataclass
class Pretrainer:
    """Holds everything one BGRL step needs; :meth:`step` runs step ``step`` of ``total_steps``.

    Every source of randomness is torch's global generator, so :meth:`state_dict`
    (models, optimizer, generator states) is all an exact resume needs: the
    schedules are pure functions of the step.
    """

    model: BGRL
    graph: Graph
    config: dict[str, Any]
    device: torch.device
    context: distributed.Context | None = None

    def __post_init__(self) -> None:
        aug, optim = self.config["augment"], self.config["optim"]
        self.total_steps = optim["steps"]
        world_size = self.context.world_size if self.context else 1
        self.views = (Augmentation(aug["drop_edge_1"], aug["mask_feature_1"]),
                      Augmentation(aug["drop_edge_2"], aug["mask_feature_2"]))
        # optim.lr is the rate for one process's batch; W processes step on a W-times larger global batch.
        base_lr = optim["lr"] * (world_size if optim["lr_scaling"] == "linear" else 1)
        self.optimizer = torch.optim.AdamW(self.model.trainable_parameters(), lr=base_lr,
                                           weight_decay=optim["weight_decay"])
        self.lr = WarmupCosineLR(base_lr, optim["warmup_steps"], self.total_steps)
        self.momentum = CosineMomentum(self.config["ema"]["start"], self.config["ema"]["end"], self.total_steps)
        self.werank = build_werank(self.model, self.config)
        self.x = self.graph.x.to(self.device)
        self.edge_index = self.graph.edge_index.to(self.device)
        train = self.config["train"]
        self.batches = NeighborBatches(self.edge_index, self.graph.num_nodes, train["batch_size"],
                                       train["num_neighbors"], train["seed"],
                                       self.context.rank if self.context else 0, world_size) \
            if train["batch_size"] else None
        # Under torchrun the online encoder and predictor average their gradients across ranks.
        self.forward_model: nn.Module = self.model if self.context is None else DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def inputs(self, step: int) -> tuple[Tensor, Tensor, int | None]:
        """Features, undirected edges and number of scored (seed) nodes for ``step``: the whole graph,
        or mini-batch ``step``'s sampled subgraph with its seeds first."""
        if self.batches is None:
            return self.x, self.edge_index, None
        nodes, edge_index, num_seeds = self.batches(step)
        return select_rows(self.x, nodes), edge_index, num_seeds

    def step(self, step: int) -> tuple[float, float]:
        """One optimizer step and target update; returns (BGRL loss, WERank term)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(step)
        x, edge_index, num_seeds = self.inputs(step)
        num_nodes = x.size(0)
        views = [augment(edge_index, x.size(1)) for augment in self.views]
        adjacencies = [gcn_adjacency(view.edge_index, num_nodes) for view in views]
        targets = [self.model.target_embeddings(x, adj, view.feature_mask, num_seeds)
                   for adj, view in zip(adjacencies, views)]
        self.optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        # Each half of the symmetric loss is back-propagated before the other is built: same gradients,
        # half the activation memory (what limits full-batch training on large graphs).
        for half_index, (adj, view, other_target) in enumerate(zip(adjacencies, views, reversed(targets))):
            # Under DDP, gradients are averaged across ranks once, after the second half.
            sync = contextlib.nullcontext() if half_index == 1 or self.context is None else self.forward_model.no_sync()
            with sync:
                half = self.forward_model(x, adj, view.feature_mask, other_target, num_seeds)
                half.backward()
            loss += half.item()
        penalty = self.werank() if self.werank is not None else None
        if penalty is not None:
            penalty.backward()
        self.optimizer.step()
        self.model.update_target_network(self.momentum(step))
        return loss, penalty.item() if penalty is not None else 0.0

    def spectra(self, step: int) -> dict[str, Any]:
        """Singular values of each online-encoder weight and eigenvalues of the embedding covariance."""
        embeddings = embed(self.model.online_encoder, self.graph, self.device)
        return {"step": step, "weights": weight_spectra(self.model.online_encoder),
                "embedding_covariance": covariance_spectrum(embeddings).tolist()}

    def state_dict(self) -> dict[str, Any]:
        """The training state; under torchrun a collective call (every rank's generator states are kept,
        one per rank, so a resumed job draws the same views as an uninterrupted one)."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": distributed.all_gather_object(rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"][self.context.rank if self.context else 0]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)


def default_run_dir(dataset: str, config: dict[str, Any]) -> Path:
    alpha = config["werank"]["alpha"]
    tag = "-".join(f"{a:g}" for a in alpha) if isinstance(alpha, list) else f"{alpha:g}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{dataset}-werank{tag}-seed{config['train']['seed']}-{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


def prepare_run_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir``; an existing non-empty folder is an error, never overwritten."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GraphSSLError(f"--out {out} already exists and is not empty; choose a new folder "
                            f"(runs are never overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GraphSSLError(f"--out {out}: cannot create it ({err.strerror}); choose a writable folder") from None
    return out


@dataclass
class RunResult:
    out_dir: Path | None
    metrics: dict[str, Any]
    model: BGRL


def pretrain(trainer: Pretrainer, out: Path | None, progress: bool = True, resume: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the remaining steps with a progress bar, checkpointing into ``out`` (``None``: no checkpoints).

    Every ``train.checkpoint_every`` steps, and at the end, ``out/checkpoint.pt``
    is replaced atomically by the full training state; every
    ``train.spectra_every`` steps the spectra are recorded.  A non-finite loss or
    WERank term stops the run (:class:`DivergenceError`) before anything is
    saved from it.  ``resume`` is a checkpoint to continue from.

    Returns the final loss and WERank term, timings and the spectra history.
    """
    train = trainer.config["train"]
    main_rank = trainer.context is None or trainer.context.is_main  # only rank 0 writes and reports
    path = out / CHECKPOINT if out is not None else None
    done = resume["step"] if resume else 0
    history: list[dict[str, Any]] = resume["spectra"] if resume else []
    timings = dict(resume["timings"]) if resume else {"train_seconds": 0.0, "step_seconds": 0.0}
    loss, penalty = (resume["loss"], resume["werank_term"]) if resume else (math.nan, math.nan)
    if resume:
        trainer.load_state_dict(resume)

    def save() -> None:
        if path is None:
            return
        state = trainer.state_dict()
        if main_rank:
            save_checkpoint(path, {**state, **(metadata or {}), "step": done, "spectra": history,
                                   "timings": timings, "loss": loss, "werank_term": penalty})

    bar = tqdm(total=trainer.total_steps, initial=done, desc=trainer.graph.name, unit="step", disable=not (progress and main_rank),
               dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 2.0)
    loop_start = time.perf_counter()
    try:
        with bar:
            for step in range(done, trainer.total_steps):
                step_start = time.perf_counter()
                loss, penalty = trainer.step(step)
                timings["step_seconds"] += time.perf_counter() - step_start
                if not (math.isfinite(loss) and math.isfinite(penalty)):
                    last = f"the last good checkpoint is {path} (step {done})" if path and path.is_file() else \
                        "no checkpoint was written before it"
                    raise DivergenceError(f"training diverged at step {step}: loss {loss}, WERank term {penalty}; "
                                          f"{last}; lower optim.lr or werank.alpha and train again")
                done = step + 1
                bar.update(1)
                if step % max(train["log_every"], 1) == 0 or done == trainer.total_steps:
                    bar.set_postfix(loss=f"{loss:.4f}", werank=f"{penalty:.4f}", refresh=False)
                if main_rank and train["spectra_every"] and done % train["spectra_every"] == 0:
                    history.append(trainer.spectra(done))
                if train["checkpoint_every"] and done % train["checkpoint_every"] == 0 and done < trainer.total_steps:
                    timings["train_seconds"] += time.perf_counter() - loop_start
                    loop_start = time.perf_counter()
                    save()
    except KeyboardInterrupt:
        hint = f"resume with: graphssl train --resume {out}" if path and path.is_file() else \
            "no checkpoint was written yet"
        raise Interrupted(f"interrupted at step {done}; {hint}") from None
    timings["train_seconds"] += time.perf_counter() - loop_start
    save()
    return {"final_loss": loss, "final_werank": penalty, "train_seconds": round(timings["train_seconds"], 3),
            "ms_per_step": round(1000 * timings["step_seconds"] / trainer.total_steps, 2), "spectra": history}


def train_and_evaluate(out: Path | None, dataset: str, config: dict[str, Any], graph: Graph, device: torch.device,
                       progress: bool = False, resume: dict[str, Any] | None = None,
                       context: distributed.Context | None = None) -> RunResult | None:
    """Pre-train on ``graph`` with ``config``, then probe and rank the embeddings.

    ``out``: the run folder to checkpoint into and to write ``metrics.json`` and
    ``spectra.json`` in; ``None`` trains without writing anything (as ``graphssl
    tune`` does).  The probe reports the splits ``graph.split`` holds, so a graph
    without a ``"test"`` split never has its test labels read.
    """
    seed = config["train"]["seed"]
    graph = graph_for_config(graph, config)
    torch.manual_seed(seed)
    model = build_model(config, graph.num_features).to(device)
    if context is not None:  # same initial weights on every rank, different views and batches
        torch.manual_seed(seed * 1_000_003 + context.rank + 1)
    trainer = Pretrainer(model, graph, config, device, context)
    metadata = {"dataset": dataset, "in_channels": graph.num_features, "config": config}
    result = pretrain(trainer, out, progress, resume, metadata)
    extra: dict[str, Any] = {}
    if context is not None:
        agree = distributed.parameters_agree(model.online_encoder, model.predictor, model.target_encoder)
        extra["distributed"] = {"world_size": context.world_size, "global_batch_size":
                                context.world_size * config["train"]["batch_size"],
                                "parameters_equal_across_ranks": agree}
        if not context.is_main:
            return None
    embeddings = embed(model.online_encoder, graph, device)
    metrics, spectra = evaluate_embeddings(embeddings, graph, config["probe"])
    spectra["weights"] = weight_spectra(model.online_encoder)
    metrics = {"dataset": dataset, "seed": seed, "steps": trainer.total_steps,
               "werank": config["werank"]["alpha"], **metrics,
               **{k: v for k, v in result.items() if k != "spectra"},
               "device": str(device), "deterministic": device.type == "cpu", **peak_memory_mb(device), **extra,
               "graphssl_version": __version__, "torch_version": torch.__version__}
    if out is not None:
        write_json(out / "spectra.json", {"final": spectra, "history": result["spectra"]})
        write_json(out / "metrics.json", metrics)
    return RunResult(out, metrics, model)


def run_training(dataset: str, config: dict[str, Any], *, data_root: str | Path | None = None,
                 out_dir: str | Path | None = None, device: str = "auto", progress: bool = True,
                 graph: Graph | None = None, distributed_job: bool = False) -> RunResult | None:
    """Pre-train BGRL (+ WERank) on ``dataset``, evaluate it, and write the run folder.

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
    """
    if not distributed_job:
        torch_device = resolve_device(device)
        graph = graph if graph is not None else load_graph(dataset, data_root)
        out = prepare_run_dir(out_dir if out_dir is not None else default_run_dir(dataset, config))
        write_text(out / "config.yaml", dump_config(config))
        return train_and_evaluate(out, dataset, config, graph, torch_device, progress)
    if not config["train"]["batch_size"]:
        raise GraphSSLError("--distributed trains on shards of seed nodes: give --batch-size (and --num-neighbors)")

    def start(context: distributed.Context, torch_device: torch.device) -> RunResult | None:
        # Rank 0 names and creates the folder, then the others follow it.
        out = Path(distributed.all_gather_object(str(out_dir if out_dir is not None
                                                     else default_run_dir(dataset, config)))[0])
        if context.is_main:
            prepare_run_dir(out)
            write_text(out / "config.yaml", dump_config(config))
        job_graph = _load_graph_in_turn(context, dataset, data_root, graph)
        return train_and_evaluate(out, dataset, config, job_graph, torch_device, progress, context=context)

    return _as_distributed_job(device, start)


def _load_graph_in_turn(context: distributed.Context, dataset: str, data_root: str | Path | None,
                        graph: Graph | None) -> Graph:
    # Rank 0 first: it may process the raw files, which the others then read.
    if graph is None and context.is_main:
        graph = load_graph(dataset, data_root)
    distributed.barrier()
    return graph if graph is not None else load_graph(dataset, data_root)


def _as_distributed_job(device: str, work: Callable[[distributed.Context, torch.device], RunResult | None]
                        ) -> RunResult | None:
    """Join the torchrun job, run ``work`` on this rank, and turn a lost peer into one clear error."""
    context, torch_device = distributed.init(device)
    try:
        return work(context, torch_device)
    except Exception as err:
        if distributed.is_collective_failure(err):
            raise distributed.peer_failed(context, err) from None
        raise
    finally:
        distributed.shutdown()


def read_run(run_dir: str | Path, purpose: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The checkpoint, config and dataset name of a run folder; ``purpose`` names the flag in errors."""
    out = Path(run_dir)
    if not (out / CHECKPOINT).is_file():
        raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} there; give a run folder written by 'graphssl train'")
    state = load_checkpoint(out / CHECKPOINT)
    try:
        config, dataset = state["config"], state["dataset"]
        validate(config)
        if not isinstance(dataset, str) or not isinstance(state["model"], dict) or not isinstance(state["rng"], list):
            raise TypeError
    except (KeyError, TypeError, GraphSSLError):
        raise GraphSSLError(f"{purpose} {out}: {CHECKPOINT} is not a graphssl training checkpoint") from None
    return state, config, dataset


def load_trained_model(run_dir: str | Path, purpose: str = "run") -> tuple[BGRL, dict[str, Any], str]:
    """Rebuild a run's BGRL model from its checkpoint (read as data only): ``(model, config, dataset)``."""
    state, config, dataset = read_run(run_dir, purpose)
    model = build_model(config, int(state["in_channels"]))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        reason = str(err).strip().splitlines()[0][:160]
        raise GraphSSLError(f"{purpose} {run_dir}: the checkpoint does not fit its own config ({reason})") from None
    return model, config, dataset


def resume_training(run_dir: str | Path, *, data_root: str | Path | None = None, device: str = "auto",
                    progress: bool = True, graph: Graph | None = None,
                    distributed_job: bool = False) -> RunResult | None:
    """Continue an interrupted run from its last checkpoint, in the same folder.

    The result equals the uninterrupted run's (bit for bit on CPU): the
    checkpoint holds the config, models, optimizer and random-generator states.
    A run trained under torchrun resumes under torchrun with as many processes
    (``distributed_job=True``; rank 0 gets the result, the others ``None``).
    """
    out = Path(run_dir)
    if (out / "metrics.json").is_file():
        raise GraphSSLError(f"--resume {out}: this run already finished (metrics.json exists); "
                            f"start a new run instead")
    state, config, dataset = read_run(out, "--resume")
    processes = len(state["rng"])

    def check_processes(world_size: int) -> None:
        if world_size != processes:
            how = ("resume it in one process (drop --distributed)" if processes == 1 else
                   f"resume it with a job of {processes} processes: torchrun --nproc_per_node {processes} "
                   f"-m graphssl train --resume {out} --distributed")
            raise GraphSSLError(f"--resume {out}: the run was trained by {processes} process(es), "
                                f"this job has {world_size}; {how}")

    if not distributed_job:
        check_processes(1)
        graph = graph if graph is not None else load_graph(dataset, data_root)
        return train_and_evaluate(out, dataset, config, graph, resolve_device(device), progress, resume=state)

    def resume(context: distributed.Context, torch_device: torch.device) -> RunResult | None:
        check_processes(context.world_size)
        job_graph = _load_graph_in_turn(context, dataset, data_root, graph)
        return train_and_evaluate(out, dataset, config, job_graph, torch_device, progress, resume=state,
                                   context=context)

    return _as_distributed_job(device, resume)
