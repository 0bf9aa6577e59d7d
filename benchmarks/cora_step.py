"""Training-step time of this checkout against an earlier revision's, interleaved in one process (issue 15).

Two trainers with the same config and seed, one built from this checkout's graphssl and one from graphssl as it
was at ``--baseline`` (extracted from git, see ``common.graphssl_at``), run alternating blocks of steps; the
medians of their blocks' ms/step and the ratio now/baseline are reported, in wall time (what a quiet machine
should be judged by) and in process CPU time (steadier on a shared machine, with one thread).  Before timing,
each side trains ``--check-steps`` steps from the same seed on its own, and their losses are compared: the
speed-ups must not change the results beyond float noise.

    python benchmarks/cora_step.py --out benchmarks/results/cora_step.json          # default config, fp32
    python benchmarks/cora_step.py --werank 0.1 --threads 1 --out benchmarks/results/cora_step_werank.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

from common import graphssl_at, machine, report, step_config, timed_block, trainer  # first: it sets what torch's allocator reads at its first allocation
import torch


# main before issue 15 (mixed precision and a faster step)
BEFORE_ISSUE_15 = "84e5f12"


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BEFORE_ISSUE_15, help=f"git revision to compare with ({BEFORE_ISSUE_15})")
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--config", help="default: the dataset's config (Cora: the built-in defaults)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--werank", type=float, default=0.0, help="werank.alpha (default 0: the default config)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks per side")
    parser.add_argument("--block", type=int, default=20, help="steps per block")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per side first")
    parser.add_argument("--check-steps", type=int, default=5, help="steps whose losses are compared")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sides = {"now": graphssl_at(None), "baseline": graphssl_at(args.baseline)}
    trainers, losses = {}, {}
    for name, graphssl in sides.items():
        device = graphssl.resolve_device(args.device)
        graph = graphssl.load_graph(args.dataset)
        config = step_config(graphssl, args.dataset, args.config, args.assignments, {"werank.alpha": args.werank})
        check = trainer(graphssl, graph, config, device)
        torch.manual_seed(1)
        losses[name] = [check.step(step)[0] for step in range(args.check_steps)]
        trainers[name] = trainer(graphssl, graph, config, device)
        timed_block(trainers[name], args.warmup, 0)
    wall: dict[str, list[float]] = {name: [] for name in trainers}
    cpu: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(args.rounds):
        for name in (list(trainers) if r % 2 == 0 else list(reversed(trainers))):
            ms, cpu_ms = timed_block(trainers[name], args.block, args.warmup + r * args.block)
            wall[name].append(round(ms, 2))
            cpu[name].append(round(cpu_ms, 2))
    median = {name: statistics.median(values) for name, values in wall.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    result = {
        "dataset": args.dataset, "config": args.config, "set": args.assignments, "werank": args.werank,
        "baseline_revision": args.baseline, "device": args.device, **machine(),
        "ms_per_step": {name: round(value, 2) for name, value in median.items()},
        "ratio_now_to_baseline": round(median["now"] / median["baseline"], 3),
        "cpu_ms_per_step": {name: round(value, 2) for name, value in cpu_median.items()},
        "cpu_ratio_now_to_baseline": round(cpu_median["now"] / cpu_median["baseline"], 3),
        "losses_first_steps": losses,
        "max_loss_difference": max(abs(a - b) for a, b in zip(losses["now"], losses["baseline"])),
        "blocks_ms": wall, "blocks_cpu_ms": cpu, "block_steps": args.block, "rounds": args.rounds,
        "command": " ".join(["python", *sys.argv]),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
