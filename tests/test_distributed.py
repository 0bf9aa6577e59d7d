"""Two-process training on torch.distributed (gloo), as torchrun starts it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from graphssl.cli import main
from run_files import comparable

ARGS = ["train", "--dataset", "cora", "--batch-size", "256", "--num-neighbors", "5", "5", "--steps", "6",
        "--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--werank", "0.1", "--quiet",
        "--distributed"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(*args):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    return [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
            "-m", "graphssl", *args]


def test_torchrun_two_processes_write_one_run_with_equal_weights(tmp_path, env):
    out = tmp_path / "ddp"
    proc = subprocess.run(torchrun_command(*ARGS, "--out", str(out)),
                          env={**env, "GRAPHSSL_DIST_TIMEOUT": "60"}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("test acc") == 1  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distributed"] == {"world_size": 2, "global_batch_size": 512,
                                      "parameters_equal_across_ranks": True}
    assert metrics["steps"] == 6 and 0 <= metrics["test_acc"] <= 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "metrics.json", "spectra.json"]


def kill_processes_naming(text):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass


def test_a_killed_torchrun_job_resumes_under_torchrun_to_the_same_weights(tmp_path, env, capsys):
    env = {**env, "GRAPHSSL_DIST_TIMEOUT": "60"}
    steps = [*ARGS[:ARGS.index("--steps")], "--steps", "100", *ARGS[ARGS.index("--steps") + 2:], "--checkpoint-every", "5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = subprocess.run(torchrun_command(*steps, "--out", str(full)), env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]

    job = subprocess.Popen(torchrun_command(*steps, "--out", str(killed)), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    kill_processes_naming(str(killed))  # torchrun and both ranks (torchrun starts them in sessions of their own)
    job.wait()
    assert not (killed / "metrics.json").exists(), "the job finished before it could be killed"
    assert 5 <= torch.load(killed / "checkpoint.pt", weights_only=True)["step"] < 100

    assert main(["train", "--resume", str(killed), "--quiet"]) == 2
    assert f"torchrun --nproc_per_node 2 -m graphssl train --resume {killed} --distributed" in capsys.readouterr().err
    proc = subprocess.run(torchrun_command("train", "--resume", str(killed), "--quiet", "--distributed"), env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(full / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 100 and len(b["rng"]) == 2
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert comparable(full) == comparable(killed)
    assert comparable(killed)["distributed"]["parameters_equal_across_ranks"]


def test_a_failing_rank_ends_the_whole_job_with_a_clear_message(tmp_path, env):
    common = {**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
              "GRAPHSSL_DIST_TIMEOUT": "30"}
    out = tmp_path / "ddp"
    rank0 = subprocess.Popen([sys.executable, "-m", "graphssl", *ARGS, "--out", str(out)],
                             env={**common, "RANK": "0", "LOCAL_RANK": "0"}, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Rank 1 cannot find its data and fails after joining the job.
    rank1 = subprocess.run([sys.executable, "-m", "graphssl", *ARGS, "--out", str(out),
                            "--data-root", str(tmp_path / "missing")],
                           env={**common, "RANK": "1", "LOCAL_RANK": "1"}, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
    _, err0 = rank0.communicate(timeout=120)
    assert rank1.returncode == 2 and "dataset 'cora' not found" in rank1.stderr
    assert rank0.returncode == 1
    assert err0.strip().splitlines()[-1].startswith("graphssl: error: rank 0: the job lost a process")
    assert "Traceback" not in err0
    assert not (out / "metrics.json").exists()


def test_distributed_needs_torchrun_and_mini_batches(capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "--dataset", "cora", "--batch-size", "64", "--distributed"]) == 2
    assert "needs the environment torchrun sets" in capsys.readouterr().err
    assert main(["train", "--dataset", "cora", "--distributed"]) == 2
    assert "give --batch-size" in capsys.readouterr().err
