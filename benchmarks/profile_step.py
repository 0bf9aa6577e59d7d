"""torch.profiler tables of training steps: where a step's time goes, by operator and by operator and input shapes.

Trains ``--warmup`` untimed steps, then profiles ``--steps`` steps (CPU activity; CUDA too on a GPU) and writes
the two ``key_averages`` tables, sorted by self time, to ``--out``, after a header with the command, the machine
and the ms/step under the profiler.  ``--revision`` profiles graphssl as it was at that git revision instead
(``common.graphssl_at``), to set a table from before a change beside one from after it.  On a machine shared
with other jobs the times of single operators are inflated unevenly (time slices taken by others are charged
to whatever operator was running): compare such tables only roughly.

    python benchmarks/profile_step.py --dataset cora --out benchmarks/results/profile/cora-fp32.txt
    python benchmarks/profile_step.py --dataset cora --revision 84e5f12 --out benchmarks/results/profile/cora-fp32-before.txt
    python benchmarks/profile_step.py --dataset synthetic-arxiv --config configs/ogbn-arxiv.yaml --warmup 1 --steps 1 \\
        --out benchmarks/results/profile/arxiv-fp32.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from common import graphssl_at, machine, step_config, timed_block, trainer  # first: it sets what torch's allocator reads at its first allocation
import torch
from torch.profiler import ProfilerActivity, profile



def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--config", help="default: the dataset's config")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="e.g. train.precision=bf16-mixed, werank.alpha=0.1")
    parser.add_argument("--revision", help="profile graphssl at this git revision instead of this checkout")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=40, help="rows per table")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    graphssl = graphssl_at(args.revision)
    device = graphssl.resolve_device(args.device)
    graph = graphssl.load_graph(args.dataset)
    step_trainer = trainer(graphssl, graph, step_config(graphssl, args.dataset, args.config, args.assignments), device)
    timed_block(step_trainer, args.warmup, 0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        start = time.perf_counter()
        timed_block(step_trainer, args.steps, args.warmup)
        ms = 1000 * (time.perf_counter() - start) / args.steps
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    header = {"command": " ".join(["python", *sys.argv]), "revision": args.revision or "this checkout",
              "device": str(device), **machine(), "profiled_steps": args.steps,
              "ms_per_step_under_profiler": round(ms, 2)}
    text = "\n\n".join([json.dumps(header, indent=2),
                        f"By operator, sorted by {sort} (totals over {args.steps} steps):",
                        prof.key_averages().table(sort_by=sort, row_limit=args.rows),
                        "By operator and input shapes:",
                        prof.key_averages(group_by_input_shape=True).table(
                            sort_by=sort, row_limit=args.rows, max_name_column_width=45, max_shapes_column_width=90)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"{ms:.1f} ms/step under the profiler -> {args.out}")


if __name__ == "__main__":
    main()
