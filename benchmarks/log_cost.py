"""Training time with and without the per-step log (log.csv), measured side by side in one process.

Each round trains fresh, identical runs of ``--steps`` steps, alternating which goes first: one writing no
log (as before log.csv existed) and one writing ``log.csv`` (a row every ``train.log_every`` steps; RankMe and
rank of the embeddings at every ``train.spectra_every`` step, which both arms record spectra at); with
``--probe-every K`` a third arm also probes the validation nodes every K steps.  Each run's time is
``pretrain``'s own ``train_seconds`` (the whole loop, logging included; model building excluded).  Reported:
the median ms/step per arm and the median over rounds of each round's ratio to the unlogged run.  No
checkpoints are written, in either arm.

    python benchmarks/log_cost.py --dataset cora --rounds 8
    python benchmarks/log_cost.py --dataset cora --rounds 4 --probe-every 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

from common import report  # first: it sets what torch's allocator reads at its first allocation
import torch

from graphssl.config import config_for_dataset, load_config, parse_assignment
from graphssl.data import load_graph
from graphssl.devices import resolve_device
from graphssl.model import build_model
from graphssl.train import Pretrainer, pretrain


def ms_per_step(graph, config, device, log_path: Path | None) -> float:
    torch.manual_seed(config["train"]["seed"])
    trainer = Pretrainer(build_model(config, graph.num_features).to(device), graph, config, device)
    summary = pretrain(trainer, out=None, progress=False, log_path=log_path)
    return 1000 * summary["train_seconds"] / config["optim"]["steps"]


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--config", help="default: configs/<dataset>.yaml, else configs/cora.yaml")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--werank", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=100, help="steps per run")
    parser.add_argument("--rounds", type=int, default=8, help="runs per arm, in alternating order")
    parser.add_argument("--probe-every", type=int, default=0, metavar="K", help="add an arm probing every K steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root")
    parser.add_argument("--out", help="also write the result JSON here")
    args = parser.parse_args()

    path = args.config or config_for_dataset(args.dataset)
    overrides = {**dict(parse_assignment(a) for a in args.assignments), "werank.alpha": args.werank,
                 "optim.steps": args.steps, "train.checkpoint_every": 0}
    config = load_config(path, overrides)
    arms = {"no_log": (config, False), "log": (config, True)}
    if args.probe_every:
        arms["log_and_probe"] = (load_config(path, {**overrides, "train.probe_every": args.probe_every}), True)
    device = resolve_device(args.device)
    graph = load_graph(args.dataset, args.data_root)
    times: dict[str, list[float]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        ms_per_step(graph, config, device, None)  # warm-up: first-call allocations and caches
        for r in range(args.rounds):
            for name in (list(arms) if r % 2 == 0 else list(reversed(arms))):
                arm_config, logged = arms[name]
                times[name].append(ms_per_step(graph, arm_config, device, Path(tmp) / f"{name}.csv" if logged
                                               else None))
    ratios = {name: statistics.median(a / b for a, b in zip(times[name], times["no_log"]))
              for name in arms if name != "no_log"}
    result = {
        "dataset": args.dataset, "config": str(path), "set": args.assignments, "werank": args.werank,
        "device": str(device), "threads": torch.get_num_threads(), "steps_per_run": args.steps,
        "rounds": args.rounds, "log_every": config["train"]["log_every"],
        "spectra_every": config["train"]["spectra_every"], "probe_every": args.probe_every,
        "ms_per_step": {name: round(statistics.median(values), 2) for name, values in times.items()},
        "ratio_to_no_log": {name: round(value, 4) for name, value in ratios.items()},
        "runs_ms_per_step": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "command": " ".join(["python", *sys.argv]),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
