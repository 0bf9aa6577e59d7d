"""`graphssl train` as a user runs it: end to end on the real Cora files, and every bad input."""

import json
import sys

import pytest
import torch
import yaml

import graphssl
from graphssl.cli import main
from graphssl.errors import GraphSSLError
from helpers import graphssl_command, run

TINY = ["--steps", "3", "--set", "encoder.layers=[32,16]", "--set", "predictor.hidden=32", "--quiet"]


def test_train_end_to_end_writes_the_run_folder(tmp_path, env):
    out = tmp_path / "run"
    proc = run(graphssl_command("train", "--dataset", "cora", "--werank", "0.1", "--out", out, *TINY), env)
    assert proc.returncode == 0, proc.stderr
    assert "test acc" in proc.stdout and "rank" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("dataset", "seed", "steps", "werank", "test_acc", "val_acc", "rank", "rankme", "train_seconds"):
        assert key in metrics
    assert metrics["dataset"] == "cora" and metrics["steps"] == 3 and metrics["werank"] == 0.1
    assert 0 <= metrics["test_acc"] <= 1 and 0 <= metrics["val_acc"] <= 1
    assert 1 <= metrics["rank"] <= 16 and metrics["embedding_dim"] == 16
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["werank"]["alpha"] == 0.1 and config["encoder"]["layers"] == [32, 16]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and "online_encoder.convs.0.lin.weight" in state["model"]
    spectra = json.loads((out / "spectra.json").read_text())["final"]
    assert len(spectra["weights"]) == 2 and len(spectra["embedding_singular_values"]) == 16


def test_train_defaults_to_a_new_folder_under_runs(tmp_path, env):
    proc = run(graphssl_command("train", "--dataset", "cora", *TINY, "--werank", "0"), env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("cora-werank0-seed0-") and (run_dir / "metrics.json").is_file()


def test_bad_input_in_a_subprocess_is_one_line_and_exit_2(tmp_path, env):
    proc = run(graphssl_command("train", "--dataset", "coraa", "--out", tmp_path / "x"), env)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "unknown dataset 'coraa'" in proc.stderr and "cora, citeseer, pubmed" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--dataset", "cora", "--set", "optim.lrr=0.1"], "unknown config key 'optim.lrr'"),
    (["--dataset", "cora", "--set", "optim.learning_rate=0.1"], "did you mean 'optim.lr'?"),
    (["--dataset", "cora", "--werank", "-0.1"], "'werank.alpha' is -0.1"),
    (["--dataset", "cora", "--werank", "0.1", "0.1", "0.1"], "3 coefficients but the encoder has 2 layers"),
    (["--dataset", "cora", "--steps", "0"], "'optim.steps' is 0"),
    (["--dataset", "cora", "--steps", "ten"], "invalid int value: 'ten'"),
    (["--dataset", "cora", "--device", "tpu:7"], "--device tpu:7"),
    (["--datset", "cora"], "unrecognized arguments: --datset"),
    (["--dataset", "cora", "--method", "simclr"], "config key 'method' is 'simclr'; it must be one of bgrl, grace"),
])
def test_bad_train_input_exits_2_with_one_line(args, message, capsys, tmp_path):
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("graphssl: error: ")
    assert not (tmp_path / "run").exists()


def test_malformed_yaml_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: 0.1\n")
    assert main(["train", "--dataset", "cora", "--config", str(bad)]) == 2
    assert "malformed YAML" in capsys.readouterr().err


def test_missing_data_offline_names_the_files_and_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRAPHSSL_OFFLINE", "1")
    assert main(["train", "--dataset", "citeseer", "--data-root", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "ind.citeseer.x" in err and str(tmp_path / "empty" / "Planetoid" / "CiteSeer" / "raw") in err
    assert err.count("\n") == 1


def test_an_existing_run_folder_is_never_overwritten(tmp_path, capsys, data_root):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("precious")
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), *TINY]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "precious"


