"""`graphssl eval`, `graphssl bench` and `graphssl plot` as a user runs them."""

import csv
import json
import statistics

import numpy as np
import pytest
import torch

from graphssl.cli import main

TINY = ["--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--set", "train.spectra_every=5",
        "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "20", "--werank", "0.1",
                 "--out", str(out), *TINY]) == 0
    return out


def test_eval_reproduces_the_probe_and_saves_embeddings(trained, data_root, capsys):
    assert main(["eval", str(trained), "--data-root", str(data_root), "--save-embeddings"]) == 0
    assert "test acc" in capsys.readouterr().out
    original = json.loads((trained / "metrics.json").read_text())
    again = json.loads((trained / "eval.json").read_text())
    assert again["test_acc"] == pytest.approx(original["test_acc"], abs=0.005)
    assert again["rank"] == original["rank"] and again["rankme"] == pytest.approx(original["rankme"], rel=1e-4)
    embeddings = torch.load(trained / "embeddings.pt", weights_only=True)
    assert embeddings.shape == (2708, 16)


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_eval_judges_embeddings_from_any_model(tmp_path, data_root, capsys, suffix, cora):
    # A "model" that just projects the raw features: the probe must work on it, and far above chance.
    features = cora.x.to_dense() @ torch.randn(1433, 64, generator=torch.Generator().manual_seed(0))
    path = tmp_path / f"emb{suffix}"
    if suffix == ".pt":
        torch.save(features, path)
    else:
        np.save(path, features.numpy())
    assert main(["eval", "--embeddings", str(path), "--dataset", "cora", "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test acc ")[1].split("%")[0])
    assert 30 < accuracy <= 100 and "rank 64/64" in out


def test_eval_with_the_official_bgrl_protocol(tmp_path, data_root, capsys, cora):
    features = cora.x.to_dense() @ torch.randn(1433, 32, generator=torch.Generator().manual_seed(0))
    torch.save(features, tmp_path / "emb.pt")
    (tmp_path / "probe.yaml").write_text("probe: {protocol: bgrl-official}\n")
    assert main(["eval", "--embeddings", str(tmp_path / "emb.pt"), "--dataset", "Cora", "--data-root", str(data_root),
                 "--config", str(tmp_path / "probe.yaml")]) == 0
    assert "probe C " in capsys.readouterr().out


