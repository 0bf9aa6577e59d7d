"""Mini-batch training throughput with 1 and 2 processes on torch.distributed (gloo on CPU, NCCL on GPU).

For each dataset, runs `graphssl train --batch-size B --num-neighbors ...` as
(a) one plain process (all cores), (b) `torchrun --nproc_per_node 1 ... --distributed`,
(c) `torchrun --nproc_per_node 2 ... --distributed` (with more than one process torchrun
sets OMP_NUM_THREADS=1, so each process gets one core), and reports optimizer steps per second and seed nodes (samples) per
second from each run's metrics.json (ms_per_step: time inside training steps only).

    python benchmarks/distributed_throughput.py --out benchmarks/results/distributed_throughput.json
"""

from __future__ import annotations

import argparse
import sys

from common import GRAPHSSL, TORCHRUN, report, train_metrics

SETUPS = {
    "cora": ["--dataset", "cora", "--batch-size", "512", "--num-neighbors", "10", "10", "--steps", "60"],
    "synthetic-arxiv": ["--dataset", "synthetic-arxiv", "--config", "configs/ogbn-arxiv.yaml", "--batch-size",
                        "512", "--num-neighbors", "5", "5", "5", "--steps", "8"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/distributed_throughput.json")
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS))
    args = parser.parse_args()
    results = {}
    for dataset in args.datasets:
        setup = SETUPS[dataset]
        batch = int(setup[setup.index("--batch-size") + 1])
        rows = {}
        for name, launcher, procs in (
                ("1 process, all cores", GRAPHSSL, 1),
                ("torchrun 1 process", (*TORCHRUN, "--nproc_per_node", "1", "-m", "graphssl"), 1),
                ("torchrun 2 processes", (*TORCHRUN, "--nproc_per_node", "2", "-m", "graphssl"), 2)):
            extra = ["--distributed"] if "torchrun" in name else []
            metrics = train_metrics([*setup, *extra], launcher)
            steps_per_s = 1000 / metrics["ms_per_step"]
            rows[name] = {"processes": procs, "ms_per_step": metrics["ms_per_step"],
                          "steps_per_s": round(steps_per_s, 2),
                          "samples_per_s": round(steps_per_s * batch * procs, 1),
                          "parameters_equal_across_ranks":
                              metrics.get("distributed", {}).get("parameters_equal_across_ranks")}
        results[dataset] = {"command_args": setup, "runs": rows}
    results["command"] = " ".join(["python", *sys.argv])
    report(results, args.out)


if __name__ == "__main__":
    main()
