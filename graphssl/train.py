"""The training loop: steps of any method (+ WERank), with checkpoints, spectra, a per-step log and a progress bar.

:class:`Pretrainer` holds what one step needs and runs it; :func:`pretrain`
runs the remaining steps of a run, checkpointing into its run folder
(:mod:`graphssl.run_folder`) and logging into its ``log.csv``
(:mod:`graphssl.training_log`).  :mod:`graphssl.pipeline` wraps both into whole
runs (``graphssl train``).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed
from .augment import Augmentation
from .bgrl import BGRL
from .data import Graph, select_rows
from .encoders import gcn_adjacency
from .errors import DivergenceError, GraphSSLError, Interrupted, first_line
from .evaluate import embed, validation_accuracy, weight_spectra
from .files import remove_stale_temporaries
from .model import SSLModel, TwoViewModel, build_werank
from .precision import autocast, check_precision, matmul_precision, warn_if_slow
from .rank import covariance_spectrum, rank_report
from .regularizers import weight_matrices
from .run_folder import save_checkpoint
from .run_layout import CHECKPOINT
from .sampling import NeighborBatches
from .schedulers import CosineMomentum, WarmupCosineLR
from .training_log import LOG, TENSORBOARD, TrainingLog, is_logged, log_columns
from .werank_schedule import AdaptiveAlpha


@dataclass
class Pretrainer:
    """Holds everything one training step needs; :meth:`step` runs step ``step`` of ``total_steps``.

    Every method draws the same two views (edge drop and feature mask) and takes
    one AdamW step under the same learning-rate schedule; BGRL back-propagates
    one view at a time against its EMA target and then moves the target, the
    others score both views at once (:class:`graphssl.model.TwoViewModel`).
    ``train.precision`` (:mod:`graphssl.precision`) sets how the forward and
    backward passes compute; the WERank penalty, the optimizer step and the
    EMA update are float32 under every precision.  Every source of randomness
    is torch's global generator, so :meth:`state_dict` (models, optimizer,
    generator states, and under ``werank.schedule: adaptive`` the current
    WERank coefficient) is all an exact resume needs: the other schedules are
    pure functions of the step.

    Example:
        >>> torch.manual_seed(0)  # doctest: +SKIP
        >>> model = build_model(config, graph.num_features)  # doctest: +SKIP
        >>> trainer = Pretrainer(model, graph, config, torch.device("cpu"))  # doctest: +SKIP
        >>> loss, werank_term = trainer.step(0)  # doctest: +SKIP
    """

    model: SSLModel
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
        # fused: one kernel per parameter instead of about ten (on Cora's step 0.3 instead of 3.4 ms, 1 thread).
        self.optimizer = torch.optim.AdamW(self.model.trainable_parameters(), lr=base_lr,
                                           weight_decay=optim["weight_decay"], fused=True)
        self.lr = WarmupCosineLR(base_lr, optim["warmup_steps"], self.total_steps)
        # Only BGRL has an EMA target to move.
        self.momentum = CosineMomentum(self.config["ema"]["start"], self.config["ema"]["end"], self.total_steps) \
            if isinstance(self.model, BGRL) else None
        self.werank = build_werank(self.model, self.config)
        # werank.schedule: adaptive moves WERank's coefficient by the rank measured every train.spectra_every steps.
        self.adaptive_alpha = AdaptiveAlpha.from_config(self.config, self.model.encoder.out_channels) \
            if self.config["werank"]["schedule"] == "adaptive" else None
        self.precision = self.config["train"]["precision"]
        check_precision(self.precision, self.device)
        warn_if_slow(self.precision, self.device)
        self.x = self.graph.x.to(self.device)
        self.edge_index = self.graph.edge_index.to(self.device)
        train = self.config["train"]
        self.batches = NeighborBatches(self.edge_index, self.graph.num_nodes, train["batch_size"],
                                       train["num_neighbors"], train["seed"],
                                       self.context.rank if self.context else 0, world_size) \
            if train["batch_size"] else None
        if self.batches is not None and isinstance(self.model, TwoViewModel):
            self._check_batches_compare_two_seeds()
        # Under torchrun the trainable modules (online encoder and predictor, or encoder and head) average their
        # gradients across ranks.
        self.forward_model: nn.Module = self.model if self.context is None else DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # What WERank regularizes under werank.scope (log.csv has a column for each, the encoder's first).
        head = self.model.head if self.config["werank"]["scope"] == "encoder+head" else None
        self.num_weights = len(weight_matrices(self.model.encoder)) + (len(weight_matrices(head)) if head is not None else 0)
        self._werank_terms: list[Tensor] = []

    def inputs(self, step: int) -> tuple[Tensor, Tensor, int | None]:
        """Features, undirected edges and number of scored (seed) nodes for ``step``: the whole graph,
        or mini-batch ``step``'s sampled subgraph with its seeds first."""
        if self.batches is None:
            return self.x, self.edge_index, None
        nodes, edge_index, num_seeds = self.batches(step)
        return select_rows(self.x, nodes), edge_index, num_seeds

    def _check_batches_compare_two_seeds(self) -> None:
        """GRACE, VICReg and CCA-SSG compare a batch's seed nodes with each other: each batch needs two."""
        world_size = self.context.world_size if self.context else 1
        smallest_shard = self.graph.num_nodes // world_size  # the last rank's, when the nodes do not divide evenly
        smallest = smallest_shard - (self.batches.batches_per_epoch - 1) * self.batches.batch_size
        if smallest < 2:
            nodes = f"{self.graph.num_nodes} nodes" + (f" over {world_size} processes" if world_size > 1 else "")
            raise GraphSSLError(f"train.batch_size {self.batches.batch_size} leaves a last mini-batch of "
                                f"{max(smallest, 0)} seed node(s) in each epoch ({nodes}), and "
                                f"{self.config['method']} compares a batch's seed nodes with each other; "
                                f"choose a batch size that leaves 2 or more")

    def step(self, step: int) -> tuple[float, float]:
        """One optimizer step (and for BGRL a target update); returns (the method's loss, WERank term).

        Each weight's share of the WERank term is kept for :meth:`werank_terms`."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(step)
        x, edge_index, num_seeds = self.inputs(step)
        views = [augment(edge_index, x.size(1)) for augment in self.views]
        inputs = [(gcn_adjacency(view.edge_index, x.size(0)), view.feature_mask) for view in views]
        self.optimizer.zero_grad(set_to_none=True)
        backward = self._backward_both_views if isinstance(self.model, TwoViewModel) else \
            self._backward_one_view_at_a_time
        with matmul_precision(self.precision, self.device):
            loss = backward(x, inputs, num_seeds)
        # WERank, the optimizer and the EMA update run in float32 under every precision.
        penalty, terms = self.werank.terms() if self.werank is not None else (None, [])
        if penalty is not None and penalty.requires_grad:  # a constant 0 while the adaptive alpha is still 0
            penalty.backward()
        self._werank_terms = [term.detach() for term in terms]
        self.optimizer.step()
        if self.momentum is not None:
            self.model.update_target_network(self.momentum(step))
        return loss, penalty.item() if penalty is not None else 0.0

    def _backward_one_view_at_a_time(self, x: Tensor, inputs: list[tuple[Tensor, Tensor | None]],
                                     num_seeds: int | None) -> float:
        """BGRL: gradients of the symmetric loss; returns the loss."""
        with self._autocast():
            targets = [self.model.target_embeddings(x, adj, mask, num_seeds) for adj, mask in inputs]
        loss = 0.0
        # Each half of the symmetric loss is back-propagated before the other is built: same gradients,
        # half the activation memory (what limits full-batch training on large graphs).
        for half_index, ((adj, mask), other_target) in enumerate(zip(inputs, reversed(targets))):
            # Under DDP, gradients are averaged across ranks once, after the second half.
            sync = contextlib.nullcontext() if half_index == 1 or self.context is None else self.forward_model.no_sync()
            with sync:
                with self._autocast():
                    half = self.forward_model(x, adj, mask, other_target, num_seeds)
                half.backward()
            loss += half.item()
        return loss

    def _backward_both_views(self, x: Tensor, inputs: list[tuple[Tensor, Tensor | None]],
                             num_seeds: int | None) -> float:
        """GRACE, VICReg, CCA-SSG: the loss couples the two views, so both are built before one backward pass."""
        (adj_1, mask_1), (adj_2, mask_2) = inputs
        with self._autocast():
            loss = self.forward_model(x, adj_1, mask_1, adj_2, mask_2, num_seeds)
        loss.backward()
        return loss.item()

    @property
    def werank_alpha(self) -> float | list[float]:
        """The WERank coefficient the steps use now: the config's, or where the adaptive schedule has moved it."""
        return self.adaptive_alpha.alpha if self.adaptive_alpha is not None else self.config["werank"]["alpha"]

    def adapt_werank(self, rankme: float) -> None:
        """One move of the adaptive schedule from the embeddings' measured RankMe (give every rank the same)."""
        assert self.adaptive_alpha is not None and self.werank is not None
        self.werank.set_alpha(self.adaptive_alpha.update(rankme))
    def _autocast(self) -> contextlib.AbstractContextManager:
        """The context of a forward pass: bfloat16 autocast under ``bf16-mixed`` (backward passes run outside it)."""
        return autocast(self.precision, self.device)

    def werank_terms(self) -> list[float]:
        """The last step's WERank term of each regularized weight, in order (zeros without WERank)."""
        if not self._werank_terms:
            return [0.0] * self.num_weights
        return torch.stack(self._werank_terms).tolist()

    def embeddings(self) -> Tensor:
        """The encoder's embeddings of the whole un-augmented graph (eval mode, no autograd, no random
        numbers drawn: measuring them leaves the training unchanged)."""
        return embed(self.model.encoder, self.graph, self.device)

    def spectra(self, step: int, embeddings: Tensor) -> dict[str, Any]:
        """Singular values of each encoder weight and eigenvalues of ``embeddings``' covariance."""
        return {"step": step, "weights": weight_spectra(self.model.encoder),
                "embedding_covariance": covariance_spectrum(embeddings).tolist()}

    def state_dict(self) -> dict[str, Any]:
        """The training state; under torchrun a collective call (every rank's generator states are kept,
        one per rank, so a resumed job draws the same views as an uninterrupted one)."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "rng": distributed.all_gather_object(rng)}
        if self.adaptive_alpha is not None:  # the same on every rank
            state["werank_alpha"] = self.adaptive_alpha.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s training state; one that does not fit this trainer is a ``ValueError``
        (or the error torch's own loaders raise), before any step could trip over it."""
        fresh_groups = self.optimizer.state_dict()["param_groups"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for fresh, loaded in zip(fresh_groups, self.optimizer.param_groups):
            settings = {key: value for key, value in loaded.items() if key != "params"}
            if not _same_structure(settings, {key: value for key, value in fresh.items() if key != "params"}):
                raise ValueError("its optimizer settings are not those of AdamW")
            for param in loaded["params"]:
                for name, value in self.optimizer.state.get(param, {}).items():
                    if not isinstance(value, Tensor) or value.dim() and value.shape != param.shape:
                        raise ValueError(f"its optimizer state {name} does not match a weight of shape "
                                         f"{tuple(param.shape)}")
        rng = state["rng"][self.context.rank if self.context else 0]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if self.adaptive_alpha is not None:
            if not isinstance(state.get("werank_alpha"), dict):
                raise GraphSSLError("the checkpoint holds no adaptive WERank coefficient although its config says "
                                    "werank.schedule: adaptive; it is not a whole graphssl checkpoint: retrain")
            self.adaptive_alpha.load_state_dict(state["werank_alpha"])
            self.werank.set_alpha(self.adaptive_alpha.alpha)


def _same_structure(loaded: Any, fresh: Any) -> bool:
    """Whether ``loaded`` has the types, keys and lengths of ``fresh`` (values may differ; an int may stand
    for a float, as a learning rate of 1 does)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (loaded, fresh)):
        return True
    if type(loaded) is not type(fresh):
        return False
    if isinstance(fresh, dict):
        return loaded.keys() == fresh.keys() and all(_same_structure(loaded[k], fresh[k]) for k in fresh)
    if isinstance(fresh, (list, tuple)):
        return len(loaded) == len(fresh) and all(map(_same_structure, loaded, fresh))
    return True


def pretrain(trainer: Pretrainer, out: Path | None, progress: bool = True, resume: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None, log_path: Path | None = None) -> dict[str, Any]:
    """Run the remaining steps with a progress bar, checkpointing into ``out`` (``None``: no checkpoints).

    Every ``train.checkpoint_every`` steps, and at the end, ``out/checkpoint.pt``
    is replaced atomically by the full training state; before the first step and
    every ``train.spectra_every`` steps the spectra are recorded (without
    touching the random generators, so the training is the same with or
    without them).  ``log_path`` (default ``out/log.csv``) gets a row at every
    logged step (:mod:`graphssl.training_log`), with RankMe and rank where
    spectra are due and the validation probe's accuracy every
    ``train.probe_every`` steps (neither draws random numbers); with
    ``train.tensorboard`` the same scalars go to ``out/tb/``.  Under torchrun
    only rank 0 measures and writes.  A non-finite loss or
    WERank term stops the run (:class:`DivergenceError`) before anything is
    saved from it.  ``resume`` is a checkpoint to continue from; the log is cut
    back to the rows it had at that checkpoint, and temporaries of killed
    checkpoint writes are removed first.  A write that fails (a full disk) stops
    the run (:class:`graphssl.errors.WriteFailed`), its last checkpoint intact.

    Under ``werank.schedule: adaptive`` WERank's coefficient moves after every
    spectra step but the last (:mod:`graphssl.werank_schedule`), by the RankMe
    rank 0 measured there, broadcast so that every rank moves it alike.

    Returns:
        ``final_loss``, ``final_werank``, ``final_werank_alpha`` (the coefficient
        the last step used), ``train_seconds``, ``ms_per_step`` and ``spectra``
        (the history of weight and covariance spectra).

    Example:
        >>> model = build_model(config, graph.num_features)  # doctest: +SKIP
        >>> trainer = Pretrainer(model, graph, config, torch.device("cpu"))  # doctest: +SKIP
        >>> pretrain(trainer, out=None)["final_loss"]  # doctest: +SKIP
        0.41
    """
    train = trainer.config["train"]
    main_rank = trainer.context is None or trainer.context.is_main  # only rank 0 writes and reports
    path = out / CHECKPOINT if out is not None else None
    done = resume["step"] if resume else 0
    history: list[dict[str, Any]] = resume["spectra"] if resume else []
    timings = dict(resume["timings"]) if resume else {"train_seconds": 0.0, "step_seconds": 0.0}
    loss, penalty = (resume["loss"], resume["werank_term"]) if resume else (math.nan, math.nan)
    if resume:
        try:
            trainer.load_state_dict(resume)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:  # any way a state can misfit
            raise GraphSSLError(f"--resume {out}: {CHECKPOINT} does not fit its own config ({first_line(err)}); it "
                                f"was altered or not written by graphssl: restore it, or start a new run") from None
        if out is not None and main_rank:
            # A checkpoint write killed mid-way leaves a temporary as large as a checkpoint, which on a full
            # disk would stop this run too; free its space before anything is written.
            remove_stale_temporaries(out)
    log_path = log_path if log_path is not None else out / LOG if out is not None else None
    log = TrainingLog(log_path, log_columns(trainer.num_weights), start_step=done,
                      resume_bytes=resume.get("log_bytes") if resume else None,
                      tensorboard=out / TENSORBOARD if out is not None and train["tensorboard"] else None) \
        if main_rank and log_path is not None else None

    def save() -> None:
        if path is None:
            return
        state = trainer.state_dict()
        if main_rank:
            save_checkpoint(path, {**state, **(metadata or {}), "step": done, "spectra": history,
                                   "timings": timings, "loss": loss, "werank_term": penalty,
                                   "log_bytes": log.sync() if log is not None else None})

    def record(step: int, trained: dict[str, Any]) -> dict[str, Any]:
        """Spectra, rank metrics and the validation probe where due at logged ``step``, and its log row;
        returns what was measured."""
        spectra_due = train["spectra_every"] and step % train["spectra_every"] == 0
        probe_due = log is not None and train["probe_every"] and step % train["probe_every"] == 0
        measured: dict[str, Any] = {}
        if spectra_due or probe_due:
            embeddings = trainer.embeddings()
            if spectra_due:
                history.append(trainer.spectra(step, embeddings))
                if log is not None or trainer.adaptive_alpha is not None:
                    ranks = rank_report(embeddings)
                    measured.update(rankme=ranks["rankme"], rank=ranks["rank"])
            if probe_due:
                measured["val_acc"] = validation_accuracy(embeddings, trainer.graph, trainer.config["probe"])
        if log is not None:
            seconds = timings["train_seconds"] + time.perf_counter() - loop_start
            log.write({"step": step, **trained, "wall_seconds": round(seconds, 3), **measured})
        return measured

    def adapts_after(step: int) -> bool:
        """Whether the adaptive schedule moves WERank's coefficient after ``step`` steps (not after the last)."""
        return trainer.adaptive_alpha is not None and step < trainer.total_steps and step % train["spectra_every"] == 0

    # smoothing=0: the time estimate is the mean speed so far. Step times are uneven (spectra and checkpoint
    # steps, sampled batches), and tqdm's moving average of recent steps made it jump (18 min, 27 s, 12 min).
    bar = tqdm(total=trainer.total_steps, initial=done, desc=trainer.graph.name, unit="step",
               disable=not (progress and main_rank), dynamic_ncols=True, smoothing=0,
               mininterval=0.1 if sys.stderr.isatty() else 2.0)
    loop_start = time.perf_counter()
    try:
        with bar, log if log is not None else contextlib.nullcontext():
            if main_rank and done == 0 and is_logged(0, trainer.total_steps, train):
                record(0, {})  # the model training starts from
            for step in range(done, trainer.total_steps):
                step_start = time.perf_counter()
                loss, penalty = trainer.step(step)
                timings["step_seconds"] += time.perf_counter() - step_start
                if not (math.isfinite(loss) and math.isfinite(penalty)):
                    last = f"the last good checkpoint is {path} (step {done})" if path and path.is_file() else \
                        "no checkpoint was written before it"
                    raise DivergenceError(f"training diverged at step {step}: loss {loss}, WERank term {penalty}; "
                                          f"{last}; lower optim.lr or werank.alpha and train again in a new --out")
                done = step + 1
                bar.update(1)
                measured: dict[str, Any] = {}
                if is_logged(done, trainer.total_steps, train):  # spectra and probe steps are logged steps
                    bar.set_postfix(loss=f"{loss:.4f}", werank=f"{penalty:.4f}", refresh=False)
                    if main_rank:
                        layers = {f"werank_layer{i}": term for i, term in enumerate(trainer.werank_terms(), 1)}
                        alpha = trainer.werank_alpha  # per-layer lists stay in config.yaml: no one cell holds them
                        measured = record(done, {"loss": loss, "werank": penalty, **layers,
                                                 "werank_alpha": None if isinstance(alpha, list) else alpha,
                                                 "lr": trainer.lr(step), "ema_momentum":
                                                 trainer.momentum(step) if trainer.momentum is not None else None})
                if adapts_after(done):  # a spectra step: rank 0 has measured RankMe, every rank moves alpha by it
                    trainer.adapt_werank(distributed.broadcast_from_main(measured.get("rankme")))
                if train["checkpoint_every"] and done % train["checkpoint_every"] == 0 and done < trainer.total_steps:
                    timings["train_seconds"] += time.perf_counter() - loop_start
                    loop_start = time.perf_counter()
                    save()
            timings["train_seconds"] += time.perf_counter() - loop_start
            save()
    except KeyboardInterrupt:
        hint = f"resume with: graphssl train --resume {out}" if path and path.is_file() else \
            "no checkpoint was written yet, so there is nothing to resume: train again in a new --out"
        raise Interrupted(f"interrupted at step {done}; {hint}") from None
    return {"final_loss": loss, "final_werank": penalty, "final_werank_alpha": trainer.werank_alpha,
            "train_seconds": round(timings["train_seconds"], 3),
            "ms_per_step": round(1000 * timings["step_seconds"] / trainer.total_steps, 2), "spectra": history}
