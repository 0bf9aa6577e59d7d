import math

import torch

from graphssl import bgrl
from graphssl.config import load_config
from graphssl.data import undirected
from graphssl.sampling import NeighborBatches
from graphssl.model import build_model
from graphssl.train import Pretrainer


def random_graph(n=500, e=3000):
    return undirected(torch.randint(n, (2, e), generator=torch.Generator().manual_seed(0)), n)


def test_batches_hold_seeds_first_and_only_real_edges():
    edge_index = random_graph()
    batches = NeighborBatches(edge_index, 500, 64, [4, 3])
    nodes, sub, num_seeds = batches(0)
    assert num_seeds == 64 and torch.equal(nodes[:64], batches.seeds(0))
    assert nodes.unique().numel() == nodes.numel()
    real = set(map(tuple, edge_index.t().tolist()))
    assert all((nodes[a].item(), nodes[b].item()) in real for a, b in sub.t().tolist())
    assert torch.equal(undirected(sub, nodes.numel()), sub)  # undirected, as every graph here


def test_fanout_limits_and_all_neighbours():
    edge_index = random_graph()
    nodes, sub, _ = NeighborBatches(edge_index, 500, 1, [2])(0)
    assert nodes.numel() <= 3
    batches = NeighborBatches(edge_index, 500, 8, [-1])
    nodes, _, _ = batches(0)
    seeds = batches.seeds(0)
    expected = set(seeds.tolist()) | set(edge_index[1][torch.isin(edge_index[0], seeds)].tolist())
    assert set(nodes.tolist()) == expected


def test_epochs_cover_every_node_and_batches_are_reproducible():
    batches = NeighborBatches(random_graph(), 500, 64, [3, 3], seed=5)
    assert batches.batches_per_epoch == 8
    seen = torch.cat([batches.seeds(s) for s in range(8)])
    assert torch.equal(seen.sort().values, torch.arange(500))
    assert not torch.equal(batches.seeds(8), batches.seeds(0))  # a new permutation each epoch
    fresh = NeighborBatches(random_graph(), 500, 64, [3, 3], seed=5)
    for step in (11, 3):  # any order, no replay needed
        a, b = fresh(step), batches(step)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_mini_batch_training_steps_score_seed_nodes_only(cora, monkeypatch):
    config = load_config(None, {"train.batch_size": 128, "train.num_neighbors": [5, 5], "encoder.layers": [16, 8],
                                "predictor.hidden": 16, "werank.alpha": 0.1})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    x, edge_index, num_seeds = trainer.inputs(0)
    assert num_seeds == 128 and x.size(0) > 128 and x.size(1) == cora.num_features
    scored = []
    cosine_loss = bgrl.cosine_loss

    def spy(prediction, target):
        scored.append((prediction.size(0), target.size(0)))
        return cosine_loss(prediction, target)

    monkeypatch.setattr(bgrl, "cosine_loss", spy)
    losses = [trainer.step(s) for s in range(5)]
    assert scored == [(128, 128)] * 10  # two halves of the loss per step, each on the 128 seeds only
    assert all(math.isfinite(loss) and penalty > 0 for loss, penalty in losses)
