"""`graphssl tune` (choosing on validation only) and bench's reuse rule, as a user runs them."""

import csv
import json
import re
import subprocess
import time

import pytest
import torch
import yaml

from graphssl.cli import main
from graphssl.config import is_number, load_config
from graphssl.errors import GraphSSLError
from graphssl.training_log import read_log
from graphssl.search_space import Range, parse_space, sample_trials, trial_config
from graphssl.tune import Trial, _training_key, best_trial, run_seed as real_run_seed, run_tune
from helpers import graphssl_command, kill_tree, spy_on_probe_splits, start

TINY = ["--set", "encoder.layers=[16,8]", "--set", "predictor.hidden=16", "--steps", "4", "--quiet"]
SPACE = """\
optim.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
augment:
  drop_edge_1: [0.0, 0.5]
"""


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_space_lists_ranges_and_nesting():
    space = parse_space({"optim": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                         "encoder.layers": [[16], [32, 16]], "optim.steps": {"low": 10, "high": 20}}, "s")
    assert space == {"optim.lr": Range(1e-4, 1e-2, True), "encoder.layers": [[16], [32, 16]],
                     "optim.steps": Range(10, 20)}
    points = sample_trials(space, 50, sampler_seed=3)
    assert all(1e-4 <= p["optim.lr"] <= 1e-2 and isinstance(p["optim.steps"], int) for p in points)
    assert points == sample_trials(space, 50, sampler_seed=3) != sample_trials(space, 50, sampler_seed=4)


