"""`graphssl eval --embeddings` on whatever a user may hand it (issue 12, class 7): one-line errors for what cannot
be evaluated, correct numbers for what can, and the metrics as JSON."""

import json
import math

import numpy as np
import pytest
import torch

from graphssl.cli import main
from graphssl.encoders import gcn_adjacency
from graphssl.linear_eval import read_embeddings

NODES = 2708  # Cora


@pytest.fixture(scope="module")
def projected(cora):
    """Embeddings from a "model" that projects Cora's raw features and averages them over two hops of the graph
    (an untrained GCN): the probe scores them far above chance."""
    adj = gcn_adjacency(cora.edge_index, cora.num_nodes)
    return adj @ (adj @ (cora.x.to_dense() @ torch.randn(1433, 32, generator=torch.Generator().manual_seed(0))))


def evaluate(path, data_root, capsys, *extra):
    code = main(["eval", "--embeddings", str(path), "--dataset", "cora", "--data-root", str(data_root), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path, content):
    if path.suffix == ".npy":
        np.save(path, content)
    else:
        torch.save(content, path)
    return path


BAD = {
    "empty .pt": ("e.pt", None, "the file is empty (0 bytes)"),
    "empty .npy": ("e.npy", None, "the file is empty (0 bytes)"),
    "not a tensor file": ("junk.pt", b"these bytes are no torch.save archive", "not a file torch.save wrote"),
    "a truncated tensor file": ("cut.pt", b"PK\x03\x04 and then nothing", "cannot be loaded safely"),
    "not an .npy file": ("junk.npy", b"these bytes are no numpy.save file", "not a readable .npy array"),
    "a number, not a tensor": ("n.pt", 3.5, "holds a value of type float, not one tensor"),
    "a list of tensors": ("l.pt", [torch.ones(NODES, 4)], "holds a value of type list, not one tensor"),
    "two tensors in a dict": ("d.pt", {"a": torch.ones(NODES, 4), "b": torch.ones(NODES, 4)}, "not one tensor"),
    "1-D": ("v.pt", torch.ones(NODES), "expected a 2-D matrix"),
    "3-D": ("c.npy", np.ones((NODES, 4, 2), dtype=np.float32), "expected a 2-D matrix"),
    "no columns": ("z.pt", torch.ones(NODES, 0), "at least one column, got shape (2708, 0)"),
    "wrong row count": ("r.npy", np.ones((100, 4), dtype=np.float32), "100 rows but cora has 2708 nodes"),
    "NaN": ("nan.pt", torch.ones(NODES, 4).index_put_((torch.tensor([7]), torch.tensor([1])), torch.tensor(math.nan)),
            "1 NaN or infinite value(s), the first in row 7"),
    "infinity": ("inf.npy", np.full((NODES, 4), np.inf, dtype=np.float64), "10832 NaN or infinite value(s)"),
    "strings": ("s.npy", np.array([["a"] * 4] * NODES), "holds <U1 values; expected floats or integers"),
    "booleans": ("b.pt", torch.ones(NODES, 4, dtype=torch.bool), "holds torch.bool values"),
    "complex numbers": ("x.pt", torch.ones(NODES, 4, dtype=torch.complex64), "holds torch.complex64 values"),
    "another suffix": ("e.csv", b"1,2\n", "expected a .pt or .npy file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_what_cannot_be_evaluated_is_one_line_naming_the_problem(case, tmp_path, data_root, capsys):
    name, content, message = BAD[case]
    path = tmp_path / name
    if content is None or isinstance(content, bytes):
        path.write_bytes(content or b"")
    else:
        write(path, content)
    code, _, err = evaluate(path, data_root, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err and str(path) in err, err
    assert not (tmp_path / f"{path.stem}.eval.json").exists()


@pytest.mark.parametrize("path", ["missing.pt", "folder.npy", "n" * 300 + ".pt"])
def test_paths_that_are_no_readable_file_are_one_line(path, tmp_path, data_root, capsys):
    (tmp_path / "folder.npy").mkdir()
    code, _, err = evaluate(tmp_path / path, data_root, capsys)
    assert code == 2 and err.count("\n") == 1 and ("no such file" in err or "too long" in err), err


def metrics_of(path):
    return json.loads(path.with_suffix(".eval.json").read_text())


SCALE_FREE = ("test_acc", "val_acc", "train_acc", "rank", "rankme", "mean_pair_cosine", "probe_l2")


def test_huge_and_tiny_values_give_the_same_metrics_as_ordinary_ones(projected, tmp_path, data_root, capsys):
    plain = write(tmp_path / "plain.pt", projected)
    assert evaluate(plain, data_root, capsys)[0] == 0
    reference = metrics_of(plain)
    assert reference["test_acc"] > 0.5
    # A power of two is exact: every metric is the same, bit for bit.
    for name, matrix in (("pow2_up.pt", projected * 2.0 ** 100), ("pow2_down.npy", (projected * 2.0 ** -100).numpy()),
                         ("float64_huge.npy", projected.double().numpy() * 2.0 ** 900)):
        path = write(tmp_path / name, matrix)
        assert evaluate(path, data_root, capsys)[0] == 0
        assert {k: metrics_of(path)[k] for k in SCALE_FREE} == {k: reference[k] for k in SCALE_FREE}, name
    # x 1e38 is near float32's limit (3.4e38) and rounds each value: the same up to that rounding.
    largest = projected.abs().max()
    huge = write(tmp_path / "huge.pt", projected / largest * 1e38)
    assert torch.isfinite(torch.load(huge, weights_only=True)).all()
    assert evaluate(huge, data_root, capsys)[0] == 0
    scaled = metrics_of(huge)
    assert scaled["test_acc"] == pytest.approx(reference["test_acc"], abs=0.01)
    assert scaled["rank"] == reference["rank"] and scaled["rankme"] == pytest.approx(reference["rankme"], rel=1e-4)


def test_all_zero_embeddings_are_a_complete_collapse_not_nan(tmp_path, data_root, capsys, cora):
    path = write(tmp_path / "zeros.npy", np.zeros((NODES, 16), dtype=np.float32))
    code, out, err = evaluate(path, data_root, capsys)
    assert code == 0, err
    assert "rank 0/16" in out and "RankMe 0.0" in out and "nan" not in out.lower()
    metrics = metrics_of(path)
    assert metrics["rank"] == 0 and metrics["rankme"] == 0.0 and metrics["mean_pair_cosine"] == 0.0
    test = cora.split["test"]
    # Seeing only zeros, the probe predicts one class for every node: its test accuracy is that class's share.
    shares = [float((cora.y[test] == c).float().mean()) for c in range(cora.num_classes)]
    assert any(metrics["test_acc"] == pytest.approx(share) for share in shares)


def test_integer_and_sparse_matrices_are_read_as_their_values(projected, tmp_path):
    integers = projected.round().to(torch.int64)
    dense = read_embeddings(write(tmp_path / "int.pt", integers))
    sparse = read_embeddings(write(tmp_path / "sparse.pt", integers.double().to_sparse()))
    assert torch.equal(dense, sparse)
    assert torch.equal(dense * 2.0 ** math.frexp(float(integers.abs().max()))[1], integers.float())


def test_metrics_are_written_as_json_beside_the_file_or_to_out(projected, tmp_path, data_root, capsys):
    path = write(tmp_path / "dgi_embeddings.npy", projected.numpy())
    code, out, _ = evaluate(path, data_root, capsys)
    assert code == 0
    beside = tmp_path / "dgi_embeddings.eval.json"
    metrics = json.loads(beside.read_text())
    assert metrics["embeddings"] == str(path) and metrics["dataset"] == "cora"
    assert f"test acc {100 * metrics['test_acc']:.2f}%" in out and f"metrics written to {beside}" in out
    chosen = tmp_path / "elsewhere.json"
    assert evaluate(path, data_root, capsys, "--out", str(chosen))[0] == 0
    assert {k: v for k, v in json.loads(chosen.read_text()).items() if k != "probe_seconds"} == \
        {k: v for k, v in metrics.items() if k != "probe_seconds"}


def test_the_json_never_replaces_the_embeddings_it_judges(projected, tmp_path, data_root, capsys):
    path = write(tmp_path / "emb.pt", projected)
    before = path.read_bytes()
    code, _, err = evaluate(path, data_root, capsys, "--out", str(path))
    assert code == 2 and "eval already reads or writes that file" in err
    assert path.read_bytes() == before


def test_save_embeddings_needs_a_run(projected, tmp_path, data_root, capsys):
    path = write(tmp_path / "emb.pt", projected)
    code, _, err = evaluate(path, data_root, capsys, "--save-embeddings", str(tmp_path / "copy.pt"))
    assert code == 2 and "give either RUN_DIR" in err and not (tmp_path / "copy.pt").exists()
