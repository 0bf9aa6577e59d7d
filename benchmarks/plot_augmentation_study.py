"""Figures, tables and summary of benchmarks/augmentation_study.py's runs.

Reads OUT/plan.json (what the study asked for) and the finished runs in OUT/bench/results/, and writes

* OUT/augmentation_test_acc.png, OUT/augmentation_rankme.png, OUT/augmentation_rank.png: the quantity against the
  augmentation rate p, one panel per mode (edges and features, edges only, features only), alpha = 0 and the tuned
  alpha, mean ± sample std over seeds as bands;
* OUT/augmentation.md: the study's table (per mode and p, both arms and WERank's paired gain), the comparison's table
  (weak, default and strong augmentation: alpha = 0, constant and adaptive), the issue's two targets checked, and
  the numbers that bear on the WERank paper's three graph claims;
* OUT/augmentation.json: the same numbers.

Paired differences are over the seeds both arms finished, in accuracy points: mean, sample std, standard error
(std / sqrt(n)). "Noise" is two standard errors of the paired mean: adaptive is "below alpha = 0 by more than
noise" when adaptive - plain < -2 SE. A setting with no finished runs yet is left out.

    python benchmarks/plot_augmentation_study.py benchmarks/results/augmentation
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import bench_results, fail  # noqa: E402
from graphssl.files import read_json, write_json, write_text  # noqa: E402
from graphssl.tables import mean_std  # noqa: E402

ARMS = ("plain", "constant", "adaptive")
ARM_LABELS = {"plain": "α = 0", "constant": "tuned constant α", "adaptive": "adaptive α"}
QUANTITIES = {"test_acc": "test accuracy (%)", "rankme": "RankMe", "rank": "numerical rank"}
TARGET_POINTS = 0.5  # the target: adaptive within 0.5 points of the tuned constant alpha
NOISE_SE = 2.0  # "more than noise": beyond two standard errors of the paired mean difference
PLAN_KEYS = {"adaptive", "alpha", "compare", "config", "seeds", "steps", "study"}  # what augmentation_study writes


def arm_of(config: dict[str, Any], plan: dict[str, Any]) -> str | None:
    """Which arm of the plan a run's config is (``None``: another plan's run, e.g. a smoke run's or one with
    other adaptive constants, left in the same folder: another coefficient, step count or constants)."""
    werank, alpha = config["werank"], plan["alpha"]
    if config.get("optim", {}).get("steps") != plan["steps"]:
        return None
    if werank.get("schedule", "constant") == "adaptive":
        same = werank["alpha"] == alpha and all(werank.get(key) == value for key, value in plan["adaptive"].items())
        return "adaptive" if same else None
    return "plain" if werank["alpha"] == 0 else "constant" if werank["alpha"] == alpha else None


def load_runs(folder: Path, plan: dict[str, Any]) -> dict[tuple[tuple[float, ...], str], dict[int, dict[str, Any]]]:
    """The plan's finished runs: ``{(augmentation rates, arm): {seed: metrics}}`` (test accuracy in points)."""
    keys = ("drop_edge_1", "drop_edge_2", "mask_feature_1", "mask_feature_2")
    runs: dict[tuple[tuple[float, ...], str], dict[int, dict[str, Any]]] = {}
    for path, result in bench_results(folder / "bench"):
        config = result.get("config")
        if not isinstance(config, dict):  # the study's bench always records it
            fail(f"{path} holds no config; run benchmarks/augmentation_study.py again (it retrains that run)")
        arm = arm_of(config, plan)
        if arm is None or result["seed"] not in plan["seeds"]:
            continue
        rates = tuple(float(config["augment"][key]) for key in keys)
        metrics = result["metrics"]
        runs.setdefault((rates, arm), {})[result["seed"]] = {
            "test_acc": 100 * metrics["test_acc"], "rankme": metrics["rankme"], "rank": metrics["rank"],
            "final_werank_alpha": metrics.get("final_werank_alpha", metrics["werank"])}
    return runs


