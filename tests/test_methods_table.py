"""benchmarks/methods_table.py on paired results that benchmarks/paired_difference.py makes from bench folders with
known numbers: the table, the issue's targets, a partial run, bad input."""

import json
import sys
from pathlib import Path

from helpers import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = range(100, 103)


def bench_folder(folder, method, alpha, accuracy, dim=256):
    """A bench folder of one arm: ``accuracy`` (%) on seed 100, + 1 point per later seed; embeddings of ``dim``."""
    (folder / "results").mkdir(parents=True)
    for seed in SEEDS:
        metrics = {"method": method, "werank": alpha, "test_acc": (accuracy + seed - 100) / 100, "val_acc": 0.5,
                   "rank": 256, "rankme": 200.0 if alpha else 100.0, "embedding_dim": dim, "train_seconds": 1.0}
        (folder / "results" / f"cora__{alpha}__{seed}.json").write_text(json.dumps(
            {"dataset": "cora", "settings": {}, "seed": seed, "metrics": metrics}))


def paired(results, method, werank_accuracy, plain_accuracy, name=None):
    """methods_fair.sh's paired result of ``method`` (α 0.05 against 0), through paired_difference.py, into
    ``name`` (default: the two arms' pair)."""
    name = name or ("cora-fair-paired.json" if method == "bgrl" else f"cora-methods-{method}-paired.json")
    stem = name.removesuffix(".json")
    bench_folder(results / f"{stem}-werank", method, 0.05, werank_accuracy)
    bench_folder(results / f"{stem}-plain", method, 0, plain_accuracy)
    proc = run([sys.executable, REPO / "benchmarks" / "paired_difference.py", results / f"{stem}-werank", "0.05",
                results / f"{stem}-plain", "0", "--out", results / name], env=None)
    assert proc.returncode == 0, proc.stderr


def table_script(results):
    return run([sys.executable, REPO / "benchmarks" / "methods_table.py", results], env=None)


