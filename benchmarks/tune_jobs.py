"""How many trainings should ``graphssl tune`` run at once?  ``--jobs 1`` (one training with every core's
threads) against ``--jobs J`` (J single-threaded trainings side by side), on the same small search.

Rounds alternate the settings, so both see the same machine noise; each round is a fresh search folder.

    python benchmarks/tune_jobs.py --out benchmarks/results/tune_jobs.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import report
from graphssl.config import config_for_dataset, load_config
from graphssl.errors import silence_known_warnings
from graphssl.search_space import parse_space
from graphssl.tune import run_tune


def main() -> None:
    silence_known_warnings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    base = load_config(config_for_dataset(args.dataset), {"optim.steps": args.steps})
    space = parse_space({"optim.lr": {"low": 5e-4, "high": 2e-3, "log": True}}, "benchmark space")
    seconds: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
    for _ in range(args.rounds):
        for jobs in args.jobs:
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                run_tune(args.dataset, space, base, Path(folder) / "tune", trials=args.trials, seeds=args.seeds,
                         jobs=jobs, progress=False)
                seconds[jobs].append(time.perf_counter() - start)
    runs = args.trials * args.seeds
    result = {"dataset": args.dataset, "cores": os.cpu_count(), "trainings_per_search": runs, "steps": args.steps,
              "seconds": seconds,
              "trainings_per_hour": {jobs: round(3600 * runs / statistics.median(s), 1) for jobs, s in seconds.items()}}
    report(result, args.out)


if __name__ == "__main__":
    main()