def describe(seeds: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std over seeds of every quantity (and of the final alpha)."""
    summary: dict[str, Any] = {"seeds": len(seeds)}
    for key in (*QUANTITIES, "final_werank_alpha"):
        summary[key], summary[f"{key}_std"] = mean_std([m[key] for m in seeds.values()])
    return summary


def paired(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """Test accuracy of A - B over the seeds both have, in points (``None`` when they share none)."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    differences = [a[s]["test_acc"] - b[s]["test_acc"] for s in common]
    mean, std = mean_std(differences)
    return {"mean": mean, "std": std, "se": std / math.sqrt(len(common)), "seeds": len(common),
            "a_better": sum(d > 0 for d in differences)}


def study_rows(plan: dict[str, Any], runs: dict) -> list[dict[str, Any]]:
    rows = []
    for mode, settings in plan["study"].items():
        for p, rates in settings:
            plain, constant = runs.get((tuple(rates), "plain")), runs.get((tuple(rates), "constant"))
            if plain and constant:
                rows.append({"mode": mode, "p": p, "rates": rates, "plain": describe(plain),
                             "constant": describe(constant), "gain": paired(constant, plain)})
    return rows


def compare_rows(plan: dict[str, Any], runs: dict) -> list[dict[str, Any]]:
    rows = []
    for setting, rates in plan["compare"].items():
        arms = {arm: runs.get((tuple(rates), arm)) for arm in ARMS}
        if not all(arms.values()):
            continue
        versus_constant = paired(arms["adaptive"], arms["constant"])
        versus_plain = paired(arms["adaptive"], arms["plain"])
        rows.append({"setting": setting, "rates": rates, **{arm: describe(seeds) for arm, seeds in arms.items()},
                     "adaptive_minus_constant": versus_constant, "adaptive_minus_plain": versus_plain,
                     "constant_minus_plain": paired(arms["constant"], arms["plain"]),
                     "within_target_of_constant": abs(versus_constant["mean"]) <= TARGET_POINTS,
                     # one seed has no spread to call noise
                     "below_plain_beyond_noise": versus_plain["mean"] < -NOISE_SE * versus_plain["se"]
                     if versus_plain["seeds"] > 1 else None})
    return rows


def claims(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mode, the numbers the paper's claims are about, at the weakest non-zero and the strongest rate measured:
    plain BGRL's RankMe (rank degradation under weak augmentation; feature masking as a cause of collapse) and
    WERank's paired accuracy gain (WERank most useful under weak augmentation)."""
    evidence = {}
    for mode in dict.fromkeys(row["mode"] for row in rows):
        mine = [row for row in rows if row["mode"] == mode and row["p"] > 0]
        if len(mine) < 2:
            continue
        weak, strong = mine[0], mine[-1]
        evidence[mode] = {"weak_p": weak["p"], "strong_p": strong["p"],
                          "plain_rankme": [weak["plain"]["rankme"], strong["plain"]["rankme"]],
                          "werank_rankme": [weak["constant"]["rankme"], strong["constant"]["rankme"]],
                          "werank_gain_points": [weak["gain"]["mean"], strong["gain"]["mean"]]}
    return evidence


def draw(plan: dict[str, Any], runs: dict, quantity: str, out: Path) -> Path:
    """``quantity`` against p, one panel per mode, alpha = 0 and tuned alpha with mean ± std bands."""
    modes = list(plan["study"])
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for arm, color in (("plain", "tab:gray"), ("constant", "tab:blue")):
            points = [(p, describe(runs[(tuple(rates), arm)])) for p, rates in plan["study"][mode]
                      if (tuple(rates), arm) in runs]
            if not points:
                continue
            ps = [p for p, _ in points]
            mean = [s[quantity] for _, s in points]
            std = [s[f"{quantity}_std"] for _, s in points]
            label = ARM_LABELS[arm] if arm == "plain" else f"WERank α = {plan['alpha']:g}"
            ax.plot(ps, mean, marker="o", color=color, label=label)
            ax.fill_between(ps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=color, alpha=0.2)
        ax.set_title({"edges+features": "edges and features", "edges": "edges only",
                      "features": "features only"}[mode])
        ax.set_xlabel("augmentation rate p (both views)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(QUANTITIES[quantity])
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Cora, BGRL: {QUANTITIES[quantity]} against augmentation strength (mean ± std over seeds)",
                 fontsize=10)
    fig.tight_layout()
    path = out / f"augmentation_{quantity}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cell(summary: dict[str, Any], key: str, digits: int) -> str:
    return f"{summary[key]:.{digits}f} ± {summary[f'{key}_std']:.{digits}f}"


def _difference(d: dict[str, Any] | None) -> str:
    return "–" if d is None else f"{d['mean']:+.2f} ± {d['std']:.2f} (SE {d['se']:.2f}; {d['a_better']}/{d['seeds']})"


def _verdict(value: bool | None) -> str:
    return "– (one seed)" if value is None else "yes" if value else "no"


def markdown(plan: dict[str, Any], study: list[dict[str, Any]], compare: list[dict[str, Any]],
             evidence: dict[str, dict[str, Any]]) -> str:
    lines = [f"# Augmentation strength and WERank on Cora ({plan['config']}, tuned α {plan['alpha']:g}, "
             f"seeds {plan['seeds'][0]}–{plan['seeds'][-1]}, {plan['steps']} steps)", "",
             "Mean ± sample std over seeds; differences paired by seed: mean ± std (standard error; seeds where the "
             "first arm is better / seeds).", "", "## Study: rate p on edges and features, edges only, features only",
             "", "| mode | p | test acc α = 0 | test acc α | WERank − plain (points) | RankMe α = 0 | RankMe α "
             "| rank α = 0 | rank α | seeds |", "|---" * 10 + "|"]
    for row in study:
        plain, constant = row["plain"], row["constant"]
        lines.append(f"| {row['mode']} | {row['p']:g} | {_cell(plain, 'test_acc', 2)} | {_cell(constant, 'test_acc', 2)} "
                     f"| {_difference(row['gain'])} | {_cell(plain, 'rankme', 1)} | {_cell(constant, 'rankme', 1)} "
                     f"| {_cell(plain, 'rank', 1)} | {_cell(constant, 'rank', 1)} | {min(plain['seeds'], constant['seeds'])} |")
    constants = ", ".join(f"{key} {value:g}" for key, value in plan["adaptive"].items())
    lines += ["", f"## Comparison: α = 0, tuned constant α, adaptive α ({constants}; starting from α "
                  f"{plan['alpha']:g})", "",
              "| setting | rates (edge 1, edge 2, feature 1, feature 2) | arm | test acc (%) | RankMe | rank | final α "
              "| seeds |", "|---" * 8 + "|"]
    for row in compare:
        for arm in ARMS:
            s = row[arm]
            lines.append(f"| {row['setting']} | {', '.join(f'{r:g}' for r in row['rates'])} | {ARM_LABELS[arm]} | "
                         f"{_cell(s, 'test_acc', 2)} | {_cell(s, 'rankme', 1)} | {_cell(s, 'rank', 1)} | "
                         f"{_cell(s, 'final_werank_alpha', 4)} | {s['seeds']} |")
    lines += ["", f"Targets: adaptive within {TARGET_POINTS} points of the tuned constant α, and never below α = 0 by "
                  f"more than noise ({NOISE_SE:g} standard errors of the paired mean).", "",
              "| setting | adaptive − constant | within target | adaptive − α = 0 | below α = 0 beyond noise "
              "| constant − α = 0 |", "|---" * 6 + "|"]
    for row in compare:
        lines.append(f"| {row['setting']} | {_difference(row['adaptive_minus_constant'])} | "
                     f"{_verdict(row['within_target_of_constant'])} | {_difference(row['adaptive_minus_plain'])} "
                     f"| {_verdict(row['below_plain_beyond_noise'])} | "
                     f"{_difference(row['constant_minus_plain'])} |")
    lines += ["", "## Numbers behind the paper's claims (weakest non-zero vs strongest rate of each mode)", "",
              "| mode | p weak → strong | RankMe α = 0 | RankMe α | WERank − plain (points) |", "|---" * 5 + "|"]
    for mode, e in evidence.items():
        lines.append(f"| {mode} | {e['weak_p']:g} → {e['strong_p']:g} | {e['plain_rankme'][0]:.1f} → "
                     f"{e['plain_rankme'][1]:.1f} | {e['werank_rankme'][0]:.1f} → {e['werank_rankme'][1]:.1f} | "
                     f"{e['werank_gain_points'][0]:+.2f} → {e['werank_gain_points'][1]:+.2f} |")
    if not evidence:
        lines.append("\n(None yet: each mode needs two non-zero rates with both arms finished.)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the study's folder (holding plan.json and bench/results/)")
    args = parser.parse_args()
    try:
        plan = read_json(args.folder / "plan.json")
        if not (isinstance(plan, dict) and PLAN_KEYS <= plan.keys()):
            raise ValueError(f"it lacks {', '.join(sorted(PLAN_KEYS - set(plan if isinstance(plan, dict) else ())))}")
    except (OSError, ValueError) as err:
        fail(f"{args.folder}: no readable plan.json ({err}); run benchmarks/augmentation_study.py first")
    runs = load_runs(args.folder, plan)
    study, compare = study_rows(plan, runs), compare_rows(plan, runs)
    evidence = claims(study)
    for quantity in QUANTITIES:
        print(draw(plan, runs, quantity, args.folder))
    write_text(args.folder / "augmentation.md", markdown(plan, study, compare, evidence))
    write_json(args.folder / "augmentation.json", {"plan": plan, "study": study, "compare": compare,
                                                   "claims": evidence})
    print(args.folder / "augmentation.md")
    print(args.folder / "augmentation.json")


if __name__ == "__main__":
    main()
