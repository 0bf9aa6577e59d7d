"""Pick a tune folder's trial under a training-time budget: the best mean validation accuracy among the trials
whose full ``graphssl train`` (its config as the trial ran it, seed 0, spectra and checkpoints on as in a user's
run) finishes within ``--budget`` seconds of wall time, measured alone on this machine.

Trials are timed in order of validation accuracy (the earliest trial first on a tie) until one fits, so the rule
reads validation and time only, never test. Both Cora arms go through the same rule on the same machine:

    python benchmarks/within_budget.py benchmarks/results/tune-cora-werank benchmarks/results/tune-cora-bgrl \\
        --budget 120 --out benchmarks/results/cora-within-budget.json

Run it on a quiet machine: the tune's own ``train s`` column was measured with two trainings side by side (and,
for older folders, on another machine), so it cannot be compared against a budget for a single run. Timings
already in ``--out`` are reused, so a killed run continues.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from common import GRAPHSSL, fail, run
from graphssl.files import read_json


def ranked_trials(tune_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """The folder's dataset and its finished trials, best mean validation accuracy first (the earliest trial on a
    tie), each with the complete config its first seed trained with; a folder that is not a finished graphssl
    tune ends the script (:func:`common.fail`)."""
    try:
        dataset = read_json(tune_dir / "tune.json")["dataset"]
        with open(tune_dir / "trials.csv", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["status"] == "ok"]
        rows.sort(key=lambda row: (-float(row["val_acc_mean"]), row["trial"]))
        for row in rows:
            if not re.fullmatch(r"[\w.-]+", row["trial"]):
                raise ValueError(f"trials.csv names a trial {row['trial']!r}")
            first = min((tune_dir / "results").glob(f"{row['trial']}__seed*.json"), default=None)
            if first is None:
                raise ValueError(f"trial {row['trial']} has no result file")
            row["config"] = read_json(first)["config"]
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as err:
        fail(f"{tune_dir}: not a finished graphssl tune folder ({type(err).__name__}: {err}); give one")
    return dataset, rows


def wall_seconds(dataset: str, config: dict) -> float:
    """Wall seconds of ``graphssl train --dataset DATASET --config CONFIG`` from start to exit."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = [*GRAPHSSL, "train", "--dataset", dataset, "--config", str(path), "--quiet", "--out", str(Path(tmp) / "run")]
        start = time.perf_counter()
        run(command)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tune_dirs", nargs="+", type=Path, help="graphssl tune output folders")
    parser.add_argument("--budget", type=float, default=120.0, help="wall seconds a full training may take")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the timings and the choices")
    args = parser.parse_args()
    try:
        report = read_json(args.out) if args.out.exists() else {}
    except (OSError, ValueError) as err:
        fail(f"--out {args.out}: unreadable ({err}); delete it to time every trial again, or give another")
    report["budget_seconds"] = args.budget
    for tune_dir in args.tune_dirs:
        arm = report.setdefault(str(tune_dir), {"timed": {}})
        arm["chosen"] = None
        dataset, rows = ranked_trials(tune_dir)
        for row in rows:
            trial = row["trial"]
            if trial not in arm["timed"]:
                arm["timed"][trial] = {"val_acc_mean": float(row["val_acc_mean"]),
                                       "wall_seconds": round(wall_seconds(dataset, row["config"]), 1)}
                args.out.write_text(json.dumps(report, indent=2) + "\n")
            timed = arm["timed"][trial]
            print(f"{tune_dir.name} {trial}: validation {100 * timed['val_acc_mean']:.2f} %, "
                  f"{timed['wall_seconds']:.1f} s", flush=True)
            if timed["wall_seconds"] <= args.budget:
                arm["chosen"] = trial
                break
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"{tune_dir.name}: chosen {arm['chosen']}", flush=True)


if __name__ == "__main__":
    main()
