"""Writing outputs (issue 12): full disks, read-only file systems and bad paths give one line and lose nothing;
temporaries of killed writers are cleaned up; no command replaces another run's files."""

import builtins
import contextlib
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphssl import files, training_log
from graphssl.cli import main
from graphssl.errors import GraphSSLError, WriteFailed
from graphssl.files import atomic_write, claim_folder, remove_stale_temporaries
from graphssl.run_folder import load_checkpoint, save_checkpoint
from helpers import comparable

TINY = ["--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--set", "train.spectra_every=2",
        "--quiet"]
SPACE = "optim.lr: [0.001, 0.002]\n"
TOO_LONG = "n" * 300  # longer than any file system's 255-byte name limit


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "4", "--out", str(out),
                 *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(SPACE)
    return path


def fingerprints(folder):
    """Every file under ``folder`` (temporaries included) with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder):
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def one_line_error(capsys, code, expected_code=2):
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


class FullDisk:
    """An open file whose writes fail as on a full disk once ``room`` bytes are written (part of the failing
    write lands first, as on a real disk)."""

    def __init__(self, path, mode, room, code):
        self._file = builtins.open(path, mode)
        self._room, self._code = room, code

    def write(self, data):
        if len(data) > self._room:
            self._file.write(bytes(data[:self._room]))
            self._room = 0
            raise OSError(self._code, os.strerror(self._code))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def break_writes(monkeypatch, code, name_part, room=200, after=0):
    """Make writes of files whose name holds ``name_part`` fail with ``code`` (the first ``after`` of them go
    through): ENOSPC and EDQUOT part-way through the data, any other error (EROFS, EACCES) when the file is
    opened. Both writers are covered: the atomic one every command uses, and log.csv's appending one."""
    real_open = builtins.open
    passed = []

    def failing_open(path, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax") and name_part in Path(path).name:
            passed.append(path)
            if len(passed) > after:
                if code in (errno.ENOSPC, errno.EDQUOT):
                    return FullDisk(path, mode, room, code)
                raise OSError(code, os.strerror(code), str(path))
        return real_open(path, mode, *args, **kwargs)

    for module in (files, training_log):
        monkeypatch.setattr(module, "open", failing_open, raising=False)


# --- class 2: full disk, read-only file system, bad paths ---------------------------------------------------

def test_a_checkpoint_write_failing_inside_torch_save_is_one_error_and_keeps_the_last_checkpoint(tmp_path,
                                                                                                monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(1000)})
    break_writes(monkeypatch, errno.ENOSPC, "checkpoint.pt", room=300)
    # torch.save meets the OSError, then fails again closing its zip archive with a RuntimeError of its own.
    with pytest.raises(WriteFailed, match=f"cannot write {path}: no space left on the device"):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(1000)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_ctrl_c_while_writing_leaves_no_temporary(tmp_path):
    def interrupted(handle):
        handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "table.md", interrupted)
    assert list(tmp_path.iterdir()) == []


def _commands(trained, data_root, space, out):
    """Each writer's command line, writing into ``out``, and the name of the file it writes there."""
    data = ["--data-root", str(data_root)]
    return {
        "train checkpoint": (["train", "--dataset", "cora", *data, "--steps", "4", "--checkpoint-every", "2",
                              "--out", str(out), *TINY], "checkpoint.pt"),
        "train log.csv": (["train", "--dataset", "cora", *data, "--steps", "4", "--out", str(out), *TINY],
                          "log.csv"),
        "eval --save-embeddings": (["eval", str(trained), *data, "--save-embeddings", str(out / "emb.pt"),
                                    "--out", str(out / "eval.json")], "emb.pt"),
        "eval --out": (["eval", str(trained), *data, "--out", str(out / "eval.json")], "eval.json"),
        "bench --out": (["bench", "--datasets", "cora", *data, "--seeds", "1", "--steps", "2", "--jobs", "1",
                         "--out", str(out), *TINY], "table.md"),
        "tune --out": (["tune", "--dataset", "cora", *data, "--space", str(space), "--seeds", "1", "--steps", "2",
                        "--jobs", "1", "--out", str(out), *TINY], "trials.md"),
        "plot --out": (["plot", str(trained), "--out", str(out)], "curves.png"),
        "toy --out": (["toy", "--epochs", "3", "--out", str(out), "--quiet"], "spectra.json"),
    }


