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
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUPS = {
    "cora": ["--dataset", "cora", "--batch-size", "512", "--num-neighbors", "10", "10", "--steps", "60"],
    "synthetic-arxiv": ["--dataset", "synthetic-arxiv", "--config", "configs/ogbn-arxiv.yaml", "--batch-size",
                        "512", "--num-neighbors", "5", "5", "5", "--steps", "8"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(launcher: list[str], args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [*launcher, "train", *args, "--quiet", "--set", "train.spectra_every=0",
                   "--set", "train.checkpoint_every=0", "--out", str(out)]
        print("$", " ".join(command), file=sys.stderr, flush=True)
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/distributed_throughput.json")
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS))
    args = parser.parse_args()
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    results = {}
    for dataset in args.datasets:
        setup = SETUPS[dataset]
        batch = int(setup[setup.index("--batch-size") + 1])
        rows = {}
        for name, launcher, procs in (
                ("1 process, all cores", [sys.executable, "-m", "graphssl"], 1),
                ("torchrun 1 process", [torchrun, "--nproc_per_node", "1", "--master_port", str(free_port()),
                                        "-m", "graphssl"], 1),
                ("torchrun 2 processes", [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()),
                                          "-m", "graphssl"], 2)):
            extra = ["--distributed"] if "torchrun" in name else []
            metrics = run(launcher, [*setup, *extra])
            steps_per_s = 1000 / metrics["ms_per_step"]
            rows[name] = {"processes": procs, "ms_per_step": metrics["ms_per_step"],
                          "steps_per_s": round(steps_per_s, 2),
                          "samples_per_s": round(steps_per_s * batch * procs, 1),
                          "parameters_equal_across_ranks":
                              metrics.get("distributed", {}).get("parameters_equal_across_ranks")}
        results[dataset] = {"command_args": setup, "runs": rows}
    results["command"] = " ".join(["python", *sys.argv])
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
