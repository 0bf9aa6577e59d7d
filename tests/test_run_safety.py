"""Hostile or unlucky runs: tampered checkpoints, configs that are not UTF-8, impossible devices and sizes, runs
stopped before their first checkpoint, two processes on one run folder, and what the thread count changes."""

import json
import os
import shutil
import subprocess
import time

import pytest
import torch

from graphssl.cli import main
from graphssl.locks import LockTaken, exclusive_lock
from graphssl.run_folder import writing_run_dir
from helpers import ALIASES_OF_ALIASES, graphssl_command, start

SMALL = ["--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--set", "train.spectra_every=20",
         "--quiet"]


def snapshot(folder):
    """Every file under ``folder`` with its bytes: what must be unchanged after a refused command."""
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("graphssl: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory, data_root):
    """A run stopped after its checkpoint at step 4 of 8."""
    run_dir = tmp_path_factory.mktemp("unfinished") / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "8", "--checkpoint-every", "4",
                 "--out", str(run_dir), *SMALL]) == 0
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    for name in ("metrics.json", "spectra.json"):
        (run_dir / name).unlink()
    state["step"] = 4  # as if killed after the step-4 checkpoint; the weights need not match for these tests
    torch.save(state, run_dir / "checkpoint.pt")
    return run_dir


def _layers(state):
    state["config"]["encoder"]["layers"] = [64, 16]


def _rng_type(state):
    state["rng"][0]["torch"] = "not a generator state"


def _rng_size(state):
    state["rng"][0]["torch"] = torch.zeros(7, dtype=torch.uint8)


def _no_param_groups(state):
    state["optimizer"]["param_groups"] = []


def _optimizer_shapes(state):
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)


def _optimizer_settings(state):
    state["optimizer"]["param_groups"][0]["betas"] = (0.9,)


def _float_step(state):
    state["step"] = 2.5


def _step_beyond_the_run(state):
    state["step"] = 9


def _unknown_dataset(state):
    state["dataset"] = "imagenet"


def _fewer_features(state):
    state["in_channels"] = 7
    for name, tensor in state["model"].items():
        if name.endswith("convs.0.lin.weight"):
            state["model"][name] = tensor[:, :7].clone()


def _config_not_a_mapping(state):
    state["config"] = ["not", "a", "config"]


def _config_emptied(state):
    state["config"] = {}  # would otherwise resume with every built-in default


def _model_key_not_a_name(state):
    state["model"][5] = torch.zeros(1)


def _in_channels_only(state):
    state["in_channels"] = 7  # the weights still take Cora's 1433 features: only a resume's graph can tell


@pytest.mark.parametrize("tamper", [_layers, _rng_type, _rng_size, _no_param_groups, _optimizer_shapes,
                                    _optimizer_settings, _float_step, _step_beyond_the_run, _unknown_dataset,
                                    _fewer_features, _config_not_a_mapping, _config_emptied,
                                    _model_key_not_a_name, _in_channels_only])
def test_a_tampered_but_loadable_checkpoint_is_one_line_and_changes_nothing(unfinished_run, data_root, tmp_path,
                                                                            capsys, tamper):
    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    tamper(state)
    torch.save(state, run_dir / "checkpoint.pt")
    before = snapshot(run_dir)
    assert main(["train", "--resume", str(run_dir), "--data-root", str(data_root)]) == 2
    err = one_line_error(capsys)
    assert f"--resume {run_dir}: checkpoint.pt" in err and "restore it" in err
    assert snapshot(run_dir) == before


