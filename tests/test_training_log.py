"""log.csv (rows, exact resume), the validation probe during training (never the test split), TensorBoard."""

import csv
import dataclasses
import json
import math
import os
import sys

import pytest
import torch

from graphssl.cli import main
from graphssl.config import load_config
from graphssl.errors import GraphSSLError, Interrupted
from graphssl.model import build_model
from graphssl.pipeline import resume_training, run_training
from graphssl.schedulers import CosineMomentum, WarmupCosineLR
from graphssl.train import Pretrainer, pretrain
from graphssl.training_log import TrainingLog, read_log
from helpers import interrupt_training_at, log_without_timings, spy_on_probe_splits

TINY = {"encoder.layers": [32, 16], "predictor.hidden": 32}
TINY_FLAGS = ["--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--quiet"]


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_log_rows_match_the_logged_steps(tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "13", "--werank", "0.1", "0.2",
                 "--set", "train.log_every=3", "--set", "train.spectra_every=5", "--set", "train.probe_every=4",
                 "--out", str(out), *TINY_FLAGS]) == 0
    rows = read_rows(out / "log.csv")
    assert list(rows[0]) == ["step", "loss", "werank", "werank_layer1", "werank_layer2", "werank_alpha", "lr",
                             "ema_momentum", "wall_seconds", "rankme", "rank", "val_acc"]
    # every 3rd step, every spectra (5) and probe (4) step, the last step, and step 0 (spectra and probe there)
    assert [int(r["step"]) for r in rows] == [0, 3, 4, 5, 6, 8, 9, 10, 12, 13]
    assert [int(r["step"]) for r in rows if r["rankme"]] == [0, 5, 10]
    assert [int(r["step"]) for r in rows if r["rank"]] == [0, 5, 10]
    assert [int(r["step"]) for r in rows if r["val_acc"]] == [0, 4, 8, 12]
    assert [int(r["step"]) for r in rows if not r["loss"]] == [0]

    config = load_config(out / "config.yaml")
    lr = WarmupCosineLR(config["optim"]["lr"], config["optim"]["warmup_steps"], 13)
    momentum = CosineMomentum(config["ema"]["start"], config["ema"]["end"], 13)
    for row in rows[1:]:
        step = int(row["step"])
        assert float(row["lr"]) == lr(step - 1) and float(row["ema_momentum"]) == momentum(step - 1)
        layers = float(row["werank_layer1"]), float(row["werank_layer2"])
        assert float(row["werank"]) == pytest.approx(sum(layers), rel=1e-6) and min(layers) > 0
        assert 0 <= float(row["val_acc"] or 0) <= 1 and 1 <= float(row["rankme"] or 1) <= 16
    seconds = [float(r["wall_seconds"]) for r in rows]
    assert seconds == sorted(seconds)

    metrics = json.loads((out / "metrics.json").read_text())
    assert float(rows[-1]["loss"]) == metrics["final_loss"] and float(rows[-1]["werank"]) == metrics["final_werank"]
    spectra = json.loads((out / "spectra.json").read_text())
    assert [h["step"] for h in spectra["history"]] == [0, 5, 10]


def test_an_unregularized_run_logs_zero_werank_terms(tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "4", "--werank", "0",
                 "--set", "train.log_every=2", "--out", str(out), *TINY_FLAGS]) == 0
    rows = read_rows(out / "log.csv")
    assert [int(r["step"]) for r in rows] == [0, 2, 4]  # step 0: spectra are on by default
    assert all(float(r[k]) == 0.0 for r in rows[1:] for k in ("werank", "werank_layer1", "werank_layer2"))


def _trainer(graph, overrides):
    config = load_config(None, {**TINY, "optim.steps": 12, "werank.alpha": 0.1, "train.spectra_every": 0,
                                **overrides})
    torch.manual_seed(0)
    return Pretrainer(build_model(config, graph.num_features), graph, config, torch.device("cpu"))


def test_logging_and_probing_leave_the_training_bit_identical(cora, tmp_path):
    plain = _trainer(cora, {})
    pretrain(plain, out=None, progress=False)
    plain_rng = torch.get_rng_state()
    logged = _trainer(cora, {"train.probe_every": 3, "train.spectra_every": 4, "train.log_every": 1})
    pretrain(logged, out=None, progress=False, log_path=tmp_path / "log.csv")
    assert len(read_log(tmp_path / "log.csv")) == 13
    assert [r["step"] for r in read_log(tmp_path / "log.csv") if not math.isnan(r["val_acc"])] == [0, 3, 6, 9, 12]
    for name, tensor in plain.model.state_dict().items():
        assert torch.equal(tensor, logged.model.state_dict()[name]), name
    assert torch.equal(torch.get_rng_state(), plain_rng)  # the probe and the log drew no random numbers