def test_no_command_is_named_once_and_version_prints_the_version(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err == ("graphssl: error: the following arguments are required: COMMAND "
                                       "(see 'graphssl --help')\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"graphssl {graphssl.__version__}\n"


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--dataset", "--config", "--set", "--method", "--werank", "--steps", "--seed", "--device", "--data-root",
                 "--out"):
        assert flag in out
    assert "(--dataset DATASET | --resume RUN_DIR)" in out  # the usage line: one of the two is required
    assert "(required unless --resume)" in " ".join(out.split())
    assert main(["train", "--quiet"]) == 2
    assert "--dataset is required (or --resume RUN_DIR)" in capsys.readouterr().err
    assert main(["train", "--dataset", "cora", "--resume", "runs/x"]) == 2
    assert "--resume continues a run with its own settings; drop --dataset" in capsys.readouterr().err
    assert main(["train", "--resume", "runs/x", "--method", "grace"]) == 2
    assert "--resume continues a run with its own settings; drop --method" in capsys.readouterr().err


def test_import_leaves_the_environment_alone_and_the_command_sets_huge_pages_before_torch(env):
    code = ("import os, sys\n"
            "import graphssl, graphssl.cli\n"
            "assert 'THP_MEM_ALLOC_ENABLE' not in os.environ, 'import graphssl changed the environment'\n"
            "assert 'torch' not in sys.modules, 'the command would set the variable after torch is loaded'\n"
            "graphssl.cli.main(['train', '--dataset', 'nope'])\n"
            "print(os.environ['THP_MEM_ALLOC_ENABLE'])\n")
    clean = {k: v for k, v in env.items() if k != "THP_MEM_ALLOC_ENABLE"}
    proc = run([sys.executable, "-c", code], clean)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
    proc = run([sys.executable, "-c", code.replace("assert 'THP", "# assert 'THP")],
               {**clean, "THP_MEM_ALLOC_ENABLE": "0"})
    assert proc.stdout.strip() == "0"  # the user's own choice stays


def test_help_and_bad_flags_answer_before_torch_is_loaded(env, tmp_path):
    """Loading torch and torch_geometric takes seconds: --help and a typo's one-line error do not wait for it."""
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001]\n")
    bad_space = tmp_path / "bad.yaml"
    bad_space.write_text("optim.lrr: [0.001]\n")
    code = ("import contextlib, sys\n"
            "from graphssl.cli import main\n"
            "with contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "for argv in (['train', '--dataset', 'nope'], ['train', '--dataset', 'cora', '--werank', '-1'],\n"
            "             ['train', '--dataset', 'cora', '--set', 'optim.lr=x'], ['toy', '--loss', 'nope'],\n"
            f"             ['tune', '--dataset', 'nope', '--space', {str(space)!r}],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(bad_space)!r}],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(space)!r}, '--set', 'optim.lr=0.1'],\n"
            "             ['bench', '--datasets', 'cora', 'nope'], ['bench', '--config', '/dev/zero'],\n"
            f"             ['bench', '--config', {str(bad_space)!r}], ['bench', '--methods', 'nope'],\n"
            "             ['bench', '--set', 'optim.lr=0.1,x'], ['bench', '--set', 'encoder.nope=1,2'],\n"
            "             ['bench', '--set', 'optim.steps=0'], ['bench', '--jobs', '0'],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(space)!r}, '--jobs', '0'],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(space)!r}, '--trials', '0'],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(space)!r}, '--set', 'train.tensorboard=true'],\n"
            "             ['train', '--dataset', 'cora', '--device', 'meta'], ['bench', '--device', 'tpu:7'],\n"
            f"             ['tune', '--dataset', 'cora', '--space', {str(space)!r}, '--device', 'cuda:01'],\n"
            "             ['eval', 'typo'], ['eval', '.'], ['train', '--resume', 'typo'], ['train', '--resume', 'space.yaml']):\n"
            "    assert main(argv) == 2, argv\n"
            "assert 'torch' not in sys.modules\n")
    proc = run([sys.executable, "-c", code], env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage: graphssl" in proc.stdout and proc.stderr.count("graphssl: error:") == 25, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "space.yaml"]  # nothing written


def test_bench_judges_a_config_files_values_only_with_its_own_settings_applied(tmp_path, monkeypatch):
    # 'optim.steps: 0' alone is refused, but bench's --steps sets every run's, so the early check applies it first.
    config = tmp_path / "config.yaml"
    config.write_text("optim:\n  steps: 0\n")
    asked = {}

    def stub_run_bench(datasets, out, **settings):
        asked.update(settings)
        raise GraphSSLError("stopped before training")

    monkeypatch.setattr("graphssl.bench.run_bench", stub_run_bench)
    assert main(["bench", "--config", str(config), "--steps", "5", "--out", str(tmp_path / "b")]) == 2
    assert asked["config"] == str(config) and asked["steps"] == 5
    config.write_text("optim:\n  stepz: 5\n")
    asked.clear()
    assert main(["bench", "--config", str(config), "--steps", "5", "--out", str(tmp_path / "b")]) == 2
    assert not asked  # an unknown key is refused before run_bench (the subprocess test: before torch loads)
    config.write_text("optim:\n  steps: 0\n")
    assert main(["bench", "--config", str(config), "--out", str(tmp_path / "b")]) == 2
    assert not asked  # and so is a bad value that no flag of bench replaces


def test_requests_that_would_exhaust_the_machine_are_one_line(tmp_path, capsys):
    for argv in (["bench", "--datasets", "cora", "--seeds", "1000000000", "--out", str(tmp_path / "b")],
                 ["tune", "--dataset", "cora", "--space", str(tmp_path / "space.yaml"), "--trials", "1000000000",
                  "--out", str(tmp_path / "t")],
                 ["train", "--dataset", "cora", "--config", "/dev/zero", "--out", str(tmp_path / "r")]):
        (tmp_path / "space.yaml").write_text("optim.lr: [0.001, 0.002]\n")
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not any((tmp_path / name).exists() for name in "btr")


def test_a_line_break_in_a_flag_is_shown_escaped_so_the_error_stays_one_line(tmp_path, capsys):
    for argv in (["train", "--dataset", "co\nra"], ["train", "--dataset", "cora", "--config", "no\nsuch.yaml"],
                 ["eval", str(tmp_path / "x\ny")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "\\n" in err, err


def test_a_quoted_library_error_is_cut_at_a_sentence_or_word_never_mid_word():
    from graphssl.errors import first_line

    miniz = RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory. This is "
                         "an internal miniz error. If you are seeing this error, there is a high chance ...")
    assert first_line(miniz, 100) == "PytorchStreamReader failed reading zip archive: failed finding central directory."
    assert first_line(RuntimeError("word " * 50), 30) == "word word word word word word…"


def test_the_summary_splits_training_time_into_steps_and_measuring():
    from graphssl.cli import summary

    metrics = {"dataset": "cora", "method": "grace", "werank": 0.0, "seed": 0, "steps": 5, "test_acc": 0.7,
               "val_acc": 0.68, "probe_c": 1.0, "rank": 128, "embedding_dim": 128, "rankme": 90.0,
               "mean_pair_cosine": 0.1, "train_seconds": 43.4, "ms_per_step": 2650.7}
    assert "trained in 43.4 s: 2650.7 ms per step, plus 30.1 s outside the steps (spectra, probes, logs, " \
           "checkpoints)  ->  runs/x" in summary(metrics, "runs/x")
