r"""The WERank paper's synthetic collapse experiments (section 3 and appendix 4), re-runnable.

Setup, as in the paper: 1000 points from a 16-dimensional Gaussian whose
empirical covariance is made exactly the identity (:func:`make_points`); two
views per point by additive Gaussian noise with covariance
``block-diag(0, k I_8)``, i.e. noise on the last 8 coordinates only
(:func:`noisy_view`, fresh noise every epoch); an ``L``-layer linear network of
16 x 16 matrices without bias; full-batch training for ``epochs`` epochs with
one of three objectives:

* ``infonce``: symmetric InfoNCE on L2-normalized embeddings, temperature
  :data:`INFONCE_TEMPERATURE`; plain SGD (no momentum, no weight decay);
* ``vicreg``: VICReg with variance, invariance and covariance coefficients
  10, 10 and 1 (:func:`vicreg_loss` says how its terms are weighted); plain SGD;
* ``ema``: a BYOL-like student-teacher: the student network plus a linear
  16 x 16 predictor regress (normalized MSE, both directions) onto a teacher
  that is the exponential moving average (momentum 0.995) of the student
  network; AdamW with learning rate 0.01 and weight decay 3e-4.

WERank (``alpha``, 0.1 in the paper) acts on every layer of the network (not on
the predictor).  The paper leaves the SGD learning rates, the InfoNCE
temperature and the initialization open; the choices here are
:data:`DEFAULT_LR` and ``INFONCE_TEMPERATURE``, with torch's default
``nn.Linear`` initialization.  Spectra are logged on the clean points.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import vicreg
from .bgrl import ema_update
from .config import TOY_LOSSES
from .errors import DivergenceError, GraphSSLError
from .files import claim_folder, is_temporary, starts_with, write_json, write_text
from .rank import covariance_spectrum, singular_values
from .regularizers import WERank

DIM, NOISY_DIMS, POINTS = 16, 8, 1000
INFONCE_TEMPERATURE = 0.5
VICREG_COEFFICIENTS = (10.0, 10.0, 1.0)  # variance, invariance, covariance
EMA_MOMENTUM = 0.995
DEFAULT_LR = {"infonce": 0.1, "vicreg": 0.01, "ema": 0.01}


def make_points(n: int = POINTS, dim: int = DIM, seed: int = 0) -> Tensor:
    """The toy's data: ``n`` Gaussian points whitened so that their mean is exactly 0 and ``XᵀX / n`` exactly ``I``.

    Returns:
        A ``[n, dim]`` float32 tensor.

    Example:
        >>> x = make_points(n=100, dim=4)
        >>> torch.allclose(x.t() @ x / 100, torch.eye(4), atol=1e-5)
        True
    """
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(dim=0)
    eigenvalues, eigenvectors = torch.linalg.eigh(x.t() @ x / n)
    return (x @ eigenvectors @ torch.diag(eigenvalues.rsqrt()) @ eigenvectors.t()).float()


def noisy_view(x: Tensor, k: float) -> Tensor:
    """``x`` plus Gaussian noise of covariance ``block-diag(0, k I)`` (the last 8 coordinates only).

    Returns:
        A new tensor; ``x`` is untouched.

    Example:
        >>> x = make_points()
        >>> bool((noisy_view(x, 0.5) - x)[:, :8].eq(0).all())
        True
    """
    noise = torch.zeros_like(x)
    noise[:, -NOISY_DIMS:] = math.sqrt(k) * torch.randn(x.size(0), NOISY_DIMS)
    return x + noise


def linear_network(depth: int, dim: int = DIM) -> nn.Sequential:
    """The toy's model: ``depth`` bias-free ``dim x dim`` linear layers (torch's default initialization).

    Returns:
        An ``nn.Sequential``.

    Example:
        >>> linear_network(3)
        Sequential(
          (0): Linear(in_features=16, out_features=16, bias=False)
          (1): Linear(in_features=16, out_features=16, bias=False)
          (2): Linear(in_features=16, out_features=16, bias=False)
        )
    """
    return nn.Sequential(*[nn.Linear(dim, dim, bias=False) for _ in range(depth)])


def infonce_loss(z1: Tensor, z2: Tensor, temperature: float = INFONCE_TEMPERATURE) -> Tensor:
    """Symmetric InfoNCE: each point's other view is its positive, the other points' views its negatives.

    Returns:
        The loss, a scalar.

    Example:
        >>> z = torch.randn(64, 16)
        >>> bool(infonce_loss(z, z) < infonce_loss(z, torch.randn(64, 16)))
        True
    """
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).t() / temperature
    targets = torch.arange(z1.size(0))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def vicreg_loss(z1: Tensor, z2: Tensor, coefficients: tuple[float, float, float] = VICREG_COEFFICIENTS) -> Tensor:
    """VICReg as the paper's equation 6 writes it: ``λ s(Z, Z') + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')]``.

    ``coefficients`` are ``(μ, λ, ν)`` (variance, invariance, covariance).  Two
    weightings differ between the paper and the official code
    (facebookresearch/vicreg), and this follows each where noted:

    * variance: the two views' terms are **summed**, as in the paper; the
      official code averages them, ``μ (v(Z) + v(Z')) / 2``, so its ``μ`` is
      twice the one here (10 here acts like 20 there);
    * invariance: ``s`` is the mean squared difference per coordinate
      (``F.mse_loss``), as in the official code; the paper's
      ``1/n Σ_i ‖z_i − z'_i‖²`` is ``d`` times it.

    The terms are :mod:`graphssl.vicreg`'s (the node-level objective, which
    follows the official code): this is its :func:`~graphssl.vicreg.vicreg_loss`
    with the variance weight doubled, the same numbers bit for bit.
    ``tests/test_toy.py`` pins the weighting against the paper's definitions.

    Returns:
        The loss, a scalar.

    Example:
        >>> z = torch.randn(100, 16)
        >>> float(vicreg_loss(z, z)) >= 0
        True
    """
    variance, invariance, covariance = coefficients
    return vicreg.vicreg_loss(z1, z2, invariance, 2 * variance, covariance)


def normalized_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL's regression loss: ``2 - 2 cos``, averaged over points.

    Returns:
        A scalar in [0, 4].

    Example:
        >>> z = torch.randn(10, 4)
        >>> abs(float(normalized_mse(z, 2 * z))) < 1e-6
        True
    """
    return (2 - 2 * F.cosine_similarity(prediction, target, dim=1)).mean()


@dataclass
class ToyConfig:
    """One synthetic run; ``lr`` None means :data:`DEFAULT_LR` for the loss.

    Example:
        >>> ToyConfig("infonce", layers=2, werank=0.1, k=0.1).name
        'infonce-L2-k0.1-werank0.1'
    """

    loss: str = "vicreg"
    layers: int = 2
    werank: float = 0.1
    k: float = 0.1
    epochs: int = 1000
    lr: float | None = None
    seed: int = 0
    log_every: int = 0  # 0: about 100 logged points over training

    def check(self) -> None:
        if self.loss not in TOY_LOSSES:
            raise GraphSSLError(f"--loss {self.loss}: choose one of {', '.join(TOY_LOSSES)}")
        for name, value, ok, rule in (("--layers", self.layers, self.layers >= 1, "at least 1"),
                                      ("--epochs", self.epochs, self.epochs >= 1, "at least 1"),
                                      ("--werank", self.werank, self.werank >= 0, ">= 0"),
                                      ("--k", self.k, self.k >= 0, ">= 0"),
                                      ("--lr", self.lr, self.lr is None or self.lr > 0, "> 0")):
            if not ok:
                raise GraphSSLError(f"{name} {value}: must be {rule}")

    @property
    def name(self) -> str:
        return f"{self.loss}-L{self.layers}-k{self.k:g}-werank{self.werank:g}"


def spectra(network: nn.Sequential, points: Tensor) -> dict[str, Any]:
    """What the toy logs: singular values of each weight, and the embedding covariance's eigenvalues.

    Returns:
        ``{"weights": [[...] per layer], "embedding": [...]}``, largest first.

    Example:
        >>> [len(values) for values in spectra(linear_network(2), make_points())["weights"]]
        [16, 16]
    """
    with torch.no_grad():
        embedding = covariance_spectrum(network(points))
    return {"weights": [singular_values(layer.weight).tolist() for layer in network],
            "embedding": embedding.tolist()}


def train_toy(config: ToyConfig) -> dict[str, Any]:
    """Train one model.

    Returns:
        ``{"config", "history": [{"epoch", "loss", "weights", "embedding"}], "final"}``; ``loss`` is the
        objective (WERank term included) at that epoch.

    Example:
        >>> result = train_toy(ToyConfig("vicreg", layers=2, werank=0.1, epochs=20))
        >>> len(result["final"]["weights"]), result["history"][-1]["epoch"]
        (2, 20)
    """
    config.check()
    torch.manual_seed(config.seed)
    points = make_points(seed=config.seed)
    network = linear_network(config.layers)
    lr = config.lr if config.lr is not None else DEFAULT_LR[config.loss]
    werank = WERank(network, config.werank) if config.werank > 0 else None
    if config.loss == "ema":
        predictor = nn.Linear(DIM, DIM, bias=False)
        teacher = copy.deepcopy(network).requires_grad_(False)
        optimizer: torch.optim.Optimizer = torch.optim.AdamW([*network.parameters(), *predictor.parameters()],
                                                             lr=lr, weight_decay=3e-4)
    else:
        optimizer = torch.optim.SGD(network.parameters(), lr=lr)
    log_every = config.log_every or max(1, config.epochs // 100)
    history: list[dict[str, Any]] = [{"epoch": 0, **spectra(network, points)}]
    for epoch in range(1, config.epochs + 1):
        view_1, view_2 = noisy_view(points, config.k), noisy_view(points, config.k)
        z1, z2 = network(view_1), network(view_2)
        if config.loss == "infonce":
            loss = infonce_loss(z1, z2)
        elif config.loss == "vicreg":
            loss = vicreg_loss(z1, z2)
        else:
            with torch.no_grad():
                t1, t2 = teacher(view_1), teacher(view_2)
            loss = normalized_mse(predictor(z1), t2) + normalized_mse(predictor(z2), t1)
        if werank is not None:
            loss = loss + werank()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if config.loss == "ema":
            ema_update(teacher, network, EMA_MOMENTUM)
        if not math.isfinite(loss.item()):
            raise DivergenceError(f"toy run {config.name} diverged at epoch {epoch}; lower --lr")
        if epoch % log_every == 0 or epoch == config.epochs:
            with torch.no_grad():  # the step just taken can overflow what the finite loss came from
                if not torch.isfinite(network(points)).all():
                    raise DivergenceError(f"toy run {config.name} diverged at epoch {epoch}; lower --lr")
            history.append({"epoch": epoch, "loss": loss.item(), **spectra(network, points)})
    final = {"weights": history[-1]["weights"], "embedding": history[-1]["embedding"]}
    return {"config": {**asdict(config), "lr": lr}, "history": history, "final": final}


def summary(final: dict[str, Any]) -> dict[str, float]:
    """What the claims are judged by.

    Returns:
        ``embedding_above_0.1``: embedding-covariance singular values above 0.1 of the largest;
        ``min_weight_sv``: the smallest singular value over all weights;
        ``weight_distance_from_1``: root-mean-square of ``s - 1`` over all weights' singular values.

    Example:
        >>> summary({"embedding": [1.0, 0.5, 0.01], "weights": [[1.0, 1.0]]})
        {'embedding_above_0.1': 2, 'min_weight_sv': 1.0, 'weight_distance_from_1': 0.0}
    """
    embedding = final["embedding"]
    weights = [s for layer in final["weights"] for s in layer]
    return {"embedding_above_0.1": sum(v > 0.1 * embedding[0] for v in embedding),
            "min_weight_sv": min(weights),
            "weight_distance_from_1": math.sqrt(sum((s - 1) ** 2 for s in weights) / len(weights))}


# How the spectra.json that train_toy's result makes begins (a training run's spectra.json does not).
_TOY_SPECTRA_START = '{\n  "config": {\n    "loss": '


def _toy_run_owns(entry: Path) -> bool:
    return entry.name == "spectra.png" or entry.name == "spectra.json" and starts_with(entry, _TOY_SPECTRA_START)


def run_toy(config: ToyConfig, out: str | Path) -> dict[str, Any]:
    """Train one model and write ``spectra.json`` and its spectra-over-training PNG into ``out``: a new or
    empty folder, or an earlier toy run's (a folder holding anything else is refused before training).

    Returns:
        As :func:`train_toy`.

    Example:
        >>> result = run_toy(ToyConfig("ema", layers=3), "runs/toy-ema")  # doctest: +SKIP
    """
    config.check()
    try:
        new = not Path(out).exists()
    except OSError:  # a name too long: claim_folder says so in one line
        new = False
    out = claim_folder(out, "toy", _toy_run_owns)
    try:
        result = train_toy(config)
    except BaseException:
        if new:  # a folder this run made and left empty would only be in the way of the next try
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    write_json(out / "spectra.json", result)
    from .plot import plot_toy_training

    plot_toy_training(result, out / "spectra.png")
    return result


SWEEP_DEPTHS = (1, 2, 3, 4)
SWEEP_KS = (0.01, 0.1, 0.5, 1.0, 2.0)


def sweep_configs(epochs: int, seed: int = 0, losses: Sequence[str] = TOY_LOSSES) -> list[ToyConfig]:
    """The grid of the paper's figures: depths at k = 0.1 (Fig. 1, 2, 4, 5) and k at L = 1 (Fig. 3).

    Returns:
        The runs, each of ``losses`` with and without WERank.

    Example:
        >>> len(sweep_configs(epochs=1000)), len(sweep_configs(epochs=1000, losses=["vicreg"]))
        (48, 16)
    """
    configs = []
    for loss in losses:
        for werank in (0.0, 0.1):
            for depth in SWEEP_DEPTHS:
                configs.append(ToyConfig(loss, depth, werank, 0.1, epochs, seed=seed))
            for k in SWEEP_KS:
                if k != 0.1:
                    configs.append(ToyConfig(loss, 1, werank, k, epochs, seed=seed))
    return configs


SWEEP_FIGURES = ("fig2_embedding_vs_depth.png", "fig3_weights_vs_k.png")
SWEEP_README_START = "## Synthetic collapse experiments"
SWEEP_TABLE_START = "| loss | L | k |"


def _toy_sweep_owns(entry: Path) -> bool:
    """Whether a folder entry is one a sweep writes: its figures, summary, table and README, and one toy run's
    folder per configuration."""
    if entry.is_dir():
        try:
            return entry.name in {config.name for config in sweep_configs(epochs=1)} and \
                all(is_temporary(name) or _toy_run_owns(entry / name) for name in os.listdir(entry))
        except OSError:
            return False
    return entry.name in (*SWEEP_FIGURES, "summary.json") or \
        entry.name == "README.md" and starts_with(entry, SWEEP_README_START) or \
        entry.name == "table.md" and starts_with(entry, SWEEP_TABLE_START)


def run_sweep(out: str | Path, epochs: int = 1000, seed: int = 0, progress: bool = True,
              losses: Sequence[str] = TOY_LOSSES) -> Path:
    """Run the grid for ``losses`` into ``out``; writes the figures, ``table.md`` and a README section ``README.md``.

    Returns:
        The path of ``README.md``.

    Example:
        >>> run_sweep("runs/toy", epochs=1000, losses=["vicreg"])  # doctest: +SKIP
        PosixPath('runs/toy/README.md')
    """
    from tqdm import tqdm

    from .plot import plot_toy_depths, plot_toy_strengths

    out = claim_folder(out, "toy --sweep", _toy_sweep_owns)
    results = {}
    for config in tqdm(sweep_configs(epochs, seed, losses), desc="toy sweep", unit="run", disable=not progress,
                       smoothing=0):
        results[config.name] = run_toy(config, out / config.name)
    figures = [plot_toy_depths(results, out / SWEEP_FIGURES[0]), plot_toy_strengths(results, out / SWEEP_FIGURES[1])]
    rows = [f"{SWEEP_TABLE_START} WERank | embedding SVs > 0.1·max | smallest weight SV | RMS(weight SV − 1) |",
            "|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        c, s = result["config"], summary(result["final"])
        rows.append(f"| {c['loss']} | {c['layers']} | {c['k']:g} | {c['werank']:g} | {s['embedding_above_0.1']} "
                    f"| {s['min_weight_sv']:.3f} | {s['weight_distance_from_1']:.3f} |")
    table = "\n".join(rows) + "\n"
    write_text(out / "table.md", table)
    write_json(out / "summary.json", {name: {**r["config"], **summary(r["final"])} for name, r in results.items()})
    section = [f"{SWEEP_README_START} ({epochs} epochs, seed {seed})", "",
               f"Command: `graphssl toy --sweep --epochs {epochs}"
               f"{'' if tuple(losses) == TOY_LOSSES else ' --losses ' + ' '.join(losses)} --out {out}`", ""]
    section += [f"![{f.stem}]({f.name})" for f in figures]
    section += [f"![{name}]({name}/spectra.png)" for name in results if "-L2-k0.1-" in name]
    section += ["", table]
    write_text(out / "README.md", "\n".join(section))
    return out / "README.md"