class ReadDuringTraining:
    """A test split that fails the test as soon as anything touches it."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("the test split was read during training")

    __getattr__ = __len__ = __iter__ = __index__ = __getitem__ = __array__ = __bool__ = _fail

    @classmethod
    def __torch_function__(cls, *args, **kwargs):
        raise AssertionError("the test split was read during training")


def test_probing_during_training_never_reads_the_test_split(cora, tmp_path, monkeypatch):
    seen_splits = spy_on_probe_splits(monkeypatch)
    poisoned = dataclasses.replace(cora, split={**cora.split, "test": ReadDuringTraining()})
    trainer = _trainer(poisoned, {"train.probe_every": 4, "optim.steps": 8})
    pretrain(trainer, out=None, progress=False, log_path=tmp_path / "log.csv")
    assert seen_splits == [["train", "valid"]] * 3  # steps 0, 4 and 8
    assert [r["step"] for r in read_log(tmp_path / "log.csv") if not math.isnan(r["val_acc"])] == [0, 4, 8]


def test_an_interrupted_run_resumes_its_log_without_duplicated_or_missing_rows(cora, tmp_path, monkeypatch):
    config = load_config(None, {**TINY, "optim.steps": 20, "werank.alpha": 0.1, "train.log_every": 1,
                                "train.checkpoint_every": 5, "train.spectra_every": 4, "train.probe_every": 6})
    full = run_training("cora", config, out_dir=tmp_path / "full", graph=cora, progress=False)
    assert full is not None

    interrupt_training_at(monkeypatch, 13)
    with pytest.raises(Interrupted):
        run_training("cora", config, out_dir=tmp_path / "killed", graph=cora, progress=False)
    monkeypatch.undo()
    # Rows 11-13 were written after the last checkpoint (step 10): the resumed run drops and rewrites them.
    assert [r["step"] for r in read_log(tmp_path / "killed" / "log.csv")][-1] == 13
    resume_training(tmp_path / "killed", graph=cora, progress=False)
    assert [int(r["step"]) for r in read_rows(tmp_path / "killed" / "log.csv")] == list(range(21))
    assert log_without_timings(tmp_path / "killed") == log_without_timings(tmp_path / "full")


def test_a_log_that_cannot_be_continued_restarts_with_a_warning(tmp_path, capsys):
    path = tmp_path / "log.csv"
    with TrainingLog(path, ["step", "loss"], start_step=50, resume_bytes=1000) as log:  # no file to continue
        log.write({"step": 51, "loss": 0.5})
    assert path.read_text() == "step,loss\n51,0.5\n"
    assert "restarts at step 50" in capsys.readouterr().err

    path.write_text("step,loss\n10,0.5\n20,0.4\n")  # written before a column was added
    with TrainingLog(path, ["step", "loss", "lr"], start_step=10, resume_bytes=len("step,loss\n10,0.5\n")) as log:
        log.write({"step": 20, "loss": 0.4, "lr": 0.1})
    assert path.read_text() == "step,loss,lr\n20,0.4,0.1\n"
    assert "restarts at step 10" in capsys.readouterr().err


def test_missing_tensorboard_is_one_line_before_training(tmp_path, data_root, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when the package is not installed
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "2", "--tensorboard",
                 "--out", str(out), *TINY_FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'graphssl-werank[tensorboard]'" in err
    assert not out.exists()  # nothing was started

    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "2", "--out", str(out),
                 "--checkpoint-every", "1", *TINY_FLAGS]) == 0
    (out / "metrics.json").unlink()
    assert main(["train", "--resume", str(out), "--tensorboard"]) == 2
    assert "drop --tensorboard" in capsys.readouterr().err


def test_tensorboard_gets_the_logs_scalars(tmp_path, data_root):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "6", "--werank", "0.1",
                 "--set", "train.log_every=2", "--set", "train.spectra_every=3", "--tensorboard", "--out", str(out),
                 *TINY_FLAGS]) == 0
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    rows = read_log(out / "log.csv")
    for tag in ("loss", "werank", "werank_layer2", "lr", "rankme"):
        logged = [r for r in rows if not math.isnan(r[tag])]
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == [int(r["step"]) for r in logged], tag
        assert [e.value for e in scalars] == pytest.approx([r[tag] for r in logged], rel=1e-6), tag
    assert "val_acc" not in events.Tags()["scalars"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_read_log_refuses_what_is_not_a_regular_file(tmp_path):
    pipe = tmp_path / "log.csv"
    os.mkfifo(pipe)  # reading it would wait forever for a writer
    with pytest.raises(GraphSSLError, match="log.csv: not a regular file"):
        read_log(pipe)
    with pytest.raises(GraphSSLError, match="not a regular file"):
        read_log(tmp_path)
