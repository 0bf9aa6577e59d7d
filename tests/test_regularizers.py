import math
import warnings

import pytest
import torch
from torch import nn
from torch_geometric.nn import DeepGraphInfomax, GCNConv

from graphssl.encoders import GCNEncoder
from graphssl.regularizers import (WERank, gram_of_smaller_side, orthogonality_gap, weight_matrices, werank_penalty,
                                  werank_terms)


def value(tensor: torch.Tensor) -> float:
    """A scalar tensor as a float, without the warning torch gives for tensors that require grad."""
    return float(tensor.detach())


def semi_orthogonal(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(max(rows, cols), min(rows, cols), generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return q if rows >= cols else q.t()


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (4, 9)])
def test_penalty_is_zero_for_semi_orthogonal_weights(shape):
    w = semi_orthogonal(*shape)
    assert float(werank_penalty([w], 1.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(werank_penalty([w], 1.0, squared=True)) == pytest.approx(0.0, abs=1e-12)


def test_penalty_matches_hand_computation():
    # W is 2 x 3: the smaller Gram is W Wᵀ (2 x 2).
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    # W Wᵀ = [[5, 2], [2, 2]];  minus I = [[4, 2], [2, 1]];  ‖·‖_F² = 16 + 4 + 4 + 1 = 25.
    assert float(orthogonality_gap(w)) == pytest.approx(5.0)
    assert float(orthogonality_gap(w, squared=True)) == pytest.approx(25.0)
    assert float(werank_penalty([w, w.t()], [0.5, 2.0])) == pytest.approx(0.5 * 5 + 2.0 * 5)


def test_uses_the_smaller_gram_side():
    w = torch.randn(3, 7, generator=torch.Generator().manual_seed(1))
    assert gram_of_smaller_side(w).shape == (3, 3)
    assert gram_of_smaller_side(w.t()).shape == (3, 3)
    small = torch.linalg.matrix_norm(w @ w.t() - torch.eye(3))
    large = torch.linalg.matrix_norm(w.t() @ w - torch.eye(7))
    assert float(orthogonality_gap(w)) == pytest.approx(float(small), rel=1e-5)
    assert float(orthogonality_gap(w)) != pytest.approx(float(large), rel=1e-2)


def test_alpha_per_weight_and_zero_alpha():
    a, b = torch.randn(4, 5), torch.randn(5, 5)
    per = werank_penalty([a, b], [0.3, 0.0])
    assert float(per) == pytest.approx(0.3 * float(orthogonality_gap(a)), rel=1e-6)
    with pytest.raises(ValueError, match="2 coefficients for 3 weight"):
        werank_penalty([a, b, b], [0.1, 0.2])
    with pytest.raises(ValueError, match="2-D"):
        werank_penalty([torch.randn(3)], 0.1)


def test_per_weight_terms_are_the_penalty_split_by_weight():
    torch.manual_seed(0)
    weights = [torch.randn(6, 4), torch.randn(4, 9), torch.randn(3, 3)]
    total, terms = werank_terms(weights, [0.3, 0.7, 0.0])
    assert torch.equal(total, werank_penalty(weights, [0.3, 0.7, 0.0]))  # bit for bit: same computation
    assert [float(t) for t in terms] == pytest.approx([0.3 * float(orthogonality_gap(weights[0])),
                                                      0.7 * float(orthogonality_gap(weights[1])), 0.0])
    assert float(total) == pytest.approx(sum(float(t) for t in terms))
    hook = WERank(torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2)), alpha=[0.1, 0.2])
    hook_total, hook_terms = hook.terms()
    assert torch.equal(hook_total, hook()) and len(hook_terms) == 2


@pytest.mark.parametrize("squared", [False, True])
def test_gradient_steps_on_the_penalty_drive_singular_values_to_one(squared):
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(16, 12) * 0.3 + torch.eye(16, 12) * 2)
    before = torch.linalg.svdvals(w.detach())
    assert (before - 1).abs().max() > 0.5
    opt = torch.optim.SGD([w], lr=0.02)
    # The plain norm's gradient keeps unit size near the optimum, so the step size must decay to settle.
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / 2000)
    for _ in range(2000):
        opt.zero_grad()
        werank_penalty([w], 1.0, squared=squared).backward()
        opt.step()
        decay.step()
    after = torch.linalg.svdvals(w.detach())
    assert (after - 1).abs().max() < 1e-4


