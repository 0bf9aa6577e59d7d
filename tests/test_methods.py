"""GRACE, VICReg and CCA-SSG beside BGRL: chosen by name, trained by the same loop, regularized by the same WERank."""

import csv
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from graphssl import cca_ssg, grace, vicreg
from graphssl.cli import main
from graphssl.config import METHOD_NAMES, head_matrices, load_config
from graphssl.errors import GraphSSLError
from graphssl.model import METHODS, TwoViewModel, build_model, build_werank
from graphssl.regularizers import weight_matrices, werank_penalty
from graphssl.train import Pretrainer
from helpers import graphssl_command, run

REPO = Path(__file__).resolve().parents[1]
OTHERS = ["grace", "vicreg", "cca-ssg"]
SMALL = {"encoder.layers": [16, 8], "predictor.hidden": 16, "grace.projection_hidden": 16,
         "vicreg.expander_layers": [32, 32]}
SMALL_FLAGS = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def small_config(method, **overrides):
    return load_config(None, {**SMALL, "method": method, **overrides})


def test_the_config_names_every_method_the_model_builds():
    assert set(METHOD_NAMES) == set(METHODS)
    for method in OTHERS:
        model = build_model(small_config(method), 1433)
        assert isinstance(model, TwoViewModel) and model.encoder.out_channels == 8
        trained = {id(p) for p in model.trainable_parameters()}
        assert {id(p) for p in model.encoder.parameters()} | {id(p) for p in model.objective.parameters()} == trained
    assert build_model(small_config("cca-ssg"), 1433).head is None


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("scope", ["encoder", "encoder+head"])
def test_werank_regularizes_the_head_only_when_asked_and_without_warning(method, scope):
    config = small_config(method, **{"werank.alpha": 0.5, "werank.scope": scope})
    torch.manual_seed(0)
    model = build_model(config, 1433)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head is regularized on purpose: no "outside its encoder" warning
        werank = build_werank(model, config)
    head = [] if model.head is None else list(weight_matrices(model.head).values())
    encoder = list(weight_matrices(model.encoder).values())
    regularized = encoder + (head if scope == "encoder+head" else [])
    assert len(werank.names) == len(regularized) == len(encoder) + (head_matrices(config) if scope != "encoder" else 0)
    assert len(head) == head_matrices(config)
    penalty = werank()
    torch.testing.assert_close(penalty, werank_penalty(regularized, 0.5, squared=config["werank"]["squared"]))
    penalty.backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in regularized)
    unregularized = [p for p in model.parameters() if all(p is not w for w in regularized)]
    assert all(p.grad is None for p in unregularized)


def test_per_matrix_coefficients_count_the_head_under_encoder_and_head():
    config = small_config("vicreg", **{"werank.scope": "encoder+head", "werank.alpha": [0.1, 0.1, 0, 0.2]})
    werank = build_werank(build_model(config, 1433), config)
    assert werank.alpha == [0.1, 0.1, 0.0, 0.2] and werank.names[-1] == "objective.head.3.weight"
    with pytest.raises(GraphSSLError, match=r"'werank.alpha' has 2 coefficients but WERank regularizes 4 matrices "
                                            r"under werank.scope: encoder\+head \(2 encoder layers, then 2 of the "
                                            r"vicreg head\); give one per matrix or a single number for all"):
        small_config("vicreg", **{"werank.scope": "encoder+head", "werank.alpha": [0.1, 0.1]})
    with pytest.raises(GraphSSLError, match="'werank.scope' is 'head'; it must be one of encoder, encoder\\+head"):
        small_config("grace", **{"werank.scope": "head"})


