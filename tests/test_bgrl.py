import math

import pytest
import torch

from graphssl.bgrl import BGRL, cosine_loss
from graphssl.config import load_config
from graphssl.encoders import GCNEncoder, Predictor, gcn_adjacency
from graphssl.schedulers import CosineMomentum, WarmupCosineLR
from graphssl.model import build_model
from graphssl.train import Pretrainer


def test_cosine_losses():
    a = torch.randn(10, 4)
    assert float(cosine_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_loss(a, -a)) == pytest.approx(2.0, abs=1e-6)
    assert float(cosine_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)  # scale-free


def test_momentum_schedule_end_points_and_monotonicity():
    schedule = CosineMomentum(0.99, 1.0, 100)
    assert schedule(0) == pytest.approx(0.99)
    assert schedule(100) == pytest.approx(1.0)
    assert schedule(50) == pytest.approx(0.995)
    values = [schedule(s) for s in range(101)]
    assert values == sorted(values)


def test_learning_rate_warmup_then_cosine_decay():
    lr = WarmupCosineLR(0.01, 10, 110)
    assert lr(0) == pytest.approx(0.001)  # no step at lr 0
    assert lr(9) == pytest.approx(0.01)
    assert lr(10) == pytest.approx(0.01)
    assert lr(60) == pytest.approx(0.005)
    assert lr(110) == pytest.approx(0.0, abs=1e-12)
    assert all(lr(s) >= lr(s + 1) for s in range(10, 110))


def make_bgrl(seed=0):
    torch.manual_seed(seed)
    encoder = GCNEncoder(5, [8, 4])
    return BGRL(encoder, Predictor(4, 6))


def test_target_starts_independent_gets_no_gradients_and_is_not_optimized():
    model = make_bgrl()
    online = dict(model.online_encoder.named_parameters())
    target = dict(model.target_encoder.named_parameters())
    assert any(not torch.equal(online[k], target[k]) for k in online if online[k].dim() == 2)
    assert all(not p.requires_grad for p in target.values())
    trainable = {id(p) for p in model.trainable_parameters()}
    assert not trainable & {id(p) for p in target.values()}
    assert {id(p) for p in model.predictor.parameters()} <= trainable


def test_update_target_network_is_an_exponential_moving_average():
    model = make_bgrl()
    before = [p.clone() for p in model.target_encoder.parameters()]
    online = [p.clone() for p in model.online_encoder.parameters()]
    model.update_target_network(0.9)
    for t0, o, t1 in zip(before, online, model.target_encoder.parameters()):
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * o)
    model.update_target_network(1.0)
    for t_prev, t in zip([p.clone() for p in model.target_encoder.parameters()], model.target_encoder.parameters()):
        torch.testing.assert_close(t, t_prev)
    model.update_target_network(0.0)
    for o, t in zip(model.online_encoder.parameters(), model.target_encoder.parameters()):
        torch.testing.assert_close(t, o)


def test_training_steps_move_online_weights_and_never_the_target_except_by_ema(cora):
    config = load_config(None, {"optim.steps": 3, "encoder.layers": [16, 8], "predictor.hidden": 16, "werank.alpha": 0.0})
    torch.manual_seed(0)
    model = build_model(config, cora.num_features)
    trainer = Pretrainer(model, cora, config, torch.device("cpu"))
    online0 = [p.clone() for p in model.online_encoder.parameters()]
    target0 = [p.clone() for p in model.target_encoder.parameters()]
    loss, penalty = trainer.step(0)
    assert math.isfinite(loss) and penalty == 0.0 and trainer.werank is None
    m = trainer.momentum(0)
    for t0, o0, o1, t1 in zip(target0, online0, model.online_encoder.parameters(), model.target_encoder.parameters()):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * o1.detach())
    assert any(not torch.equal(a, b) for a, b in zip(online0, model.online_encoder.parameters()))
    assert all(p.grad is None for p in model.target_encoder.parameters())


@pytest.mark.slow
def test_bgrl_loss_decreases_on_cora(cora):
    config = load_config(None, {"optim.steps": 60, "optim.warmup_steps": 5, "encoder.layers": [64, 32],
                                "predictor.hidden": 64, "optim.lr": 0.005})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    losses = [trainer.step(s)[0] for s in range(60)]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:5]) / 5


def test_werank_term_is_added_and_shrinks(cora):
    config = load_config(None, {"optim.steps": 40, "encoder.layers": [32, 16], "predictor.hidden": 32,
                                "werank.alpha": [0.5, 0.1], "optim.warmup_steps": 1, "optim.lr": 0.01})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    assert trainer.werank is not None and trainer.werank.alpha == [0.5, 0.1]
    penalties = [trainer.step(s)[1] for s in range(40)]
    assert penalties[0] > 0 and penalties[-1] < 0.5 * penalties[0]


def test_gcn_adjacency_is_symmetric_normalized_with_self_loops(cora):
    adj = gcn_adjacency(cora.edge_index, cora.num_nodes).to_dense()
    torch.testing.assert_close(adj, adj.t())
    a = torch.zeros(cora.num_nodes, cora.num_nodes)
    a[cora.edge_index[0], cora.edge_index[1]] = 1
    a += torch.eye(cora.num_nodes)
    d = a.sum(1).rsqrt()
    torch.testing.assert_close(adj, d[:, None] * a * d[None, :])


def test_cosine_loss_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    p = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    t = torch.randn(50, 8, dtype=torch.float64)
    torch.autograd.gradcheck(lambda q: cosine_loss(q, t), (p,))
    ours = cosine_loss(p, t)
    reference = 1 - torch.nn.functional.cosine_similarity(p, t, dim=-1).mean()
    torch.testing.assert_close(ours, reference)
    (g1,) = torch.autograd.grad(ours, p)
    (g2,) = torch.autograd.grad(reference, p)
    torch.testing.assert_close(g1, g2)


def test_per_view_backward_gives_the_gradients_of_the_symmetric_loss(cora):
    model = make_bgrl_for(cora)
    x = cora.x
    adjs = [gcn_adjacency(cora.edge_index, cora.num_nodes)] * 2
    masks = [None, (torch.rand(cora.num_features) > 0.5).float()]
    model.symmetric_loss(x, adjs[0], masks[0], adjs[1], masks[1]).backward()
    joint = [p.grad.clone() for p in model.trainable_parameters()]
    model.zero_grad()
    targets = [model.target_embeddings(x, a, m) for a, m in zip(adjs, masks)]
    for adj, mask, other in zip(adjs, masks, reversed(targets)):
        model(x, adj, mask, other).backward()
    for g, p in zip(joint, model.trainable_parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def make_bgrl_for(graph):
    torch.manual_seed(0)
    return BGRL(GCNEncoder(graph.num_features, [16, 8]), Predictor(8, 16))


def test_recording_spectra_does_not_change_training(cora):
    from graphssl.pipeline import train_and_evaluate

    states = []
    for every in (0, 2):
        config = load_config(None, {"optim.steps": 4, "encoder.layers": [16, 8], "predictor.hidden": 16,
                                    "werank.alpha": 0.1, "train.spectra_every": every})
        result = train_and_evaluate(None, "cora", config, cora, torch.device("cpu"))
        states.append(result.model.state_dict())
    assert all(torch.equal(tensor, states[1][name]) for name, tensor in states[0].items())
