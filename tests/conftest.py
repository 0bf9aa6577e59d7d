"""Shared fixtures: a private copy of the real Cora files, never written in ../shared."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRAPHSSL_SHARED", REPO.parent / "shared"))

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of ../shared/datasets (the real Planetoid Cora raw files)."""
    source = SHARED / "datasets"
    if not (source / "Planetoid" / "Cora" / "raw").is_dir():
        pytest.skip(f"real Cora files not found under {source}")
    root = tmp_path_factory.mktemp("datasets")
    shutil.copytree(source, root, dirs_exist_ok=True)
    return root


@pytest.fixture
def fresh_data_root(tmp_path: Path) -> Path:
    """A copy of the real Cora raw files of this test's own, never processed yet."""
    source = SHARED / "datasets"
    if not (source / "Planetoid" / "Cora" / "raw").is_dir():
        pytest.skip(f"real Cora files not found under {source}")
    root = tmp_path / "datasets"
    shutil.copytree(source, root)
    return root


@pytest.fixture(scope="session")
def cora(data_root: Path):
    from graphssl.data import load_graph

    return load_graph("cora", data_root)


@pytest.fixture
def env(data_root: Path) -> dict[str, str]:
    """Environment for a `graphssl` subprocess: offline, data copy, no progress-bar noise."""
    return {**os.environ, "GRAPHSSL_DATA": str(data_root), "GRAPHSSL_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