@pytest.mark.parametrize("key, value, message", [
    ("method", "simclr", "'method' is 'simclr'; it must be one of bgrl, grace, vicreg, cca-ssg"),
    ("grace.temperature", 0, "'grace.temperature' is 0; it must be a finite number > 0"),
    ("grace.chunk_size", 0, "'grace.chunk_size' is 0; it must be a whole number > 0"),
    ("grace.projection_hidden", 1.5, "'grace.projection_hidden' is 1.5; it must be a whole number > 0"),
    ("vicreg.expander_layers", [], "'vicreg.expander_layers' is []; it must be a non-empty list"),
    ("vicreg.variance_weight", -1, "'vicreg.variance_weight' is -1; it must be a finite number >= 0"),
    ("cca_ssg.lambd", "big", "'cca_ssg.lambd' is 'big'; it must be a finite number >= 0"),
])
def test_bad_method_settings_name_the_key(key, value, message):
    with pytest.raises(GraphSSLError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, {key: value})


def test_a_yaml_file_sets_every_new_key(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("method: vicreg\nwerank: {scope: encoder+head}\nvicreg: {expander_layers: [64]}\n"
                    "grace: {temperature: 0.2}\ncca_ssg: {lambd: 1e-2}\n")
    config = load_config(path)
    assert config["method"] == "vicreg" and config["werank"]["scope"] == "encoder+head"
    assert config["vicreg"]["expander_layers"] == [64] and config["grace"]["temperature"] == 0.2
    assert config["cca_ssg"]["lambd"] == 0.01


@pytest.mark.parametrize("method", OTHERS)
def test_each_method_trains_end_to_end_through_the_command_line(method, tmp_path, env, data_root):
    out = tmp_path / "run"
    proc = run(graphssl_command("train", "--dataset", "cora", "--method", method, "--steps", "3", "--werank", "0.1",
                                "--set", "werank.scope=encoder+head", *SMALL_FLAGS, "--quiet", "--out", out), env)
    assert proc.returncode == 0, proc.stderr
    assert f"method={method}" in proc.stdout and "test acc" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["steps"] == 3 and 0 <= metrics["test_acc"] <= 1
    assert metrics["embedding_dim"] == 8 and math.isfinite(metrics["final_loss"]) and metrics["final_werank"] > 0
    assert yaml.safe_load((out / "config.yaml").read_text())["method"] == method
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert "encoder.convs.0.lin.weight" in state["model"] and not any("target" in k for k in state["model"])
    assert any(k.startswith("objective.head.") for k in state["model"]) == (method != "cca-ssg")
    spectra = json.loads((out / "spectra.json").read_text())
    assert list(spectra["weight_shapes"]) == ["convs.0.lin.weight", "convs.1.lin.weight"]
    rows = list(csv.DictReader((out / "log.csv").read_text().splitlines()))
    regularized = 2 + head_matrices(load_config(out / "config.yaml"))  # the head's matrices follow the encoder's
    assert [k for k in rows[0] if k.startswith("werank_layer")] == [f"werank_layer{i}" for i in
                                                                    range(1, regularized + 1)]
    last = rows[-1]
    assert int(last["step"]) == 3 and last["ema_momentum"] == ""  # only BGRL has a target momentum
    assert float(last["werank"]) == pytest.approx(sum(float(last[f"werank_layer{i}"]) for i in
                                                      range(1, regularized + 1)), rel=1e-5)
    assert all(float(last[f"werank_layer{i}"]) > 0 for i in range(1, regularized + 1))
    assert regularized == (2 if method == "cca-ssg" else 4)  # CCA-SSG has no head; the others' small heads have 2
    assert main(["eval", str(out), "--data-root", str(data_root)]) == 0  # the model is rebuilt from its checkpoint
    again = json.loads((out / "eval.json").read_text())
    assert again["test_acc"] == pytest.approx(metrics["test_acc"], abs=0.005) and again["rank"] == metrics["rank"]


def test_default_run_folders_name_the_method(tmp_path, env):
    proc = run(graphssl_command("train", "--dataset", "cora", "--method", "cca-ssg", "--steps", "1", *SMALL_FLAGS,
                                "--quiet"), env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("cora-cca-ssg-werank0.02355-seed0-")  # the default alpha


@pytest.mark.parametrize("method", OTHERS)
def test_a_few_steps_lower_each_methods_loss(method, cora):
    config = small_config(method, **{"optim.steps": 30, "optim.warmup_steps": 1, "optim.lr": 0.01, "werank.alpha": 0.0})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    assert trainer.momentum is None and trainer.werank is None
    losses = [trainer.step(s)[0] for s in range(30)]
    assert all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


LOSSES = {"grace": (grace, "grace_loss"), "vicreg": (vicreg, "vicreg_loss"), "cca-ssg": (cca_ssg, "cca_ssg_loss")}


@pytest.mark.parametrize("method", OTHERS)
def test_mini_batches_score_the_seed_nodes_against_each_other(method, cora, monkeypatch):
    config = small_config(method, **{"train.batch_size": 100, "train.num_neighbors": [5, 5], "werank.alpha": 0.1})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    module, name = LOSSES[method]
    original, scored = getattr(module, name), []

    def spy(a, b, *args, **kwargs):
        scored.append((a.size(0), b.size(0)))
        return original(a, b, *args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    for step in range(3):
        nodes = trainer.inputs(step)[0].size(0)
        loss, penalty = trainer.step(step)
        assert nodes > 100 and math.isfinite(loss) and penalty > 0
    assert scored == [(100, 100)] * 3  # one call per step, both views, on the 100 seeds only


def test_a_mini_batch_of_one_seed_is_refused_for_methods_that_compare_seeds(cora):
    config = small_config("vicreg", **{"train.batch_size": 2707, "train.num_neighbors": [5, 5]})
    with pytest.raises(GraphSSLError, match="leaves a last mini-batch of 1 seed node"):
        Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    bgrl = small_config("bgrl", **{"train.batch_size": 2707, "train.num_neighbors": [5, 5]})
    Pretrainer(build_model(bgrl, cora.num_features), cora, bgrl, torch.device("cpu"))  # BGRL scores each seed alone


def test_bench_methods_is_a_grid_dimension(tmp_path, data_root):
    out = tmp_path / "bench"
    assert main(["bench", "--datasets", "cora", "--methods", "bgrl", "cca-ssg", "--werank", "0", "0.1",
                 "--seeds", "1", "--steps", "2", "--out", str(out), "--data-root", str(data_root), "--quiet",
                 *SMALL_FLAGS]) == 0
    names = sorted(p.stem.split("__")[1:3] for p in (out / "results").glob("*.json"))
    assert names == [["bgrl", "werank0"], ["bgrl", "werank0.1"], ["cca-ssg", "werank0"], ["cca-ssg", "werank0.1"]]
    for path in (out / "results").glob("*.json"):
        result = json.loads(path.read_text())
        assert result["method"] == result["config"]["method"] == result["metrics"]["method"]
    table = (out / "table.md").read_text()
    assert "| cora | bgrl | 0 |" in table and "| cora | cca-ssg | 0.1 |" in table
    assert main(["bench", "--methods", "bgrl", "--set", "method=grace", "--out", str(out), "--quiet"]) == 2


def test_tune_searches_the_method_like_any_key(tmp_path, data_root):
    from graphssl.search_space import parse_space
    from graphssl.tune import run_tune

    space = parse_space({"method": ["bgrl", "cca-ssg"]}, "space")
    base = load_config(None, {**SMALL, "optim.steps": 2})
    result = run_tune("cora", space, base, tmp_path / "tune", trials=4, seeds=1, jobs=1, data_root=data_root,
                      progress=False)
    assert [t.config["method"] for t in result.trials] == ["bgrl", "cca-ssg"]
    assert "method" in (tmp_path / "tune" / "trials.csv").read_text().splitlines()[0]
    assert yaml.safe_load((tmp_path / "tune" / "best.yaml").read_text())["method"] == result.best.values["method"]


@pytest.mark.parametrize("command", [["train", "--dataset", "cora"], ["bench", "--datasets", "cora"],
                                     ["tune", "--dataset", "cora", "--space", str(REPO / "configs/spaces/werank.yaml")]])
def test_an_unknown_method_is_one_line_and_exit_2(command, tmp_path, capsys):
    flag = ["--methods", "simclr"] if command[0] == "bench" else ["--method", "simclr"]
    assert main([*command, *flag, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key 'method' is 'simclr'; it must be one of bgrl, grace" in err
    assert not (tmp_path / "out").exists()
