"""Hyper-parameter search that chooses on validation accuracy only: ``graphssl tune``.

A search space (:mod:`graphssl.search_space`) maps dotted config keys to lists
of values or ranges.  A trial is one point of the space trained with ``seeds``
seeds (``train.seed`` = base seed, base seed + 1, ...) and probed; its score is
the mean validation accuracy.  The probe is given the train and validation
nodes only, so test labels are never read, let alone used to choose.

Each finished (trial, seed) leaves one JSON in ``OUT/results/`` holding its
config, written atomically; running the same command again skips them, so a
killed search loses at most the runs in flight.  A training two trials share (a
point a random search over lists drew twice, or points differing only in keys
their schedule never reads) runs once: the later trial's files are copies,
marked ``same_as`` the trial that trained it.  Each run's per-step log is
``OUT/logs/<trial>__seed<k>.csv`` (with ``train.probe_every``, validation
accuracy over training).  ``OUT/trials.csv`` and
``OUT/trials.md`` list the finished trials, ``OUT/best.yaml`` is the winner's
complete config (usable as ``--config``), ``OUT/tune.json`` the search's own
settings.  ``OUT`` must be new, empty or this search's folder: one holding
anything else (another run's files) is refused.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .config import (dataset_name, dump_config, is_number, map_leaves, set_key, training_identity, with_defaults,
                     without_keys)
from .data import cached_graph
from .devices import resolve_device
from .errors import DivergenceError, GraphSSLError, Interrupted, first_line, warn
from .evaluate import validation_only
from .files import atomic_write, claim_folder, make_folder, read_json, read_json_or_warn, write_json, write_text
from .parallel import check_jobs, run_parallel
from .pipeline import train_and_evaluate
from .search_space import Space, check_search, is_small_grid, sample_trials, trial_config
from .tables import csv_text, mean_std


# --- one training run (in this process or a worker) -------------------------------------------------------

def run_seed(dataset: str, config: dict[str, Any], data_root: str | None, device: str,
             log_path: str | None = None) -> dict[str, Any]:
    """Train and probe one seed of a trial on the train and validation nodes; a diverged run is a result.

    ``log_path``: where the run's per-step log goes (:mod:`graphssl.training_log`); it changes nothing in
    the training.

    Returns:
        ``{"status": "ok", "metrics": {...}}`` or ``{"status": "diverged", "message": ...}``.

    Example:
        >>> run_seed("cora", config, "data", "cpu")["metrics"]["val_acc"]  # doctest: +SKIP
        0.79
    """
    executed = copy.deepcopy(config)
    # For speed, no spectra history during training: it changes nothing in a trial's result, except under the
    # adaptive WERank schedule, which moves alpha by the rank measured at those steps.
    if config["werank"]["schedule"] != "adaptive":
        set_key(executed, "train.spectra_every", 0)
    graph = validation_only(cached_graph(dataset, data_root))
    try:
        result = train_and_evaluate(None, dataset, executed, graph, resolve_device(device),
                                    log_path=Path(log_path) if log_path is not None else None)
    except DivergenceError as err:
        return {"status": "diverged", "message": str(err)}
    assert result is not None and "test_acc" not in result.metrics
    keep = ("val_acc", "train_acc", "probe_l2", "probe_c", "rank", "rankme", "final_loss", "final_werank",
            "final_werank_alpha", "train_seconds", "threads")
    return {"status": "ok", "metrics": {k: result.metrics[k] for k in keep if k in result.metrics}}


# --- the search -------------------------------------------------------------------------------------------

@dataclass
class Trial:
    """One point of the space: its searched ``values``, the full ``config`` they give, the ``seeds`` it trains,
    and the ``results`` (metrics by seed) finished so far."""

    index: int
    values: dict[str, Any]
    config: dict[str, Any]
    seeds: list[int]
    results: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"t{self.index:03d}"

    @property
    def finished(self) -> bool:
        return all(seed in self.results for seed in self.seeds)

    def row(self) -> dict[str, Any]:
        runs = [self.results[seed] for seed in self.seeds]
        ok = [r["metrics"] for r in runs if r["status"] == "ok"]
        row: dict[str, Any] = {"trial": self.name, **{k: _cell(v) for k, v in self.values.items()}}
        if len(ok) < len(runs):
            row.update(status="diverged", val_acc_mean="", val_acc_std="", rankme_mean="")
        else:
            mean, std = mean_std([m["val_acc"] for m in ok])
            row.update(status="ok", val_acc_mean=mean, val_acc_std=std,
                       rankme_mean=mean_std([m["rankme"] for m in ok])[0])
        row.update(seeds=len(runs), train_seconds=round(sum(m["train_seconds"] for m in ok), 1),
                   same_as=next((r["same_as"] for r in runs if "same_as" in r), ""))
        return row


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else value


def _seed_path(out: Path, trial: Trial, seed: int) -> Path:
    return out / "results" / f"{trial.name}__seed{seed}.json"


def _log_path(out: Path, trial: Trial, seed: int) -> Path:
    return out / "logs" / f"{trial.name}__seed{seed}.csv"


def _read_seed(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    saved = read_json_or_warn(path)  # absent, or unreadable (with a warning): run it (again)
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict) \
            or training_identity(saved["config"]) != training_identity(config):
        return None  # another setting's: run it again
    metrics = saved.get("metrics")
    if saved.get("status") == "diverged" or saved.get("status") == "ok" and isinstance(metrics, dict) \
            and all(is_number(metrics.get(key)) for key in ("val_acc", "rankme", "train_seconds")):
        return saved
    warn(f"{path} is unreadable (not a result tune wrote, or edited); making that run again (or copying it from a "
         f"trial with the same training)")
    return None


# Accuracies arrive as float32 fractions, so two trials with the same count of right validation nodes can differ
# in the 8th digit: means this close (far below one node of any split) are a tie, which goes to the earliest trial.
SAME_ACCURACY = 1e-6


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The finished, non-diverged trial with the highest mean validation accuracy (the earliest on a tie).

    Returns:
        The trial, or ``None`` when none qualifies.

    Example:
        >>> best_trial([]) is None
        True
    """
    scored = [t for t in trials if t.finished and t.row()["status"] == "ok"]
    if not scored:
        return None
    top = max(t.row()["val_acc_mean"] for t in scored)
    return min((t for t in scored if t.row()["val_acc_mean"] >= top - SAME_ACCURACY), key=lambda t: t.index)


