"""A plain (non-editable) install finds graphssl's configs: built as a wheel, installed into a fresh venv."""

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from helpers import run
from test_ogb_arxiv import write_mini_arxiv

REPO = Path(__file__).resolve().parents[1]


def succeed(command, env=None, cwd=None):
    proc = run(list(map(str, command)), env or os.environ, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(map(str, command))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.mark.slow
def test_a_wheel_ships_the_configs_and_train_uses_the_arxiv_one(tmp_path, env):
    # Build from a copy, so that nothing is written into the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source)
    for name in ("graphssl", "configs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    succeed([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-q", "-w", wheels])
    (wheel,) = wheels.glob("graphssl_werank-*.whl")

    # A fresh venv holding only the wheel; its dependencies (torch, ...) are seen through a .pth line.
    venv = tmp_path / "venv"
    succeed([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    succeed([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    site = Path(succeed([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = succeed([python, "-c", "import graphssl.config as c; print(c.config_for_dataset('ogbn-arxiv'))"],
                cwd=tmp_path).strip()
    assert Path(where) == site / "graphssl" / "configs" / "ogbn-arxiv.yaml"
    assert (site / "graphssl" / "configs" / "spaces" / "cora-base.yaml").is_file()

    data = tmp_path / "data"
    write_mini_arxiv(data)
    succeed([venv / "bin" / "graphssl", "train", "--dataset", "ogbn-arxiv", "--data-root", data, "--steps", "1",
         "--set", "encoder.layers=[16,16,16]", "--set", "predictor.hidden=16", "--quiet", "--out", tmp_path / "run"],
        cwd=tmp_path, env=env)
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    arxiv = yaml.safe_load((REPO / "configs" / "ogbn-arxiv.yaml").read_text())
    assert config["encoder"]["norm"] == arxiv["encoder"]["norm"] == "layer"
    assert config["augment"] == arxiv["augment"] and config["optim"]["lr"] == arxiv["optim"]["lr"]
