"""The training loop and the run folder: pre-train BGRL (+ WERank), then evaluate.

:func:`run_training` is the Python API behind ``graphssl train``::

    from graphssl.config import load_config
    from graphssl.train import run_training
    result = run_training("cora", load_config("configs/cora.yaml"), out_dir="runs/cora")
    print(result.metrics["test_acc"], result.metrics["rank"])

A run folder holds ``config.yaml`` (the effective config, written first),
``checkpoint.pt`` (online encoder, predictor, target encoder, optimizer, step),
``metrics.json`` and ``spectra.json`` (written last, only for a finished run).
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import __version__
from .augment import Augmentation
from .bgrl import BGRL
from .checkpoint import save_checkpoint, write_json, write_text
from .config import dump_config
from .data import Graph, load_graph
from .encoders import GCNEncoder, Predictor, gcn_adjacency
from .errors import DivergenceError, GraphSSLError
from .evaluate import embed, evaluate_embeddings, weight_spectra
from .regularizers import WERank
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
    """Holds everything one BGRL step needs; :meth:`step` runs step ``step`` of ``total_steps``."""

    model: BGRL
    graph: Graph
    config: dict[str, Any]
    device: torch.device

    def __post_init__(self) -> None:
        aug, optim = self.config["augment"], self.config["optim"]
        self.total_steps = optim["steps"]
        self.views = (Augmentation(aug["drop_edge_1"], aug["mask_feature_1"]),
                      Augmentation(aug["drop_edge_2"], aug["mask_feature_2"]))
        self.optimizer = torch.optim.AdamW(self.model.trainable_parameters(), lr=optim["lr"],
                                           weight_decay=optim["weight_decay"])
        self.lr = WarmupCosineLR(optim["lr"], optim["warmup_steps"], self.total_steps)
        self.momentum = CosineMomentum(self.config["ema"]["start"], self.config["ema"]["end"], self.total_steps)
        self.werank = build_werank(self.model, self.config)
        self.x = self.graph.x.to(self.device)
        self.edge_index = self.graph.edge_index.to(self.device)

    def step(self, step: int) -> tuple[float, float]:
        """One optimizer step and target update; returns (BGRL loss, WERank term)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(step)
        num_nodes, num_features = self.graph.num_nodes, self.graph.num_features
        view_1, view_2 = (augment(self.edge_index, num_features) for augment in self.views)
        loss = self.model(self.x, gcn_adjacency(view_1.edge_index, num_nodes), view_1.feature_mask,
                          gcn_adjacency(view_2.edge_index, num_nodes), view_2.feature_mask)
        penalty = self.werank() if self.werank is not None else None
        total = loss if penalty is None else loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.model.update_target_network(self.momentum(step))
        return loss.item(), penalty.item() if penalty is not None else 0.0

    def state(self, step: int) -> dict[str, Any]:
        return {"step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}


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
    out_dir: Path
    metrics: dict[str, Any]
    model: BGRL


def pretrain(trainer: Pretrainer, progress: bool = True, desc: str = "") -> dict[str, float]:
    """Run all steps with a progress bar; returns the final loss, WERank term and timings."""
    log_every = max(1, trainer.config["train"]["log_every"])
    loss = penalty = math.nan
    bar = tqdm(total=trainer.total_steps, desc=desc, unit="step", disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    with bar:
        for step in range(trainer.total_steps):
            loss, penalty = trainer.step(step)
            if not (math.isfinite(loss) and math.isfinite(penalty)):
                raise DivergenceError(f"training diverged at step {step}: loss {loss}, WERank {penalty}; "
                                    f"lower optim.lr or werank.alpha")
            bar.update(1)
            if step % log_every == 0 or step == trainer.total_steps - 1:
                bar.set_postfix(loss=f"{loss:.4f}", werank=f"{penalty:.4f}", refresh=False)
    seconds = time.perf_counter() - start
    return {"final_loss": loss, "final_werank": penalty, "train_seconds": round(seconds, 3),
            "ms_per_step": round(1000 * seconds / trainer.total_steps, 2)}


def run_training(dataset: str, config: dict[str, Any], *, data_root: str | Path | None = None,
                 out_dir: str | Path | None = None, device: str = "auto", progress: bool = True,
                 graph: Graph | None = None) -> RunResult:
    """Pre-train BGRL (+ WERank) on ``dataset``, evaluate it, and write the run folder.

    Args:
        dataset: a name known to :func:`graphssl.data.load_graph`.
        config: a validated config (:func:`graphssl.config.load_config`).
        data_root: where datasets live (default ``$GRAPHSSL_DATA`` or ``./data``).
        out_dir: the run folder (default: a new folder under ``runs/``); must be new or empty.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a progress bar.
        graph: an already loaded graph (skips loading ``dataset``).
    """
    torch_device = resolve_device(device)
    out = prepare_run_dir(out_dir if out_dir is not None else default_run_dir(dataset, config))
    write_text(out / "config.yaml", dump_config(config))
    graph = graph if graph is not None else load_graph(dataset, data_root)
    torch.manual_seed(config["train"]["seed"])
    model = build_model(config, graph.num_features).to(torch_device)
    trainer = Pretrainer(model, graph, config, torch_device)
    timings = pretrain(trainer, progress, desc=dataset)
    save_checkpoint(out / CHECKPOINT, {**trainer.state(trainer.total_steps), "config": config,
                                       "dataset": dataset, "in_channels": graph.num_features})
    embeddings = embed(model.online_encoder, graph, torch_device)
    metrics, spectra = evaluate_embeddings(embeddings, graph, config["probe"])
    spectra["weights"] = weight_spectra(model.online_encoder)
    metrics = {"dataset": dataset, "seed": config["train"]["seed"], "steps": trainer.total_steps,
               "werank": config["werank"]["alpha"], **metrics, **timings,
               "device": str(torch_device), **peak_memory_mb(torch_device),
               "graphssl_version": __version__, "torch_version": torch.__version__}
    write_json(out / "spectra.json", {"final": spectra})
    write_json(out / "metrics.json", metrics)
    return RunResult(out, metrics, model)
