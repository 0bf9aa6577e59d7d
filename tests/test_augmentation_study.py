"""benchmarks/augmentation_study.py end to end, and plot_augmentation_study.py on a study folder with known numbers:
pairing, the issue's targets, claims."""

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import run

REPO = Path(__file__).resolve().parents[1]
ALPHA = 0.01
SEEDS = [200, 201, 202]
WEAK, DEFAULT, STRONG = [0.1] * 4, [0.4, 0.1, 0.3, 0.4], [0.5] * 4


def mode_rates(mode, p):
    return {"edges+features": [p] * 4, "edges": [p, p, 0.0, 0.0], "features": [0.0, 0.0, p, p]}[mode]


PLAN = {"config": "configs/cora.yaml", "alpha": ALPHA, "seeds": SEEDS, "steps": 1000,
        "adaptive": {"target_fraction": 0.6, "adapt_factor": 1.5, "alpha_min": 1e-4, "alpha_max": 1.0},
        "study": {mode: [[p, mode_rates(mode, p)] for p in (0.0, 0.1, 0.5)] for mode in ("edges+features", "edges",
                                                                                          "features")},
        "compare": {"weak": WEAK, "default": DEFAULT, "strong": STRONG}}


def accuracy(rates, arm, seed):
    """Plain BGRL at 80 % (+ seed noise); WERank +2 points under weak augmentation, +0.5 under strong; the adaptive
    arm 0.3 below constant at weak and default, and 2 below at strong, which also puts it 1.5 below plain."""
    strong = rates == STRONG
    gain = {"plain": 0.0, "constant": 0.5 if strong else 2.0}.get(arm)
    if arm == "adaptive":
        gain = -1.5 if strong else 1.7
    return 80.0 + gain + 0.1 * (seed - 201)


def write_result(folder, rates, arm, seed, steps=1000, adapt_factor=1.5, bonus=0.0):
    alpha = 0.0 if arm == "plain" else ALPHA
    config = {"augment": dict(zip(("drop_edge_1", "drop_edge_2", "mask_feature_1", "mask_feature_2"), rates)),
              "optim": {"steps": steps},
              "werank": {**PLAN["adaptive"], "adapt_factor": adapt_factor, "alpha": alpha,
                         "schedule": "adaptive" if arm == "adaptive" else "constant"}}
    metrics = {"test_acc": (accuracy(rates, arm, seed) + bonus) / 100, "rankme": 60.0 if arm == "plain" else 90.0,
               "rank": 128, "werank": alpha, "final_werank_alpha": 0.04 if arm == "adaptive" else alpha,
               "val_acc": 0.5, "train_seconds": 1.0}
    name = f"{'_'.join(map(str, rates))}__{arm}__{seed}__{steps}__{adapt_factor}.json"
    (folder / "bench" / "results" / name).write_text(json.dumps({"dataset": "cora", "settings": {}, "seed": seed,
                                                                 "config": config, "metrics": metrics}))