COMMANDS = ["train checkpoint", "train log.csv", "eval --save-embeddings", "eval --out", "bench --out", "tune --out",
            "plot --out", "toy --out"]
PROBLEMS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
            errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied"}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_writer_reports_a_failed_write_in_one_line_and_leaves_no_temporary(command, code, trained, data_root,
                                                                                 space, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()  # eval writes files into a folder that exists; the others accept an empty one
    argv, name = _commands(trained, data_root, space, out)[command]
    before = fingerprints(trained)
    break_writes(monkeypatch, code, name)
    err = one_line_error(capsys, main(argv))
    assert f"cannot write {out / name}: {PROBLEMS[code]}" in err
    then = {"train": "train again into a new --out", "bench": "run the same command again",
            "tune": "run the same command again"}.get(command.split()[0])
    assert then is None or f"once that is fixed, {then}" in err, err
    assert not temporaries(tmp_path) and not temporaries(trained)
    assert fingerprints(trained) == before  # eval and plot read this run and leave it as it was


@pytest.mark.parametrize("code", [errno.EDQUOT, errno.EACCES])
def test_other_write_errors_are_named_too(code, trained, data_root, tmp_path, monkeypatch, capsys):
    break_writes(monkeypatch, code, "eval.json")
    err = one_line_error(capsys, main(["eval", str(trained), "--data-root", str(data_root),
                                       "--out", str(tmp_path / "eval.json")]))
    assert PROBLEMS[code] in err


