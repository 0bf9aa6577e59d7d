"""A dataset folder is data: nothing in it is ever run, a corrupt file is named, and processes share it safely."""

import errno
import os
import pickle
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


def train(root, out):
    """`graphssl train` on Cora from ``root``; returns the exit status."""
    return main(["train", "--dataset", "cora", "--data-root", str(root), "--out", str(out), *TINY])


def assert_one_line_error(capsys, *parts):
    """stderr is exactly one `graphssl: error:` line (no traceback, no library chatter) holding each of ``parts``."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphssl: error: ") and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


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


def _edge_out_of_range(data):
    data["edge_index"][0, 0] = 10**9


def _short_labels(data):
    data["y"] = data["y"][:-10]


def _nan_feature(data):
    data["x"][3, 5] = float("nan")


def _infinite_feature(data):
    data["x"][0, 0] = float("inf")


def _short_mask(data):
    data["train_mask"] = data["train_mask"][:100]


@pytest.mark.parametrize("tamper, problem", [
    (_edge_out_of_range, "edge_index holds node 1000000000, outside the graph's 2708 nodes"),
    (_short_labels, "y has shape [2698], not one label for each of the 2708 nodes"),
    (_nan_feature, "x holds NaN or infinite features"), (_infinite_feature, "x holds NaN or infinite features"),
    (_short_mask, "the train mask has 100 entries for 2708 nodes")])
def test_a_processed_graph_that_reads_as_data_but_is_broken_is_rebuilt_from_raw(fresh_data_root, capsys, tamper,
                                                                                 problem):
    """Before the check, each of these loaded fine and training died later with a traceback (an index error in
    GCN's normalization, a failed SVD)."""
    expected = load_graph("cora", fresh_data_root)
    processed = cora_folder(fresh_data_root) / "processed"
    stored = torch.load(processed / "data.pt", weights_only=True)  # (attributes, slices, class): read as data
    tamper(stored[0])
    torch.save(stored, processed / "data.pt")
    capsys.readouterr()
    graph = load_graph("cora", fresh_data_root)
    assert torch.equal(graph.edge_index, expected.edge_index) and torch.equal(graph.y, expected.y)
    assert torch.equal(graph.x.to_dense(), expected.x.to_dense()) and torch.equal(graph.split["train"],
                                                                                  expected.split["train"])
    err = capsys.readouterr().err
    assert err == f"graphssl: warning: {processed} holds a broken graph ({problem}); rebuilding it from " \
                  f"{cora_folder(fresh_data_root) / 'raw'}/\n"
    load_graph("cora", fresh_data_root)
    assert capsys.readouterr().err == ""  # the rebuilt file passes


def test_a_raw_file_that_builds_a_broken_graph_is_one_line_and_leaves_no_processed_file(fresh_data_root, tmp_path,
                                                                                      capsys):
    """A valid pickle with impossible content: before, a traceback in training, and the bad processed file it made
    crashed every later run too."""
    with open(cora_folder(fresh_data_root) / "raw" / "ind.cora.graph", "wb") as handle:
        pickle.dump({node: [10**9] for node in range(2708)}, handle, protocol=2)
    raw = cora_folder(fresh_data_root) / "raw"
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        assert train(fresh_data_root, out) == 2
        assert_one_line_error(capsys, f"the graph built from {raw}/ is broken (edge_index holds node 1000000000",
                              "replace its files with the originals")
        assert not out.exists()
        assert not any((cora_folder(fresh_data_root) / "processed").glob("*.pt"))


def test_processing_prints_nothing_so_an_error_is_one_line(fresh_data_root, tmp_path, capsys, monkeypatch):
    """torch_geometric prints "Processing..." on stderr as it reads raw/ (except under pytest, as it detects by
    this variable): an error there came out as two lines."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    raw_file = cora_folder(fresh_data_root) / "raw" / "ind.cora.graph"
    good = raw_file.read_bytes()
    _garbage(raw_file)
    assert train(fresh_data_root, tmp_path / "run") == 2
    assert_one_line_error(capsys, f"{raw_file} is corrupt or not a Planetoid file")
    raw_file.write_bytes(good)
    load_graph("cora", fresh_data_root)
    assert capsys.readouterr() == ("", "")  # nor any chatter when all goes well


def test_a_data_root_whose_name_is_too_long_is_one_line(tmp_path, capsys):
    root = tmp_path / ("d" * 300)
    assert train(root, tmp_path / "run") == 2
    assert_one_line_error(capsys, f"cannot look into {root / 'Planetoid' / 'Cora'} ({os.strerror(errno.ENAMETOOLONG)})",
                          "--data-root")


def _processed_is_a_file(root, monkeypatch):
    (cora_folder(root) / "processed").write_text("not a folder")
    return cora_folder(root) / "processed"


def _data_pt_is_a_folder(root, monkeypatch):
    (cora_folder(root) / "processed" / "data.pt").mkdir(parents=True)
    return cora_folder(root) / "processed" / "data.pt"


def _read_only(root, monkeypatch):
    import torch_geometric.io.fs

    folder = cora_folder(root)
    folder.chmod(0o555)  # the test gives write permission back
    if os.access(folder, os.W_OK):  # root writes anyway: give the refusal the kernel gives everyone else
        def refuse(path, exist_ok=True):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        monkeypatch.setattr(torch_geometric.io.fs, "makedirs", refuse)
    return folder / "processed"


@pytest.mark.parametrize("make_unwritable, fix", [
    (_processed_is_a_file, "delete {path} and it is rebuilt from raw/"),
    (_data_pt_is_a_folder, "delete {path} and it is rebuilt from raw/"),
    (_read_only, "make the data root writable or copy it elsewhere and pass --data-root")])
def test_a_processed_folder_that_cannot_be_written_is_named_not_the_good_raw_files(fresh_data_root, tmp_path, capsys,
                                                                                  monkeypatch, make_unwritable, fix):
    """Before, the advice was to replace the raw files, which were fine."""
    path = make_unwritable(fresh_data_root, monkeypatch)
    try:
        assert train(fresh_data_root, tmp_path / "run") == 2
    finally:
        cora_folder(fresh_data_root).chmod(0o755)
    err = assert_one_line_error(capsys, f"cannot write {path} (", fix.format(path=path))
    assert "raw/ (" not in err and "replace" not in err and "corrupt" not in err
