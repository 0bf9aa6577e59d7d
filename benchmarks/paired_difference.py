"""Paired comparison of two settings of ``graphssl bench`` on the same seeds.

Each side is a bench folder and a WERank coefficient (as bench recorded it), and for a folder holding several
methods (``bench --methods``) the method, or for one that swept a config key (``bench --set KEY=V1,V2``) that
key's value (``--where-a``, ``--where-b``); runs are matched by seed, and the difference A - B is summarized
over the seeds both sides have (mean ± sample std, and how many seeds A wins), beside each side's own
mean ± std of test accuracy and RankMe, its mean numerical rank and its embedding size (the scale of both ranks;
RankMe's relative difference compares the two sides' RankMe as shares of their sizes).

    python benchmarks/paired_difference.py benchmarks/results/cora-fair-werank 0.01 \\
        benchmarks/results/cora-fair-bgrl 0 --out benchmarks/results/cora-fair-paired.json
    python benchmarks/paired_difference.py runs/methods 0.1 runs/methods 0 --method-a grace --method-b grace
    python benchmarks/paired_difference.py R/precision-parity 0.1 R/precision-parity 0.1 \
        --where-a train.precision=bf16-mixed --where-b train.precision=32
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from common import bench_results, fail, report
from graphssl.config import is_number, is_recorded_alpha, is_whole_number, read_yaml
from graphssl.errors import GraphSSLError
from graphssl.tables import mean_std


def config_value(config: dict[str, Any], key: str) -> Any:
    """The value of a dotted ``key`` in a run's config (None when the run's graphssl did not have it)."""
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def where_value(where: str | None) -> tuple[str, Any] | None:
    """``KEY=VALUE`` as ``(KEY, VALUE read as YAML)``; malformed YAML ends the script (:func:`common.fail`)."""
    if where is None:
        return None
    key, equals, text = where.partition("=")
    if not equals or not key:
        fail(f"--where {where!r}: give KEY=VALUE, e.g. train.precision=bf16-mixed")
    try:
        return key, read_yaml(text, where)
    except GraphSSLError as err:
        fail(str(err))


def matches(result: dict[str, Any], where: tuple[str, Any] | None) -> bool:
    """Whether a bench result's config has the ``where`` value (``32`` matches the name ``"32"``)."""
    if where is None:
        return True
    key, wanted = where
    value = config_value(result.get("config"), key)
    return value == wanted or str(value) == str(wanted)


def runs_by_seed(bench: Path, alpha: Any, method: str | None = None,
                 where: str | None = None) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    wanted = where_value(where)
    for _, result in bench_results(bench):
        # Results made before methods existed are BGRL's.
        if result["metrics"]["werank"] == alpha and method in (None, result["metrics"].get("method", "bgrl")) \
                and matches(result, wanted):
            if result["seed"] in found:
                fail(f"{bench}: several settings with werank {alpha!r}; give a bench folder with one "
                     f"(or the method, --method-a / --method-b, or a swept key, --where-a / --where-b)")
            found[result["seed"]] = result["metrics"]
    if not found:
        fail(f"{bench}: no finished runs with werank {alpha!r}")
    return found


def embedding_dim(runs: dict[int, dict[str, Any]]) -> int:
    """The embedding size of one side's runs, the scale of its rank and RankMe (several sizes end the script)."""
    dims = sorted({m["embedding_dim"] for m in runs.values()})
    if len(dims) > 1:
        fail(f"one side's runs have embeddings of {dims} dimensions; give one setting per side")
    return dims[0]


def summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    acc, acc_std = mean_std([100 * m["test_acc"] for m in runs.values()])
    rankme, rankme_std = mean_std([m["rankme"] for m in runs.values()])
    rank = mean_std([m["rank"] for m in runs.values()])[0]
    return {"test_acc": round(acc, 2), "test_acc_std": round(acc_std, 2), "rankme": round(rankme, 1),
            "rankme_std": round(rankme_std, 1), "rank": round(rank, 1), "embedding_dim": embedding_dim(runs),
            "seeds": sorted(runs)}


def is_paired_result(result: Any) -> bool:
    """Whether ``result`` (a file this script wrote, parsed) has what readers of it use, of the types written."""
    def is_side(side: Any) -> bool:
        seeds = side.get("seeds") if isinstance(side, dict) else None
        return isinstance(side, dict) \
            and all(is_number(side.get(key)) for key in ("test_acc", "test_acc_std", "rankme", "rankme_std", "rank")) \
            and is_recorded_alpha(side.get("werank")) and is_whole_number(side.get("embedding_dim")) \
            and isinstance(seeds, list) and len(seeds) > 0 and all(map(is_whole_number, seeds))

    return isinstance(result, dict) and is_side(result.get("a")) and is_side(result.get("b")) \
        and all(is_number(result.get(key)) for key in ("paired_difference_points", "paired_difference_std")) \
        and all(is_whole_number(result.get(key)) for key in ("a_better_on", "paired_seeds"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_a", type=Path)
    parser.add_argument("alpha_a", type=json.loads)
    parser.add_argument("bench_b", type=Path)
    parser.add_argument("alpha_b", type=json.loads)
    parser.add_argument("--method-a", help="only side A's runs of this method (a bench folder of several methods)")
    parser.add_argument("--method-b", help="only side B's runs of this method")
    parser.add_argument("--where-a", metavar="KEY=VALUE", help="only side A's runs whose config has this value")
    parser.add_argument("--where-b", metavar="KEY=VALUE", help="only side B's runs whose config has this value")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    a = runs_by_seed(args.bench_a, args.alpha_a, args.method_a, args.where_a)
    b = runs_by_seed(args.bench_b, args.alpha_b, args.method_b, args.where_b)
    common = sorted(set(a) & set(b))
    if not common:
        fail(f"no seed has a run on both sides (A: {sorted(a)}, B: {sorted(b)}); run the benches on the same seeds")
    differences = [100 * (a[s]["test_acc"] - b[s]["test_acc"]) for s in common]
    mean, std = mean_std(differences)
    # RankMe of A relative to B, from the means over each side's seeds (the "within 5%"), each as a share
    # of its embedding size: sides of different sizes (two tuned arms) are compared on the same scale.
    rankme = (statistics.mean(m["rankme"] for m in a.values()) / embedding_dim(a)) \
        / (statistics.mean(m["rankme"] for m in b.values()) / embedding_dim(b)) - 1
    result = {"a": {"bench": str(args.bench_a), "method": args.method_a, "werank": args.alpha_a,
                    "where": args.where_a, **summary(a)},
              "b": {"bench": str(args.bench_b), "method": args.method_b, "werank": args.alpha_b,
                    "where": args.where_b, **summary(b)},
              "paired_difference_points": round(mean, 2), "paired_difference_std": round(std, 2),
              "rankme_relative_difference": round(rankme, 4),
              "a_better_on": sum(d > 0 for d in differences), "ties": sum(d == 0 for d in differences),
              "paired_seeds": len(common)}
    report(result, args.out)


if __name__ == "__main__":
    main()