def test_eval_bad_input_exits_2(tmp_path, data_root, capsys):
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert main(["eval", str(not_a_run)]) == 2
    assert "no checkpoint.pt there" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "typo")]) == 2
    assert f"graphssl eval {tmp_path / 'typo'}: no such folder" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    assert main(["eval", str(corrupt)]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded safely" in err and err.count("\n") == 1
    wrong_rows = tmp_path / "rows.npy"
    np.save(wrong_rows, np.zeros((10, 4), dtype=np.float32))
    assert main(["eval", "--embeddings", str(wrong_rows), "--dataset", "cora", "--data-root", str(data_root)]) == 2
    assert "10 rows but cora has 2708 nodes" in capsys.readouterr().err


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_bench_writes_jsons_and_a_table_of_their_mean_and_std(tmp_path, data_root, capsys):
    out = tmp_path / "bench"
    args = ["bench", "--datasets", "cora", "--werank", "0", "0.1", "--seeds", "2", "--steps", "6",
            "--out", str(out), "--data-root", str(data_root), "--quiet",
            "--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32"]
    assert main(args) == 0
    results = sorted((out / "results").glob("*.json"))
    assert len(results) == 4
    rows = read_csv(out / "table.csv")
    assert len(rows) == 2 and "val_peak_step_mean" not in rows[0]  # nothing probed during training
    for row in rows:
        mine = [json.loads(p.read_text()) for p in results]
        mine = [r["metrics"] for r in mine if json.dumps(r["werank"]) == row["werank"]]
        assert len(mine) == int(row["seeds"]) == 2
        for key in ("test_acc", "rank", "rankme"):
            values = [float(m[key]) for m in mine]
            assert float(row[f"{key}_mean"]) == pytest.approx(statistics.fmean(values))
            assert float(row[f"{key}_std"]) == pytest.approx(statistics.stdev(values))
    table = (out / "table.md").read_text()
    assert "| cora | bgrl | 0.1 |" in table and "± " in table

    # Running the same command again trains nothing: the JSONs stay as they were.
    stamps = {p: p.stat().st_mtime_ns for p in results}
    capsys.readouterr()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    # A run killed mid-way (its JSON absent, its folder partial) is redone; no half-written JSON remains.
    victim = results[0]
    victim.unlink()
    (out / "runs" / victim.stem / "metrics.json").unlink()
    assert main(args) == 0
    assert victim.is_file() and json.loads(victim.read_text())["metrics"]["steps"] == 6
    assert not [p for p in (out / "results").iterdir() if p.name.startswith(".")]

    assert main(["plot", str(out), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "werank_sweep.png").stat().st_size > 1000
    # The figure's numbers, beside it: per alpha the seeds' test accuracy (in %) and the weights' extreme SVs.
    swept = read_csv(tmp_path / "plots" / "werank_sweep.csv")
    assert sorted(float(r["alpha"]) for r in swept) == sorted({float(r["werank"]) for r in rows})
    for r in swept:
        mine = [json.loads(p.read_text()) for p in results]
        mine = [m["metrics"]["test_acc"] for m in mine if m["metrics"]["werank"] == float(r["alpha"])]
        assert int(r["seeds"]) == len(mine)
        assert float(r["test_acc_mean"]) == pytest.approx(100 * statistics.fmean(mine))
        assert 0 < float(r["weight_sv_min_mean"]) <= float(r["weight_sv_max_mean"])


def test_bench_keeps_each_runs_log_and_tables_the_step_of_peak_validation_accuracy(tmp_path, data_root):
    from graphssl.training_log import peak_step, read_log

    out = tmp_path / "bench"
    assert main(["bench", "--datasets", "cora", "--werank", "0.1", "--seeds", "2", "--steps", "6", "--jobs", "1",
                 "--out", str(out), "--data-root", str(data_root), "--quiet", "--set", "encoder.layers=[16,8]",
                 "--set", "predictor.hidden=16", "--set", "train.probe_every=2"]) == 0
    logs = [read_log(run / "log.csv") for run in sorted((out / "runs").iterdir())]
    assert len(logs) == 2 and all([row["step"] for row in log] == [0, 2, 4, 6] for log in logs)
    peaks = [peak_step(log)[0] for log in logs]
    (row,) = read_csv(out / "table.csv")
    assert float(row["val_peak_step_mean"]) == statistics.fmean(peaks)
    assert "| val acc peak step |" in (out / "table.md").read_text()
    saved = sorted(json.loads(p.read_text())["metrics"]["val_acc_peak_step"] for p in (out / "results").glob("*.json"))
    assert saved == sorted(peaks)


def test_bench_sweeps_any_key_including_lists(tmp_path, data_root):
    out = tmp_path / "bench"
    assert main(["bench", "--datasets", "cora", "--seeds", "1", "--steps", "2", "--out", str(out), "--quiet",
                 "--data-root", str(data_root), "--set", "encoder.layers=[16,8]", "--set", "predictor.hidden=16",
                 "--set", "werank.alpha=[0.1,0],[0,0.1]"]) == 0
    rows = read_csv(out / "table.csv")
    assert [row["settings"] for row in rows] == [
        'encoder.layers=[16, 8] predictor.hidden=16 werank.alpha=[0.1, 0]',
        'encoder.layers=[16, 8] predictor.hidden=16 werank.alpha=[0, 0.1]']


@pytest.mark.parametrize("args, message", [
    (["--set", "optim.lrr=0.1,0.2"], "unknown config key 'optim.lrr'"),
    (["--set", "augment.drop_edge_1=0.2,1.5"], "probability in [0, 1)"),
    (["--datasets", "mnist"], "unknown dataset 'mnist'"),
    (["--werank", "-1"], "'werank.alpha' is -1"),
])
def test_bench_bad_input_exits_2_before_training(args, message, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--out", str(out), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (out / "results").exists() or not list((out / "results").iterdir())


def test_plot_writes_nonempty_pngs(trained, tmp_path, capsys):
    assert main(["plot", str(trained), "--out", str(tmp_path)]) == 0
    for name in ("embedding_spectrum.png", f"{trained.name}_weight_spectra.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_weight_spectra_figure_reads_by_layer_from_step_0(trained, tmp_path, monkeypatch):
    from graphssl import plot

    figures = []
    save = plot._save
    monkeypatch.setattr(plot, "_save", lambda fig, path, dpi=120: (figures.append(fig), save(fig, path, dpi))[1])
    plot.plot_training_spectra(trained, tmp_path)
    (figure,) = figures
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["layer 1: 1433 → 32", "layer 2: 32 → 16", "embedding covariance"]
    assert [ax.get_ylabel() for ax in axes] == ["singular value", "singular value", "eigenvalue"]
    assert all(ax.get_lines()[0].get_xdata()[0] == 0 for ax in axes)  # the spectrum training started from


def test_curves_overlay_the_runs_logs(trained, tmp_path, data_root, monkeypatch):
    from graphssl import plot
    from graphssl.training_log import read_log

    probed = tmp_path / "probed"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "12", "--werank", "0",
                 "--set", "train.probe_every=4", "--out", str(probed), *TINY]) == 0
    figures = []
    save = plot._save
    monkeypatch.setattr(plot, "_save", lambda fig, path, dpi=120: (figures.append(fig), save(fig, path, dpi))[1])
    assert main(["plot", str(trained), str(probed), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (figure,) = [f for f in figures if len(f.axes) == 4 and f.axes[0].get_ylabel() == "loss"]
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "WERank term", "RankMe of the embeddings",
                                                       "validation accuracy (%)"]
    for ax, column in zip(figure.axes, ("loss", "werank", "rankme")):
        for line, run in zip(ax.get_lines(), (trained, probed)):  # one line per run, from its own log
            rows = [r for r in read_log(run / "log.csv") if r[column] == r[column]]
            assert list(line.get_xdata()) == [r["step"] for r in rows]
            assert list(line.get_ydata()) == [r[column] for r in rows]
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == [f"{trained.name} (WERank α 0.1)", "probed (WERank α 0)"]
    (val_line,) = figure.axes[3].get_lines()  # only the probed run has validation accuracies
    assert list(val_line.get_xdata()) == [0, 4, 8, 12] and val_line.get_label() == "probed (WERank α 0)"


def test_a_run_still_training_gets_its_curves(trained, tmp_path):
    running = tmp_path / "running"
    running.mkdir()
    for name in ("config.yaml", "log.csv"):  # what a run folder holds before it finishes
        (running / name).write_bytes((trained / name).read_bytes())
    assert main(["plot", str(running)]) == 0
    assert sorted(p.name for p in (running / "plots").iterdir()) == ["curves.png"]


def test_spectra_near_one_get_a_linear_axis_and_others_a_log_axis():
    import matplotlib.pyplot as plt

    from graphssl.plot import _spectra_panels

    fig, axes = plt.subplots(1, 2)
    _spectra_panels(axes, [0, 10], [("near 1", [[1.3, 0.7], [1.02, 0.98]], "singular value"),
                                    ("spread", [[5.0, 0.01], [4.0, 0.02]], "singular value")], "step")
    assert [ax.get_yscale() for ax in axes] == ["linear", "log"]
    plt.close(fig)


def test_plot_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "neither a run" in capsys.readouterr().err


def test_plot_draws_a_tunes_logs_and_names_a_tune_folder_for_what_it_is(trained, tmp_path, capsys):
    tune = tmp_path / "tune"
    (tune / "logs").mkdir(parents=True)
    (tune / "results").mkdir()
    (tune / "tune.json").write_text("{}")
    log = tune / "logs" / "t000__seed0.csv"
    log.write_bytes((trained / "log.csv").read_bytes())
    assert main(["plot", str(tune)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a tune folder" in err and "Traceback" not in err
    assert main(["plot", str(log), str(trained), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_without_spectra_still_gets_its_curves(tmp_path, data_root, capsys):
    run = tmp_path / "nospectra"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "4", "--out", str(run),
                 *TINY, "--set", "train.spectra_every=0"]) == 0
    assert main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["curves.png", "embedding_spectrum.png"]
    assert "no spectra were recorded" in capsys.readouterr().err


def test_plot_of_a_results_folder_not_made_by_bench_is_one_line(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x.json").write_text('{"metrics": {}}')
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a result of 'graphssl bench'" in err


# Tampered but parseable inputs: one line naming the file and the fix, no traceback, and no picture drawn
# (every input is checked before anything is drawn, so a good run given beside a bad one gets no PNG either).

def _copy_run(trained, folder):
    folder.mkdir()
    for name in ("config.yaml", "log.csv", "metrics.json", "spectra.json"):
        (folder / name).write_bytes((trained / name).read_bytes())
    return folder


def _refused(args, capsys, bad_file, out):
    assert main(["plot", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(bad_file) in err and ("graphssl train" in err or "graphssl bench" in err), err
    assert not out.exists() or not list(out.iterdir())  # no partial PNG
    return err


def _ragged(spectra):
    last = spectra["history"][-1]
    return {**spectra, "history": [*spectra["history"][:-1],
                                   {**last, "embedding_covariance": last["embedding_covariance"][:-1]}]}


@pytest.mark.parametrize("tamper", [
    lambda s: [],
    lambda s: "spectra",
    lambda s: {**s, "final": {**s["final"], "embedding_singular_values": ["a"]}},
    lambda s: {**s, "final": None},
    lambda s: {**s, "history": [{"step": 0}]},
    lambda s: {**s, "history": {"step": 0}},
    lambda s: {**s, "history": [{**h, "weights": {"x": [1.0]}} if i else h for i, h in enumerate(s["history"])]},
    _ragged,
    lambda s: {**s, "weight_shapes": [1]},
], ids=["empty-list", "string", "singular-values-strings", "final-null", "history-no-weights", "history-dict",
        "other-layers", "ragged", "weight-shapes-list"])
def test_plot_of_a_tampered_spectra_json_is_one_line(trained, tmp_path, capsys, tamper):
    run = _copy_run(trained, tmp_path / "run")
    spectra = json.loads((trained / "spectra.json").read_text())
    (run / "spectra.json").write_text(json.dumps(tamper(spectra)))
    _refused([str(trained), str(run)], capsys, run / "spectra.json", tmp_path / "plots")


def test_plot_of_a_tampered_metrics_json_is_one_line(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path / "run")
    (run / "metrics.json").write_text("[]")
    _refused([str(trained), str(run)], capsys, run / "metrics.json", tmp_path / "plots")
    (run / "metrics.json").write_text("[" * 10**5 + "]" * 10**5)  # too deep for the parser: read as malformed
    assert main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'metrics.json'}: cannot read it (nested more than 50 deep" in err


@pytest.mark.parametrize("text", [
    "",
    "step,loss,werank,rankme,val_acc\n",
    "this is not a log\nat all\n",
    "garbage",
    "\x00\xff\xfe garbage",
    "step,loss\n1,0.5,7\n",
    "a,b\n1,2\n",
    "step,loss\n,0.5\n",
    "\nstep,loss\n1,0.5\n",
    "step,loss\n1,high\n",
    "step,loss\ninf,0.5\n",
    "step,lr\n1,0.01\n",
    "x" * 200_000 + "\n1\n",
], ids=["empty", "header-only", "text", "one-word", "binary", "extra-cell", "no-step", "empty-step", "blank-first-line",
    "word-in-a-cell", "infinite-step", "nothing-to-draw", "huge-field"])
@pytest.mark.parametrize("finished", [True, False], ids=["finished", "training"])
def test_plot_of_a_tampered_log_csv_is_one_line(trained, tmp_path, capsys, text, finished):
    run = _copy_run(trained, tmp_path / "run")
    if not finished:
        for name in ("metrics.json", "spectra.json"):
            (run / name).unlink()
    (run / "log.csv").write_bytes(text.encode("latin-1"))
    _refused([str(trained), str(run)], capsys, run / "log.csv", tmp_path / "plots")


def _bench_result(werank=0.1, seed=0, **metrics):
    return {"dataset": "cora", "method": "bgrl", "werank": werank, "settings": {}, "seed": seed,
            "metrics": {"werank": werank, "test_acc": 0.8 + seed / 100, "rankme": 12.0 + seed, **metrics}}


def _bench(folder, results):
    (folder / "results").mkdir(parents=True)
    for index, result in enumerate(results):
        text = result if isinstance(result, str) else json.dumps(result)
        (folder / "results" / f"r{index}.json").write_text(text)
    return folder


def test_plot_of_a_hand_made_bench_folder_draws_its_sweep(tmp_path):
    bench = _bench(tmp_path / "bench", [_bench_result(0, 0), _bench_result(0, 1), _bench_result(0.1, 0),
                                        _bench_result([0.1, 0], 0)])
    assert main(["plot", str(bench), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "werank_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("tampered", [
    {**_bench_result(), "metrics": None},
    [1, 2],
    "null",
    _bench_result(test_acc="high"),
    _bench_result(rankme=None),
    _bench_result(werank={"x": 1}),
    _bench_result(werank="abc"),
    _bench_result(werank=-0.1),
    _bench_result(werank=True),
    _bench_result(werank=[0.1, "a"]),
    {**_bench_result(), "dataset": 3},
    {**_bench_result(), "settings": []},
    _bench_result(method=["bgrl"]),
], ids=["metrics-null", "list", "null", "test-acc-string", "rankme-null", "werank-object", "werank-string",
        "werank-negative", "werank-bool", "werank-list-with-string", "dataset-number", "settings-list",
        "method-list"])
def test_plot_of_a_tampered_bench_result_is_one_line(trained, tmp_path, capsys, tampered):
    bench = _bench(tmp_path / "bench", [_bench_result(0), tampered])
    err = _refused([str(trained), str(bench)], capsys, bench / "results" / "r1.json", tmp_path / "plots")
    assert "not a result of 'graphssl bench'" in err


def test_plot_of_a_bench_whose_run_spectra_are_tampered_is_one_line(tmp_path, capsys):
    bench = _bench(tmp_path / "bench", [_bench_result(0), _bench_result(0.1)])
    (bench / "runs" / "r1").mkdir(parents=True)
    (bench / "runs" / "r1" / "spectra.json").write_text(json.dumps({"final": {"embedding_singular_values": [1.0],
                                                                              "weights": {"w": []}}, "history": []}))
    _refused([str(bench)], capsys, bench / "runs" / "r1" / "spectra.json", tmp_path / "plots")
