"""Table and figure of WERank across self-supervised objectives on Cora (issue 14), from the paired results
benchmarks/methods_fair.sh writes.

    python benchmarks/methods_table.py benchmarks/results                 # bgrl cca-ssg grace vicreg
    python benchmarks/methods_table.py benchmarks/results bgrl grace

Reads RESULTS/cora-fair-paired.json (BGRL's row: benchmarks/cora_fair.sh's headline pair) and
RESULTS/cora-methods-<method>-paired.json (benchmarks/paired_difference.py: side A the WERank arm, side B the
plain one), and writes

* RESULTS/cora-methods.md: per method and arm, test accuracy and RankMe (mean ± sample std over the fresh
  seeds), the numerical rank, WERank's paired difference and on how many seeds it wins, the published Cora figure
  beside it, then the issue's targets checked; a method whose paired result is not there yet is listed as
  not finished, so the table can be made at any point of the run;
* RESULTS/cora-methods.png: test accuracy and RankMe of both arms per finished method, the published figures as
  marks.

Test accuracy is only read here, after each arm was chosen on validation (graphssl tune) and scored on fresh
seeds; nothing is chosen from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import fail  # noqa: E402
from graphssl.errors import reason  # noqa: E402
from graphssl.files import read_json, write_text  # noqa: E402

METHODS = ("bgrl", "cca-ssg", "grace", "vicreg")
# Cora, public split, as the GraphMAE paper (Hou et al., 2022, Table 1) reports them; none for BGRL (its paper
# has no Cora figure) or VICReg (no graph VICReg paper).
PUBLISHED = {"grace": (81.9, 0.4), "cca-ssg": (84.0, 0.4)}
BEST_TARGET = 84.5  # the issue's: the best method + WERank reaches it
ARMS = (("plain", "b"), ("WERank", "a"))
SIDE_KEYS = ("werank", "test_acc", "test_acc_std", "rankme", "rankme_std", "rank", "seeds")
PAIR_KEYS = ("paired_difference_points", "paired_difference_std", "a_better_on", "paired_seeds")


def paired_path(results: Path, method: str) -> Path:
    """Where methods_fair.sh leaves ``method``'s paired result (BGRL's is cora_fair.sh's)."""
    return results / ("cora-fair-paired.json" if method == "bgrl" else f"cora-methods-{method}-paired.json")


def read_paired(path: Path) -> dict[str, Any] | None:
    """The paired result at ``path`` (None when it is not there yet); one not as paired_difference.py writes it
    ends the script (:func:`common.fail`)."""
    if not path.exists():
        return None
    try:
        paired = read_json(path)
    except (OSError, ValueError) as err:
        fail(f"{path} is unreadable ({reason(err)}); run benchmarks/methods_fair.sh again (it rewrites it)")
    well_formed = (isinstance(paired, dict) and all(key in paired for key in PAIR_KEYS)
                   and all(isinstance(paired.get(side), dict) and all(key in paired[side] for key in SIDE_KEYS)
                           for side in "ab"))
    if not well_formed:
        fail(f"{path} is not a result of benchmarks/paired_difference.py (edited?); run benchmarks/methods_fair.sh "
             f"again (it rewrites it)")
    return paired


def seed_range(seeds: list[int]) -> str:
    """``100–109`` for consecutive seeds, else the list."""
    if seeds == list(range(min(seeds), max(seeds) + 1)):
        return f"{min(seeds)}–{max(seeds)}"
    return ", ".join(map(str, seeds))


