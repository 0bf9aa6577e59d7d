"""Training-step time and peak memory under each ``train.precision``, for any dataset and config (issue 15).

Step time: one trainer per precision (32, bf16-mixed, and tf32 on CUDA), same config and seed, run alternating
blocks of steps in one process; the medians of the blocks' ms/step and each precision's ratio to 32 are
reported (wall time, and process CPU time, steadier on a shared machine).  Peak memory: each precision trains
``--memory-steps`` steps in a fresh process of its own (this script with ``--memory-of``), which reports its
peak resident memory, over the whole process and (Linux) over the training steps alone, and on CUDA the peak
memory torch allocated during them.  The JSON also says whether this machine
computes bfloat16 products natively (AVX-512 or a GPU): where it does not, bf16-mixed is expected to be slower.

    python benchmarks/precision_step.py --dataset synthetic-arxiv --config configs/ogbn-arxiv.yaml \\
        --rounds 4 --block 1 --warmup 1 --out benchmarks/results/precision/synthetic-arxiv.json
    python benchmarks/precision_step.py --dataset cora --out benchmarks/results/precision/cora.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path

from common import graphssl_at, machine, report, run, step_config, timed_block, trainer  # first: it sets what torch's allocator reads at its first allocation
import torch

from graphssl.devices import peak_memory_mb
from graphssl.precision import bf16_is_native


def resident_peak_mb() -> float | None:
    """This process's peak resident memory since the last :func:`reset_resident_peak` (Linux), else None."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024, 1)


def reset_resident_peak() -> None:
    """Start the peak resident memory afresh (Linux: writing 5 to /proc/self/clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_of(args: argparse.Namespace, precision: str) -> dict[str, float | None]:
    """Train ``--memory-steps`` steps under ``precision`` in this process; its peak memory over the whole process
    and, where the system lets it be reset, over the training steps alone (graph and model already built)."""
    graphssl = graphssl_at(None)
    device = graphssl.resolve_device(args.device)
    graph = graphssl.load_graph(args.dataset)
    config = step_config(graphssl, args.dataset, args.config, args.assignments, {"train.precision": precision})
    step_trainer = trainer(graphssl, graph, config, device)
    reset_resident_peak()
    before = resident_peak_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed_block(step_trainer, args.memory_steps, 0)
    return {**peak_memory_mb(device), "resident_before_steps_mb": before, "peak_resident_during_steps_mb":
            resident_peak_mb()}


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--config", help="default: the dataset's config")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks per precision")
    parser.add_argument("--block", type=int, default=10, help="steps per block")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per precision first")
    parser.add_argument("--memory-steps", type=int, default=3, help="steps of each memory-measuring process")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory-of", metavar="PRECISION", help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        print(json.dumps(peak_memory_of(args, args.memory_of)))
        return

    graphssl = graphssl_at(None)
    device = graphssl.resolve_device(args.device)
    precisions = ["32", "bf16-mixed"] + (["tf32"] if device.type == "cuda" else [])
    graph = graphssl.load_graph(args.dataset)
    trainers = {}
    for precision in precisions:
        config = step_config(graphssl, args.dataset, args.config, args.assignments, {"train.precision": precision})
        trainers[precision] = trainer(graphssl, graph, config, device)
        timed_block(trainers[precision], args.warmup, 0)
    wall: dict[str, list[float]] = {p: [] for p in precisions}
    cpu: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(args.rounds):
        for precision in (precisions if r % 2 == 0 else list(reversed(precisions))):
            ms, cpu_ms = timed_block(trainers[precision], args.block, args.warmup + r * args.block)
            wall[precision].append(round(ms, 1))
            cpu[precision].append(round(cpu_ms, 1))
    del trainers
    median = {p: statistics.median(v) for p, v in wall.items()}
    cpu_median = {p: statistics.median(v) for p, v in cpu.items()}
    memory = {}
    for precision in precisions:
        child = [sys.executable, __file__, "--memory-of", precision, "--dataset", args.dataset, "--device",
                 args.device, "--memory-steps", str(args.memory_steps),
                 *(["--config", args.config] if args.config else []),
                 *(["--threads", str(args.threads)] if args.threads else []),
                 *[item for a in args.assignments for item in ("--set", a)]]
        memory[precision] = json.loads(run(child).strip().splitlines()[-1])
    result = {
        "dataset": args.dataset, "config": args.config, "set": args.assignments, "device": str(device), **machine(),
        "bf16_native": bf16_is_native(device),
        "ms_per_step": {p: round(v, 1) for p, v in median.items()},
        "ratio_to_32": {p: round(v / median["32"], 3) for p, v in median.items()},
        "cpu_ms_per_step": {p: round(v, 1) for p, v in cpu_median.items()},
        "cpu_ratio_to_32": {p: round(v / cpu_median["32"], 3) for p, v in cpu_median.items()},
        "peak_memory_mb": memory, "memory_steps": args.memory_steps,
        "blocks_ms": wall, "blocks_cpu_ms": cpu, "block_steps": args.block, "rounds": args.rounds,
        "command": " ".join(["python", *sys.argv]),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
