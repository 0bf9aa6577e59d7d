"""Paired comparison of two settings of ``graphssl bench`` on the same seeds.

Each side is a bench folder and a WERank coefficient (as bench recorded it), and for a folder holding several
methods (``bench --methods``) the method; runs are matched by seed, and the difference A - B is summarized
over the seeds both sides have (mean ± sample std, and how many seeds A wins), beside each side's own
mean ± std of test accuracy and RankMe.

    python benchmarks/paired_difference.py benchmarks/results/cora-fair-werank 0.01 \\
        benchmarks/results/cora-fair-bgrl 0 --out benchmarks/results/cora-fair-paired.json
    python benchmarks/paired_difference.py runs/methods 0.1 runs/methods 0 --method-a grace --method-b grace
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from graphssl.tables import mean_std


def runs_by_seed(bench: Path, alpha: Any, method: str | None = None) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for path in sorted((bench / "results").glob("*.json")):
        result = json.loads(path.read_text())
        # Results made before methods existed are BGRL's.
        if result["metrics"]["werank"] == alpha and method in (None, result["metrics"].get("method", "bgrl")):
            if result["seed"] in found:
                raise SystemExit(f"{bench}: several settings with werank {alpha!r}; give a bench folder with one "
                                 f"(or the method, --method-a / --method-b)")
            found[result["seed"]] = result["metrics"]
    if not found:
        raise SystemExit(f"{bench}: no finished runs with werank {alpha!r}")
    return found


def summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    acc, acc_std = mean_std([100 * m["test_acc"] for m in runs.values()])
    rankme, rankme_std = mean_std([m["rankme"] for m in runs.values()])
    rank = mean_std([m["rank"] for m in runs.values()])[0]
    return {"test_acc": round(acc, 2), "test_acc_std": round(acc_std, 2), "rankme": round(rankme, 1),
            "rankme_std": round(rankme_std, 1), "rank": round(rank, 1), "seeds": sorted(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_a", type=Path)
    parser.add_argument("alpha_a", type=json.loads)
    parser.add_argument("bench_b", type=Path)
    parser.add_argument("alpha_b", type=json.loads)
    parser.add_argument("--method-a", help="only side A's runs of this method (a bench folder of several methods)")
    parser.add_argument("--method-b", help="only side B's runs of this method")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    a, b = runs_by_seed(args.bench_a, args.alpha_a, args.method_a), runs_by_seed(args.bench_b, args.alpha_b,
                                                                               args.method_b)
    common = sorted(set(a) & set(b))
    differences = [100 * (a[s]["test_acc"] - b[s]["test_acc"]) for s in common]
    mean, std = mean_std(differences)
    result = {"a": {"bench": str(args.bench_a), "method": args.method_a, "werank": args.alpha_a, **summary(a)},
              "b": {"bench": str(args.bench_b), "method": args.method_b, "werank": args.alpha_b, **summary(b)},
              "paired_difference_points": round(mean, 2), "paired_difference_std": round(std, 2),
              "a_better_on": sum(d > 0 for d in differences), "ties": sum(d == 0 for d in differences),
              "paired_seeds": len(common)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
