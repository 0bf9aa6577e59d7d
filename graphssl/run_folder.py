"""Run folders: naming and creating them, writing their files atomically, reading them back.

A run folder holds ``config.yaml`` (the effective config, written first),
``checkpoint.pt`` (online encoder, predictor, target encoder, optimizer,
random-generator states, step; replaced every ``train.checkpoint_every``
steps), and ``metrics.json`` and ``spectra.json``, written last and only by a
run that finished.

Every file is written atomically (:func:`graphssl.files.atomic_write`), so a
kill or a full disk at any moment leaves either the previous file or the new
one, never half of one.  Checkpoints hold
only tensors and plain Python values and are read with
``torch.load(..., weights_only=True)``: a file carrying pickled code is refused.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from .config import dump_config, validate, with_defaults
from .errors import GraphSSLError, first_line
from .files import atomic_write, make_folder, write_error, write_json, write_text
from .model import SSLModel, build_model

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
SPECTRA = "spectra.json"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save tensors and plain values atomically, in ``torch.save`` format.

    Example:
        >>> save_checkpoint("runs/cora-wr/checkpoint.pt", {"model": model.state_dict(), "step": 100})  # doctest: +SKIP
    """
    atomic_write(path, lambda handle: torch.save(state, handle))


def load_tensor_file(path: str | Path) -> Any:
    """Whatever a ``torch.save`` file holds, read onto the CPU with ``weights_only=True`` (data, never code).

    Returns:
        The loaded object; a missing, truncated or foreign file is one :class:`GraphSSLError`.

    Example:
        >>> embeddings = load_tensor_file("runs/cora-wr/embeddings.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise GraphSSLError(f"{path} does not exist; point to a file written by graphssl")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, tampering: all mean "not usable"
        raise GraphSSLError(f"{path} cannot be loaded safely ({first_line(err)}); "
                            f"it is truncated, corrupt or not a graphssl file: retrain or restore it") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, read onto the CPU as data only.

    Returns:
        The saved dictionary.

    Example:
        >>> load_checkpoint("runs/cora-wr/checkpoint.pt")["step"]  # doctest: +SKIP
        1000
    """
    state = load_tensor_file(path)
    if not isinstance(state, dict):
        raise GraphSSLError(f"checkpoint {path} is not a graphssl checkpoint (it holds a {type(state).__name__})")
    return state


def default_run_dir(dataset: str, config: dict[str, Any]) -> Path:
    """A new folder name under ``runs/`` saying what the run is and when it started.

    Returns:
        ``runs/<dataset>[-<method>]-werank<α>-seed<s>-<YYYYmmdd-HHMMSS>`` (the method named unless it is
        BGRL, the default), with ``-1``, ``-2``... when that exists.

    Example:
        >>> from graphssl.config import load_config
        >>> default_run_dir("cora", load_config(None)).name.startswith("cora-werank0-seed0-")
        True
        >>> default_run_dir("cora", load_config(None, {"method": "grace"})).name.startswith("cora-grace-werank0-")
        True
    """
    alpha = config["werank"]["alpha"]
    tag = "-".join(f"{a:g}" for a in alpha) if isinstance(alpha, list) else f"{alpha:g}"
    method = "" if config["method"] == "bgrl" else f"-{config['method']}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{dataset}{method}-werank{tag}-seed{config['train']['seed']}-{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


def prepare_run_dir(out_dir: str | Path, config: dict[str, Any] | None = None) -> Path:
    """Create ``out_dir`` and write ``config`` there as ``config.yaml``; an existing non-empty folder is an
    error, never overwritten.

    Returns:
        The folder.

    Example:
        >>> import tempfile
        >>> prepare_run_dir(Path(tempfile.mkdtemp()) / "run").is_dir()
        True
    """
    out = Path(out_dir)
    try:
        taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
    except OSError as err:  # a name too long, a folder that cannot be read
        raise write_error(out, err, "use the folder") from None
    if taken:
        raise GraphSSLError(f"--out {out} already exists and is not empty; choose a new folder "
                            f"(runs are never overwritten)")
    make_folder(out)
    if config is not None:
        write_text(out / CONFIG, dump_config(config))
    return out


def read_run(run_dir: str | Path, purpose: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A run folder's checkpoint, read as data only; ``purpose`` names the flag in errors.

    Returns:
        ``(checkpoint state, config, dataset name)``.

    Example:
        >>> state, config, dataset = read_run("runs/cora-wr", "graphssl eval")  # doctest: +SKIP
    """
    out = Path(run_dir)
    if not (out / CHECKPOINT).is_file():
        raise GraphSSLError(f"{purpose} {out}: no {CHECKPOINT} there; give a run folder written by 'graphssl train'")
    state = load_checkpoint(out / CHECKPOINT)
    try:
        config, dataset = with_defaults(state["config"]), state["dataset"]
        validate(config)
        if not isinstance(dataset, str) or not isinstance(state["model"], dict) or not isinstance(state["rng"], list):
            raise TypeError
    except (KeyError, TypeError, GraphSSLError):
        raise GraphSSLError(f"{purpose} {out}: {CHECKPOINT} is not a graphssl training checkpoint") from None
    return state, config, dataset


def load_trained_model(run_dir: str | Path, purpose: str = "run") -> tuple[SSLModel, dict[str, Any], str]:
    """Rebuild a run's model from its checkpoint (read as data only).

    Returns:
        ``(model, config, dataset name)``, the model on the CPU.

    Example:
        >>> model, config, dataset = load_trained_model("runs/cora-wr")  # doctest: +SKIP
        >>> embeddings = model.encoder(x, adj)  # doctest: +SKIP
    """
    state, config, dataset = read_run(run_dir, purpose)
    model = build_model(config, int(state["in_channels"]))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise GraphSSLError(f"{purpose} {run_dir}: the checkpoint does not fit its own config "
                            f"({first_line(err)})") from None
    return model, config, dataset


def write_results(out: str | Path, metrics: dict[str, Any], spectra: dict[str, Any]) -> None:
    """Write ``spectra.json``, then ``metrics.json``: the last file a finished run writes, so its presence
    means the run is complete.

    Example:
        >>> write_results("runs/cora-wr", {"test_acc": 0.8}, {"final": {}, "history": []})  # doctest: +SKIP
    """
    out = Path(out)
    write_json(out / SPECTRA, spectra)
    write_json(out / METRICS, metrics)
