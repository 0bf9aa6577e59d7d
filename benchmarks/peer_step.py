"""Cora training-step time of this checkout against the PyPI package also named graphssl (0.2.0), side by side
(issue 15's "≤ 0.2 × the PyPI peer").

The two packages share the import name ``graphssl`` and the peer imports itself absolutely, so each side lives in
a worker process of its own (this script run with ``--worker ours|peer``; the peer's drops our graphssl from its
imports and puts the peer's unpacked wheel first on its path), both started first and then driven in
alternating blocks of steps over a pipe: the two are timed interleaved, as the in-process benchmarks are.  Each
worker reports its block's wall ms per step.  The peer is its ``BGRL`` model trained the way its ``Trainer`` does a
batch (``compute_loss``, backward, gradient clipping at 3, AdamW step, EMA ``post_step``), on the same Cora graph
(PyG's ``Planetoid``, from graphssl's data root), with its defaults for the predictor (512, batch norm) and EMA, a
2-layer GCN of ``--peer-width`` (256: the issue's "2×256") and our default config's augmentation rates.  Ours is
graphssl's default config (``configs/cora.yaml``) unless ``--config``/``--set`` say otherwise.

    pip download graphssl==0.2.0 --no-deps -d /tmp/peer        # the peer's wheel (PyPI)
    python benchmarks/peer_step.py --peer-wheel /tmp/peer/graphssl-0.2.0-py3-none-any.whl \\
      --out benchmarks/results/peer_step.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from common import fail, graphssl_at, machine, report, step_config, timed_block, trainer  # first: it sets what torch's allocator reads


def ours_step(args: argparse.Namespace) -> Callable[[int], None]:
    """Our default Cora trainer's ``step``."""
    graphssl = graphssl_at(None)
    config = step_config(graphssl, "cora", args.config, args.assignments)
    pretrainer = trainer(graphssl, graphssl.load_graph("cora"), config, graphssl.resolve_device("cpu"))
    return pretrainer.step


def peer_step(args: argparse.Namespace) -> Callable[[int], None]:
    """The PyPI peer's BGRL on Cora, one Trainer batch per step."""
    import torch
    from torch_geometric.datasets import Planetoid

    for name in [m for m in sys.modules if m == "graphssl" or m.startswith("graphssl.")]:
        del sys.modules[name]  # ours, imported by common; the peer's takes the name from here on
    sys.path.insert(0, args.peer_path)
    from graphssl.models.bgrl import BGRL

    # A private copy of the raw files: the peer's Planetoid writes its own processed/ beside them.
    root = tempfile.mkdtemp(prefix="peer-cora-")
    shutil.copytree(Path(args.data_root) / "Planetoid" / "Cora" / "raw", Path(root) / "Cora" / "raw")
    data = Planetoid(root, "Cora")[0]
    p_edge, p_feature = args.peer_rates
    config = {"encoder": {"name": "gcn", "hidden_dim": args.peer_width, "num_layers": 2, "pool": False},
              "augment": [{"name": "edge_drop", "p": p_edge}, {"name": "feat_mask", "p": p_feature}],
              "total_steps": 1000}
    torch.manual_seed(0)
    model = BGRL(config, data.num_features)
    model.train()
    optimizer = torch.optim.AdamW(list(model.student_parameters()), lr=1e-3, weight_decay=1e-5)

    def step(_: int) -> None:
        loss = model.compute_loss(data)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.student_parameters()), 3.0)
        model.post_backward()
        optimizer.step()
        model.post_step()

    return step


class _Steps:
    """What ``timed_block`` drives: an object with ``step`` and ``device``."""

    def __init__(self, step: Callable[[int], None]) -> None:
        import torch

        self.step, self.device = step, torch.device("cpu")