@dataclass
class TuneResult:
    """A search as it stands: its folder, every trial, and the best one on validation (None before any finished)."""

    out: Path
    trials: list[Trial]
    best: Trial | None


def _identity(dataset: str, space: Space, base: dict[str, Any], sampler_seed: int) -> dict[str, Any]:
    return {"dataset": dataset, "sampler_seed": sampler_seed, "base_config": base,
            "space": {k: v if isinstance(v, list) else dataclasses.asdict(v) for k, v in space.items()}}


TUNE_FILES = ("tune.json", "results", "logs", "trials.csv", "trials.md", "best.yaml")


def _search_differences(saved: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """What differs between a folder's ``tune.json`` (``saved``) and the search ``identity`` describes: its
    dataset, space, sampler seed, or a base config whose trials train other runs (empty: the same search).  The
    bases are compared less the keys the space sets (every trial overrides them) and, unless the space moves
    ``werank.schedule``, less the keys the base's schedule leaves unread
    (:func:`~graphssl.config.training_identity`)."""
    space = identity["space"]

    def base(config: Any) -> Any:
        complete = with_defaults(config) if "werank.schedule" in space else training_identity(config)
        return without_keys(complete, space) if isinstance(complete, dict) else complete

    differences = [key.replace("_", " ") for key, value in identity.items()
                   if key != "base_config" and saved.get(key) != value]
    return differences + (["base config"] if base(saved.get("base_config")) != base(identity["base_config"]) else [])


def _claim_folder(out: Path, identity: dict[str, Any]) -> tuple[Path, bool | None]:
    """``out``, new, empty, or this very search's folder (its tune.json says so), to continue it; with the kind
    of search it holds (``True``: grid, ``False``: random, ``None``: new, or made before graphssl recorded it)."""
    out = claim_folder(out, "tune", lambda entry: entry.name in TUNE_FILES)
    settings = out / "tune.json"
    if not settings.is_file():
        return out, None
    try:
        saved = read_json(settings)
        if not isinstance(saved, dict):
            raise TypeError(f"it holds a {type(saved).__name__}")
        if "base_config" not in saved:
            raise KeyError("base_config")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, GraphSSLError) as err:
        raise GraphSSLError(f"--out {out}: its tune.json is unreadable or not graphssl tune's ({first_line(err, 80)}); "
                            f"restore it, or choose a new --out (finished trials are never overwritten)") from None
    differences = _search_differences(saved, identity)
    if differences:
        named = " and ".join([", ".join(differences[:-1]), differences[-1]] if len(differences) > 1 else differences)
        raise GraphSSLError(f"--out {out} holds a search with another {named}; choose a new --out (finished trials "
                            f"are never overwritten)")
    return out, {"grid": True, "random": False}.get(saved.get("search"))


