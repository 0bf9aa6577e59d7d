"""Speed and memory at ogbn-arxiv's size, on the synthetic graph of the same size.

Measures, with configs/ogbn-arxiv.yaml (3 x GCN 256, layer norm, weight standardization):

1. seconds per full-batch step without and with WERank, interleaved in one process
   (benchmarks/step_time.py), and the achieved GFLOP/s of the step's dense and sparse
   matrix products (counted analytically below);
2. peak memory (peak_rss_mb) and end-to-end seconds of `graphssl train --dataset
   synthetic-arxiv --config configs/ogbn-arxiv.yaml --steps 5`, each with and without WERank,
   in its own process, including the linear probe's time on 169,343 x 256 embeddings;
3. seconds per mini-batch epoch (`--batch-size`, `--num-neighbors`).

    python benchmarks/arxiv_scale.py --out benchmarks/results/arxiv_scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from common import REPO, report, run, train_metrics

NODES, UNDIRECTED_EDGES_APPROX = 169_343, 2_332_376  # synthetic-arxiv, both directions, no duplicates


def step_flops(layers: list[int], in_dim: int, predictor_hidden: int, nnz: int) -> float:
    """FLOPs of one full-batch BGRL step: 2 online views (forward + backward = 3 passes),
    2 target views (forward only). Each GCN layer: N d_in d_out MACs + nnz d_out MACs."""
    encoder, prev = 0.0, in_dim
    for width in layers:
        encoder += 2 * NODES * prev * width + 2 * nnz * width
        prev = width
    predictor = 2 * 2 * NODES * prev * predictor_hidden
    return 2 * 3 * (encoder + predictor) + 2 * encoder


def arxiv_metrics(extra: list[str]) -> dict:
    return train_metrics(["--dataset", "synthetic-arxiv", "--config", "configs/ogbn-arxiv.yaml", *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/arxiv_scale.json")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved step pairs (plain, WERank)")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--num-neighbors", default="10 5 5")
    args = parser.parse_args()

    import yaml

    config = yaml.safe_load((REPO / "configs" / "ogbn-arxiv.yaml").read_text())
    flops = step_flops(config["encoder"]["layers"], 128, config["predictor"]["hidden"],
                       UNDIRECTED_EDGES_APPROX * (1 - config["augment"]["drop_edge_1"]) + NODES)
    timing = json.loads(run([sys.executable, "benchmarks/step_time.py", "--dataset", "synthetic-arxiv",
                             "--config", "configs/ogbn-arxiv.yaml", "--werank", "0.1", "--rounds",
                             str(args.rounds), "--block", "1", "--warmup", "1"]))
    plain_s = timing["ms_per_step_plain"] / 1000
    end_to_end = {name: arxiv_metrics(["--steps", "5", "--werank", alpha])
                  for name, alpha in (("plain", "0"), ("werank", "0.1"))}
    fanouts = args.num_neighbors.split()
    epoch_steps = math.ceil(NODES / args.batch_size)
    mini = arxiv_metrics(["--steps", str(epoch_steps), "--batch-size", str(args.batch_size),
                          "--num-neighbors", *fanouts])
    result = {
        "machine": f"{os.cpu_count()} CPU cores",
        "full_batch": {
            "seconds_per_step_plain": round(plain_s, 2),
            "seconds_per_step_werank": round(timing["ms_per_step_werank"] / 1000, 2),
            "werank_overhead": timing["werank_overhead"],
            "werank_penalty_ms": timing["werank_penalty_ms"],
            "werank_penalty_share_of_step": timing["werank_penalty_share_of_step"],
            "tflop_per_step": round(flops / 1e12, 3),
            "achieved_gflops": round(flops / plain_s / 1e9, 1),
            "peak_rss_mb_plain": end_to_end["plain"]["peak_rss_mb"],
            "peak_rss_mb_werank": end_to_end["werank"]["peak_rss_mb"],
            "train_seconds_5_steps_plain": end_to_end["plain"]["train_seconds"],
            "train_seconds_5_steps_werank": end_to_end["werank"]["train_seconds"],
        },
        "probe_seconds": end_to_end["plain"]["probe_seconds"],
        "mini_batch": {"batch_size": args.batch_size, "num_neighbors": [int(k) for k in fanouts],
                       "steps_per_epoch": epoch_steps, "seconds_per_epoch": mini["train_seconds"],
                       "peak_rss_mb": mini["peak_rss_mb"]},
        "step_time_blocks_ms": timing["blocks_ms"],
        "command": " ".join(["python", *sys.argv]),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
