"""Table and figure of WERank across self-supervised objectives on Cora (issue 14), from the paired results
benchmarks/methods_fair.sh writes.

    python benchmarks/methods_table.py benchmarks/results

Reads RESULTS/cora-fair-paired.json (BGRL's row: benchmarks/cora_fair.sh's headline pair) and
RESULTS/cora-methods-<method>-paired.json for CCA-SSG, GRACE and VICReg (benchmarks/paired_difference.py: side A
the WERank arm, side B the plain one), and writes

* RESULTS/cora-methods.png: test accuracy and RankMe (as a share of the embedding size) of both arms per method
  (mean ± sample std over the fresh seeds), the published figures and the issue's 84.5 % as marks;
* RESULTS/cora-methods.md: per method and arm, test accuracy, RankMe, the numerical rank and the embedding size
  (the scale of both ranks), WERank's paired difference and on how many seeds it wins, the published Cora figure
  beside it, then the issue's targets
  checked on the means as the table shows them (2 decimals), then the cross-checks: within each arm's setup,
  WERank on against off (RESULTS/cora-methods-<method>-paired-{werank,plain}-setup.json; BGRL's
  cora-fair-paired-{werank,bgrl}-config.json).

A method whose paired result is not there yet is listed as not finished and every verdict that could still
change says "so far", so the table can be made at any point of the run. Each arm was chosen on validation
(graphssl tune) before its test accuracy was computed; the targets only compare those final scores.
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
from paired_difference import is_paired_result  # noqa: E402

METHODS = ("bgrl", "cca-ssg", "grace", "vicreg")
# Cora, public split, linear probe, as the GraphMAE paper (Hou et al., 2022, Table 1) reports them; there is no
# VICReg-on-graphs paper. The targets are GRACE's and CCA-SSG's; BGRL's is shown for comparison.
PUBLISHED = {"bgrl": (82.7, 0.6), "cca-ssg": (84.0, 0.4), "grace": (81.9, 0.4)}
BEST_TARGET = 84.5  # the issue's: the best method + WERank reaches it
MIN_SEEDS = 10  # the issue's: at least 10 fresh seeds per arm
ARMS = (("plain", "b"), ("WERank", "a"))
CROSS_CHECKS_INTRO = ("Cross-checks, chosen by nothing: within each arm's setup, WERank (the WERank arm's α and norm)\n"
                      "against α = 0 on the same seeds, so WERank's share of the difference shows apart from the "
                      "setups'.")
Rows = dict[str, dict[str, Any] | None]  # method -> its paired result, None while not finished


def paired_path(results: Path, method: str) -> Path:
    """Where ``method``'s paired result is: the ``--out`` methods_fair.sh gives paired_difference.py (BGRL's is
    cora_fair.sh's)."""
    return results / ("cora-fair-paired.json" if method == "bgrl" else f"cora-methods-{method}-paired.json")


def cross_check_paths(results: Path, method: str) -> list[tuple[str, Path]]:
    """Where ``method``'s cross-checks are, the WERank arm's setup first: within one arm's setup, WERank on (side
    A, the WERank arm's setting) against α = 0 (side B), on the same seeds (BGRL's are cora_fair.sh's)."""
    if method == "bgrl":
        return [("WERank arm's", results / "cora-fair-paired-werank-config.json"),
                ("plain arm's", results / "cora-fair-paired-bgrl-config.json")]
    return [(f"{arm} arm's", results / f"cora-methods-{method}-paired-{name}-setup.json")
            for arm, name in (("WERank", "werank"), ("plain", "plain"))]


def is_nonzero(alpha: Any) -> bool:
    return any(alpha) if isinstance(alpha, list) else alpha != 0


def read_paired(path: Path) -> dict[str, Any] | None:
    """The paired result at ``path`` (None when it is not there yet); one not as paired_difference.py writes it,
    or whose sides are not a WERank arm against α = 0, ends the script (:func:`common.fail`)."""
    if not path.exists():
        return None
    rerun = f"run benchmarks/{'cora' if path.name.startswith('cora-fair') else 'methods'}_fair.sh again (it rewrites it)"
    try:
        paired = read_json(path)
    except (OSError, ValueError) as err:
        fail(f"{path} is unreadable ({reason(err)}); {rerun}")
    if not is_paired_result(paired):
        fail(f"{path} is not a result of benchmarks/paired_difference.py (edited?); {rerun}")
    if not is_nonzero(paired["a"]["werank"]) or is_nonzero(paired["b"]["werank"]):
        fail(f"{path} does not compare a WERank arm (side A) with α = 0 (side B); {rerun}")
    return paired