def test_a_resume_refuses_a_config_yaml_that_no_longer_says_what_the_run_trains_with(unfinished_run, data_root,
                                                                                     tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    original = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(original.replace("steps: 8", "steps: 50"))
    before = snapshot(run_dir)
    assert main(["train", "--resume", str(run_dir), "--data-root", str(data_root)]) == 2
    assert "checkpoint.pt's config and config.yaml differ in optim.steps" in one_line_error(capsys)
    assert snapshot(run_dir) == before
    # A deleted config.yaml is no contradiction: the resume writes it again, as it was.
    (run_dir / "config.yaml").unlink()
    assert main(["train", "--resume", str(run_dir), "--data-root", str(data_root), "--quiet"]) == 0
    assert (run_dir / "config.yaml").read_text() == original
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 8


@pytest.mark.parametrize("tamper, message", [
    (_layers, "the checkpoint does not fit its own config (Error(s) in loading state_dict"),
    (_fewer_features, "its model takes 7 features per node but cora has 1433"),
    (_config_not_a_mapping, "checkpoint.pt is not a graphssl training checkpoint, or was altered"),
    (_model_key_not_a_name, "checkpoint.pt is not a graphssl training checkpoint, or was altered")])
def test_eval_of_a_checkpoint_that_no_longer_fits_is_one_line(unfinished_run, data_root, tmp_path, capsys, tamper,
                                                              message):
    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    tamper(state)
    torch.save(state, run_dir / "checkpoint.pt")
    assert main(["eval", str(run_dir), "--data-root", str(data_root)]) == 2
    assert message in one_line_error(capsys)


def test_yaml_that_is_not_utf8_is_one_line_wherever_it_is_read(tmp_path, capsys):
    latin1 = "optim:\n  lr: 0.002  # café\n".encode("latin-1")
    config = tmp_path / "config.yaml"
    config.write_bytes(latin1)
    assert main(["train", "--dataset", "cora", "--config", str(config), "--out", str(tmp_path / "a")]) == 2
    assert f"--config {config}: not UTF-8 text (byte 0xe9" in one_line_error(capsys)
    assert main(["tune", "--dataset", "cora", "--space", str(config), "--out", str(tmp_path / "t")]) == 2
    assert f"--space {config}: not UTF-8 text" in one_line_error(capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "t").exists()


def _place(path, content):
    """``content`` at ``path``: bytes, or None for a named pipe (reading one waits forever for a writer)."""
    if content is None:
        os.mkfifo(path)
    else:
        path.write_bytes(content)


def _is_placed(path, content):
    return path.is_fifo() if content is None else path.read_bytes() == content


UNREADABLE_RUN_CONFIGS = {
    "latin-1": "optim:\n  lr: 0.002  # café\n".encode("latin-1"),
    "recursive alias": b"encoder: &a {layers: *a}\n",
    "repeated key": b"optim: {lr: 0.1}\noptim: {lr: 0.2}\n",
    "aliases of aliases": ALIASES_OF_ALIASES.encode(),
    "deep": b"encoder: {junk: " + b"[" * 400 + b"]" * 400 + b"}\n",
    "named pipe": None,
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("unreadable", UNREADABLE_RUN_CONFIGS.values(), ids=UNREADABLE_RUN_CONFIGS)
def test_a_run_folders_unreadable_config_is_nobodys_run(tmp_path, data_root, capsys, unreadable):
    # train: not a run graphssl started, so not one to replace; the folder is left as it is.
    out = tmp_path / "run"
    out.mkdir()
    _place(out / "config.yaml", unreadable)
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), "--steps", "2",
                 *SMALL]) == 2
    assert "already exists and holds config.yaml" in one_line_error(capsys)
    assert _is_placed(out / "config.yaml", unreadable)
    # bench: a run of its own whose config no longer reads is another training's, so it trains this one again.
    bench = ["bench", "--datasets", "cora", "--werank", "0", "--seeds", "1", "--jobs", "1", "--steps", "2",
             "--data-root", str(data_root), "--out", str(tmp_path / "bench"), *SMALL]
    assert main(bench) == 0
    (result,) = (tmp_path / "bench" / "results").glob("*.json")
    result.unlink()
    (run,) = (tmp_path / "bench" / "runs").iterdir()
    (run / "config.yaml").unlink()
    _place(run / "config.yaml", unreadable)
    assert main(bench) == 0
    assert json.loads(result.read_text())["metrics"]["steps"] == 2
    assert not _is_placed(run / "config.yaml", unreadable)


@pytest.mark.parametrize("command", [["train", "--dataset", "cora"], ["bench", "--datasets", "cora"],
                                     ["tune", "--dataset", "cora", "--space", "configs/spaces/werank.yaml"]])
@pytest.mark.parametrize("device", ["meta", "xla"])
def test_a_device_graphssl_cannot_train_on_is_one_line_before_anything_is_written(tmp_path, capsys, command,
                                                                                  device):
    assert main([*command, "--device", device, "--out", str(tmp_path / "out")]) == 2
    assert f"--device {device}: graphssl trains on the CPU or a CUDA GPU" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_model_too_large_for_memory_is_one_line_and_its_folder_can_be_reused(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    huge = ["train", "--dataset", "cora", "--data-root", str(data_root), "--device", "cpu", "--out", str(out),
            "--steps", "2", "--quiet", "--set", "encoder.layers=[2000000000]"]
    assert main(huge) == 2
    err = one_line_error(capsys)
    assert "out of memory on cpu: one tensor needed 10,676.7 GiB (encoder.layers [2000000000]" in err
    assert "2708 nodes x 1433 features" in err and "choose smaller sizes" in err
    assert sorted(path.name for path in out.iterdir()) == ["config.yaml"]
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), "--steps", "2",
                 *SMALL]) == 0
    assert (out / "metrics.json").is_file()


def test_a_run_diverged_before_its_first_checkpoint_says_what_to_do(tmp_path, data_root, capsys):
    out = tmp_path / "nan"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), "--steps", "50",
                 "--set", "optim.warmup_steps=0", "--set", "optim.lr=1e30", *SMALL]) == 3
    assert "no checkpoint was written before it" in capsys.readouterr().err
    kept = snapshot(out)
    assert sorted(map(str, kept)) == ["config.yaml", "log.csv"]
    assert main(["train", "--resume", str(out)]) == 2
    err = one_line_error(capsys)
    assert "the run stopped before its first checkpoint, so there is nothing to continue" in err
    assert f"train it again with --config {out / 'config.yaml'} and a new --out" in err
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), "--steps", "2",
                 *SMALL]) == 2
    err = one_line_error(capsys)
    assert "holds a run that stopped before its first checkpoint" in err and "delete the folder" in err
    assert snapshot(out) == kept


