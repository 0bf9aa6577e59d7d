"""Training-step time with and without WERank, measured side by side in one process, for any method.

Two trainers with the same seed and config, one with ``werank.alpha = 0`` and one
with ``--werank``, run alternating blocks of steps; each block's ms/step is
recorded and the medians are compared.  Interleaving puts both under the same
machine noise, so their ratio is meaningful even when absolute times drift.
The penalty's forward + backward is also timed on its own, in the same process,
and reported as a share of the plain step.

    python benchmarks/step_time.py --dataset cora --werank 0.1
    python benchmarks/step_time.py --dataset cora --set encoder.layers=[256,256] --rounds 10
    python benchmarks/step_time.py --dataset cora --method grace                  # the Cora defaults, GRACE's loss
    python benchmarks/step_time.py --config configs/cora-cca-ssg.yaml              # CCA-SSG's own Cora setup
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

from common import report  # first: it sets what torch's allocator reads at its first allocation
import torch

from graphssl.config import config_for_dataset, load_config, parse_assignment
from graphssl.data import load_graph
from graphssl.devices import resolve_device
from graphssl.model import build_model
from graphssl.train import Pretrainer


def time_block(trainer: Pretrainer, steps: int, first_step: int) -> float:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    start = time.perf_counter()
    for step in range(first_step, first_step + steps):
        trainer.step(step)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--config", help="default: configs/<dataset>.yaml, else configs/cora.yaml")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--method", help="the config key method (default: the config's)")
    parser.add_argument("--werank", type=float, default=0.1, help="coefficient of the WERank trainer")
    parser.add_argument("--rounds", type=int, default=8, help="alternating blocks per trainer")
    parser.add_argument("--block", type=int, default=20, help="steps per block")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per trainer first")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root")
    parser.add_argument("--out", help="also write the result JSON here")
    args = parser.parse_args()

    path = args.config or config_for_dataset(args.dataset)
    device = resolve_device(args.device)
    graph = load_graph(args.dataset, args.data_root)
    trainers = {}
    overrides = dict(parse_assignment(a) for a in args.assignments)
    if args.method is not None:
        overrides["method"] = args.method
    for name, alpha in (("plain", 0.0), ("werank", args.werank)):
        config = load_config(path, {**overrides, "werank.alpha": alpha})
        torch.manual_seed(config["train"]["seed"])
        trainers[name] = Pretrainer(build_model(config, graph.num_features).to(device), graph, config, device)
    for trainer in trainers.values():
        time_block(trainer, args.warmup, 0)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(args.rounds):
        order = list(trainers) if r % 2 == 0 else list(reversed(trainers))
        for name in order:
            times[name].append(time_block(trainers[name], args.block, args.warmup + r * args.block))
    medians = {name: statistics.median(values) for name, values in times.items()}
    # The penalty's own cost, timed alone in the same process: steadier than a difference of step times.
    werank = trainers["werank"].werank
    penalty_ms = []
    for _ in range(21):
        start = time.perf_counter()
        werank().backward()
        penalty_ms.append(1000 * (time.perf_counter() - start))
    trainers["werank"].optimizer.zero_grad(set_to_none=True)
    result = {
        "dataset": args.dataset, "method": config["method"], "werank_scope": config["werank"]["scope"],
        "config": str(path), "set": args.assignments, "device": str(device),
        "threads": torch.get_num_threads(), "block_steps": args.block, "rounds": args.rounds,
        "ms_per_step_plain": round(medians["plain"], 2), "ms_per_step_werank": round(medians["werank"], 2),
        "werank_overhead": round(medians["werank"] / medians["plain"] - 1, 4),
        "werank_penalty_ms": round(statistics.median(penalty_ms), 3),
        "werank_penalty_share_of_step": round(statistics.median(penalty_ms) / medians["plain"], 5),
        "blocks_ms": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "command": " ".join(["python", *sys.argv]),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
