"""WERank's adaptive coefficient: the rule, its place in training (log.csv, metrics, exact resume), its config."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from graphssl.cli import main
from graphssl.config import load_config
from graphssl.errors import Interrupted
from graphssl.model import build_model
from graphssl.pipeline import resume_training, run_training
from graphssl.train import Pretrainer, pretrain
from graphssl.training_log import read_log
from graphssl.search_space import read_space, sample_trials, trial_config
from graphssl.tune import run_tune
from graphssl.werank_schedule import AdaptiveAlpha
from helpers import comparable, interrupt_training_at, log_without_timings

REPO = Path(__file__).resolve().parents[1]
TINY = {"encoder.layers": [32, 16], "predictor.hidden": 32}
TINY_FLAGS = ["--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--quiet"]
# A target RankMe of the whole embedding size is never met, so alpha rises at every measurement (by a factor
# pinned here, not the default's, which a search chooses).
RISING = {"werank.schedule": "adaptive", "werank.alpha": 1e-3, "werank.target_fraction": 1.0,
          "werank.adapt_factor": 1.5, "werank.alpha_max": 100.0}


def test_the_rule_raises_alpha_below_the_target_lowers_it_above_and_clamps_it_to_its_bounds():
    rule = AdaptiveAlpha(0.1, target_fraction=0.5, factor=2.0, alpha_min=0.01, alpha_max=0.4, embedding_dim=100)
    assert rule.update(rankme=49.0) == 0.2  # target RankMe 50: below it, x 2
    assert rule.update(rankme=49.0) == 0.4
    assert rule.update(rankme=10.0) == 0.4  # held at alpha_max
    assert rule.update(rankme=50.0) == 0.4  # on target: unchanged
    assert rule.update(rankme=51.0) == 0.2  # above it, / 2
    assert [rule.update(rankme=100.0) for _ in range(5)] == [0.1, 0.05, 0.025, 0.0125, 0.01]  # down to alpha_min
    assert rule.update(rankme=100.0) == 0.01
    # A start outside the bounds (0: the plain method) enters them at the first update.
    assert AdaptiveAlpha(0.0, 0.5, 2.0, 0.01, 0.4, 100).update(rankme=10.0) == 0.01
    assert AdaptiveAlpha(5.0, 0.5, 2.0, 0.01, 0.4, 100).update(rankme=10.0) == 0.4

    resumed = AdaptiveAlpha(0.1, 0.5, 2.0, 0.01, 0.4, 100)
    resumed.load_state_dict(rule.state_dict())
    assert resumed == rule and resumed.update(40.0) == rule.update(40.0) == 0.02


def replayed_alphas(rows, config):
    """The coefficient each logged step should have used: the rule replayed over the RankMe log.csv recorded."""
    rule = AdaptiveAlpha.from_config(config, embedding_dim=config["encoder"]["layers"][-1])
    every, total = config["train"]["spectra_every"], config["optim"]["steps"]
    expected, alpha = {}, rule.alpha
    for row in rows:
        step = int(row["step"])
        if step > 0:
            expected[step] = alpha  # the coefficient step `step - 1` trained with
        if step % every == 0 and 0 < step < total:
            alpha = rule.update(row["rankme"])
    return expected


@pytest.mark.parametrize("target_fraction", [1.0, 0.01])  # RankMe always below, always above the target
def test_log_csv_records_the_coefficient_each_step_used_as_the_rule_moves_it(target_fraction, tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "9", "--werank", "0.05",
                 "--set", "werank.schedule=adaptive", "--set", f"werank.target_fraction={target_fraction}",
                 "--set", "werank.adapt_factor=2", "--set", "train.spectra_every=3", "--set", "train.log_every=1",
                 "--out", str(out), *TINY_FLAGS]) == 0
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(10)) and math.isnan(rows[0]["werank_alpha"])
    logged = {int(r["step"]): r["werank_alpha"] for r in rows[1:]}
    assert logged == replayed_alphas(rows, load_config(out / "config.yaml"))
    # moved after steps 3 and 6, not after the last
    assert logged[9] == (0.05 * 4 if target_fraction == 1.0 else 0.05 / 4)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["werank"] == 0.05 and metrics["final_werank_alpha"] == logged[9]
    # The WERank term of each step is that step's coefficient times the weights' distance from orthogonality.
    assert rows[4]["werank"] / rows[4]["werank_alpha"] == pytest.approx(rows[3]["werank"] / rows[3]["werank_alpha"],
                                                                        rel=0.05)


def test_the_constant_schedule_logs_its_coefficient_and_a_per_layer_list_leaves_the_cell_empty(tmp_path, data_root):
    for alpha, out in ((["0.1"], tmp_path / "one"), (["0.1", "0"], tmp_path / "per-layer")):
        assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "3", "--werank", *alpha,
                     "--set", "train.log_every=1", "--out", str(out), *TINY_FLAGS]) == 0
    assert [r["werank_alpha"] for r in read_log(tmp_path / "one" / "log.csv")[1:]] == [0.1] * 3
    assert all(math.isnan(r["werank_alpha"]) for r in read_log(tmp_path / "per-layer" / "log.csv"))
    assert json.loads((tmp_path / "per-layer" / "metrics.json").read_text())["final_werank_alpha"] == [0.1, 0]


def test_adaptive_werank_may_start_from_zero_and_raise_alpha_to_its_lower_bound(cora):
    config = load_config(None, {**TINY, **RISING, "werank.alpha": 0.0, "werank.alpha_min": 0.02, "optim.steps": 4,
                                "train.spectra_every": 2, "train.checkpoint_every": 0})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    assert trainer.werank is not None and trainer.werank.alpha == [0.0, 0.0]  # built, though it starts at 0
    assert pretrain(trainer, out=None, progress=False)["final_werank_alpha"] == 0.02
    assert trainer.werank.alpha == [0.02, 0.02]


def test_an_interrupted_adaptive_run_resumes_its_coefficient_bit_for_bit(cora, tmp_path, monkeypatch):
    config = load_config(None, {**TINY, **RISING, "optim.steps": 20, "train.log_every": 1,
                                "train.checkpoint_every": 5, "train.spectra_every": 2})
    full = run_training("cora", config, out_dir=tmp_path / "full", graph=cora, progress=False)
    assert full is not None and full.metrics["final_werank_alpha"] == pytest.approx(1e-3 * 1.5 ** 9)

    interrupt_training_at(monkeypatch, 13)
    with pytest.raises(Interrupted):
        run_training("cora", config, out_dir=tmp_path / "killed", graph=cora, progress=False)
    monkeypatch.undo()
    checkpoint = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    # At step 10 alpha had moved 5 times (after steps 2 ... 10), and moves 4 more times after the resume.
    assert checkpoint["step"] == 10 and checkpoint["werank_alpha"] == {"alpha": pytest.approx(1e-3 * 1.5 ** 5)}
    resume_training(tmp_path / "killed", graph=cora, progress=False)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert a["werank_alpha"] == b["werank_alpha"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert comparable(tmp_path / "full") == comparable(tmp_path / "killed")
    assert log_without_timings(tmp_path / "full") == log_without_timings(tmp_path / "killed")


@pytest.mark.parametrize("method, flags", [
    ("grace", ["--set", "grace.projection_hidden=16", "--batch-size", "512", "--num-neighbors", "5", "5"]),
    ("vicreg", ["--set", "vicreg.expander_layers=[32,32]", "--set", "werank.scope=encoder+head"]),
    ("cca-ssg", ["--batch-size", "1024", "--num-neighbors", "5", "5"]),
])
def test_every_method_and_mini_batches_adapt_alpha(method, flags, tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--method", method, "--steps", "4",
                 "--werank", "0.01", "--set", "werank.schedule=adaptive", "--set", "werank.target_fraction=1.0",
                 "--set", "werank.adapt_factor=1.5", "--set", "train.spectra_every=1", *flags, "--out", str(out),
                 *TINY_FLAGS]) == 0
    assert json.loads((out / "metrics.json").read_text())["final_werank_alpha"] == pytest.approx(0.01 * 1.5 ** 3)


@pytest.mark.parametrize("assignment, message", [
    ("werank.schedule=sometimes", "config key 'werank.schedule' is 'sometimes'; it must be one of constant, adaptive"),
    ("werank.adapt_factor=1", "'werank.adapt_factor' is 1; it must be a multiplicative step > 1"),
    ("werank.target_fraction=1.5", "'werank.target_fraction' is 1.5; it must be a fraction"),
    ("werank.alpha_min=0", "'werank.alpha_min' is 0; it must be a coefficient > 0"),
    ("werank.alpha_max=1e-5", "'werank.alpha_max' is 1e-05; it must be a coefficient >= werank.alpha_min"),
])
def test_bad_schedule_settings_are_one_line_and_exit_2(assignment, message, tmp_path, capsys):
    assert main(["train", "--dataset", "cora", "--steps", "2", "--set", assignment, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, message", [
    (["--werank", "0.1", "0"], "werank.schedule: adaptive adapts one coefficient for every matrix"),
    (["--set", "train.spectra_every=0"], "'train.spectra_every' is 0; it must be a whole number > 0 under "
                                         "werank.schedule: adaptive"),
])
def test_the_adaptive_schedule_needs_one_coefficient_and_rank_measurements(flags, message, tmp_path, capsys):
    assert main(["train", "--dataset", "cora", "--steps", "2", "--set", "werank.schedule=adaptive", *flags,
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_shipped_search_space_gives_valid_adaptive_configs():
    base = load_config(REPO / "configs" / "cora.yaml", {"werank.schedule": "adaptive", "werank.alpha": 0.01})
    space = read_space(REPO / "configs" / "spaces" / "werank-adaptive.yaml")
    assert set(space) == {"werank.target_fraction", "werank.adapt_factor", "werank.alpha_min", "werank.alpha_max"}
    for point in sample_trials(space, 64):
        trial_config(base, point)  # raises for a point the config refuses


def test_tune_searches_the_rules_constants_and_its_trials_adapt_as_training_does(tmp_path, data_root):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"werank.target_fraction": [0.01, 1.0]}))
    base = load_config(None, {**TINY, "optim.steps": 4, "werank.schedule": "adaptive", "werank.alpha": 0.01,
                              "werank.adapt_factor": 2.0, "train.spectra_every": 2})
    result = run_tune("cora", read_space(space), base, tmp_path / "tune", trials=2, seeds=1, jobs=1,
                      data_root=data_root, progress=False)
    # The rank is measured in trials too (tune skips spectra only where they change nothing), so alpha moved.
    final = {trial.values["werank.target_fraction"]: trial.results[0]["metrics"]["final_werank_alpha"]
             for trial in result.trials}
    assert final == {0.01: 0.005, 1.0: 0.02}