def run_tune(dataset: str, space: Space, base: dict[str, Any], out: str | Path, *, trials: int = 64,
             seeds: int = 3, jobs: int | None = None, sampler_seed: int = 0, data_root: str | Path | None = None,
             device: str = "auto", progress: bool = True, command: str | None = None) -> TuneResult:
    """Search ``space`` around the ``base`` config; choose on mean validation accuracy over ``seeds`` seeds.

    Args:
        dataset: a dataset name (:data:`graphssl.config.DATASETS`, any case).
        space: from :func:`~graphssl.search_space.read_space` or :func:`~graphssl.search_space.parse_space`.
        base: a validated config; every trial is ``base`` with its values set.
        out: the search folder; running again with the same settings continues it.
        trials: number of random draws (or the grid's size when smaller;
            see :func:`~graphssl.search_space.sample_trials`).
        seeds: seeds per trial, ``base``'s ``train.seed`` onwards.
        jobs: trainings run at once, each in its own process with ``cores // jobs`` torch threads
            (default :func:`graphssl.parallel.default_jobs`).
        sampler_seed: seed of the random search.
        command: the command line, recorded in ``best.yaml`` and ``trials.md``.

    Returns:
        The trials (in order, with their per-seed results) and the best one.

    Example:
        >>> from graphssl.search_space import parse_space
        >>> space = parse_space({"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "space")
        >>> result = run_tune("cora", space, load_config(None), "runs/tune", trials=8, seeds=2)  # doctest: +SKIP
        >>> result.best.values  # doctest: +SKIP
    """
    dataset = dataset_name(dataset)
    check_search(space, base, trials, seeds)
    jobs = check_jobs(jobs)
    resolve_device(device)  # a bad --device fails here, not in every trial
    first_seed = base["train"]["seed"]
    grid = is_small_grid(space, trials)

    def trials_of(grid: bool) -> list[Trial]:  # each config validated: a value it cannot take is an error
        return [Trial(i, point, trial_config(base, point), list(range(first_seed, first_seed + seeds)))
                for i, point in enumerate(sample_trials(space, trials, sampler_seed, grid=grid))]

    all_trials = trials_of(grid)  # checked before any folder is made
    identity = _identity(dataset, space, base, sampler_seed)
    out, started_as = _claim_folder(Path(out), identity)
    if started_as is not None and started_as != grid:  # --trials crossed the grid's size: keep the folder's kind
        grid = started_as
        all_trials = trials_of(grid)
    make_folder(out / "results")
    write_json(out / "tune.json", {**identity, "search": "grid" if grid else "random", "trials": trials,
                                   "seeds": seeds, "command": command})
    # A random search over lists can draw the same point twice, and points can differ only in keys their schedule
    # never reads: each distinct training runs once, and every (trial, seed) it stands for gets its result.
    same_training: dict[str, list[tuple[Trial, int, dict[str, Any]]]] = {}
    for trial in all_trials:
        for seed in trial.seeds:
            config = copy.deepcopy(trial.config)
            config["train"]["seed"] = seed
            saved = _read_seed(_seed_path(out, trial, seed), config)
            if saved is not None:
                trial.results[seed] = saved
            same_training.setdefault(_training_key(config), []).append((trial, seed, config))
    pending = []
    for runs in same_training.values():
        holder = next((trial for trial, seed, _ in runs if seed in trial.results), None)
        if holder is None:
            pending.append(runs)
        else:  # a result file went missing while a copy of it (or its original) remains
            done = holder.results[runs[0][1]]
            trained = done.get("same_as", holder.name)  # checked: a hand-edited same_as must name one of them
            if trained not in {trial.name for trial, _, _ in runs}:
                trained = holder.name
            _record(out, runs, holder, trained, {key: done[key] for key in _RESULT_KEYS if key in done})

    def render() -> Trial | None:
        best = best_trial(all_trials)
        write_tables(out, all_trials, space, best, command)
        return best

    best = render()
    bar = tqdm(total=len(all_trials), initial=sum(t.finished for t in all_trials), desc="tune", unit="trial",
               disable=not progress, dynamic_ncols=True, smoothing=0)
    _show_best(bar, best)
    root = str(data_root) if data_root is not None else None
    calls = [(dataset, runs[0][2], root, device, str(_log_path(out, runs[0][0], runs[0][1]))) for runs in pending]
    try:
        with bar:
            for index, result in run_parallel(run_seed, calls, jobs):
                trained = pending[index][0][0]
                for trial in _record(out, pending[index], trained, trained.name, result):
                    if trial.finished:
                        best = render()
                        bar.update(1)
                        _show_best(bar, best)
    except KeyboardInterrupt:
        done = sum(t.finished for t in all_trials)
        raise Interrupted(f"interrupted with {done} of {len(all_trials)} trials finished; run the same command "
                          f"again to continue (finished runs are kept)") from None
    return TuneResult(out, all_trials, best)