def table(rows: dict[str, dict[str, Any] | None]) -> list[str]:
    """The markdown table: two lines per finished method, one per unfinished one."""
    lines = ["| method | arm | WERank α | seeds | test acc (%) | RankMe | rank | WERank − plain (points) "
             "| WERank better | published Cora |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, paired in rows.items():
        published = "{:.1f} ± {:.1f}".format(*PUBLISHED[method]) if method in PUBLISHED else "—"
        if paired is None:
            lines.append(f"| {method} | not finished | | | | | | | | {published} |")
            continue
        for arm, side_key in ARMS:
            side = paired[side_key]
            werank = arm == "WERank"
            difference = (f"{paired['paired_difference_points']:+.2f} ± {paired['paired_difference_std']:.2f}"
                          if werank else "")
            better = f"{paired['a_better_on']} of {paired['paired_seeds']}" if werank else ""
            lines.append(f"| {method} | {arm} | {side['werank']} | {seed_range(side['seeds'])} "
                         f"| {side['test_acc']:.2f} ± {side['test_acc_std']:.2f} "
                         f"| {side['rankme']:.1f} ± {side['rankme_std']:.1f} | {side['rank']:.1f} "
                         f"| {difference} | {better} | {published if werank else ''} |")
    return lines


def targets(rows: dict[str, dict[str, Any] | None]) -> list[str]:
    """The issue's targets, each checked on the finished methods' mean test accuracy."""
    lines = []
    finished = {method: paired for method, paired in rows.items() if paired is not None}
    for method, paired in rows.items():
        if method in PUBLISHED:
            figure, std = PUBLISHED[method]
            if paired is None:
                lines.append(f"* {method} + WERank reaches its published {figure} ± {std}: not finished")
                continue
            acc = paired["a"]["test_acc"]
            verdict = "yes" if acc >= figure else f"no, {figure - acc:.2f} points short"
            lines.append(f"* {method} + WERank reaches its published {figure} ± {std}: {verdict} "
                         f"({acc:.2f} ± {paired['a']['test_acc_std']:.2f}; plain {paired['b']['test_acc']:.2f})")
        elif method == "vicreg" and paired is not None:
            lines.append(f"* vicreg has no published graph figure: plain {paired['b']['test_acc']:.2f}, "
                         f"+ WERank {paired['a']['test_acc']:.2f}")
    if finished:
        best = max(finished, key=lambda method: finished[method]["a"]["test_acc"])
        acc = finished[best]["a"]["test_acc"]
        unfinished = [method for method in rows if method not in finished]
        verdict = "yes" if acc >= BEST_TARGET else f"no, {BEST_TARGET - acc:.2f} points short"
        if unfinished:
            verdict = f"so far {verdict}"
        lines.append(f"* the best method + WERank reaches {BEST_TARGET}: {verdict} ({best}, {acc:.2f})"
                     + (f"; not finished: {', '.join(unfinished)}" if unfinished else ""))
    return lines


def figure(rows: dict[str, dict[str, Any] | None], path: Path) -> Path | None:
    """Test accuracy and RankMe of both arms per finished method (bars: mean, whiskers: std); None if none."""
    finished = [(method, paired) for method, paired in rows.items() if paired is not None]
    if not finished:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    positions = range(len(finished))
    for axis, (quantity, label) in zip(axes, (("test_acc", "test accuracy (%)"), ("rankme", "RankMe"))):
        for offset, (arm, side_key) in zip((-0.2, 0.2), ARMS):
            axis.bar([p + offset for p in positions], [paired[side_key][quantity] for _, paired in finished],
                     width=0.4, yerr=[paired[side_key][f"{quantity}_std"] for _, paired in finished],
                     capsize=3, label=arm)
        if quantity == "test_acc":
            marks = [(p + 0.2, PUBLISHED[method][0])  # over the WERank bar, the arm the target is for
                     for p, (method, _) in zip(positions, finished) if method in PUBLISHED]
            if marks:
                axis.scatter(*zip(*marks), marker="_", s=600, color="black", zorder=3, label="published")
            low = min(paired[side]["test_acc"] - paired[side]["test_acc_std"]
                      for _, paired in finished for side in "ab")
            axis.set_ylim(max(0.0, min([low, *(mark for _, mark in marks)]) - 3), None)
        axis.set_xticks(list(positions), [method for method, _ in finished])
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    fig.suptitle("Cora: each method's two arms tuned on validation, scored on fresh seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the folder methods_fair.sh writes into (benchmarks/results)")
    parser.add_argument("methods", nargs="*", default=list(METHODS),
                        help=f"rows, in order (default: {' '.join(METHODS)})")
    args = parser.parse_args()
    if not args.results.is_dir():
        fail(f"{args.results} is not a folder; give the one benchmarks/methods_fair.sh writes into "
             f"(benchmarks/results)")
    unknown = [method for method in args.methods if method not in METHODS]
    if unknown:
        fail(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    rows = {method: read_paired(paired_path(args.results, method)) for method in args.methods}
    text = "\n".join(table(rows)) + "\n\n" + "\n".join(targets(rows)) + "\n"
    write_text(args.results / "cora-methods.md", text)
    print(text, end="")
    drawn = figure(rows, args.results / "cora-methods.png")
    if drawn is not None:
        print(f"figure: {drawn}")


if __name__ == "__main__":
    main()