def test_a_full_disk_during_training_names_the_resume_command(data_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    break_writes(monkeypatch, errno.ENOSPC, "checkpoint.pt", after=1)  # the checkpoint at step 2 is written
    err = one_line_error(capsys, main(["train", "--dataset", "cora", "--data-root", str(data_root), "--steps", "6",
                                       "--checkpoint-every", "2", "--out", str(out), *TINY]))
    assert f"continue from the last checkpoint with: graphssl train --resume {out}" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2 and not temporaries(out)


@pytest.mark.parametrize("command", ["train checkpoint", "eval --save-embeddings", "eval --out", "bench --out",
                                     "tune --out", "plot --out", "toy --out"])
@pytest.mark.parametrize("bad", ["a file", "under a file", "too long"])
def test_output_paths_that_cannot_be_written_are_one_line(command, bad, trained, data_root, space, tmp_path,
                                                          capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file of the user's")
    out = {"a file": blocker, "under a file": blocker / "out", "too long": tmp_path / TOO_LONG}[bad]
    argv, name = _commands(trained, data_root, space, out)[command]
    if command.startswith("eval") and bad == "a file":  # eval writes files: point the file itself at a folder
        argv = [str(tmp_path) if arg == str(out / name) else arg for arg in argv]
    err = one_line_error(capsys, main(argv))
    expected = {"a file": ("a file of that name is in the way", "already exists and is not empty", "is a file",
                           "that is a folder"),
                "under a file": ("part of that path is a file, not a folder",),
                "too long": ("too long for the file system",)}[bad]
    assert any(text in err for text in expected), err
    assert blocker.read_text() == "a file of the user's" and not temporaries(tmp_path)


def test_a_file_name_near_the_limit_still_gets_a_temporary(tmp_path):
    path = tmp_path / ("e" * 250 + ".pt")  # legal (255 bytes), but too long for ".NAME.tmp-PID"
    atomic_write(path, lambda handle: handle.write(b"data"))
    assert path.read_bytes() == b"data" and list(tmp_path.iterdir()) == [path]


# Real full and read-only file systems, where this process may mount them (root in a container); the injected
# faults above cover the same paths everywhere.

@contextlib.contextmanager
def mounted(folder, *options):
    folder.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    done = subprocess.run(["mount", *options, folder], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def tmpfs(folder, size):
    return mounted(folder, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def test_a_real_full_disk_keeps_the_last_checkpoint_and_the_run_resumes_once_there_is_room(data_root, tmp_path,
                                                                                           capsys):
    args = ["--data-root", str(data_root), "--steps", "6", "--checkpoint-every", "2", *TINY]
    assert main(["train", "--dataset", "cora", "--out", str(tmp_path / "whole"), *args]) == 0
    size = (tmp_path / "whole" / "checkpoint.pt").stat().st_size
    with tmpfs(tmp_path / "disk", f"{(size * 3 // 2) // 1024}k") as disk:  # room for one checkpoint, not two
        run = disk / "run"
        err = one_line_error(capsys, main(["train", "--dataset", "cora", "--out", str(run), *args]))
        assert f"cannot write {run / 'checkpoint.pt'}: no space left on the device" in err
        assert f"graphssl train --resume {run}" in err
        assert load_checkpoint(run / "checkpoint.pt")["step"] == 2 and not temporaries(run)
        subprocess.run(["mount", "-o", f"remount,size={4 * size // 1024}k", disk], check=True)
        assert main(["train", "--resume", str(run), "--data-root", str(data_root), "--quiet"]) == 0
        assert comparable(run) == comparable(tmp_path / "whole")


def test_a_real_full_disk_while_appending_to_log_csv_is_one_line(data_root, tmp_path, capsys):
    with tmpfs(tmp_path / "disk", "64k") as disk:
        run = disk / "run"
        # Every page but the two config.yaml and log.csv take: log.csv fills its page, then the disk is full.
        (disk / "filler").write_bytes(b"\0" * (14 * 4096))
        err = one_line_error(capsys, main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out",
                                           str(run), "--steps", "200", "--checkpoint-every", "0", *TINY]))
        assert f"cannot write {run / 'log.csv'}: no space left on the device" in err
        assert not temporaries(run)


@pytest.mark.parametrize("command", COMMANDS[:1] + COMMANDS[2:])
def test_a_real_read_only_file_system_is_one_line(command, trained, data_root, space, tmp_path, capsys):
    (tmp_path / "source").mkdir()
    with mounted(tmp_path / "ro", "--bind", tmp_path / "source") as ro:
        subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
        # eval writes into a folder that exists (here, read-only); the others create theirs
        argv, _ = _commands(trained, data_root, space, ro if command.startswith("eval") else ro / "out")[command]
        err = one_line_error(capsys, main(argv))
        assert "the file system is read-only" in err
    assert list((tmp_path / "source").iterdir()) == []


# --- class 3: temporaries left by a kill --------------------------------------------------------------------

WRITER = """
import sys, time
from graphssl.files import atomic_write
def write(handle):
    handle.write(b"half a checkpoint")
    handle.flush()
    print("writing", flush=True)
    time.sleep(300)
atomic_write(sys.argv[1], write)
"""


def writer_in_the_middle(path):
    """A process stopped inside atomic_write(path): its temporary exists."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(files.__file__).parents[1])})
    assert child.stdout.readline() == "writing\n"
    return child


def test_temporaries_of_killed_writers_are_removed_and_those_of_live_ones_kept(trained, data_root, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "checkpoint.pt", "log.csv"):  # an unfinished run, resumable
        (run / name).write_bytes((trained / name).read_bytes())
    killed = writer_in_the_middle(run / "checkpoint.pt")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stale = run / f".checkpoint.pt.tmp-{killed.pid}"
    live = writer_in_the_middle(run / "metrics.json")
    try:
        assert stale.read_bytes() == b"half a checkpoint"
        assert main(["train", "--resume", str(run), "--data-root", str(data_root), "--quiet"]) == 0
        assert not stale.exists()
        assert (run / f".metrics.json.tmp-{live.pid}").is_file()  # still being written: left alone
    finally:
        live.kill()
        live.wait()


def test_writing_a_file_again_removes_its_stale_temporary(tmp_path):
    killed = writer_in_the_middle(tmp_path / "embeddings.pt")
    killed.kill()
    killed.wait()
    atomic_write(tmp_path / "embeddings.pt", lambda handle: handle.write(b"whole"))
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.pt"]
    remove_stale_temporaries(tmp_path)  # nothing left to remove, and no error
    assert (tmp_path / "embeddings.pt").read_bytes() == b"whole"


# --- class 8: never overwrite another run's files ----------------------------------------------------------

def test_toy_refuses_a_training_run_folder_and_replaces_nothing(trained, capsys):
    before = fingerprints(trained)
    err = one_line_error(capsys, main(["toy", "--epochs", "3", "--out", str(trained), "--quiet"]))
    assert f"--out {trained} holds checkpoint.pt, config.yaml, log.csv ..., not written by graphssl toy" in err
    assert fingerprints(trained) == before


def test_each_command_refuses_another_commands_folder(trained, data_root, space, tmp_path, capsys):
    toy_run, sweep, bench, tune = (tmp_path / name for name in ("toy", "sweep", "bench", "tune"))
    assert main(["toy", "--epochs", "3", "--out", str(toy_run), "--quiet"]) == 0
    sweep.mkdir()
    (sweep / "README.md").write_text("## Synthetic collapse experiments (3 epochs, seed 0)\n")
    (sweep / "table.md").write_text("| loss | L | k |\n")
    capsys.readouterr()
    bench.mkdir()
    (bench / "results").mkdir()
    (bench / "table.md").write_text("| dataset | method |\n")
    tune.mkdir()
    (tune / "tune.json").write_text("{}\n")
    (tune / "results").mkdir()
    data = ["--data-root", str(data_root)]
    commands = {
        "bench": ["bench", "--datasets", "cora", *data, "--seeds", "1", "--steps", "2", "--jobs", "1", *TINY],
        "tune": ["tune", "--dataset", "cora", *data, "--space", str(space), "--seeds", "1", "--steps", "2",
                 "--jobs", "1", *TINY],
        "toy": ["toy", "--epochs", "3", "--quiet"],
        "toy --sweep": ["toy", "--sweep", "--epochs", "3", "--quiet"],
    }
    theirs = {"bench": [trained, toy_run, sweep, tune], "tune": [trained, toy_run, sweep, bench],
              "toy": [trained, sweep, bench, tune], "toy --sweep": [trained, bench, tune]}
    for command, folders in theirs.items():
        for folder in folders:
            before = fingerprints(folder)
            code = main([*commands[command], "--out", str(folder)])
            assert code == 2, (command, folder)
            err = one_line_error(capsys, code)
            assert f"not written by graphssl {command}" in err, (command, folder, err)
            assert fingerprints(folder) == before, (command, folder)


def test_toy_and_bench_continue_their_own_folders(data_root, tmp_path, capsys):
    toy_run = tmp_path / "toy"
    for _ in range(2):
        assert main(["toy", "--epochs", "3", "--out", str(toy_run), "--quiet"]) == 0
    bench = tmp_path / "bench"
    args = ["bench", "--datasets", "cora", "--data-root", str(data_root), "--seeds", "1", "--steps", "2",
            "--jobs", "1", "--out", str(bench), *TINY]
    assert main(args) == 0
    assert main(["plot", str(bench), "--out", str(bench)]) == 0  # pictures of a bench, drawn into it
    assert main(["plot", str(bench)]) == 0  # and into bench/plots/, plot's default for one folder
    assert main(args) == 0
    assert (bench / "werank_sweep.png").is_file() and (bench / "plots" / "werank_sweep.csv").is_file()
    (bench / "plots" / "notes.txt").write_text("someone else's")  # plots/ holding more than plot's is not bench's
    capsys.readouterr()
    assert "holds plots, not written by graphssl bench" in one_line_error(capsys, main(args))


def test_plot_into_a_run_folder_adds_pictures_and_changes_nothing_there(trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for path in trained.iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    before = fingerprints(run)
    assert main(["plot", str(trained), "--out", str(run)]) == 0
    after = fingerprints(run)
    assert {name: after[name] for name in before} == before
    assert all(name.endswith(".png") for name in set(after) - set(before))


@pytest.mark.parametrize("flag, name", [("--save-embeddings", "checkpoint.pt"), ("--out", "metrics.json"),
                                        ("--out", "config.yaml")])
def test_eval_never_writes_over_a_runs_own_files(flag, name, trained, data_root, capsys):
    before = fingerprints(trained)
    err = one_line_error(capsys, main(["eval", str(trained), "--data-root", str(data_root),
                                       flag, str(trained / name)]))
    assert f"{name} is a training run's own file and is never replaced" in err
    assert fingerprints(trained) == before


def test_claim_folder_takes_new_empty_and_own_folders_only(tmp_path):
    assert claim_folder(tmp_path / "new" / "deeper", "toy", lambda entry: False).is_dir()
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "spectra.json").write_text("{}")
    (tmp_path / "own" / ".spectra.json.tmp-1").write_text("a live writer's")  # temporaries are no one's files
    assert claim_folder(tmp_path / "own", "toy", lambda entry: entry.name == "spectra.json") == tmp_path / "own"
    with pytest.raises(GraphSSLError, match="holds spectra.json, not written by graphssl bench"):
        claim_folder(tmp_path / "own", "bench", lambda entry: False)


def test_names_without_a_process_id_are_no_temporaries_of_ours(tmp_path):
    for name in (".x.tmp-0", f".x.tmp-{2 ** 40}", ".x.tmp-abc", "x.tmp-123"):
        (tmp_path / name).write_text("not written by atomic_write")
    remove_stale_temporaries(tmp_path)
    assert len(list(tmp_path.iterdir())) == 4


@pytest.mark.parametrize("name, content", [("table.md", "| a bench table |\n"), ("best.yaml", "optim: {lr: 0.1}\n"),
                                           ("results.json", '{"metrics": {"test_acc": 0.8}}'), (".lock", "123\n")])
def test_eval_never_replaces_another_commands_file(name, content, trained, data_root, tmp_path, capsys):
    other = tmp_path / name  # what bench, tune or a running train left there
    other.write_text(content)
    for flag in ("--out", "--save-embeddings"):
        err = one_line_error(capsys, main(["eval", str(trained), "--data-root", str(data_root), flag, str(other)]))
        assert str(other) in err
        assert other.read_text() == content


def test_eval_replaces_its_own_earlier_output(trained, data_root, tmp_path, capsys):
    out, saved = tmp_path / "again.json", tmp_path / "embeddings.pt"
    for _ in range(2):  # the second time both files exist, written by eval
        assert main(["eval", str(trained), "--data-root", str(data_root), "--out", str(out),
                     "--save-embeddings", str(saved)]) == 0
    assert json.loads(out.read_text())["test_acc"] >= 0


def test_eval_into_a_read_only_folder_says_so_before_probing(trained, data_root, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; test_a_real_read_only_file_system_is_one_line covers it")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        err = one_line_error(capsys, main(["eval", str(trained), "--data-root", str(data_root), "--out",
                                           str(folder / "eval.json")]))
        assert "permission denied" in err
    finally:
        folder.chmod(0o755)


def test_eval_of_weights_that_give_nan_embeddings_exits_3(trained, data_root, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "metrics.json", "spectra.json", "log.csv"):
        (run / name).write_bytes((trained / name).read_bytes())
    state = load_checkpoint(trained / "checkpoint.pt")
    first = next(k for k in state["model"] if k.endswith("weight") and state["model"][k].dim() == 2)
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))
    torch.save(state, run / "checkpoint.pt")
    err = one_line_error(capsys, main(["eval", str(run), "--data-root", str(data_root)]), expected_code=3)
    assert "NaN or infinite embeddings" in err
