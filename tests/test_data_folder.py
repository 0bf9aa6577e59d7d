"""A dataset folder is data: nothing in it is ever run, a corrupt file is named, and processes share it safely."""

import subprocess
import sys

import pytest
import torch

from graphssl.cli import main
from graphssl.data import load_graph
from helpers import write_code

TINY = ["--steps", "2", "--quiet", "--set", "encoder.layers=[16]", "--set", "predictor.hidden=16"]


def write_foreign(path, marker):
    torch.save("not a dataset", path)  # loads as data, but torch_geometric's reader fails with an empty message


def cora_folder(root):
    return root / "Planetoid" / "Cora"


@pytest.mark.parametrize("name, write", [("data.pt", write_code), ("pre_transform.pt", write_code),
                                         ("pre_filter.pt", write_code), ("data.pt", write_foreign)])
def test_a_processed_file_carrying_code_is_never_run_and_is_rebuilt_from_raw(fresh_data_root, tmp_path, capsys,
                                                                             name, write):
    expected = load_graph("cora", fresh_data_root)  # processes raw/ into processed/
    marker = tmp_path / "code-ran"
    write(cora_folder(fresh_data_root) / "processed" / name, marker)
    capsys.readouterr()
    graph = load_graph("cora", fresh_data_root)
    assert not marker.exists()
    assert torch.equal(graph.edge_index, expected.edge_index) and torch.equal(graph.y, expected.y)
    err = capsys.readouterr().err
    assert "cannot be read as data" in err and "rebuilding it from" in err and " ()" not in err
    load_graph("cora", fresh_data_root)
    assert capsys.readouterr().err == ""  # the rebuilt files read as data


def test_a_processed_file_carrying_code_without_raw_files_to_rebuild_from_is_one_line(fresh_data_root, tmp_path,
                                                                                     capsys, monkeypatch):
    monkeypatch.setenv("GRAPHSSL_OFFLINE", "1")  # else torch_geometric would try to download the missing file
    load_graph("cora", fresh_data_root)
    marker = tmp_path / "code-ran"
    write_code(cora_folder(fresh_data_root) / "processed" / "data.pt", marker)
    (cora_folder(fresh_data_root) / "raw" / "ind.cora.x").unlink()
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(fresh_data_root), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "incomplete and GRAPHSSL_OFFLINE is set: put the Planetoid files ind.cora.x" in err
    assert not marker.exists() and not out.exists()


def test_a_raw_file_carrying_code_is_never_run(fresh_data_root, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    raw_file = cora_folder(fresh_data_root) / "raw" / "ind.cora.graph"
    write_code(raw_file, marker)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(fresh_data_root), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{raw_file} is corrupt or not a Planetoid file" in err
    assert not marker.exists() and not out.exists()


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 8)


def _empty(path):
    path.write_bytes(b"")


def _words(path):
    path.write_text("not a list of node ids\n")


@pytest.mark.parametrize("name, corrupt", [("x", _truncate), ("graph", _garbage), ("allx", _empty),
                                           ("test.index", _empty), ("test.index", _words)])
def test_a_corrupt_raw_file_is_named_with_the_fix(fresh_data_root, tmp_path, capsys, name, corrupt):
    raw_file = cora_folder(fresh_data_root) / "raw" / f"ind.cora.{name}"
    corrupt(raw_file)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(fresh_data_root), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphssl: error: ")
    assert f"{raw_file} is corrupt or not a Planetoid file (" in err and "replace it with the original" in err
    assert " ()" not in err and "delete" not in err  # an empty reason; deleting processed/ would not help
    assert not out.exists()


def test_processes_loading_a_fresh_data_root_at_once_all_get_the_graph(fresh_data_root):
    """What `graphssl tune --jobs 2` on a fresh data root does: all read raw/ and would write processed/ at once
    (before the lock, one of three died reading another's half-written processed file)."""
    code = f"from graphssl.data import load_graph; print(load_graph('cora', {str(fresh_data_root)!r}).num_nodes)"
    loaders = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    try:
        results = [loader.communicate(timeout=300) for loader in loaders]
    finally:
        for loader in loaders:
            loader.kill()  # only those a timeout left running
    assert [(loader.returncode, out.strip()) for loader, (out, _) in zip(loaders, results)] == [(0, "2708")] * 3, \
        [err for _, err in results]
    assert not (cora_folder(fresh_data_root) / ".graphssl.lock").exists()

