from pathlib import Path

import pytest
import torch
import yaml

from graphssl.config import (DATASETS, DEFAULTS, config_dir, config_for_dataset, dataset_name, load_config,
                             parse_assignment, read_yaml_file, with_defaults)
from graphssl.errors import GraphSSLError
from helpers import ALIASES_OF_ALIASES

REPO = Path(__file__).resolve().parents[1]


def test_cora_yaml_holds_exactly_the_defaults():
    assert yaml.safe_load((REPO / "configs" / "cora.yaml").read_text()) == DEFAULTS
    assert config_for_dataset("cora") == REPO / "configs" / "cora.yaml"


def test_one_config_per_dataset_and_unknown_datasets_never_borrow_coras():
    assert config_for_dataset("OGBN-Arxiv") == REPO / "configs" / "ogbn-arxiv.yaml"
    assert config_for_dataset("citeseer") == REPO / "configs" / "cora.yaml"  # no own file: the defaults
    with pytest.raises(GraphSSLError, match="unknown dataset 'no-such-graph'; choose one of: cora, citeseer"):
        config_for_dataset("no-such-graph")
    assert dataset_name("PubMed") == "pubmed"


def test_the_dataset_names_are_the_graphs_data_loads():
    from graphssl.data import OGB, PLANETOID

    assert set(DATASETS) == {*PLANETOID, *OGB, "synthetic-arxiv"}


def test_every_config_in_the_repository_loads():
    for path in (REPO / "configs").glob("*.yaml"):
        load_config(path)


def test_set_values_are_read_as_yaml_and_overrides_are_data():
    texts = ["optim.lr=1e-3", "encoder.layers=[64, 32]", "werank.alpha=[0.1, 0]", "encoder.weight_standardization=true"]
    overrides = dict(parse_assignment(text) for text in texts)
    assert overrides == {"optim.lr": 0.001, "encoder.layers": [64, 32], "werank.alpha": [0.1, 0],
                         "encoder.weight_standardization": True}
    config = load_config(None, overrides)
    assert config["optim"]["lr"] == 0.001
    assert config["encoder"]["layers"] == [64, 32]
    assert config["werank"]["alpha"] == [0.1, 0]
    assert config["encoder"]["weight_standardization"] is True
    overrides["encoder.layers"].append(16)
    assert config["encoder"]["layers"] == [64, 32]  # the config holds its own copy


