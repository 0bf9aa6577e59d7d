"""ogbn-arxiv through ogb's real code path, on a miniature graph written in ogb's exact on-disk layout."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from graphssl.cli import main
from graphssl.data import load_graph
from graphssl.errors import GraphSSLError
from helpers import run, write_code

NODES, EDGES, FEATURES, CLASSES = 240, 900, 128, 40


def write_mini_arxiv(root, release_marker=True):
    """raw/*.csv.gz, split/time/*.csv.gz and RELEASE_v1.txt under root/ogbn_arxiv, as in ogb's arxiv.zip."""
    rng = np.random.default_rng(0)
    folder = root / "ogbn_arxiv"
    (folder / "raw").mkdir(parents=True)
    (folder / "split" / "time").mkdir(parents=True)
    labels = rng.integers(0, CLASSES, NODES)
    centers = rng.normal(size=(CLASSES, FEATURES))
    features = centers[labels] + rng.normal(size=(NODES, FEATURES))
    # Directed citations, mostly within a class, as arxiv stores them (one direction only).
    src = rng.integers(0, NODES, EDGES)
    same = np.array([rng.choice(np.flatnonzero(labels == labels[s])) for s in src])
    dst = np.where(rng.random(EDGES) < 0.8, same, rng.integers(0, NODES, EDGES))
    keep = src != dst
    edges = np.stack([src[keep], dst[keep]], axis=1)

    def write(path, array):
        pd.DataFrame(array).to_csv(path, index=False, header=False, compression="gzip")

    write(folder / "raw" / "edge.csv.gz", edges)
    write(folder / "raw" / "node-feat.csv.gz", features.astype(np.float32))
    write(folder / "raw" / "node-label.csv.gz", labels.reshape(-1, 1))
    write(folder / "raw" / "node_year.csv.gz", rng.integers(1990, 2021, (NODES, 1)))
    write(folder / "raw" / "num-node-list.csv.gz", np.array([[NODES]]))
    write(folder / "raw" / "num-edge-list.csv.gz", np.array([[len(edges)]]))
    order = rng.permutation(NODES)
    for name, part in (("train", order[:140]), ("valid", order[140:190]), ("test", order[190:])):
        write(folder / "split" / "time" / f"{name}.csv.gz", part.reshape(-1, 1))
    if release_marker:
        (folder / "RELEASE_v1.txt").write_text("ogbn-arxiv v1\n")
    return edges, labels, order


@pytest.fixture
def arxiv_root(tmp_path):
    root = tmp_path / "data"
    write_mini_arxiv(root)
    return root


def test_loading_undirects_and_keeps_the_official_split(arxiv_root):
    graph = load_graph("ogbn-arxiv", arxiv_root)
    edges, labels, order = write_mini_arxiv(arxiv_root.parent / "again")
    assert graph.num_nodes == NODES and graph.num_features == FEATURES and graph.num_classes == CLASSES
    assert torch.equal(graph.y, torch.from_numpy(labels))
    pairs = set(map(tuple, graph.edge_index.t().tolist()))
    assert all((a, b) in pairs and (b, a) in pairs for a, b in edges.tolist())
    assert torch.equal(graph.split["train"], torch.from_numpy(order[:140]))
    assert torch.equal(graph.split["test"], torch.from_numpy(order[190:]))
    # Accuracy comes from ogb's Evaluator: it checks shapes, so a wrong call would raise.
    assert graph.accuracy(graph.y, graph.y) == 1.0
    assert graph.accuracy(graph.y, (graph.y + 1) % CLASSES) == 0.0
    # The processed file ogb wrote is read back through the allow-listed torch.load.
    assert torch.equal(load_graph("ogbn-arxiv", arxiv_root).edge_index, graph.edge_index)


@pytest.mark.parametrize("name", ["geometric_data_processed.pt", "pre_transform.pt"])
def test_a_processed_file_carrying_code_is_never_run_and_is_rebuilt(arxiv_root, tmp_path, monkeypatch, capsys, name):
    expected = load_graph("ogbn-arxiv", arxiv_root)
    marker = tmp_path / "code-ran"
    write_code(arxiv_root / "ogbn_arxiv" / "processed" / name, marker)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # a user's opt-out of torch's own protection
    graph = load_graph("ogbn-arxiv", arxiv_root)
    assert not marker.exists()
    assert torch.equal(graph.edge_index, expected.edge_index) and torch.equal(graph.y, expected.y)
    assert "rebuilding it from" in capsys.readouterr().err


def test_missing_release_marker_never_waits_on_stdin(tmp_path, env):
    root = tmp_path / "data"
    write_mini_arxiv(root, release_marker=False)
    code = ("from graphssl.data import load_graph; g = load_graph('ogbn-arxiv', %r); print(g.num_nodes)" % str(root))
    proc = run([sys.executable, "-c", code], env, timeout=120)  # no terminal: a prompt would fail, not wait
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(str(NODES))


def test_missing_dataset_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHSSL_OFFLINE", "1")
    with pytest.raises(GraphSSLError) as err:
        load_graph("ogbn-arxiv", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "ogbn_arxiv") in message and "edge.csv.gz" in message and "RELEASE_v1.txt" in message
    assert "\n" not in message


def test_full_batch_and_mini_batch_training_write_metrics(arxiv_root, tmp_path, capsys):
    small = ["--config", "configs/ogbn-arxiv.yaml", "--data-root", str(arxiv_root), "--steps", "3", "--quiet",
             "--set", "encoder.layers=[32,32,32]", "--set", "predictor.hidden=32", "--werank", "0.1"]
    assert main(["train", "--dataset", "ogbn-arxiv", "--out", str(tmp_path / "full"), *small]) == 0
    assert main(["train", "--dataset", "ogbn-arxiv", "--out", str(tmp_path / "mini"), "--batch-size", "64",
                 "--num-neighbors", "5", "5", "5", *small]) == 0
    for name in ("full", "mini"):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["dataset"] == "ogbn-arxiv" and metrics["steps"] == 3
        assert 0 <= metrics["test_acc"] <= 1 and metrics["peak_rss_mb"] > 0 and metrics["rank"] >= 1
    assert main(["train", "--dataset", "ogbn-arxiv", "--out", str(tmp_path / "bad"), "--batch-size", "64",
                 "--num-neighbors", "5", "5", *small]) == 2
    assert "'train.num_neighbors' has 2 entries but the encoder has 3 layers" in capsys.readouterr().err
