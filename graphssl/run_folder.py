"""Run folders: naming and creating them, writing their files atomically, reading them back.

A run folder holds ``config.yaml`` (the effective config, written first),
``checkpoint.pt`` (online encoder, predictor, target encoder, optimizer,
random-generator states, step; replaced every ``train.checkpoint_every``
steps), and ``metrics.json`` and ``spectra.json``, written last and only by a
run that finished.  While a process writes a folder it holds ``.lock`` there
(:mod:`graphssl.locks`), so a second run into the same folder stops at once.

Every file is written atomically (:func:`graphssl.files.atomic_write`), so a
kill or a full disk at any moment leaves either the previous file or the new
one, never half of one.  Checkpoints hold
only tensors and plain Python values and are read with
``torch.load(..., weights_only=True)``: a file carrying pickled code is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import torch

from .config import (DATASETS, config_differences, dump_config, is_number, is_whole_number, read_yaml,
                     read_yaml_file, size_settings, validate, with_defaults, yaml_file_text)
from .devices import memory_errors_explained
from .errors import GraphSSLError, first_line, load_refusal
from .files import atomic_write, is_temporary, make_folder, write_error, write_json, write_text
from .locks import LockTaken, exclusive_lock
from .model import SSLModel, build_model
from .run_layout import CHECKPOINT, CONFIG, LOCK, METRICS, SPECTRA, check_run_folder

LOCK_PATIENCE_S = 3.0  # how long a held lock is retried before another live writer is an error


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
        raise GraphSSLError(f"{path} cannot be loaded safely ({load_refusal(err)}); "
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
        >>> default_run_dir("cora", load_config(None)).name.startswith("cora-werank0.02355-seed0-")
        True
        >>> default_run_dir("cora", load_config(None, {"method": "grace", "werank.alpha": 0})).name.startswith("cora-grace-werank0-")
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


def _is_scratch(name: str) -> bool:
    """The lock, and a temporary file a killed writer left (:func:`atomic_write`): no part of a run."""
    return name == LOCK or is_temporary(name)


def _config_written_by_graphssl(out: Path) -> bool:
    """Whether ``out/config.yaml`` is exactly what graphssl writes (not a file of the user's)."""
    try:
        text = yaml_file_text(out / CONFIG, "--out", "a run folder")  # a regular file, not huge
        config = with_defaults(read_yaml(text, str(out / CONFIG)))
        validate(config)
        return dump_config(config) == text
    except (OSError, ValueError, KeyError, TypeError, GraphSSLError):
        return False


def _check_reusable(out: Path) -> None:
    """Refuse a folder that holds anything a run would overwrite; say what it holds and what to do instead."""
    held = sorted(path.name for path in out.iterdir() if not _is_scratch(path.name))
    started = CONFIG in held and _config_written_by_graphssl(out)
    if not held or (held == [CONFIG] and started):
        return  # new, or left by a run that failed before its first step: nothing there to lose
    if METRICS in held:
        problem = "a finished run; choose a new folder (runs are never overwritten)"
    elif CHECKPOINT in held:
        problem = f"an unfinished run; continue it with 'graphssl train --resume {out}', or choose a new folder"
    elif started:
        problem = ("a run that stopped before its first checkpoint, so it cannot be resumed; delete the folder to "
                   "train there again (its log.csv goes with it), or choose a new folder")
    else:
        problem = (f"{', '.join(held[:3])}{' ...' if len(held) > 3 else ''}; choose a new folder (runs are never "
                   f"overwritten)")
    raise GraphSSLError(f"--out {out} already exists and holds {problem}")


@contextmanager
def writing_run_dir(run_dir: str | Path, flag: str) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block: no other graphssl process writes that folder meanwhile.

    ``flag`` names the option that gave the folder, in the error when another live process holds it.

    Yields:
        ``run_dir`` as a :class:`~pathlib.Path`, locked until the block ends.

    Example:
        >>> import tempfile
        >>> with writing_run_dir(tempfile.mkdtemp(), "--resume") as out:
        ...     (out / LOCK).is_file()
        True
    """
    out = Path(run_dir)
    # A process killed a moment ago still holds the lock until the kernel has finished it off: resuming right
    # after a kill must not fail for that, so a held lock is retried for a few seconds before it is an error.
    deadline = time.monotonic() + LOCK_PATIENCE_S
    with ExitStack() as stack:
        while True:
            try:
                stack.enter_context(exclusive_lock(out / LOCK, wait=False))
                break
            except LockTaken as taken:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                owner = f"pid {taken.pid}" if taken.pid is not None else "pid unknown"
                raise GraphSSLError(f"{flag} {out}: another graphssl process ({owner}) is writing to this folder; "
                                    f"wait for it to finish or stop it, or choose another folder") from None
        yield out


@contextmanager
def new_run_dir(out_dir: str | Path, config: dict[str, Any]) -> Iterator[Path]:
    """Create the run folder ``out_dir``, hold its lock (:func:`writing_run_dir`) and write ``config`` there as
    ``config.yaml``.

    A run is never overwritten: a folder is reused only when it is empty or holds nothing but the config.yaml
    of a run that failed before its first step; otherwise the error says what it holds and what to do.

    Yields:
        The run folder as a :class:`~pathlib.Path`, locked until the block ends.

    Example:
        >>> import tempfile
        >>> from graphssl.config import load_config
        >>> with new_run_dir(Path(tempfile.mkdtemp()) / "run", load_config(None)) as out:
        ...     (out / CONFIG).is_file()
        True
    """
    out = Path(out_dir)
    try:
        if out.exists() and not out.is_dir():
            raise GraphSSLError(f"--out {out} is a file; choose a folder (runs are never overwritten)")
    except OSError as err:  # a name too long, a folder that cannot be read
        raise write_error(out, err, "use the folder") from None
    make_folder(out)
    with writing_run_dir(out, "--out"):
        _check_reusable(out)
        write_text(out / CONFIG, dump_config(config))
        yield out


def discard_run_dir(run_dir: str | Path) -> None:
    """Delete a run folder that no live process is writing (bench's runs made with other settings, or killed
    before their first checkpoint); one that is being written is an error.

    Example:
        >>> import tempfile
        >>> discard_run_dir(tempfile.mkdtemp())
    """
    out = Path(run_dir)
    if out.is_dir():
        with writing_run_dir(out, "bench run"):
            shutil.rmtree(out, ignore_errors=True)


def read_run(run_dir: str | Path, purpose: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A run folder's checkpoint, read as data only; ``purpose`` names the flag in errors.

    Returns:
        ``(checkpoint state, config, dataset name)``.

    Example:
        >>> state, config, dataset = read_run("runs/cora-wr", "graphssl eval")  # doctest: +SKIP
    """
    out = check_run_folder(run_dir, purpose)
    state = load_checkpoint(out / CHECKPOINT)
    try:
        saved = state["config"]
        # A checkpoint holds the whole effective config: one without its sections would silently train or
        # evaluate with the built-in defaults instead.
        if not (isinstance(saved, dict) and all(isinstance(saved.get(s), dict) for s in ("encoder", "optim"))):
            raise TypeError
        config, dataset, in_channels = with_defaults(saved), state["dataset"], state["in_channels"]
        validate(config)
        if not (isinstance(dataset, str) and dataset in DATASETS and isinstance(state["model"], dict)
                and all(isinstance(name, str) for name in state["model"])
                and is_whole_number(in_channels) and in_channels > 0):
            raise TypeError
    except (KeyError, TypeError, ValueError, AttributeError, GraphSSLError):
        raise GraphSSLError(f"{purpose} {out}: {CHECKPOINT} is not a graphssl training checkpoint, or was altered; "
                            f"restore it, or give a run folder written by 'graphssl train'") from None
    return state, config, dataset


def _is_byte_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _resume_problem(state: dict[str, Any], steps: int) -> str | None:
    """What in a checkpoint's training state, as :func:`graphssl.train.pretrain` saves it, could not be resumed
    from; ``None`` when nothing."""
    step, rng, optimizer, timings = (state.get(key) for key in ("step", "rng", "optimizer", "timings"))
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    if not (is_whole_number(step) and 0 <= step <= steps):
        return f"its step is {step!r}, not a whole number from 0 to {steps} (optim.steps)"
    if not (isinstance(rng, list) and rng and all(isinstance(r, dict) and _is_byte_tensor(r.get("torch"))
                                                  and all(map(_is_byte_tensor, r.values())) for r in rng)):
        return "its rng is not a list of random-generator states (byte tensors), one per process"
    if not (isinstance(groups, list) and groups and isinstance(optimizer.get("state"), dict)
            and all(isinstance(group, dict) and isinstance(group.get("params"), list) for group in groups)):
        return "its optimizer state has no parameter groups"
    if not (isinstance(timings, dict) and all(is_number(timings.get(k)) for k in ("train_seconds", "step_seconds"))):
        return "its timings are not numbers of seconds"
    if not all(is_number(state.get(key)) for key in ("loss", "werank_term")):
        return "its loss or werank_term is not a number"
    if not (isinstance(state.get("spectra"), list) and _is_json(state["spectra"])):
        return "its spectra are not a list of spectra"
    if not (state.get("log_bytes") is None or is_whole_number(state["log_bytes"]) and state["log_bytes"] >= 0):
        return "its log_bytes is not a byte count"
    return None


def read_resumable_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """:func:`read_run` for ``--resume``, with the training state checked field by field too.

    Returns:
        ``(checkpoint state, config, dataset name)``.

    Example:
        >>> state, config, dataset = read_resumable_run("runs/cora-wr")  # doctest: +SKIP
    """
    state, config, dataset = read_run(run_dir, "--resume")
    problem = _resume_problem(state, config["optim"]["steps"])
    if problem is not None:
        raise GraphSSLError(f"--resume {run_dir}: {CHECKPOINT} cannot be resumed from, {problem}; it was altered "
                            f"or not written by graphssl: restore it, or start a new run")
    _check_config_file(Path(run_dir), config)
    return state, config, dataset


def _check_config_file(out: Path, config: dict[str, Any]) -> None:
    """A resumed run trains with its checkpoint's config, so ``config.yaml`` (the run's record of it) must say
    the same: a deleted one is written again, an edited one refused rather than left contradicting the run."""
    path = out / CONFIG
    if not path.exists():
        write_text(path, dump_config(config))
        return
    written = with_defaults(read_yaml_file(path, "--resume", f"the {CONFIG} the run started with (or delete it: "
                                                             f"--resume writes it again from {CHECKPOINT})"))
    changed = config_differences(written, config) if isinstance(written, dict) else ["(the whole file)"]
    if changed:
        raise GraphSSLError(f"--resume {out}: {CHECKPOINT}'s config and {CONFIG} differ in {changed[0]}, but a run "
                            f"resumes with the config it started with: restore it or {CONFIG}, whichever was "
                            f"changed (a deleted {CONFIG} is written again from {CHECKPOINT}), or start a new run "
                            f"with --config {path}")


def load_trained_model(run_dir: str | Path, purpose: str = "run") -> tuple[SSLModel, dict[str, Any], str]:
    """Rebuild a run's model from its checkpoint (read as data only).

    Returns:
        ``(model, config, dataset name)``, the model on the CPU.

    Example:
        >>> model, config, dataset = load_trained_model("runs/cora-wr")  # doctest: +SKIP
        >>> embeddings = model.encoder(x, adj)  # doctest: +SKIP
    """
    state, config, dataset = read_run(run_dir, purpose)
    with memory_errors_explained(torch.device("cpu"), f"{size_settings(config)}; {state['in_channels']} features"):
        model = build_model(config, state["in_channels"])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:  # any way weights can misfit
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
