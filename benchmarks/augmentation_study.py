"""Augmentation strength and WERank on Cora (issue 17): the study, and the adaptive coefficient against the tuned one.

1. Study: an augmentation rate p in 0, 0.1, ..., 0.7 applied to edges and features together (all four rates p),
   to edges only (edge dropping p in both views, no feature masking) or to features only (feature masking p, no
   edge dropping), each with alpha = 0 and the tuned alpha.
2. Comparison: weak (every rate 0.1), default (the config's own rates) and strong (every rate 0.5) augmentation,
   each with alpha = 0, the tuned constant alpha and the adaptive schedule (werank.schedule: adaptive, starting
   from the tuned alpha, with the config's target_fraction, adapt_factor, alpha_min and alpha_max: one set of
   constants for all three settings, never re-tuned per setting).

The tuned alpha and the adaptive constants are read from the config (configs/cora.yaml, whose values are chosen on
validation with graphssl tune; README, "Adaptive WERank coefficient"); seeds 200-209 are fresh (tuning used 0-2,
the headline comparison 100-119). Every training is a run of `graphssl bench` in one folder, OUT/bench/, keyed by
its whole config, so running this again skips finished runs and resumes a killed one, and a setting both parts
share (p = 0 of the three modes; weak and strong = the study's both-at-p settings) is trained once. OUT/plan.json
records what was asked; benchmarks/plot_augmentation_study.py then draws the figures and writes the tables and
summary into OUT (OUT/bench/table.md is only the last bench call's). The bench folder is a folder of its own
because graphssl bench refuses one holding files it did not write.

    python benchmarks/augmentation_study.py                        # about 500 trainings; days on 2 CPU cores
    python benchmarks/augmentation_study.py --alpha 0.1 --smoke --out /tmp/augmentation-smoke   # the pipeline, minutes
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from common import REPO, fail, run_graphssl, run_visible
from graphssl.config import ADAPTIVE_ONLY_KEYS, load_config
from graphssl.errors import GraphSSLError
from graphssl.files import write_json
from graphssl.parallel import check_jobs

AUGMENT_KEYS = ("augment.drop_edge_1", "augment.drop_edge_2", "augment.mask_feature_1", "augment.mask_feature_2")
RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
SMOKE_RATES = (0.0, 0.5)
# Which of (edge dropping, feature masking) a mode applies the rate p to; the other is off.
MODES = {"edges+features": (True, True), "edges": (True, False), "features": (False, True)}
WEAK, STRONG = 0.1, 0.5  # as the README's earlier augmentation ablation
# The study's trainings go coarse to fine, every mode at each rate: the weakest and strongest rates first (the
# paper's claims compare them), so a study stopped partway (it takes days) already has whole, coarse curves.
COARSE_TO_FINE = (0.1, 0.7, 0.0, 0.4, 0.2, 0.6, 0.3, 0.5)


def mode_rates(mode: str, p: float) -> list[float]:
    """The four augmentation rates (edge drop of views 1 and 2, feature mask of views 1 and 2) of ``mode`` at ``p``."""
    edges, features = MODES[mode]
    return [p if edges else 0.0] * 2 + [p if features else 0.0] * 2


def plan(config_path: Path, alpha: float | None, rates: tuple[float, ...], seeds: list[int],
         steps: int | None) -> dict[str, Any]:
    """What the study trains: the tuned alpha, the adaptive constants, and the augmentation rates of every setting."""
    try:  # graphssl's own validation refuses a bad --steps, with its message
        config = load_config(config_path, {} if steps is None else {"optim.steps": steps})
    except GraphSSLError as err:
        fail(str(err))
    if alpha is None:
        alpha = config["werank"]["alpha"]
        if isinstance(alpha, list) or alpha <= 0:
            fail(f"{config_path}: werank.alpha is {alpha!r}; the study needs the tuned coefficient (one number "
                 f"> 0): put the WERank tune's best.yaml there first (or give --alpha for a smoke run)")
    elif not (math.isfinite(alpha) and alpha > 0):
        fail(f"--alpha {alpha}: give a WERank coefficient > 0 (the study trains alpha = 0 itself)")
    default = [config["augment"][key.split(".")[1]] for key in AUGMENT_KEYS]
    shown = config_path.relative_to(REPO) if config_path.is_relative_to(REPO) else config_path  # bench runs in REPO
    return {"config": str(shown), "alpha": alpha, "seeds": seeds,
            "steps": config["optim"]["steps"],
            "adaptive": {key: config["werank"][key] for key in (k.split(".")[1] for k in ADAPTIVE_ONLY_KEYS)},
            "study": {mode: [[p, mode_rates(mode, p)] for p in rates] for mode in MODES},
            "compare": {"weak": [WEAK] * 4, "default": default, "strong": [STRONG] * 4}}


def bench(study: dict[str, Any], out: Path, rates: list[float], arms: list[str], extra: list[str]) -> None:
    """One ``graphssl bench`` call: the arms (``--werank`` values and settings) at these augmentation rates."""
    assignments = [arg for key, rate in zip(AUGMENT_KEYS, rates) for arg in ("--set", f"{key}={rate}")]
    run_graphssl(["bench", "--datasets", "cora", "--config", study["config"], "--seeds", len(study["seeds"]),
                  "--first-seed", study["seeds"][0], "--steps", study["steps"], "--out", out, "--quiet", *arms,
                  *assignments, *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "augmentation")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "cora.yaml",
                        help="the tuned config: its alpha, adaptive constants and default rates (default configs/cora.yaml)")
    parser.add_argument("--alpha", type=float, help="WERank coefficient instead of the config's (smoke runs only)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=200)
    parser.add_argument("--steps", type=int, help="training steps (default: the config's)")
    parser.add_argument("--jobs", type=int, help="trainings at once (graphssl bench --jobs)")
    parser.add_argument("--parts", nargs="+", choices=("compare", "study"), default=["compare", "study"],
                        help="the comparison (item 2, the fewer runs) first, then the study (item 1)")
    parser.add_argument("--smoke", action="store_true",
                        help="check the pipeline: 1 seed, 6 steps, rates 0 and 0.5, rank measured every 2 steps")
    args = parser.parse_args()
    # Bad input is refused before plan.json is written over (graphssl bench would refuse it only after).
    if args.seeds < 1:
        fail(f"--seeds {args.seeds}: give the number of seeds, at least 1")
    if args.first_seed < 0:
        fail(f"--first-seed {args.first_seed}: give a seed >= 0")
    if args.jobs is not None:
        try:
            check_jobs(args.jobs)
        except GraphSSLError as err:
            fail(str(err))
    seeds, steps, extra = args.seeds, args.steps, ["--jobs", args.jobs] if args.jobs else []
    if args.smoke:
        seeds, steps, extra = 1, 6, [*extra, "--set", "train.spectra_every=2"]
    study = plan(args.config.resolve(), args.alpha, SMOKE_RATES if args.smoke else RATES,
                 list(range(args.first_seed, args.first_seed + seeds)), steps)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "plan.json", study)
    print(f"tuned alpha {study['alpha']}, adaptive {study['adaptive']}, seeds {study['seeds']}, steps {study['steps']}",
          file=sys.stderr)
    both = ["--werank", "0", json.dumps(study["alpha"])]
    adaptive = ["--werank", json.dumps(study["alpha"]), "--set", "werank.schedule=adaptive"]
    if "compare" in args.parts:
        for rates in study["compare"].values():
            bench(study, out / "bench", rates, both, extra)
            bench(study, out / "bench", rates, adaptive, extra)
    if "study" in args.parts:
        done: list[list[float]] = []
        points = [point for settings in study["study"].values() for point in settings]
        for _, rates in sorted(points, key=lambda point: COARSE_TO_FINE.index(point[0])):
            if rates not in done:  # p = 0 is the same runs in every mode
                bench(study, out / "bench", rates, both, extra)
                done.append(rates)
    run_visible([sys.executable, REPO / "benchmarks" / "plot_augmentation_study.py", out])


if __name__ == "__main__":
    main()
