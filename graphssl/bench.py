"""Grids of trainings and their tables: does WERank prevent collapse, and does it buy accuracy?

``run_bench`` trains every combination of datasets x WERank coefficients x
swept config values x seeds.  Each finished run leaves one JSON in
``OUT/results/`` (written atomically, so a killed sweep never leaves half of
one); running the same grid again skips finished runs and resumes an
interrupted one from its checkpoint.  ``OUT/table.md`` and ``OUT/table.csv``
give, per dataset and setting, mean ± sample standard deviation (n - 1) over
seeds of test accuracy, rank and RankMe, the mean training time, and the
number of seeds.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .checkpoint import write_json, write_text
from .config import config_for_dataset, load_config, parse_assignment
from .data import Graph, load_graph
from .errors import GraphSSLError
from .train import CHECKPOINT, resume_training, run_training


def split_values(text: str) -> list[str]:
    """Split ``V1,V2`` on the commas that are not inside brackets (``[0.1,0],[0,0.1]`` is two values)."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    if depth != 0 or any(not v.strip() for v in values):
        raise GraphSSLError(f"--set ...={text}: expected comma-separated values, e.g. --set augment.drop_edge_1=0.2,0.4")
    return values


def parse_sweep(assignment: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` into the key and its YAML-read values."""
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise GraphSSLError(f"--set '{assignment}': expected KEY=V1,V2,..., e.g. --set encoder.layers=[256,256],[512,256]")
    return key.strip(), [parse_assignment(f"{key}={value}")[1] for value in split_values(raw)]


@dataclass
class Setting:
    """One cell of the grid: a dataset, a WERank coefficient (or None: the config's), swept key values."""

    dataset: str
    werank: Any
    values: tuple[tuple[str, Any], ...]

    def assignments(self) -> list[str]:
        pairs = list(self.values) + ([("werank.alpha", self.werank)] if self.werank is not None else [])
        return [f"{key}={json.dumps(value)}" for key, value in pairs]

    def label(self) -> str:
        return " ".join(f"{key}={json.dumps(value)}" for key, value in self.values) or "-"

    def run_name(self, seed: int) -> str:
        parts = [self.dataset, f"werank{json.dumps(self.werank)}" if self.werank is not None else "werank-config"]
        parts += [f"{key}={json.dumps(value)}" for key, value in self.values]
        return re.sub(r"[^A-Za-z0-9_.=,+-]", "", "__".join(parts)) + f"__seed{seed}"


def make_grid(datasets: Sequence[str], weranks: Sequence[Any] | None,
              sweeps: Sequence[tuple[str, list[Any]]]) -> list[Setting]:
    keys = [key for key, _ in sweeps]
    combos = list(itertools.product(*[values for _, values in sweeps]))
    return [Setting(dataset, werank, tuple(zip(keys, combo)))
            for dataset in datasets for werank in (weranks or [None]) for combo in combos]


def _config(setting: Setting, seed: int, steps: int | None, config_path: str | Path | None) -> dict[str, Any]:
    path = config_path or config_for_dataset(setting.dataset) or config_for_dataset("cora")
    extra = [f"train.seed={seed}"] + ([f"optim.steps={steps}"] if steps is not None else [])
    return load_config(path, setting.assignments() + extra)


def run_bench(datasets: Sequence[str], out: str | Path, *, weranks: Sequence[Any] | None = None, seeds: int = 3,
              steps: int | None = None, sweeps: Sequence[str] = (), config: str | Path | None = None,
              data_root: str | Path | None = None, device: str = "auto", progress: bool = True) -> list[dict[str, Any]]:
    """Train the grid (skipping finished runs), write the tables, and return their rows."""
    from .data import DATASETS

    for dataset in datasets:
        if dataset not in DATASETS:
            raise GraphSSLError(f"unknown dataset '{dataset}'; choose from: {', '.join(DATASETS)}")
    if seeds < 1:
        raise GraphSSLError(f"--seeds {seeds}: give the number of seeds, at least 1")
    grid = make_grid(datasets, weranks, [parse_sweep(s) for s in sweeps])
    jobs = [(setting, seed) for setting in grid for seed in range(seeds)]
    configs = [_config(setting, seed, steps, config) for setting, seed in jobs]  # bad values fail before any run
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    graphs: dict[str, Graph] = {}
    bar = tqdm(list(zip(jobs, configs)), desc="bench", unit="run", disable=not progress, dynamic_ncols=True)
    for (setting, seed), run_config in bar:
        name = setting.run_name(seed)
        result_path = out / "results" / f"{name}.json"
        if result_path.is_file():
            continue
        run_dir = out / "runs" / name
        if (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
        else:
            graph = graphs.get(setting.dataset) or graphs.setdefault(setting.dataset,
                                                                      load_graph(setting.dataset, data_root))
            if (run_dir / CHECKPOINT).is_file():
                metrics = resume_training(run_dir, graph=graph, device=device, progress=False).metrics
            else:
                shutil.rmtree(run_dir, ignore_errors=True)  # killed before its first checkpoint: start over
                metrics = run_training(setting.dataset, run_config, out_dir=run_dir, device=device,
                                       progress=False, graph=graph).metrics
        write_json(result_path, {"dataset": setting.dataset, "werank": setting.werank,
                                 "settings": dict(setting.values), "seed": seed, "metrics": metrics})
        bar.set_postfix(test_acc=f"{metrics['test_acc']:.3f}", rank=metrics["rank"], refresh=False)
    results = [json.loads((out / "results" / f"{s.run_name(seed)}.json").read_text()) for s, seed in jobs]
    rows = summarize(grid, results)
    write_tables(out, rows)
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(grid: Sequence[Setting], results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting: mean and sample std over seeds."""
    rows = []
    for setting in grid:
        mine = [r for r in results if r["dataset"] == setting.dataset and r["werank"] == setting.werank
                and r["settings"] == {k: v for k, v in setting.values}]
        metrics = [r["metrics"] for r in mine]
        row: dict[str, Any] = {"dataset": setting.dataset,
                               "werank": setting.werank if setting.werank is not None else metrics[0]["werank"],
                               "settings": setting.label(), "seeds": len(metrics)}
        for key in ("test_acc", "rank", "rankme"):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([float(m[key]) for m in metrics])
        row["train_seconds_mean"] = statistics.fmean(float(m["train_seconds"]) for m in metrics)
        rows.append(row)
    return rows


COLUMNS = ("dataset", "werank", "settings", "test_acc_mean", "test_acc_std", "rank_mean", "rank_std",
           "rankme_mean", "rankme_std", "train_seconds_mean", "seeds")


def write_tables(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(row[k]) if k == "werank" else row[k] for k in COLUMNS})
    write_text(out / "table.csv", buffer.getvalue())
    lines = ["| dataset | WERank α | settings | test acc (%) | rank | RankMe | train time (s) | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {json.dumps(r['werank'])} | {r['settings']} | "
                     f"{100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f} | "
                     f"{r['rank_mean']:.1f} ± {r['rank_std']:.1f} | {r['rankme_mean']:.1f} ± {r['rankme_std']:.1f} | "
                     f"{r['train_seconds_mean']:.1f} | {r['seeds']} |")
    write_text(out / "table.md", "\n".join(lines) + "\n\nMean ± sample standard deviation over seeds.\n")