@pytest.mark.parametrize("assignments, message", [
    (["optim.lrr=0.1"], "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
    (["werank.alpha=-0.1"], "'werank.alpha' is -0.1"),
    (["werank.alpha=[0.1, 0.1, 0.1]"], "3 coefficients but the encoder has 2 layers"),
    (["optim.steps=0"], "'optim.steps' is 0"),
    (["optim.steps=-5"], "'optim.steps' is -5"),
    (["augment.drop_edge_1=1.0"], "probability in [0, 1)"),
    (["encoder.norm=group"], "one of batch, layer, none"),
    (["encoder.layers=[]"], "non-empty list"),
    (["optim.lr=fast"], "'optim.lr' is 'fast'"),
    (["optim.lr"], "expected KEY=VALUE"),
    (["optim.lr=[1, 2"], "malformed YAML"),
    (["probe.protocol=sklearn"], "one of lbfgs, bgrl-official"),
    (["method=simclr"], "'method' is 'simclr'; it must be one of bgrl, grace, vicreg, cca-ssg"),
    (["werank.scope=all"], "'werank.scope' is 'all'; it must be one of encoder, encoder+head"),
    (["encoder.last_activation=maybe"], "'encoder.last_activation' is 'maybe'; it must be true or false"),
])
def test_bad_values_name_the_key_and_the_fix(assignments, message):
    with pytest.raises(GraphSSLError) as err:
        load_config(None, dict(parse_assignment(text) for text in assignments))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_config_saved_before_a_key_existed_is_the_same_config():
    old = load_config(None, {"werank.alpha": 0.1})
    del old["probe"]["protocol"], old["data"]
    # Before methods: BGRL, an activation after every layer, WERank on the encoder only.
    del old["method"], old["grace"], old["vicreg"], old["cca_ssg"], old["werank"]["scope"]
    del old["encoder"]["last_activation"]
    assert with_defaults(old) == load_config(None, {"werank.alpha": 0.1})
    assert with_defaults(old) != load_config(None)
    assert with_defaults({**old, "method": "grace"}) == load_config(None, {"werank.alpha": 0.1, "method": "grace"})
    assert with_defaults("not a config") == "not a config"
    for misshapen in ({"method": {"name": "bgrl"}}, {"optim": 0.1}):
        assert with_defaults(misshapen) == misshapen


@pytest.mark.parametrize("text, message", [
    ("optim:\n  lr: [0.1\n", "malformed YAML at line"),
    # PyYAML alone would keep the last silently.
    ("optim:\n  lr: 0.1\n  steps: 10\n  lr: 0.01\n", "key 'lr' is written twice in one mapping \\(again at line 4\\)"),
    ("encoder: &a {layers: *a}\n", "alias refers to the value it is inside"),
    (ALIASES_OF_ALIASES, "more than 100,000 values"),  # refused before any of the values is built
    ("x: " + "[" * 60 + "]" * 60 + "\n", "nested more than 50 deep"),
    ("x: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested more than 50 deep"),  # too deep for PyYAML itself
    ("optim:\n  steps: " + "1" * 5000 + "\n", "cannot read a value \\(Exceeds the limit"),
    ("train:\n  seed: 2024-13-45\n", "cannot read a value \\(month must be in 1..12\\)"),
    ("optim:\n  lr: !!float ''\n", "cannot read a value"),  # PyYAML's constructors: IndexError, KeyError, ...
    ("optim:\n  lr: !!bool maybe\n", "cannot read a value"),
    ("encoder:\n  layers: [0x" + "f" * 4000 + "]\n", "a whole number of 16000 bits, beyond any setting"),
    ("optim:\n  lr: a\x01\n", "malformed YAML"),  # a control character: PyYAML's reader refuses it
    ("optim:\n  stepz: 10\n", "unknown config key 'optim.stepz'"),
    ("- 1\n- 2\n", "must be a mapping"),
])
def test_bad_files(text, message, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(GraphSSLError, match=message):
        load_config(path)


def test_a_missing_file_is_refused_and_an_empty_one_is_the_defaults(tmp_path):
    with pytest.raises(GraphSSLError, match="cannot read it"):
        load_config(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == load_config(None)


def test_normalize_features_divides_each_row_by_its_sum(cora):
    from graphssl.data import graph_for_config

    assert graph_for_config(cora, load_config(None, {"data.normalize_features": False})) is cora
    normalized = graph_for_config(cora, load_config(None, {"data.normalize_features": True}))
    sums = normalized.x.to_dense().sum(dim=1)
    nonempty = cora.x.to_dense().sum(dim=1) > 0
    assert torch.allclose(sums[nonempty], torch.ones(int(nonempty.sum())), atol=1e-5)
    assert torch.equal(normalized.x.to_dense() > 0, cora.x.to_dense() > 0)  # same support, rows rescaled


def test_a_missing_configs_path_points_at_graphssls_own_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # README's configs/... paths, run from outside the repository
    with pytest.raises(GraphSSLError) as err:
        read_yaml_file("configs/spaces/werank.yaml", "--space", "a YAML search space")
    assert str(config_dir() / "spaces" / "werank.yaml") in str(err.value)
    with pytest.raises(GraphSSLError) as err:
        read_yaml_file("my.yaml", "--config", "an existing YAML file")
    assert "own copy" not in str(err.value)


def test_a_section_given_one_value_says_it_is_a_section():
    with pytest.raises(GraphSSLError, match="'optim' is a section of keys .*not a value; give its keys"):
        load_config(None, {"optim": 5})


def test_a_negative_zero_is_zero_wherever_it_is_given(tmp_path):
    import math

    from graphssl.cli import build_parser

    config = load_config(None, {"werank.alpha": -0.0, "augment.drop_edge_1": -0.0})
    assert math.copysign(1, config["werank"]["alpha"]) == 1 == math.copysign(1, config["augment"]["drop_edge_1"])
    assert math.copysign(1, load_config(None, {"werank.alpha": [-0.0, 0.1]})["werank"]["alpha"][0]) == 1
    # bench names its runs by the coefficient: -0 is the plain method's werank0, not werank-0
    assert [math.copysign(1, a) for a in build_parser().parse_args(["bench", "--werank", "-0"]).werank] == [1]