def _training_key(config: dict[str, Any]) -> str:
    """A text equal for two configs exactly when their training identities compare equal (as bench's and tune's
    reuse compares them: ``0 == 0.0``)."""
    def number_as_float(value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return json.dumps(map_leaves(training_identity(config), number_as_float), sort_keys=True)


# What run_seed returns, and so what a copy of a result file carries over.
_RESULT_KEYS = ("status", "metrics", "message")


def _record(out: Path, runs: list[tuple[Trial, int, dict[str, Any]]], holder: Trial, trained: str,
            result: dict[str, Any]) -> list[Trial]:
    """Give ``result``, held by trial ``holder`` and trained by the trial named ``trained``, to each (trial, seed)
    of ``runs`` (that one training, drawn by one trial or more) that lacks it: its result file (marked ``same_as``
    the trial that trained it, unless it is that trial) and the holder's per-step log.

    Returns:
        The trials that received it.
    """
    given = []
    for trial, seed, config in runs:
        if seed in trial.results:
            continue
        copy_of = {"same_as": trained} if trial.name != trained else {}
        write_json(_seed_path(out, trial, seed), {"trial": trial.name, "seed": seed, "values": trial.values,
                                                  "config": config, **copy_of, **result})
        log, own_log = _log_path(out, holder, seed), _log_path(out, trial, seed)
        if trial is not holder:  # the holder's log, never one left by an earlier, killed run of this trial
            if log.is_file():  # as bytes: an edited log is the holder's to answer for, not a reason to fail here
                text = log.read_bytes()
                atomic_write(own_log, lambda handle: handle.write(text))
            else:
                own_log.unlink(missing_ok=True)
        trial.results[seed] = {**copy_of, **result}
        given.append(trial)
    return given


def _show_best(bar: tqdm, best: Trial | None) -> None:
    if best is not None:
        bar.set_postfix(best_val=f"{100 * best.row()['val_acc_mean']:.2f}%", trial=best.name)


# --- tables -----------------------------------------------------------------------------------------------

def write_tables(out: Path, trials: Sequence[Trial], space: Space, best: Trial | None, command: str | None) -> None:
    """Write ``trials.csv`` (finished trials, in order), ``trials.md`` (best first) and ``best.yaml``.

    Example:
        >>> write_tables(Path("runs/tune-cora"), result.trials, space, result.best, None)  # doctest: +SKIP
    """
    finished = [t for t in trials if t.finished]
    rows = {t.name: t.row() for t in finished}
    columns = ["trial", *space, "val_acc_mean", "val_acc_std", "rankme_mean", "seeds", "train_seconds", "status",
               "same_as"]
    write_text(out / "trials.csv", csv_text(columns, rows.values()))

    ranked = sorted(finished, key=lambda t: (t is not best, rows[t.name]["status"] != "ok",
                                             -(rows[t.name]["val_acc_mean"] or 0), t.index))
    copies = sum(bool(row["same_as"]) for row in rows.values())
    repeated = f" ({copies} of them the same training as an earlier trial: 'copy of')" if copies else ""
    lines = [f"# graphssl tune: {len(finished)} of {len(trials)} trials finished{repeated}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["Chosen on mean validation accuracy over seeds; test accuracy is neither computed nor shown.", ""]
    if best is not None:
        lines += [f"Best: **{best.name}**, validation {validation_text(rows[best.name])}; its config is `best.yaml`.",
                  ""]
    lines += ["| trial | " + " | ".join(space) + " | val acc (%) | RankMe | train s | seeds | copy of |",
              "|---" * (len(space) + 6) + "|"]
    for trial in ranked:
        row = rows[trial.name]
        values = " | ".join(str(row[k]) for k in space)
        score = validation_text(row) if row["status"] == "ok" else "diverged"
        rankme = f"{row['rankme_mean']:.1f}" if row["status"] == "ok" else ""
        lines.append(f"| {trial.name} | {values} | {score} | {rankme} | {row['train_seconds']} | {row['seeds']} "
                     f"| {row['same_as']} |")
    write_text(out / "trials.md", "\n".join(lines) + "\n")

    if best is not None:
        row = rows[best.name]
        header = ["# Chosen by graphssl tune on validation accuracy only (test labels never read):"]
        header += [f"#   {command}"] if command else []
        seeds = f"seeds {best.seeds[0]}-{best.seeds[-1]}" if len(best.seeds) > 1 else f"seed {best.seeds[0]}"
        header += [f"# trial {best.name} of {len(trials)}: validation {validation_text(row)} over {seeds}"]
        write_text(out / "best.yaml", "\n".join(header) + "\n" + dump_config(best.config))


def validation_text(row: dict[str, Any]) -> str:
    """A trial's mean validation accuracy in percent, with its spread over seeds when it has more than one.

    Example:
        >>> validation_text({"val_acc_mean": 0.8, "val_acc_std": 0.01, "seeds": 3})
        '80.00 ± 1.00 %'
    """
    mean = f"{100 * row['val_acc_mean']:.2f}"
    return f"{mean} %" if row["seeds"] == 1 else f"{mean} ± {100 * row['val_acc_std']:.2f} %"
