import pytest
import torch

from graphssl.encoders import gcn_adjacency
from graphssl.probe import (OFFICIAL_C_GRID, bgrl_official_probe, fit_logistic_regression, l2_normalize_rows,
                            linear_probe)
from graphssl.rank import (covariance_spectrum, mean_pair_cosine, numerical_rank, rank_report, rank_tolerance,
                           rankme, singular_values)


def blobs(n_per_class=60, classes=3, dim=8, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 3
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centers[y] + spread * torch.randn(len(y), dim, generator=g)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


def split_of(n, seed=0):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return {"train": perm[: n // 3], "valid": perm[n // 3: 2 * n // 3], "test": perm[2 * n // 3:]}


def test_probe_separates_separable_data():
    x, y = blobs()
    result = linear_probe(x, y, split_of(len(y)), 3)
    assert result.accuracy == {"train": 1.0, "valid": 1.0, "test": 1.0}


def test_probe_chooses_l2_on_validation_only():
    x, y = blobs(spread=2.5, seed=3)
    split = split_of(len(y), seed=1)
    grid = [1e-4, 1e-2, 1.0]
    result = linear_probe(x, y, split, 3, l2_grid=grid)
    assert result.knob == "l2" and set(result.valid_by_value) == set(grid)
    best = max(result.valid_by_value.values())
    assert result.valid_by_value[result.value] == best
    assert result.value == max(l2 for l2, acc in result.valid_by_value.items() if acc == best)
    # Scrambling the test labels changes the test accuracy but never the choice.
    y_scrambled = y.clone()
    y_scrambled[split["test"]] = (y[split["test"]] + 1) % 3
    scrambled = linear_probe(x, y_scrambled, split, 3, l2_grid=grid)
    assert scrambled.value == result.value and scrambled.valid_by_value == result.valid_by_value
    assert scrambled.accuracy["test"] != result.accuracy["test"]


def test_stronger_l2_shrinks_the_weights_and_rows_are_normalized():
    x, y = blobs()
    feats = l2_normalize_rows(x)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(len(y)))
    weak, _ = fit_logistic_regression(feats, y, 3, 1e-5)
    strong, _ = fit_logistic_regression(feats, y, 3, 1e-1)
    assert strong.norm() < weak.norm()


@pytest.fixture(scope="module")
def cora_embeddings(cora):
    """GCN-like embeddings of Cora without training: two propagations of a random projection of the features."""
    adj = gcn_adjacency(cora.edge_index, cora.num_nodes)
    projection = torch.randn(cora.num_features, 128, generator=torch.Generator().manual_seed(0))
    return adj @ (adj @ (cora.x.to_dense() @ projection))


def test_the_lbfgs_probe_agrees_with_scikit_learn_at_every_l2_of_the_grid(cora, cora_embeddings):
    """``mean CE + λ‖W‖²`` is scikit-learn's ``C Σ CE + ½‖W‖²`` with ``C = 1 / (2 λ n_train)``."""
    from sklearn.linear_model import LogisticRegression

    grid = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    result = linear_probe(cora_embeddings, cora.y, cora.split, cora.num_classes, l2_grid=grid)
    features = l2_normalize_rows(cora_embeddings)
    train, valid = cora.split["train"], cora.split["valid"]
    for l2 in grid:
        reference = LogisticRegression(C=1 / (2 * l2 * len(train)), tol=1e-8, max_iter=5000)
        reference.fit(features[train].double().numpy(), cora.y[train].numpy())
        reference_valid = (reference.predict(features[valid].double().numpy()) == cora.y[valid].numpy()).mean()
        assert result.valid_by_value[l2] == pytest.approx(reference_valid, abs=1.01 / len(valid)), l2  # <= 1 node
        weight, bias = fit_logistic_regression(features[train], cora.y[train], cora.num_classes, l2)
        scale = abs(reference.coef_).max()
        assert abs(weight.numpy() - reference.coef_).max() < 0.01 * scale, l2
        assert abs(bias.numpy() - reference.intercept_).max() < 0.01 * scale, l2


def test_the_bgrl_official_probe_chooses_c_on_validation_and_reads_no_test_label(cora, cora_embeddings):
    result = bgrl_official_probe(cora_embeddings, cora.y, cora.split)
    assert result.knob == "c" and list(result.valid_by_value) == list(OFFICIAL_C_GRID) and len(OFFICIAL_C_GRID) == 21
    assert OFFICIAL_C_GRID[0] == 2.0 ** -10 and OFFICIAL_C_GRID[-1] == 2.0 ** 10
    best = max(result.valid_by_value.values())
    assert result.value == min(c for c, acc in result.valid_by_value.items() if acc == best)  # ties: smaller C
    assert result.accuracy["valid"] == best and 0.6 < result.accuracy["test"] <= 1
    without_test = {k: v for k, v in cora.split.items() if k != "test"}
    scrambled = cora.y.clone()
    scrambled[cora.split["test"]] = -1
    blind = bgrl_official_probe(cora_embeddings, scrambled, without_test)
    assert sorted(blind.accuracy) == ["train", "valid"] and blind.value == result.value


@pytest.mark.parametrize("r", [1, 5, 12])
def test_numerical_rank_of_known_rank_matrices(r):
    g = torch.Generator().manual_seed(r)
    m = torch.randn(500, r, generator=g) @ torch.randn(r, 32, generator=g)
    assert numerical_rank(m) == r
    values = singular_values(m)
    assert rank_tolerance(values, (500, 32)) == pytest.approx(float(values[0]) * 500 * torch.finfo(torch.float32).eps)


def test_rankme_values():
    q, _ = torch.linalg.qr(torch.randn(200, 16))
    assert rankme(q) == pytest.approx(16, rel=1e-3)  # equal singular values: full effective rank
    one = torch.randn(200, 1) @ torch.randn(1, 16)
    assert rankme(one) == pytest.approx(1, abs=0.01)
    uneven = q @ torch.diag(torch.logspace(0, -3, 16))
    assert 1 < rankme(uneven) < 16


def test_mean_pair_cosine_detects_collapse_to_one_direction():
    direction = torch.randn(1, 32)
    collapsed = torch.rand(400, 1) * direction + 1e-3 * torch.randn(400, 32)
    assert mean_pair_cosine(collapsed) > 0.99
    assert abs(mean_pair_cosine(torch.randn(400, 32))) < 0.05
    # Centering hides that collapse from the covariance: its spectrum still has a dominant direction only.
    assert covariance_spectrum(collapsed)[0] > 100 * covariance_spectrum(collapsed)[1]


def test_rank_report_has_every_metric():
    report = rank_report(torch.randn(100, 8))
    assert report["rank"] == 8 and len(report["singular_values"]) == 8
    assert 1 <= report["rankme"] <= 8