def test_the_study_tables_pair_seeds_and_check_the_issues_targets(tmp_path):
    folder = tmp_path / "augmentation"
    (folder / "bench" / "results").mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(PLAN))
    settings = {tuple(rates) for mode in PLAN["study"].values() for _, rates in mode}
    for rates in settings | {tuple(r) for r in PLAN["compare"].values()}:
        for seed in SEEDS:
            for arm in ("plain", "constant") + (("adaptive",) if list(rates) in PLAN["compare"].values() else ()):
                write_result(folder, list(rates), arm, seed)
    # Left out, else they would replace a seed of the plan's (their files sort after its) and move a mean by 10 points:
    write_result(folder, WEAK, "constant", 999, bonus=10)  # a seed the plan does not hold
    write_result(folder, WEAK, "adaptive", 200, adapt_factor=3.0, bonus=10)  # other adaptive constants
    write_result(folder, STRONG, "plain", 201, steps=6, bonus=10)  # a smoke run's
    proc = run([sys.executable, REPO / "benchmarks" / "plot_augmentation_study.py", folder], env=None)
    assert proc.returncode == 0, proc.stderr
    for quantity in ("test_acc", "rankme", "rank"):
        assert (folder / f"augmentation_{quantity}.png").stat().st_size > 0

    summary = json.loads((folder / "augmentation.json").read_text())
    compare = {row["setting"]: row for row in summary["compare"]}
    assert compare["weak"]["constant"]["seeds"] == 3
    assert round(compare["weak"]["adaptive_minus_constant"]["mean"], 6) == -0.3
    assert compare["weak"]["within_target_of_constant"] and compare["default"]["within_target_of_constant"]
    assert not compare["strong"]["within_target_of_constant"]  # 2 points below the constant alpha
    assert not compare["weak"]["below_plain_beyond_noise"]
    assert compare["strong"]["below_plain_beyond_noise"]  # 1.5 below plain on every seed: no noise to hide in
    assert compare["strong"]["adaptive"]["final_werank_alpha"] == 0.04

    study = [row for row in summary["study"] if row["mode"] == "features"]
    assert [row["p"] for row in study] == [0.0, 0.1, 0.5]
    assert round(study[1]["gain"]["mean"], 6) == 2.0 and study[1]["gain"]["a_better"] == 3
    assert summary["claims"]["edges+features"]["weak_p"] == 0.1
    assert [round(g, 6) for g in summary["claims"]["edges+features"]["werank_gain_points"]] == [2.0, 0.5]
    table = (folder / "augmentation.md").read_text()
    assert "| strong | -2.00 ± 0.00 (SE 0.00; 0/3) | no |" in table

    (folder / "bench" / "results" / "truncated.json").write_text('{"dataset": "cora", "metr')
    proc = run([sys.executable, REPO / "benchmarks" / "plot_augmentation_study.py", folder], env=None)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "truncated.json is unreadable" in proc.stderr
    assert (folder / "augmentation.md").read_text() == table


@pytest.mark.slow
def test_the_study_runs_end_to_end_and_continues(tmp_path, data_root):
    """The comparison part in smoke mode on a tiny encoder: 9 trainings through graphssl bench, then the tables;
    run again, it trains nothing (every run found finished)."""
    config = tmp_path / "tiny.yaml"
    config.write_text("encoder: {layers: [32, 16]}\npredictor: {hidden: 32}\n")
    out = tmp_path / "study"
    command = [sys.executable, REPO / "benchmarks" / "augmentation_study.py", "--config", config, "--alpha", "0.1",
               "--smoke", "--parts", "compare", "--jobs", "1", "--out", out]
    env = {**os.environ, "GRAPHSSL_DATA": str(data_root)}
    proc = run(command, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((out / "bench" / "results").glob("*.json"))) == 9  # 3 settings x (plain, constant, adaptive)
    compare = {row["setting"]: row for row in json.loads((out / "augmentation.json").read_text())["compare"]}
    assert sorted(compare) == ["default", "strong", "weak"]
    assert all(compare[s][arm]["seeds"] == 1 for s in compare for arm in ("plain", "constant", "adaptive"))
    finished = {path.name: path.stat().st_mtime_ns for path in (out / "bench" / "results").glob("*.json")}
    proc = run(command, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {path.name: path.stat().st_mtime_ns for path in (out / "bench" / "results").glob("*.json")} == finished


@pytest.mark.parametrize("arguments", [["--seeds", "0"], ["--steps", "-3"], ["--jobs", "0"], ["--alpha", "-1"],
                                       ["--alpha", "inf"], ["--first-seed", "-1"]])
def test_bad_input_is_refused_in_one_line_before_the_plan_is_written_over(tmp_path, arguments):
    out = tmp_path / "study"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    proc = run([sys.executable, REPO / "benchmarks" / "augmentation_study.py", *arguments, "--out", out], env=os.environ)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and arguments[0] in proc.stderr
    assert (out / "plan.json").read_text() == "{}"
