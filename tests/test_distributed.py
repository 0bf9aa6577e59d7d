"""Two-process training on torch.distributed (gloo), as torchrun starts it."""

import json
import subprocess
import time

import pytest
import torch
from torch.distributed import TCPStore

from graphssl.cli import main
from helpers import comparable, graphssl_command, kill_tree, log_without_timings, run, start, torchrun_command

ARGS = ["train", "--dataset", "cora", "--batch-size", "256", "--num-neighbors", "5", "5", "--steps", "6",
        "--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--werank", "0.1", "--quiet",
        "--distributed"]


@pytest.mark.slow
def test_torchrun_two_processes_write_one_run_with_equal_weights(tmp_path, env):
    out = tmp_path / "ddp"
    proc = run(torchrun_command(*ARGS, "--out", out, "--set", "train.log_every=1"), {**env, "GRAPHSSL_DIST_TIMEOUT": "60"},
               timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("test acc") == 1  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distributed"] == {"world_size": 2, "global_batch_size": 512,
                                      "parameters_equal_across_ranks": True}
    assert metrics["steps"] == 6 and 0 <= metrics["test_acc"] <= 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "log.csv", "metrics.json",
                                                     "spectra.json"]
    lines = (out / "log.csv").read_text().splitlines()  # written by rank 0 alone: one header, one row per step
    assert lines[0].startswith("step,") and [line.split(",")[0] for line in lines[1:]] == [str(s) for s in range(7)]


@pytest.mark.slow
def test_torchrun_trains_a_two_view_method_with_equal_weights_and_an_expander(tmp_path, env):
    """VICReg: both views in one backward pass through DDP, an expander with batch norm, statistics per rank."""
    out = tmp_path / "ddp"
    args = [*ARGS, "--method", "vicreg", "--set", "vicreg.expander_layers=[32,32]", "--set", "werank.scope=encoder+head"]
    proc = run(torchrun_command(*args, "--out", out), {**env, "GRAPHSSL_DIST_TIMEOUT": "60"}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "vicreg" and metrics["final_werank"] > 0
    assert metrics["distributed"] == {"world_size": 2, "global_batch_size": 512,
                                      "parameters_equal_across_ranks": True}
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert len(state["rng"]) == 2 and "objective.head.0.weight" in state["model"]


@pytest.mark.slow
def test_torchrun_ranks_move_the_adaptive_werank_coefficient_alike(tmp_path, env):
    """Rank 0 measures RankMe and broadcasts it: ranks whose coefficients differed would add different WERank
    gradients after DDP's averaging, and their weights would part."""
    out = tmp_path / "ddp"
    args = [*ARGS, "--set", "werank.schedule=adaptive", "--set", "werank.target_fraction=1.0",
            "--set", "werank.adapt_factor=1.5", "--set", "train.spectra_every=2"]
    proc = run(torchrun_command(*args, "--out", out), {**env, "GRAPHSSL_DIST_TIMEOUT": "60"}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_werank_alpha"] == pytest.approx(0.1 * 1.5 ** 2)  # moved after steps 2 and 4 of 6
    assert metrics["distributed"]["parameters_equal_across_ranks"] is True


@pytest.mark.slow
def test_a_killed_torchrun_job_resumes_under_torchrun_to_the_same_weights(tmp_path, env, capsys):
    env = {**env, "GRAPHSSL_DIST_TIMEOUT": "60"}
    steps = [*ARGS[:ARGS.index("--steps")], "--steps", "100", *ARGS[ARGS.index("--steps") + 2:],
             "--checkpoint-every", "5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = run(torchrun_command(*steps, "--out", full), env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]

    job = start(torchrun_command(*steps, "--out", killed), env)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert kill_tree(job), "the job finished before it could be killed"  # torchrun and both of its ranks
    job.wait()
    assert not (killed / "metrics.json").exists(), "the job finished before it could be killed"
    assert 5 <= torch.load(killed / "checkpoint.pt", weights_only=True)["step"] < 100

    assert main(["train", "--resume", str(killed), "--quiet"]) == 2
    assert f"torchrun --nproc_per_node 2 -m graphssl train --resume {killed} --distributed" in capsys.readouterr().err
    proc = run(torchrun_command("train", "--resume", killed, "--quiet", "--distributed"), env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(full / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 100 and len(b["rng"]) == 2
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert comparable(full) == comparable(killed)
    assert comparable(killed)["distributed"]["parameters_equal_across_ranks"]
    assert log_without_timings(full) == log_without_timings(killed)


@pytest.mark.slow
def test_a_failing_rank_ends_the_whole_job_with_a_clear_message(tmp_path, env):
    # The ranks meet at a store this test holds, on a port the OS picked for it, as torchrun's agent does.
    store = TCPStore("127.0.0.1", 0, world_size=2, is_master=True, wait_for_workers=False)
    common = {**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(store.port), "WORLD_SIZE": "2",
              "TORCHELASTIC_USE_AGENT_STORE": "True", "GRAPHSSL_DIST_TIMEOUT": "30"}
    out = tmp_path / "ddp"
    rank0 = start(graphssl_command(*ARGS, "--out", out), {**common, "RANK": "0", "LOCAL_RANK": "0"},
                  output=subprocess.PIPE)
    try:
        # Rank 1 cannot find its data and fails after joining the job.
        rank1 = run(graphssl_command(*ARGS, "--out", out, "--data-root", tmp_path / "missing"),
                    {**common, "RANK": "1", "LOCAL_RANK": "1"}, timeout=120)
        _, err0 = rank0.communicate(timeout=120)
    finally:
        rank0.kill()  # only when a timeout above left it running
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
