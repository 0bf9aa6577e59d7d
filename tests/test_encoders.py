import inspect

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import dropout_edge, is_undirected

from graphssl.augment import Augmentation, drop_edges, feature_column_mask
from graphssl.data import undirected
from graphssl.encoders import GCNEncoder, PReLU, Predictor, WeightStandardization, gcn_adjacency


def random_graph(n=300, e=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return undirected(torch.randint(n, (2, e), generator=g), n)


def test_gcn_layer_matches_torch_geometric_gcnconv_values_and_gradients():
    torch.manual_seed(0)
    edge_index = random_graph()
    x = torch.randn(300, 12)
    encoder = GCNEncoder(12, [7], norm="none", activation="relu")
    reference = GCNConv(12, 7)  # normalizes and adds self-loops itself, message passing over edges
    reference.load_state_dict(encoder.convs[0].state_dict())
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = encoder(x1, gcn_adjacency(edge_index, 300))
    theirs = torch.relu(reference(x2, edge_index))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ours)
    ours.backward(g)
    theirs.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(encoder.convs[0].lin.weight.grad, reference.lin.weight.grad, rtol=1e-4, atol=1e-5)


def test_feature_mask_folded_into_the_weight_equals_masking_the_features():
    torch.manual_seed(0)
    edge_index = random_graph()
    x = (torch.rand(300, 40) < 0.1).float()
    mask = feature_column_mask(40, 0.5)
    encoder = GCNEncoder(40, [16, 8])
    adj = gcn_adjacency(edge_index, 300)
    torch.testing.assert_close(encoder(x.to_sparse_csr(), adj, mask), encoder(x * mask, adj), rtol=1e-5, atol=1e-5)


def test_fast_prelu_matches_nn_prelu():
    torch.manual_seed(0)
    x = torch.randn(50, 9)
    ours, ref = PReLU(), nn.PReLU()
    with torch.no_grad():
        ours.weight.fill_(0.3)
        ref.weight.fill_(0.3)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), ref(x2)
    torch.testing.assert_close(y1, y2)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)


def test_weight_standardization_rewrites_weights_at_every_forward():
    encoder = GCNEncoder(10, [8], weight_standardization=True)
    w = encoder.convs[0].lin.weight
    torch.testing.assert_close(w.mean(1), torch.zeros(8), atol=1e-6, rtol=0)
    torch.testing.assert_close(w.std(1, unbiased=False), torch.ones(8), atol=1e-4, rtol=0)
    with torch.no_grad():
        encoder.convs[0].lin.parametrizations.weight.original.mul_(5).add_(1)
    torch.testing.assert_close(encoder.convs[0].lin.weight, w, atol=1e-4, rtol=0)
    assert WeightStandardization()(torch.ones(2, 3)).abs().max() == 0


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
@pytest.mark.parametrize("activation", ["prelu", "relu", "elu", "gelu"])
def test_encoder_options_give_embeddings_of_the_last_size(norm, activation):
    encoder = GCNEncoder(6, [10, 4], norm=norm, activation=activation)
    out = encoder(torch.randn(300, 6), gcn_adjacency(random_graph(), 300))
    assert out.shape == (300, 4) and torch.isfinite(out).all()
    assert encoder.out_channels == 4


def test_encoder_defaults_are_the_configs():
    from graphssl.config import DEFAULTS

    parameters = inspect.signature(GCNEncoder).parameters
    assert {name: parameters[name].default for name in ("norm", "activation", "weight_standardization")} == \
        {name: DEFAULTS["encoder"][name] for name in ("norm", "activation", "weight_standardization")}


def test_predictor_is_linear_prelu_linear_without_normalization():
    predictor = Predictor(8, 32)
    assert [type(m) for m in predictor] == [nn.Linear, PReLU, nn.Linear]
    assert predictor[0].in_features == 8 and predictor[0].out_features == 32 and predictor[2].out_features == 8


def test_edge_dropping_rate_keeps_views_undirected_and_input_untouched():
    torch.manual_seed(0)
    edge_index = random_graph(2000, 40000)
    before = edge_index.clone()
    kept = drop_edges(edge_index, 0.3)
    assert torch.equal(edge_index, before)
    assert kept.size(1) / edge_index.size(1) == pytest.approx(0.7, abs=0.02)
    assert is_undirected(kept, num_nodes=2000)  # each kept edge is kept in both directions
    assert not is_undirected(dropout_edge(edge_index, p=0.3)[0], num_nodes=2000)  # what the check would catch
    assert drop_edges(edge_index, 0.0) is edge_index


def test_feature_masks_drop_whole_columns_at_the_requested_rate():
    torch.manual_seed(0)
    masks = torch.stack([feature_column_mask(1000, 0.4) for _ in range(20)])
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert 1 - masks.mean().item() == pytest.approx(0.4, abs=0.01)
    assert feature_column_mask(10, 0.0) is None
    view = Augmentation(0.5, 0.25)(random_graph(), 40)
    assert view.feature_mask.shape == (40,)


def test_without_last_activation_only_the_hidden_layers_are_activated():
    torch.manual_seed(0)
    adj = gcn_adjacency(random_graph(), 300)
    x = torch.randn(300, 12)
    torch.manual_seed(1)
    activated = GCNEncoder(12, [16, 8], activation="relu")
    torch.manual_seed(1)
    linear_end = GCNEncoder(12, [16, 8], activation="relu", last_activation=False)
    assert activated.state_dict().keys() == linear_end.state_dict().keys()
    assert all(torch.equal(v, linear_end.state_dict()[k]) for k, v in activated.state_dict().items())
    out = linear_end(x, adj)
    assert (out < 0).any()  # no ReLU at the end, as CCA-SSG's encoder
    torch.testing.assert_close(activated(x, adj), torch.relu(out))