def worker(args: argparse.Namespace) -> None:
    """Build one side, answer 'ready', then time a block of steps for every line read, one JSON line back each."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = _Steps((ours_step if args.worker == "ours" else peer_step)(args))
    timed_block(steps, args.warmup, 0)
    print(json.dumps({"ready": True, **machine()}), flush=True)
    first = args.warmup
    for line in sys.stdin:
        block = int(line)
        wall, cpu = timed_block(steps, block, first)
        first += block
        print(json.dumps({"ms": wall, "cpu_ms": cpu}), flush=True)


def _start(side: str, args: argparse.Namespace, peer_path: str) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", side, "--warmup", str(args.warmup), "--peer-path", peer_path,
               "--peer-width", str(args.peer_width), "--data-root", args.data_root,
               "--peer-rates", *map(str, args.peer_rates)]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--config", args.config] if args.config else []
    command += [x for a in args.assignments for x in ("--set", a)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])


def _ask(proc: subprocess.Popen, block: int | None = None) -> dict[str, Any]:
    if block is not None:
        proc.stdin.write(f"{block}\n")
        proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a worker stopped (exit {proc.wait()}); its error is above")
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-wheel", type=Path, help="the peer's wheel (pip download graphssl==0.2.0 --no-deps)")
    parser.add_argument("--peer-width", type=int, default=256, help="the peer's GCN width, both layers (256)")
    parser.add_argument("--peer-rates", type=float, nargs=2, metavar=("EDGE", "FEATURE"),
                        help="the peer's edge-drop and feature-mask rates (default: the mean of our config's)")
    parser.add_argument("--config", help="our config (default: graphssl's Cora defaults)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-root", default=None, help="where Planetoid/Cora/raw is (graphssl's: $GRAPHSSL_DATA, else ./data)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks per side")
    parser.add_argument("--block", type=int, default=20, help="steps per block")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per side first")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: torch's, one per core)")
    parser.add_argument("--worker", choices=("ours", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--peer-path", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.data_root is None:
        from graphssl.data import default_data_root

        args.data_root = str(default_data_root())
    if args.peer_rates is None:
        from graphssl.config import load_config, config_for_dataset

        augment = load_config(args.config or config_for_dataset("cora"))["augment"]
        args.peer_rates = [(augment["drop_edge_1"] + augment["drop_edge_2"]) / 2,
                           (augment["mask_feature_1"] + augment["mask_feature_2"]) / 2]
    if args.worker:
        worker(args)
        return
    if args.peer_wheel is None or not args.peer_wheel.is_file():
        fail("give --peer-wheel: pip download graphssl==0.2.0 --no-deps -d /tmp/peer")
    with tempfile.TemporaryDirectory() as peer_path:
        with zipfile.ZipFile(args.peer_wheel) as wheel:
            wheel.extractall(peer_path)
        sides = {name: _start(name, args, peer_path) for name in ("ours", "peer")}
        ready = {name: _ask(proc) for name, proc in sides.items()}
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.rounds):
            for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                block = _ask(sides[name], args.block)
                wall[name].append(round(block["ms"], 2))
                cpu[name].append(round(block["cpu_ms"], 2))
        for proc in sides.values():
            proc.stdin.close()
            proc.wait()
    median = {name: statistics.median(values) for name, values in wall.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    report({
        "peer": args.peer_wheel.name, "peer_width": args.peer_width, "peer_rates": args.peer_rates,
        "config": args.config, "set": args.assignments, **{k: v for k, v in ready["ours"].items() if k != "ready"},
        "ms_per_step": {name: round(value, 2) for name, value in median.items()},
        "ratio_ours_to_peer": round(median["ours"] / median["peer"], 3),
        "cpu_ms_per_step": {name: round(value, 2) for name, value in cpu_median.items()},
        "cpu_ratio_ours_to_peer": round(cpu_median["ours"] / cpu_median["peer"], 3),
        "blocks_ms": wall, "blocks_cpu_ms": cpu, "block_steps": args.block, "rounds": args.rounds,
        "measured_at": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(["python", *sys.argv]),
    }, args.out)


if __name__ == "__main__":
    main()
