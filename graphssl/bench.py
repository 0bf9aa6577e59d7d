"""Grids of trainings and their tables: does WERank prevent collapse, and does it buy accuracy?

``run_bench`` trains every combination of datasets x methods x WERank
coefficients x swept config values x seeds.  Each finished run leaves one JSON in
``OUT/results/`` (written atomically, so a killed sweep never leaves half of
one) holding its whole effective config; running the grid again skips the runs
that finished with the config now asked for (equal in every key the training
reads: :func:`~graphssl.config.training_identity`), resumes an interrupted
one from its checkpoint, and runs again any whose settings changed or whose
file is unreadable.  ``OUT/table.md`` and ``OUT/table.csv`` give, per dataset,
method and setting, mean ± sample standard deviation (n - 1) over seeds of test and
validation accuracy, rank and RankMe, the mean training time, and the number
of seeds; when the runs probed during training (``train.probe_every``), also
the mean step at which validation accuracy peaked.  Each run's folder
(``OUT/runs/<name>/``) keeps its ``log.csv``.  ``OUT`` must be new, empty or a
bench folder: one holding anything bench does not write (another run's files)
is refused, so nothing of another run is replaced.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .bench_grid import Setting, plan_runs
from .config import is_number, is_recorded_alpha, is_whole_number, read_yaml_file, training_identity
from .data import cached_graph
from .devices import resolve_device
from .errors import GraphSSLError, NotAsWritten, warn
from .files import claim_folder, is_temporary, make_folder, read_json, read_json_or_warn, write_json, write_text
from .parallel import check_jobs, run_parallel
from .pipeline import resume_training, run_training
from .run_folder import discard_run_dir
from .run_layout import CHECKPOINT, CONFIG, METRICS
from .tables import SWEEP_TABLE, csv_text, mean_std
from .training_log import LOG, peak_step, read_log, require_tensorboard


def read_result(path: Path) -> dict[str, Any] | None:
    """A finished run's result JSON, or ``None`` (with a one-line warning) when it is unreadable.

    Returns:
        The result: ``dataset, werank, settings, seed, config, metrics``.

    Example:
        >>> read_result(Path("runs/bench/results/cora__werank0.1__seed0.json"))["metrics"]["test_acc"]  # doctest: +SKIP
        0.82
    """
    result = read_json_or_warn(path)
    if result is not None and not is_result(result):
        warn(f"{path} is unreadable (not a result bench wrote, or edited); running that run again")
        return None
    return result


def is_result(result: Any) -> bool:
    """Whether ``result`` (a file of ``OUT/results/``, parsed) has what the tables read, of the types bench writes.

    Example:
        >>> is_result({"dataset": "cora", "settings": {}, "metrics": {"test_acc": "high"}})
        False
    """
    return isinstance(result, dict) and isinstance(result.get("settings"), dict) \
        and isinstance(result.get("dataset"), str) and is_whole_number(result.get("seed")) \
        and _is_metrics(result.get("metrics"))


def _is_metrics(metrics: Any) -> bool:
    """Whether ``metrics`` (a run's metrics.json) has what the tables read, of the types a run writes."""
    if not isinstance(metrics, dict):
        return False
    return all(is_number(metrics.get(key)) for key in ("test_acc", "val_acc", "rank", "rankme", "train_seconds")) \
        and is_recorded_alpha(metrics.get("werank"))


def _same_config(run_dir: Path, config: dict[str, Any]) -> bool:
    try:
        return training_identity(read_yaml_file(run_dir / CONFIG, "bench", "a run folder")) == training_identity(config)
    except GraphSSLError:  # any unreadable config is another one
        return False


def _with_peak(run_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` plus ``val_acc_peak_step`` when the run's log.csv holds validation accuracies."""
    try:
        peak = peak_step(read_log(run_dir / LOG)) if (run_dir / LOG).is_file() else None
    except NotAsWritten as err:  # an edited log: the run's metrics stand without it
        warn(f"{err.path}: {err.problem}; bench tables this run without its peak validation step")
        peak = None
    return {**metrics, "val_acc_peak_step": peak[0]} if peak else metrics


def run_one(run_dir: str, dataset: str, config: dict[str, Any], data_root: str | None, device: str
            ) -> dict[str, Any]:
    """Metrics of the run in ``run_dir`` with ``config``: reused when it finished with this config (the same
    :func:`~graphssl.config.training_identity`), resumed from its checkpoint when it was interrupted, otherwise
    trained from scratch.

    Returns:
        The run's metrics.json content, with ``val_acc_peak_step`` (the step of the highest validation
        accuracy in its log.csv) when it probed during training.

    Example:
        >>> run_one("runs/bench/runs/cora__werank0__seed0", "cora", config, "data", "cpu")  # doctest: +SKIP
    """
    out = Path(run_dir)
    if _same_config(out, config):
        if (out / METRICS).is_file():
            try:
                metrics = read_json(out / METRICS)
            except (OSError, ValueError):
                metrics = None
            if _is_metrics(metrics):
                return _with_peak(out, metrics)
            warn(f"{out / METRICS} is not a run's metrics (truncated or edited); training that run again")
        elif (out / CHECKPOINT).is_file():
            return _with_peak(out, resume_training(out, graph=cached_graph(dataset, data_root), device=device,
                                                   progress=False).metrics)
    discard_run_dir(out)  # other settings, or killed before its first checkpoint
    return _with_peak(out, run_training(dataset, config, out_dir=out, device=device, progress=False,
                                        graph=cached_graph(dataset, data_root)).metrics)


BENCH_FILES = ("results", "runs", "table.md", "table.csv")


def _drawn_by_plot(entry: Path) -> bool:
    """Whether a folder entry is one of 'graphssl plot''s pictures or its sweep table (or a temporary of one)."""
    return entry.suffix == ".png" or entry.name == SWEEP_TABLE or is_temporary(entry.name)


def _bench_owns(entry: Path) -> bool:
    """Whether a folder entry is one bench writes, or what 'graphssl plot' drew from the folder, there or in
    ``plots/`` (plot's default for one folder): bench leaves those alone, so bench, plot, bench again works."""
    if entry.name in BENCH_FILES or _drawn_by_plot(entry):
        return True
    try:
        return entry.name == "plots" and entry.is_dir() and all(_drawn_by_plot(e) for e in entry.iterdir())
    except OSError:  # unreadable: not known to be plot's
        return False


def run_bench(datasets: Sequence[str], out: str | Path, *, methods: Sequence[str] | None = None,
              weranks: Sequence[Any] | None = None, seeds: int = 3,
              first_seed: int = 0, steps: int | None = None, sweeps: Sequence[str] = (),
              config: str | Path | None = None, data_root: str | Path | None = None, device: str = "auto",
              jobs: int | None = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Train the grid datasets × methods × WERank coefficients × swept values × seeds, write the tables, return
    their rows.

    A finished run is reused only when its whole effective config (every key,
    steps and seed included, less the keys its training never reads:
    :func:`~graphssl.config.training_identity`) equals the one now asked for;
    otherwise it is run again.  ``methods`` (names of
    :data:`graphssl.config.METHOD_NAMES`; ``None``: the config's own) and
    ``weranks`` (``None``: the config's) are grid dimensions like the ``sweeps``.
    Seeds are ``first_seed … first_seed + seeds - 1``.  ``jobs``
    trainings run at once (:func:`graphssl.parallel.run_parallel`; ``None``:
    :func:`graphssl.parallel.default_jobs`).

    Returns:
        One row per setting (:func:`summarize`), as written to ``OUT/table.csv``.

    Example:
        >>> rows = run_bench(["cora"], "runs/bench", methods=["bgrl"], weranks=[0, 0.1], seeds=10)  # doctest: +SKIP
        >>> [(row["werank"], round(100 * row["test_acc_mean"], 1)) for row in rows]  # doctest: +SKIP
        [(0, 80.7), (0.1, 82.3)]
    """
    grid, runs, configs = plan_runs(datasets, methods=methods, weranks=weranks, seeds=seeds, first_seed=first_seed,
                                    steps=steps, sweeps=sweeps, config=config)  # bad values fail before any run
    resolve_device(device)
    jobs = check_jobs(jobs)  # bad values fail before the folder is made
    if any(c["train"]["tensorboard"] for c in configs):
        require_tensorboard()
    out = claim_folder(out, "bench", _bench_owns)
    make_folder(out / "results")
    results: dict[str, dict[str, Any]] = {}
    stale = 0
    for (setting, seed), run_config in zip(runs, configs):
        name = setting.run_name(seed)
        path = out / "results" / f"{name}.json"
        if path.is_file() and (result := read_result(path)) is not None:
            if training_identity(result.get("config")) == training_identity(run_config):
                results[name] = result
            else:
                stale += 1
    if stale:
        warn(f"{stale} finished run(s) in {out / 'results'} were made with other settings; running them again")
    pending = [(setting, seed, run_config) for (setting, seed), run_config in zip(runs, configs)
               if setting.run_name(seed) not in results]
    root = str(data_root) if data_root is not None else None
    calls = [(str(out / "runs" / setting.run_name(seed)), setting.dataset, run_config, root, device)
             for setting, seed, run_config in pending]
    with tqdm(total=len(runs), initial=len(runs) - len(pending), desc="bench", unit="run", disable=not progress,
              dynamic_ncols=True, smoothing=0) as bar:
        for index, metrics in run_parallel(run_one, calls, jobs):
            setting, seed, run_config = pending[index]
            name = setting.run_name(seed)
            results[name] = {"dataset": setting.dataset, "method": setting.method, "werank": setting.werank,
                             "settings": dict(setting.values), "seed": seed, "config": run_config, "metrics": metrics}
            write_json(out / "results" / f"{name}.json", results[name])
            bar.update(1)
            bar.set_postfix(test_acc=f"{metrics['test_acc']:.3f}", rank=metrics["rank"], refresh=False)
    rows = summarize(grid, [results[s.run_name(seed)] for s, seed in runs])
    write_tables(out, rows)
    return rows


def summarize(grid: Sequence[Setting], results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting: mean and sample std over seeds of test and validation accuracy, rank and RankMe,
    and the mean step of peak validation accuracy (``None`` unless every seed probed during training).

    A result without a ``method`` (made before methods existed, or without ``--methods``) is the config's;
    its metrics name it (BGRL when they are older than that).

    Returns:
        The rows, in the order of ``grid``.

    Example:
        >>> rows = summarize(grid, results)  # doctest: +SKIP
    """
    rows = []
    for setting in grid:
        mine = [r for r in results if r["dataset"] == setting.dataset and r.get("method") == setting.method
                and r["werank"] == setting.werank and r["settings"] == {k: v for k, v in setting.values}]
        metrics = [r["metrics"] for r in mine]
        row: dict[str, Any] = {"dataset": setting.dataset,
                               "method": setting.method or metrics[0].get("method", "bgrl"),
                               "werank": setting.werank if setting.werank is not None else metrics[0]["werank"],
                               "settings": setting.label(), "seeds": len(metrics)}
        for key in ("test_acc", "val_acc", "rank", "rankme"):
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std([float(m[key]) for m in metrics])
        row["train_seconds_mean"] = statistics.fmean(float(m["train_seconds"]) for m in metrics)
        peaks = [m.get("val_acc_peak_step") for m in metrics]
        row["val_peak_step_mean"] = statistics.fmean(peaks) if None not in peaks else None
        rows.append(row)
    return rows


COLUMNS = ("dataset", "method", "werank", "settings", "test_acc_mean", "test_acc_std", "val_acc_mean", "val_acc_std",
           "rank_mean", "rank_std",
           "rankme_mean", "rankme_std", "train_seconds_mean", "seeds")


def write_tables(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``table.csv`` and ``table.md`` into ``out`` (mean ± sample std over seeds); the peak-step column
    only when some setting probed during training.

    Example:
        >>> write_tables(Path("runs/bench"), rows)  # doctest: +SKIP
    """
    peaks = any(row.get("val_peak_step_mean") is not None for row in rows)
    columns = (*COLUMNS[:-2], "val_peak_step_mean", *COLUMNS[-2:]) if peaks else COLUMNS
    write_text(out / "table.csv", csv_text(columns, ({k: json.dumps(row[k]) if k == "werank" else row[k]
                                                      for k in columns} for row in rows)))
    peak_header = " val acc peak step |" if peaks else ""
    lines = [f"| dataset | method | WERank α | settings | test acc (%) | val acc (%) | rank | RankMe |{peak_header} "
             f"train time (s) | seeds |", "|---" * (11 if peaks else 10) + "|"]
    for r in rows:
        peak = "" if not peaks else " – |" if r["val_peak_step_mean"] is None else f" {r['val_peak_step_mean']:.0f} |"
        lines.append(f"| {r['dataset']} | {r['method']} | {json.dumps(r['werank'])} | {r['settings']} | "
                     f"{100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f} | "
                     f"{100 * r['val_acc_mean']:.2f} ± {100 * r['val_acc_std']:.2f} | "
                     f"{r['rank_mean']:.1f} ± {r['rank_std']:.1f} | {r['rankme_mean']:.1f} ± {r['rankme_std']:.1f} |"
                     f"{peak} {r['train_seconds_mean']:.1f} | {r['seeds']} |")
    write_text(out / "table.md", "\n".join(lines) + "\n\nMean ± sample standard deviation over seeds.\n")