def test_the_table_checks_the_issues_targets_and_lists_unfinished_methods(tmp_path):
    results = tmp_path / "results"
    paired(results, "bgrl", 82.0, 80.0)
    paired(results, "grace", 80.0, 80.5)  # WERank half a point below plain, 0.9 short of the published 81.9
    proc = table_script(results)
    assert proc.returncode == 0, proc.stderr
    table = (results / "cora-methods.md").read_text()
    assert table == proc.stdout
    assert "| bgrl | WERank | 0.05 | 100–102 | 83.00 ± 1.00 | 200.0 ± 0.0 | 256.0 | 256 | +2.00 ± 0.00 | 3 of 3 " \
           "| 82.7 ± 0.6 |" in table
    assert "| grace | plain | 0 | 100–102 | 81.50 ± 1.00 | 100.0 ± 0.0 | 256.0 | 256 |  |  |  |" in table
    assert "| grace | WERank | 0.05 | 100–102 | 81.00 ± 1.00 | 200.0 ± 0.0 | 256.0 | 256 | -0.50 ± 0.00 | 0 of 3 " \
           "| 81.9 ± 0.4 |" in table
    assert "| cca-ssg | not finished |" in table and "| vicreg | not finished |" in table
    assert "* grace + WERank reaches its published 81.9 ± 0.4: no, 0.90 points short (81.00 ± 1.00, 3 seeds, " \
           "fewer than the 10 asked; plain 81.50)" in table
    assert "* cca-ssg + WERank reaches its published 84.0 ± 0.4: not finished" in table
    assert "* the best method + WERank reaches 84.5: so far no, 1.50 points short (bgrl, 83.00, 3 seeds, fewer " \
           "than the 10 asked); not finished: cca-ssg, vicreg" in table
    assert (results / "cora-methods.png").stat().st_size > 0

    paired(results, "cca-ssg", 84.0, 83.0)
    paired(results, "vicreg", 79.0, 79.0)
    proc = table_script(results)
    assert proc.returncode == 0, proc.stderr
    table = (results / "cora-methods.md").read_text()
    arms = table.split("\n\n")[0]
    rows = [line.split(" | ")[0] for line in arms.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["| method", "| bgrl", "| bgrl", "| cca-ssg", "| cca-ssg", "| grace", "| grace", "| vicreg",
                    "| vicreg"]
    assert "* cca-ssg + WERank reaches its published 84.0 ± 0.4: yes (85.00 ± 1.00, 3 seeds" in table
    assert "* vicreg has no published Cora figure: plain 80.00, + WERank 80.00 (3 seeds" in table
    assert "* the best method + WERank reaches 84.5: yes (cca-ssg, 85.00, 3 seeds" in table


def test_the_cross_checks_show_werank_within_each_arms_setup(tmp_path):
    results = tmp_path / "results"
    paired(results, "grace", 82.0, 80.0)
    paired(results, "grace", 82.0, 81.0, name="cora-methods-grace-paired-werank-setup.json")
    paired(results, "bgrl", 81.0, 80.0, name="cora-fair-paired-bgrl-config.json")
    proc = table_script(results)
    assert proc.returncode == 0, proc.stderr
    checks = (results / "cora-methods.md").read_text().split("Cross-checks, chosen by nothing")[1]
    assert "| grace | WERank arm's | 0.05 | 100–102 | 82.00 ± 1.00 | 83.00 ± 1.00 | +1.00 ± 0.00 | 3 of 3 " \
           "| 100.0 / 200.0 | 256 |" in checks
    assert "| grace | plain arm's | not finished |" in checks and "| bgrl | WERank arm's | not finished |" in checks
    assert "| bgrl | plain arm's | 0.05 | 100–102 | 81.00 ± 1.00 | 82.00 ± 1.00 | +1.00 ± 0.00 | 3 of 3 " in checks
    assert "| vicreg | WERank arm's | not finished |" in checks


def test_bad_input_is_refused_in_one_line_and_the_table_is_kept(tmp_path):
    results = tmp_path / "results"
    paired(results, "bgrl", 82.0, 80.0)
    assert table_script(results).returncode == 0
    table = (results / "cora-methods.md").read_text()
    grace = results / "cora-methods-grace-paired.json"
    good = json.loads((results / "cora-fair-paired.json").read_text())
    swapped = {**good, "a": good["b"], "b": good["a"]}
    for text, message in (('{"a": {"test_acc": 8', "cora-methods-grace-paired.json is unreadable"),
                          ('{"a": {}, "b": {}}', "not a result of benchmarks/paired_difference.py"),
                          (json.dumps({**good, "a": {**good["a"], "test_acc": None}}), "not a result of"),
                          (json.dumps({**good, "a": {**good["a"], "seeds": []}}), "not a result of"),
                          (json.dumps({**good, "a": {**good["a"], "rank": True}}), "not a result of"),
                          (json.dumps(swapped), "does not compare a WERank arm (side A) with α = 0 (side B)")):
        grace.write_text(text)
        proc = table_script(results)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    grace.unlink()
    (results / "cora-methods.png").unlink()
    (results / "cora-methods.png").mkdir()  # the figure cannot be written
    proc = table_script(results)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr, proc.stderr
    proc = table_script(tmp_path / "missing")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not a folder" in proc.stderr
    assert (results / "cora-methods.md").read_text() == table


def test_the_readme_shows_the_committed_table_as_written():
    table = (REPO / "benchmarks" / "results" / "cora-methods.md").read_text().strip()
    assert table in (REPO / "README.md").read_text(), \
        "README's methods table differs from benchmarks/results/cora-methods.md; paste the file's text into README"


def test_paired_difference_refuses_a_side_whose_runs_differ_in_embedding_size(tmp_path):
    bench_folder(tmp_path / "a", "grace", 0.05, 82.0)
    bench_folder(tmp_path / "b", "grace", 0, 80.0)
    result = tmp_path / "a" / "results" / "cora__0.05__101.json"
    run_101 = json.loads(result.read_text())
    run_101["metrics"]["embedding_dim"] = 512  # rank and RankMe of two sizes would be averaged as one
    result.write_text(json.dumps(run_101))
    proc = run([sys.executable, REPO / "benchmarks" / "paired_difference.py", tmp_path / "a", "0.05", tmp_path / "b",
                "0", "--out", tmp_path / "paired.json"], env=None)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "[256, 512] dimensions" in proc.stderr, \
        proc.stderr
    assert not (tmp_path / "paired.json").exists()


def test_paired_difference_compares_rankme_as_a_share_of_each_sides_embedding_size(tmp_path):
    bench_folder(tmp_path / "a", "cca-ssg", 0.05, 82.0, dim=512)  # RankMe 200 of 512
    bench_folder(tmp_path / "b", "cca-ssg", 0, 80.0)  # RankMe 100 of 256
    proc = run([sys.executable, REPO / "benchmarks" / "paired_difference.py", tmp_path / "a", "0.05", tmp_path / "b",
                "0", "--out", tmp_path / "paired.json"], env=None)
    assert proc.returncode == 0, proc.stderr
    paired = json.loads((tmp_path / "paired.json").read_text())
    assert (paired["a"]["embedding_dim"], paired["b"]["embedding_dim"]) == (512, 256)
    assert paired["rankme_relative_difference"] == round((200 / 512) / (100 / 256) - 1, 4)  # not 200 / 100 - 1