@pytest.mark.parametrize("tree, message", [
    ({"optim.lrr": [1]}, "unknown config key 'optim.lrr'"),
    ({"optim.lr": []}, "empty list"),
    ({"optim.lr": {"low": 1, "high": 0}}, "must be a range"),
    ({"optim.lr": {"low": 0, "high": 1, "log": True}}, "A > 0 when log"),
    ({"optim.lr": 0.1}, "must be a list of values or a range"),
    ([1, 2], "must map config keys"),
    ({"train.seed": [0, 1, 2]}, "'train.seed' is not a setting to search"),
])
def test_bad_spaces_name_the_key(tree, message):
    with pytest.raises(GraphSSLError) as err:
        parse_space(tree, "space.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_shared_keys_get_the_same_values_with_or_without_more_keys():
    shared = {"optim.lr": Range(1e-4, 1e-2, True), "augment.drop_edge_1": [0.1, 0.2, 0.3]}
    wider = {**shared, "werank.alpha": Range(1e-4, 1.0, True)}
    narrow, wide = sample_trials(shared, 20), sample_trials(wider, 20)
    assert [{k: p[k] for k in shared} for p in wide] == narrow


def test_a_small_list_space_is_searched_as_a_grid():
    points = sample_trials({"encoder.norm": ["none", "batch"], "werank.squared": [False, True]}, 10)
    assert len(points) == 4 and len({json.dumps(p, sort_keys=True) for p in points}) == 4


def test_a_tie_in_right_validation_nodes_goes_to_the_earliest_trial():
    """1201 of 1500 validation nodes right over three seeds, as two trials of the adaptive-constants search scored:
    their float32 accuracies give means that differ in the 8th digit, yet the trials tie."""
    def trial(index, accuracies):
        results = {seed: {"status": "ok", "metrics": {"val_acc": acc, "rankme": 1.0, "train_seconds": 1.0}}
                   for seed, acc in enumerate(accuracies)}
        return Trial(index, {}, {}, [0, 1, 2], results)

    f32 = [float(torch.tensor(n / 500, dtype=torch.float32)) for n in (400, 401, 400)]
    early, late = trial(2, f32), trial(4, [float(torch.tensor(n / 500, dtype=torch.float32)) for n in (397, 404, 400)])
    assert late.row()["val_acc_mean"] > early.row()["val_acc_mean"]  # by 2e-8: float32 rounding alone
    assert best_trial([late, early]) is early and best_trial([trial(1, [0.5] * 3), early]) is early


def test_tune_chooses_the_best_validation_trial_and_never_reads_test(tmp_path, data_root, monkeypatch):
    seen_splits = spy_on_probe_splits(monkeypatch)
    base = load_config(None, {"encoder.layers": [16, 8], "predictor.hidden": 16, "optim.steps": 4})
    space = parse_space(yaml.safe_load(SPACE), "space")
    result = run_tune("cora", space, base, tmp_path / "t", trials=3, seeds=2, jobs=1, data_root=data_root,
                      progress=False, command="graphssl tune ...")
    assert seen_splits and all(s == ["train", "valid"] for s in seen_splits)

    rows = read_csv(tmp_path / "t" / "trials.csv")
    assert [r["trial"] for r in rows] == ["t000", "t001", "t002"]
    assert list(rows[0]) == ["trial", "optim.lr", "augment.drop_edge_1", "val_acc_mean", "val_acc_std",
                             "rankme_mean", "seeds", "train_seconds", "status", "same_as"]
    best = max(rows, key=lambda r: float(r["val_acc_mean"]))
    assert result.best.name == best["trial"]
    saved = [json.loads(p.read_text()) for p in (tmp_path / "t" / "results").glob(f"{best['trial']}__seed*.json")]
    assert float(best["val_acc_mean"]) == pytest.approx(sum(s["metrics"]["val_acc"] for s in saved) / 2)
    assert not any("test" in key for s in saved for key in s["metrics"])
    assert "test" not in (tmp_path / "t" / "trials.md").read_text().replace("test accuracy is neither", "")

    for trial in result.trials:  # every run keeps its per-step log, ending at the loss its result reports
        for seed in trial.seeds:
            log = read_log(tmp_path / "t" / "logs" / f"{trial.name}__seed{seed}.csv")
            assert [row["step"] for row in log] == [4]  # no spectra in trials; the last step
            assert log[-1]["loss"] == trial.results[seed]["metrics"]["final_loss"]

    chosen = load_config(tmp_path / "t" / "best.yaml")  # a complete config, usable as --config
    assert chosen["optim"]["lr"] == float(best["optim.lr"])
    assert chosen["augment"]["drop_edge_1"] == float(best["augment.drop_edge_1"])
    assert chosen["encoder"]["layers"] == [16, 8] and chosen["train"]["seed"] == 0


def test_more_trials_than_the_grid_keeps_a_random_search_random(tmp_path, data_root):
    """--trials crossing the grid's size must not turn t000... into other points and retrain them."""
    space = parse_space({"encoder.norm": ["none", "batch"], "augment.drop_edge_1": [0.1, 0.5]}, "s")
    base = load_config(None, {"encoder.layers": [16, 8], "predictor.hidden": 16, "optim.steps": 2})
    tune = dict(seeds=1, jobs=1, data_root=data_root, progress=False)
    first = run_tune("cora", space, base, tmp_path / "t", trials=3, **tune)  # fewer than 4 points: random
    finished = {p: p.read_bytes() for p in (tmp_path / "t" / "results").glob("*.json")}
    again = run_tune("cora", space, base, tmp_path / "t", trials=5, **tune)  # 4 points <= 5: a grid if new
    assert [t.values for t in again.trials[:3]] == [t.values for t in first.trials]
    assert all(p.read_bytes() == data for p, data in finished.items())  # nothing retrained
    assert json.loads((tmp_path / "t" / "tune.json").read_text())["search"] == "random"
    assert sample_trials(space, 5) != [t.values for t in again.trials]  # a new folder would have searched the grid


def test_a_point_drawn_twice_is_trained_once(tmp_path, data_root, monkeypatch):
    space = parse_space({"encoder.norm": ["none", "batch"], "augment.drop_edge_1": [0.1, 0.5]}, "s")
    base = load_config(None, {"encoder.layers": [16, 8], "predictor.hidden": 16, "optim.steps": 2})
    assert _training_key(trial_config(base, {"augment.drop_edge_1": 0})) == \
        _training_key(trial_config(base, {"augment.drop_edge_1": 0.0}))  # equal numbers, one training
    sampler_seed = next(s for s in range(100) if len({json.dumps(p) for p in sample_trials(space, 3, s)}) == 2)
    trained = []
    monkeypatch.setattr("graphssl.tune.run_seed", lambda *call: trained.append(call) or real_run_seed(*call))
    tune = dict(trials=3, seeds=2, jobs=1, sampler_seed=sampler_seed, data_root=data_root, progress=False)
    result = run_tune("cora", space, base, tmp_path / "t", **tune)
    assert len(trained) == 2 * 2  # two distinct points, two seeds each
    points = [t.values for t in result.trials]
    first, again = [t for t in result.trials if points.count(t.values) == 2]
    results, logs = tmp_path / "t" / "results", tmp_path / "t" / "logs"
    rows = {row["trial"]: row for row in read_csv(tmp_path / "t" / "trials.csv")}  # a copy is still a trial
    assert [row["same_as"] for row in rows.values()].count("") == 2 and rows[again.name]["same_as"] == first.name
    assert "(1 of them the same training as an earlier trial" in (tmp_path / "t" / "trials.md").read_text()

    def check_copies() -> None:
        for seed in first.seeds:
            original = json.loads((results / f"{first.name}__seed{seed}.json").read_text())
            copy = json.loads((results / f"{again.name}__seed{seed}.json").read_text())
            assert "same_as" not in original and copy["same_as"] == first.name and copy["trial"] == again.name
            assert copy["metrics"] == original["metrics"] and copy["config"] == original["config"]
            assert (logs / f"{again.name}__seed{seed}.csv").read_text() == \
                (logs / f"{first.name}__seed{seed}.csv").read_text()

    check_copies()
    (results / f"{first.name}__seed0.json").unlink()  # the copy stands in for its lost original: nothing trained
    (results / f"{again.name}__seed1.json").unlink()  # and the original for a lost copy
    run_tune("cora", space, base, tmp_path / "t", **tune)
    assert len(trained) == 4
    check_copies()
    edited = results / f"{again.name}__seed0.json"  # a same_as naming a trial that does not share the training
    edited.write_text(edited.read_text().replace(f'"same_as": "{first.name}"', '"same_as": "t099"'))
    (results / f"{first.name}__seed0.json").unlink()
    run_tune("cora", space, base, tmp_path / "t", **tune)
    assert len(trained) == 4  # ignored: the recovered file names the one it was copied from
    assert json.loads((results / f"{first.name}__seed0.json").read_text())["same_as"] == again.name
    edited_log = "step,loss\n0,1.0  # café\n".encode("latin-1")  # the holder's log, edited: copied as it is
    (logs / f"{first.name}__seed1.csv").write_bytes(edited_log)
    (results / f"{again.name}__seed1.json").unlink()
    run_tune("cora", space, base, tmp_path / "t", **tune)
    assert len(trained) == 4 and (logs / f"{again.name}__seed1.csv").read_bytes() == edited_log


@pytest.mark.slow
def test_killed_tune_continues_where_it_stopped(tmp_path, env):
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "t"
    args = ["tune", "--dataset", "cora", "--space", str(tmp_path / "space.yaml"), "--trials", "3", "--seeds", "2",
            "--jobs", "2", "--out", str(out), *TINY]
    proc = start(graphssl_command(*args), env)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "results").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert kill_tree(proc), "the search finished before it could be killed"  # the command and its workers
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert finished, "nothing finished before the kill"
    for path in finished:
        json.loads(path.read_text())  # every result file present is whole

    proc = start(graphssl_command(*args), env, output=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()  # only when the timeout left it running
    assert proc.returncode == 0, stderr
    assert "best trial t00" in stdout
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # finished runs were not redone
    assert len(list((out / "results").glob("*.json"))) == 6 and len(read_csv(out / "trials.csv")) == 3


def test_tune_refuses_another_search_in_the_same_folder_and_bad_flags(tmp_path, data_root, capsys):
    (tmp_path / "space.yaml").write_text(SPACE)
    common = ["tune", "--dataset", "cora", "--data-root", str(data_root), "--trials", "1", "--seeds", "1",
              "--jobs", "1", "--out", str(tmp_path / "t"), *TINY]
    assert main([*common, "--space", str(tmp_path / "space.yaml")]) == 0
    # One seed has no spread to show, and is one seed.
    assert re.search(r"best trial t000: validation accuracy \d+\.\d\d % over 1 seed\n", capsys.readouterr().out)
    assert re.search(r"Best: \*\*t000\*\*, validation \d+\.\d\d %;", (tmp_path / "t" / "trials.md").read_text())
    assert re.search(r"validation \d+\.\d\d % over seed 0\n", (tmp_path / "t" / "best.yaml").read_text())
    (tmp_path / "other.yaml").write_text("optim.lr: [0.001]\n")
    assert main([*common, "--space", str(tmp_path / "other.yaml")]) == 2
    assert "holds a search with another space;" in capsys.readouterr().err
    assert main([*common, "--space", str(tmp_path / "other.yaml"), "--sampler-seed", "1", "--set",
                 "optim.weight_decay=0.5"]) == 2
    assert "holds a search with another sampler seed, space and base config;" in capsys.readouterr().err
    assert main([*common, "--space", str(tmp_path / "space.yaml"), "--set", "optim.lr=0.01"]) == 2
    assert "optim.lr is both searched" in capsys.readouterr().err
    assert main([*common, "--space", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert main([*common, "--space", str(tmp_path / "space.yaml"), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--jobs 0" in err and err.count("\n") == 1


def test_bench_reruns_a_result_whose_settings_changed_or_that_is_corrupt(tmp_path, data_root, capsys):
    out = tmp_path / "bench"
    args = ["bench", "--datasets", "cora", "--werank", "0", "--seeds", "1", "--jobs", "1", "--out", str(out),
            "--data-root", str(data_root), "--quiet", "--set", "encoder.layers=[16,8]"]
    assert main([*args, "--steps", "2"]) == 0
    (result,) = (out / "results").glob("*.json")
    assert json.loads(result.read_text())["metrics"]["steps"] == 2
    capsys.readouterr()

    assert main([*args, "--steps", "3"]) == 0  # the same command with another step count: trained again
    saved = json.loads(result.read_text())
    assert saved["metrics"]["steps"] == 3 and saved["config"]["optim"]["steps"] == 3
    assert "made with other settings" in capsys.readouterr().err

    result.write_text('{"dataset": "cora", "metr')  # truncated
    stamp = result.stat().st_mtime_ns
    assert main([*args, "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "is unreadable" in err and err.count("\n") == 1 and "Traceback" not in err
    assert json.loads(result.read_text())["metrics"]["steps"] == 3 and result.stat().st_mtime_ns != stamp

    tampered = json.loads(result.read_text())
    tampered["metrics"]["test_acc"] = "high"  # parses, but is no result bench wrote
    result.write_text(json.dumps(tampered))
    assert main([*args, "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "is unreadable" in err and err.count("\n") == 1 and "Traceback" not in err
    assert is_number(json.loads(result.read_text())["metrics"]["test_acc"])

    stamp = result.stat().st_mtime_ns
    assert main([*args, "--steps", "3"]) == 0  # unchanged settings: reused, not rerun
    assert result.stat().st_mtime_ns == stamp


def test_bench_retrains_a_run_whose_files_are_not_a_runs_and_tables_one_whose_log_was_edited(tmp_path, data_root,
                                                                                           capsys):
    out = tmp_path / "bench"
    args = ["bench", "--datasets", "cora", "--werank", "0", "--seeds", "1", "--jobs", "1", "--out", str(out),
            "--data-root", str(data_root), *TINY, "--set", "train.probe_every=1"]
    assert main(args) == 0
    (result,) = (out / "results").glob("*.json")
    (run,) = (out / "runs").iterdir()
    deep = "[" * 100 + "]" * 100  # valid JSON, nested deeper than anything graphssl writes
    for metrics in ("[1]", "{}", deep):  # the result is lost, and the run's own metrics are no run's
        result.unlink()
        (run / "metrics.json").write_text(metrics)
        assert main(args) == 0
        assert is_number(json.loads(result.read_text())["metrics"]["test_acc"])
    result.write_text(deep)
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "is unreadable (nested more than 50 deep" in err and err.count("\n") == 1
    assert is_number(json.loads(result.read_text())["metrics"]["test_acc"])
    result.unlink()  # an edited log: the metrics stand, without the peak step the log would give
    (run / "log.csv").write_text("step,loss\n1,2,3\n")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "row 1 has more cells than the header" in err and "without its peak validation step" in err
    assert err.count("\n") == 1 and "val_acc_peak_step" not in json.loads(result.read_text())["metrics"]


def test_tune_reruns_a_result_that_was_edited(tmp_path, data_root, capsys):
    space = parse_space({"optim.lr": [0.001]}, "s")
    base = load_config(None, {"encoder.layers": [16, 8], "predictor.hidden": 16, "optim.steps": 2})
    tune = dict(trials=1, seeds=1, jobs=1, data_root=data_root, progress=False)
    run_tune("cora", space, base, tmp_path / "t", **tune)
    (result,) = (tmp_path / "t" / "results").glob("*.json")
    for edit in ({"val_acc": "high"}, None):
        saved = json.loads(result.read_text())
        if edit is None:
            saved["metrics"] = None
        else:
            saved["metrics"].update(edit)
        result.write_text(json.dumps(saved))
        capsys.readouterr()
        again = run_tune("cora", space, base, tmp_path / "t", **tune)
        assert "is unreadable" in capsys.readouterr().err
        assert is_number(again.trials[0].row()["val_acc_mean"])


def test_bench_fresh_seeds_start_where_asked(tmp_path, data_root):
    out = tmp_path / "bench"
    assert main(["bench", "--datasets", "cora", "--werank", "0", "--seeds", "2", "--first-seed", "100", "--jobs",
                 "1", "--steps", "2", "--out", str(out), "--data-root", str(data_root), "--quiet",
                 "--set", "encoder.layers=[16,8]"]) == 0
    seeds = sorted(json.loads(p.read_text())["metrics"]["seed"] for p in (out / "results").glob("*.json"))
    assert seeds == [100, 101]


def test_a_search_in_which_every_trial_diverged_exits_3_and_tensorboard_is_refused(tmp_path, data_root, capsys):
    # Steps of 1e6 from the first (no warm-up) make the squared penalty's 1e30 x ||G - I||^2 overflow at once.
    (tmp_path / "space.yaml").write_text("optim.lr: [1.0e+6]\noptim.warmup_steps: [0]\nwerank.alpha: [1.0e+30]\n")
    args = ["tune", "--dataset", "cora", "--data-root", str(data_root), "--space", str(tmp_path / "space.yaml"),
            "--seeds", "1", "--jobs", "1", *TINY]
    assert main([*args, "--out", str(tmp_path / "t")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every trial diverged" in err
    assert "diverged" in (tmp_path / "t" / "trials.md").read_text() and not (tmp_path / "t" / "best.yaml").exists()
    assert main([*args, "--set", "train.tensorboard=true", "--out", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tune keeps no run folders" in err and not (tmp_path / "tb").exists()


@pytest.mark.parametrize("content", [b"\xff\xfe", b"[1]", b'{"dataset": "cora"}', b"[" * 10**5 + b"]" * 10**5])
def test_an_unreadable_tune_json_is_named_as_such(content, tmp_path, capsys):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "tune.json").write_bytes(content)
    (tmp_path / "space.yaml").write_text("optim.lr: [0.001]\n")
    assert main(["tune", "--dataset", "cora", "--space", str(tmp_path / "space.yaml"), "--out",
                 str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its tune.json is unreadable or not graphssl tune's" in err
    assert (tmp_path / "t" / "tune.json").read_bytes() == content


def test_runs_differing_only_in_keys_their_schedule_never_reads_are_reused(tmp_path, data_root):
    """The adaptive schedule's constants changed in the base config after a constant-alpha search and bench (as
    happened when they were chosen): both continue their folders without retraining; under the adaptive schedule
    the same change is a new run."""
    config = tmp_path / "base.yaml"
    config.write_text("encoder: {layers: [16, 8]}\npredictor: {hidden: 16}\noptim: {steps: 2}\n"
                      "werank: {adapt_factor: 1.5, target_fraction: 0.7}\n")
    space = parse_space({"optim.lr": [0.001]}, "s")
    tune = dict(trials=1, seeds=1, jobs=1, data_root=data_root, progress=False)
    bench = ["bench", "--datasets", "cora", "--config", str(config), "--werank", "0", "0.1", "--seeds", "1",
             "--jobs", "1", "--data-root", str(data_root), "--quiet"]
    adaptive = [*bench, "--set", "werank.schedule=adaptive", "--out", str(tmp_path / "a")]

    def run_all() -> None:
        run_tune("cora", space, load_config(config), tmp_path / "t", **tune)
        assert main([*bench, "--out", str(tmp_path / "b")]) == 0
        assert main(adaptive) == 0

    run_all()
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/results/*.json")}
    assert len(stamps) == 1 + 2 + 2
    config.write_text(config.read_text().replace("1.5", "3.0").replace("0.7", "0.2"))
    run_all()  # the same search and bench: the constant-alpha runs are reused
    retrained = sorted(p.parent.parent.name for p, stamp in stamps.items() if p.stat().st_mtime_ns != stamp)
    assert retrained == ["a", "a"]  # the adaptive runs read the changed constants: trained again

    adaptive_base = load_config(config, {"werank.schedule": "adaptive", "werank.alpha": 0.1})
    run_tune("cora", space, adaptive_base, tmp_path / "ta", **tune)
    run_tune("cora", space, {**adaptive_base, "optim": {**adaptive_base["optim"], "lr": 0.5}}, tmp_path / "ta",
             **tune)  # a base key the space sets: the same search
    with pytest.raises(GraphSSLError, match="holds a search with another base config;"):  # its constants changed
        run_tune("cora", space, load_config(config, {"werank.schedule": "adaptive", "werank.alpha": 0.1,
                                                     "werank.adapt_factor": 2.0}), tmp_path / "ta", **tune)