def test_a_second_process_on_a_run_folder_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path, data_root, env,
                                                                                          capsys):
    out = tmp_path / "run"
    child = start(graphssl_command("train", "--dataset", "cora", "--out", out, "--steps", "100000",
                                   "--checkpoint-every", "5", *SMALL), env)
    try:
        deadline = time.time() + 240
        while not (out / "checkpoint.pt").exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert child.poll() is None and (out / ".lock").read_text() == f"{child.pid}\n"
        for command in (["train", "--resume", str(out)],
                        ["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), *SMALL]):
            assert main(command) == 2
            err = one_line_error(capsys)
            assert f"another graphssl process (pid {child.pid}) is writing to this folder" in err
    finally:
        child.kill()  # Popen.kill leaves a child already reaped alone (its pid may be someone else's by now)
        child.wait()
    assert (out / ".lock").read_text() == f"{child.pid}\n"  # left behind by the killed process
    with writing_run_dir(out, "--resume"):
        assert (out / ".lock").read_text() == f"{os.getpid()}\n"
    assert not (out / ".lock").exists()


def test_resume_of_a_run_not_yet_checkpointed_waits_for_its_lock_before_judging_it(tmp_path, capsys):
    # A run still training before its first checkpoint holds only config.yaml and .lock: "it stopped" (and
    # "delete the folder") would be wrong advice, so the early, torch-free folder check leaves it to the lock.
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("method: bgrl\n")
    with exclusive_lock(out / ".lock", wait=False):
        assert main(["train", "--resume", str(out)]) == 2
        assert f"another graphssl process (pid {os.getpid()}) is writing to this folder" in one_line_error(capsys)
    assert main(["train", "--resume", str(out)]) == 2
    assert "the run stopped before its first checkpoint" in one_line_error(capsys)
    # eval takes no lock: the live process the lock file names is what tells a running run from a stopped one.
    writer = subprocess.Popen(["sleep", "60"])
    try:
        (out / ".lock").write_text(f"{writer.pid}\n")
        assert main(["eval", str(out)]) == 2
        assert f"no checkpoint.pt yet; the run is still training (process {writer.pid})" in one_line_error(capsys)
    finally:
        writer.kill()
        writer.wait()
    for named in (f"{writer.pid}\n", "99999999999999999999\n"):  # a killed run's pid; no process id at all
        (out / ".lock").write_text(named)
        assert main(["eval", str(out)]) == 2
        assert "the run stopped before its first checkpoint" in one_line_error(capsys)
    (out / "metrics.json").write_text("{}")
    assert main(["eval", str(out)]) == 2
    assert "the run finished but its checkpoint.pt is gone" in one_line_error(capsys)


@pytest.mark.parametrize("command", ["eval", "resume"])
@pytest.mark.parametrize("path", ["", "n" * 300, "unreadable"])
def test_an_empty_overlong_or_unreadable_run_folder_is_one_line(command, path, tmp_path, monkeypatch, capsys):
    if path == "unreadable":  # tests may run as root, whom permissions do not stop
        path = str(tmp_path)
        monkeypatch.setattr("graphssl.run_layout.os.access", lambda *args: False)
    argv = ["eval", path] if command == "eval" else ["train", "--resume", path]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert {"": "an empty path", str(tmp_path): "cannot read it (permission denied)"}.get(
        path, "cannot read it (File name too long)") in err, err


def test_a_lock_is_exclusive_until_released(tmp_path):
    path = tmp_path / ".lock"
    with exclusive_lock(path, wait=False):
        with pytest.raises(LockTaken) as taken:
            with exclusive_lock(path, wait=False):
                pass
        assert taken.value.pid == os.getpid()
    with exclusive_lock(path, wait=False):
        pass


def test_metrics_record_the_thread_count_the_numbers_depend_on(tmp_path, data_root):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "2",
                     "--out", str(tmp_path / "run"), *SMALL]) == 0
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["threads"] == 1


@pytest.mark.parametrize("planted", [".lock", "log.csv"])
def test_a_symbolic_link_in_a_run_folder_is_never_written_through(planted, unfinished_run, data_root, tmp_path,
                                                                  capsys):
    """A link planted as the lock or the log would let a resume truncate any file it points to."""
    run = tmp_path / "run"
    shutil.copytree(unfinished_run, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n" * 50)
    (run / planted).unlink(missing_ok=True)
    (run / planted).symlink_to(victim)
    assert main(["train", "--resume", str(run), "--data-root", str(data_root), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert planted in err and "symbolic link" in err
    assert victim.read_text() == "someone else's file\n" * 50


def test_a_folder_in_the_locks_place_is_refused_not_skipped(unfinished_run, data_root, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(unfinished_run, run)
    (run / ".lock").mkdir()  # once, the lock was silently skipped and two processes could write the run
    assert main(["train", "--resume", str(run), "--data-root", str(data_root), "--quiet"]) == 2
    assert "not a lock file graphssl made" in one_line_error(capsys)
