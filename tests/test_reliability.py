"""Checkpoints, exact resume, divergence guard, determinism and safe loading."""

import errno
import json
import os
import pickle
import time

import pytest
import torch

from graphssl.cli import main
from graphssl.errors import GraphSSLError
from graphssl.run_folder import load_checkpoint, save_checkpoint
from helpers import RunsCode, comparable, graphssl_command, kill_tree, log_without_timings, run, start

SMALL = ["--set", "encoder.layers=[64,32]", "--set", "predictor.hidden=64", "--set", "train.spectra_every=20",
         "--quiet", "--werank", "0.1"]


def last_logged_step(run_dir):
    """The step of log.csv's last whole row (0 when there is none yet)."""
    try:
        *_, last = (run_dir / "log.csv").read_text().splitlines()
        return int(last.split(",")[0])
    except (OSError, ValueError):  # no file or no row yet, or a header being written
        return 0


def past_checkpoint(run_dir):
    """Whether log.csv has a row after the last checkpoint, with rows every 10 steps and checkpoints every 20."""
    return (run_dir / "checkpoint.pt").exists() and last_logged_step(run_dir) % 20 != 0


# Each method's own state (GRACE's projection head, VICReg's expander with its batch-norm statistics) is resumed
# too; the others also regularize their heads here. GRACE trains on mini-batches (its full-graph similarities would
# make this test minutes long), so a resumed run must also draw the same batches. Under WERank's adaptive schedule
# the current coefficient is state as well: with a target RankMe of the whole embedding size, never met, alpha
# grows x1.5 at every spectra step (every 20) from 0.1 until alpha_max (step 240), across the kill.
RUN_ARGS = {"bgrl": ["--method", "bgrl"],
            "grace": ["--method", "grace", "--set", "grace.projection_hidden=32", "--set", "werank.scope=encoder+head",
                      "--batch-size", "512", "--num-neighbors", "5", "5"],
            "vicreg": ["--method", "vicreg", "--set", "vicreg.expander_layers=[64,64]",
                       "--set", "werank.scope=encoder+head"],
            "cca-ssg": ["--method", "cca-ssg", "--set", "werank.scope=encoder+head"],
            "bgrl-adaptive-werank": ["--method", "bgrl", "--set", "werank.schedule=adaptive",
                                     "--set", "werank.target_fraction=1.0", "--set", "werank.adapt_factor=1.5",
                                     "--set", "werank.alpha_max=10.0"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RUN_ARGS))
def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path, env, case):
    steps = ["--steps", "300", "--checkpoint-every", "20", *RUN_ARGS[case]]
    full = tmp_path / "full"
    # 300 steps take about a minute alone on 2 cores; a machine shared with other jobs can take several times that.
    proc = run(graphssl_command("train", "--dataset", "cora", "--out", full, *steps, *SMALL), env, timeout=900)
    assert proc.returncode == 0, proc.stderr

    killed = tmp_path / "killed"
    child = start(graphssl_command("train", "--dataset", "cora", "--out", killed, *steps, *SMALL), env)
    deadline = time.time() + 120
    # Killed once log.csv has a row after the last checkpoint (rows every 10 steps, checkpoints every 20, each
    # written after its step's row), so the resumed run must drop that row and write it again.
    while not (past_checkpoint(killed) or child.poll() is not None or time.time() > deadline):
        time.sleep(0.005)
    assert kill_tree(child), "the run finished before it could be killed"
    child.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    step = load_checkpoint(killed / "checkpoint.pt")["step"]
    assert 20 <= step < 300
    assert last_logged_step(killed) > step

    proc = run(graphssl_command("train", "--resume", killed, "--quiet"), env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    a = torch.load(full / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 300
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert comparable(full) == comparable(killed)
    spectra_a = json.loads((full / "spectra.json").read_text())
    spectra_b = json.loads((killed / "spectra.json").read_text())
    assert spectra_a == spectra_b and [h["step"] for h in spectra_a["history"]] == list(range(0, 301, 20))
    log = log_without_timings(full)
    assert log == log_without_timings(killed)  # no row duplicated or missing across the kill
    assert [int(row["step"]) for row in log] == sorted({*range(0, 301, 10), *range(0, 301, 20)})
    alphas = {float(row["werank_alpha"]) for row in log[1:]}
    assert len(alphas) == (13 if "adaptive" in case else 1)  # 0.1 x 1.5^k for k = 0 ... 11, then alpha_max


def test_same_seed_gives_the_same_metrics_twice(tmp_path, data_root):
    for name in ("a", "b"):
        assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "20",
                     "--out", str(tmp_path / name), *SMALL]) == 0
    assert comparable(tmp_path / "a") == comparable(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["deterministic"] is True
    different = tmp_path / "c"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "20", "--seed", "1",
                 "--out", str(different), *SMALL]) == 0
    assert comparable(different) != comparable(tmp_path / "a")


def test_divergence_stops_with_exit_3_naming_step_and_checkpoint(tmp_path, env):
    out = tmp_path / "nan"
    # Step 0 is taken at learning rate 1e30 from a sane model, so its loss is finite and its checkpoint written;
    # the next step's loss, from weights near 1e30, is not.
    proc = run(graphssl_command("train", "--dataset", "cora", "--out", out, "--steps", "50", "--checkpoint-every", "1",
                                "--set", "optim.warmup_steps=0", "--set", "optim.lr=1e30", *SMALL), env)
    assert proc.returncode == 3, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "training diverged at step 1:" in line and "lower optim.lr" in line
    assert f"the last good checkpoint is {out / 'checkpoint.pt'} (step 1)" in line
    assert not (out / "metrics.json").exists() and not (out / "spectra.json").exists()
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_truncated_and_tampered_checkpoints_exit_2(tmp_path, data_root, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "10",
                 "--checkpoint-every", "5", "--out", str(run), *SMALL]) == 0
    (run / "metrics.json").unlink()  # make it resumable again
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert main(["train", "--resume", str(run), "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded safely" in err and err.count("\n") == 1


def test_a_checkpoint_carrying_code_is_refused_and_never_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "checkpoint.pt", "wb") as handle:
        pickle.dump({"step": 1, "config": RunsCode(marker)}, handle, protocol=2)
    assert main(["train", "--resume", str(run)]) == 2
    assert "cannot be loaded safely" in capsys.readouterr().err
    assert not marker.exists()
    with pytest.raises(GraphSSLError):
        load_checkpoint(run / "checkpoint.pt")
    assert not marker.exists()


def test_unwritable_out_is_a_clear_error(tmp_path, data_root, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(blocker / "run"),
                 "--steps", "2", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and "part of that path is a file, not a folder" in err
    assert err.count("\n") == 1


def test_full_disk_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    def no_space(obj, handle):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(GraphSSLError, match="no space left on the device .what was there before is intact."):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_resume_refuses_finished_runs_and_extra_settings(tmp_path, data_root, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "4", "--out", str(run),
                 *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "9"]) == 2
    assert "drop --steps" in capsys.readouterr().err
    (run / "checkpoint.pt").unlink()  # finished is still what to say, not "stopped before its first checkpoint"
    assert main(["train", "--resume", str(run)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert f"{tmp_path / 'nothing'}: no such folder" in capsys.readouterr().err