def test_hook_finds_the_weight_matrices_of_any_module():
    mlp = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.PReLU(), nn.Linear(16, 4))
    hook = WERank(mlp, 0.1)
    assert hook.names == ["0.weight", "3.weight"]
    expected = 0.1 * (orthogonality_gap(mlp[0].weight) + orthogonality_gap(mlp[3].weight))
    assert value(hook()) == pytest.approx(value(expected), rel=1e-6)
    # It follows the module's current weights, and gradients reach them.
    hook().backward()
    assert mlp[0].weight.grad is not None and mlp[1].weight.grad is None


def test_hook_takes_named_weights_and_checks_them():
    mlp = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4))
    assert value(WERank(mlp, 1.0, weights=["1.weight"])()) == pytest.approx(value(orthogonality_gap(mlp[1].weight)))
    with pytest.raises(ValueError, match="no parameter named 2.weight"):
        WERank(mlp, 1.0, weights=["2.weight"])
    with pytest.raises(ValueError, match="1 coefficients for 2"):
        WERank(mlp, [0.1])
    with pytest.raises(ValueError, match="no 2-D weight"):
        WERank(nn.PReLU(), 0.1)


def test_weight_standardization_penalizes_the_raw_parameter_the_optimizer_updates():
    """Decision: under weight standardization WERank acts on the raw weights (the
    optimizer's parameters), not on the standardized weights the forward pass uses."""
    encoder = GCNEncoder(10, [8, 6], norm="layer", weight_standardization=True)
    names = list(weight_matrices(encoder))
    assert names == ["convs.0.lin.parametrizations.weight.original", "convs.1.lin.parametrizations.weight.original"]
    raw = [encoder.convs[i].lin.parametrizations.weight.original for i in range(2)]
    hook = WERank(encoder, 0.5)
    assert value(hook()) == pytest.approx(value(werank_penalty(raw, 0.5)), rel=1e-6)
    standardized = [encoder.convs[i].lin.weight for i in range(2)]
    assert not math.isclose(value(hook()), value(werank_penalty(standardized, 0.5)), rel_tol=1e-3)
    optimizer_params = {id(p) for p in encoder.parameters()}
    assert all(id(w) in optimizer_params for w in hook.weights())


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (6, 6)])
@pytest.mark.parametrize("squared", [False, True])
def test_closed_form_gradient_matches_autograd_of_the_definition(shape, squared):
    w = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    torch.autograd.gradcheck(lambda t: orthogonality_gap(t, squared), (w,))
    reference = torch.linalg.matrix_norm(gram_of_smaller_side(w) - torch.eye(min(shape), dtype=torch.float64))
    reference = reference ** 2 if squared else reference
    (grad_ref,) = torch.autograd.grad(reference, w)
    (grad,) = torch.autograd.grad(orthogonality_gap(w, squared), w)
    torch.testing.assert_close(grad, grad_ref)


def test_gradient_at_the_optimum_is_zero_not_nan():
    w = torch.eye(7, 4).requires_grad_(True)  # G - I is exactly 0, where the plain norm has no gradient
    (grad,) = torch.autograd.grad(orthogonality_gap(w), w)
    assert torch.isfinite(grad).all() and grad.abs().max() == 0


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = GCNConv(10, 32)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index).relu()


def test_a_model_with_an_encoder_warns_about_matrices_outside_it():
    """torch_geometric's Deep Graph Infomax: WERank(model) would also regularize the discriminator's matrix."""
    model = DeepGraphInfomax(32, _Encoder(), summary=lambda z, *args, **kwargs: z.mean(0).sigmoid(),
                             corruption=lambda x, edge_index: (x.flip(0), edge_index))
    with pytest.warns(UserWarning, match=r"regularizes weight outside its encoder \(encoder\); pass the encoder"):
        hook = WERank(model, 0.1)
    assert hook.names == ["weight", "encoder.conv.lin.weight"] and "encoder.conv.lin.weight" in repr(hook)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert WERank(model.encoder, 0.1).names == ["conv.lin.weight"]
        assert WERank(model, 0.1, weights=["encoder.conv.lin.weight"]).names == ["encoder.conv.lin.weight"]
        WERank(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), 0.1)  # nothing says which part is the encoder


@pytest.mark.parametrize("alpha", [-0.1, [0.1, -1.0], float("nan"), True, "0.1", [0.1, "0.1"], None])
def test_negative_or_non_numeric_coefficients_are_rejected_as_on_the_command_line(alpha):
    mlp = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4))
    with pytest.raises(ValueError, match="coefficients must be numbers >= 0"):
        WERank(mlp, alpha)
    with pytest.raises(ValueError, match="coefficients must be numbers >= 0"):
        werank_penalty([mlp[0].weight, mlp[1].weight], alpha)