def seed_range(seeds: list[int]) -> str:
    """``100–109`` for consecutive seeds, else the list."""
    if sorted(seeds) == list(range(min(seeds), max(seeds) + 1)):
        return f"{min(seeds)}–{max(seeds)}"
    return ", ".join(map(str, seeds))


def published_text(method: str) -> str:
    return "{:.1f} ± {:.1f}".format(*PUBLISHED[method]) if method in PUBLISHED else "—"


def plus_minus(side: dict[str, Any], key: str, digits: int = 2) -> str:
    """A side's mean ± std of ``key`` (``test_acc``, ``rankme``) as the tables show it."""
    return f"{side[key]:.{digits}f} ± {side[f'{key}_std']:.{digits}f}"


def difference_text(paired: dict[str, Any]) -> str:
    """The paired difference A − B, mean ± std over the seeds, in points."""
    return f"{paired['paired_difference_points']:+.2f} ± {paired['paired_difference_std']:.2f}"


def wins_text(paired: dict[str, Any]) -> str:
    """On how many of the paired seeds side A (WERank) scored higher."""
    return f"{paired['a_better_on']} of {paired['paired_seeds']}"


def table(rows: Rows) -> list[str]:
    """The markdown table: two lines per finished method, one per unfinished one."""
    lines = ["| method | arm | WERank α | seeds | test acc (%) | RankMe | rank | of dim | WERank − plain (points) "
             "| WERank better | published Cora |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, paired in rows.items():
        if paired is None:
            lines.append(f"| {method} | not finished | | | | | | | | | {published_text(method)} |")
            continue
        for arm, side_key in ARMS:
            side, werank = paired[side_key], arm == "WERank"
            lines.append(f"| {method} | {arm} | {side['werank']} | {seed_range(side['seeds'])} "
                         f"| {plus_minus(side, 'test_acc')} | {plus_minus(side, 'rankme', 1)} | {side['rank']:.1f} "
                         f"| {side['embedding_dim']} "
                         f"| {difference_text(paired) if werank else ''} | {wins_text(paired) if werank else ''} "
                         f"| {published_text(method) if werank else ''} |")
    return lines


def cross_check_table(checks: dict[str, list[tuple[str, dict[str, Any] | None]]]) -> list[str]:
    """The markdown table of the cross-checks: per method and arm's setup, test accuracy with α = 0 and with the
    WERank arm's setting, and the paired difference."""
    lines = ["| method | setup | WERank α | seeds | test acc α = 0 (%) | test acc with WERank (%) "
             "| WERank − α = 0 (points) | WERank better | RankMe α = 0 / with WERank | of dim |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, setups in checks.items():
        for setup, paired in setups:
            if paired is None:
                lines.append(f"| {method} | {setup} | not finished | | | | | | | |")
                continue
            with_werank, plain = paired["a"], paired["b"]
            lines.append(f"| {method} | {setup} | {with_werank['werank']} | {seed_range(with_werank['seeds'])} "
                         f"| {plus_minus(plain, 'test_acc')} | {plus_minus(with_werank, 'test_acc')} "
                         f"| {difference_text(paired)} | {wins_text(paired)} "
                         f"| {plain['rankme']:.1f} / {with_werank['rankme']:.1f} "
                         f"| {' / '.join(sorted({str(plain['embedding_dim']), str(with_werank['embedding_dim'])}))} |")
    return lines


def short_of(acc: float, target: float) -> str:
    return "yes" if round(acc, 2) >= target else f"no, {target - acc:.2f} points short"


def seeds_note(side: dict[str, Any]) -> str:
    n = len(side["seeds"])
    return f"{n} seeds" + (f", fewer than the {MIN_SEEDS} asked" if n < MIN_SEEDS else "")


def targets(rows: Rows) -> list[str]:
    """The issue's targets, on the finished methods' mean test accuracy."""
    lines = []
    for method, paired in rows.items():
        if method in PUBLISHED:
            figure, std = PUBLISHED[method]
            if paired is None:
                lines.append(f"* {method} + WERank reaches its published {figure} ± {std}: not finished")
                continue
            werank, plain = paired["a"], paired["b"]
            lines.append(f"* {method} + WERank reaches its published {figure} ± {std}: "
                         f"{short_of(werank['test_acc'], figure)} ({plus_minus(werank, 'test_acc')}, "
                         f"{seeds_note(werank)}; plain {plain['test_acc']:.2f})")
        elif paired is not None:
            lines.append(f"* {method} has no published Cora figure: plain {paired['b']['test_acc']:.2f}, + WERank "
                         f"{paired['a']['test_acc']:.2f} ({seeds_note(paired['a'])})")
    finished = {method: paired["a"] for method, paired in rows.items() if paired is not None}
    if finished:
        best = max(finished, key=lambda method: finished[method]["test_acc"])
        unfinished = [method for method in rows if method not in finished]
        verdict = short_of(finished[best]["test_acc"], BEST_TARGET)
        if unfinished and verdict != "yes":  # a method still to finish can only raise the best
            verdict = f"so far {verdict}"
        lines.append(f"* the best method + WERank reaches {BEST_TARGET}: {verdict} "
                     f"({best}, {finished[best]['test_acc']:.2f}, {seeds_note(finished[best])})"
                     + (f"; not finished: {', '.join(unfinished)}" if unfinished else ""))
    return lines


def figure(rows: Rows, path: Path) -> None:
    """Test accuracy and RankMe as a share of the embedding size (arms embed in different sizes) of both arms per
    method (dots: mean, whiskers: std), unfinished ones labelled."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    methods = list(rows)
    panels = (("test_acc", "test accuracy (%)", lambda side: 1), ("rankme", "RankMe (% of the embedding size)",
                                                                 lambda side: 100 / side["embedding_dim"]))
    for axis, (quantity, label, scale) in zip(axes, panels):
        for offset, (arm, side_key) in zip((-0.12, 0.12), ARMS):
            shown = [(x, rows[method][side_key]) for x, method in enumerate(methods) if rows[method] is not None]
            if shown:
                axis.errorbar([x + offset for x, _ in shown], [side[quantity] * scale(side) for _, side in shown],
                              yerr=[side[f"{quantity}_std"] * scale(side) for _, side in shown], fmt="o", capsize=4,
                              label=arm)
        if quantity == "test_acc":
            marks = [(x + 0.36, *PUBLISHED[method]) for x, method in enumerate(methods) if method in PUBLISHED]
            axis.errorbar([x for x, _, _ in marks], [m for _, m, _ in marks], yerr=[s for _, _, s in marks],
                          fmt="D", color="gray", capsize=4, label="published")
            axis.axhline(BEST_TARGET, color="gray", linestyle=":", linewidth=1, label=f"target {BEST_TARGET}")
        axis.set_xticks(range(len(methods)), [method if rows[method] is not None else f"{method}\n(not finished)"
                                              for method in methods])
        axis.set_xlim(-0.6, len(methods) - 0.4)
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    fig.suptitle("Cora: each method's two arms tuned on validation; mean ± std over fresh seeds")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as err:
        fail(f"cannot write {path} ({reason(err)}); free it or the disk and run this again")
    finally:
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the folder methods_fair.sh writes into (benchmarks/results)")
    args = parser.parse_args()
    if not args.results.is_dir():
        fail(f"{args.results} is not a folder; give the one benchmarks/methods_fair.sh writes into "
             f"(benchmarks/results)")
    rows: Rows = {method: read_paired(paired_path(args.results, method)) for method in METHODS}
    checks = {method: [(setup, read_paired(path)) for setup, path in cross_check_paths(args.results, method)]
              for method in METHODS}  # every file read before anything is written
    figure(rows, args.results / "cora-methods.png")  # first: a failed figure leaves the table as it was
    text = "\n\n".join(["\n".join(table(rows)), "\n".join(targets(rows)), CROSS_CHECKS_INTRO,
                        "\n".join(cross_check_table(checks))]) + "\n"
    write_text(args.results / "cora-methods.md", text)
    print(text, end="")


if __name__ == "__main__":
    main()
