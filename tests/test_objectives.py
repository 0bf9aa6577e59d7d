"""GRACE, VICReg and CCA-SSG: each loss against a loop-by-loop transcription of its published formula.

The transcriptions are deliberately naive (Python loops over nodes and
dimensions on tiny float64 tensors) so they read like the papers and the
official code; value and gradient must match the library to ~1e-12.
"""

from __future__ import annotations

import math
import weakref

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from graphssl import toy
from graphssl.cca_ssg import CCASSGLoss, cca_ssg_loss, decorrelation_term, standardize
from graphssl.cca_ssg import invariance_term as cca_invariance_term
from graphssl.grace import (MAX_KEPT_BYTES, GRACELoss, ProjectionHead, grace_loss, grace_loss_chunked,
                            grace_loss_dense, infonce_per_node, off_diagonal_logsumexp, row_blocks,
                            self_similarity_rows)
from graphssl.regularizers import weight_matrices
from graphssl.vicreg import (Expander, VICRegLoss, covariance_term, invariance_term, variance_term,
                             vicreg_loss)

TIGHT = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine every parallel op waits for a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def views(n: int = 6, d: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two correlated float64 views that require grad."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    u = base + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    v = base + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return u.requires_grad_(), v.requires_grad_()


def assert_same_value_and_gradient(loss_fn, reference_fn, *inputs: Tensor, **tolerance: float) -> None:
    """Same value, and same gradient of a random linear functional of it (the value itself if scalar)."""
    tolerance = tolerance or TIGHT
    value, reference = loss_fn(*inputs), reference_fn(*inputs)
    torch.testing.assert_close(value, reference, **tolerance)
    # A plain sum would hide errors: e.g. a standardized column always sums to 0.
    weights = torch.rand(value.shape, generator=torch.Generator().manual_seed(0), dtype=value.dtype)
    grads = torch.autograd.grad((value * weights).sum(), inputs)
    reference_grads = torch.autograd.grad((reference * weights).sum(), inputs)
    for grad, reference_grad in zip(grads, reference_grads):
        torch.testing.assert_close(grad, reference_grad, **tolerance)


# --- GRACE (Zhu et al., 2020), transcribed from the paper's equations (1) and (2) -------------

def paper_theta(a: Tensor, b: Tensor) -> Tensor:
    return (a @ b) / (a.norm() * b.norm())


def paper_ell(u: Tensor, v: Tensor, i: int, tau: float, intra_view: bool = True) -> Tensor:
    """ℓ(u_i, v_i) = -log e^{θ(u_i,v_i)/τ}
    / (e^{θ(u_i,v_i)/τ} + Σ_{k≠i} e^{θ(u_i,v_k)/τ} + Σ_{k≠i} e^{θ(u_i,u_k)/τ})."""
    n = u.size(0)
    positive = torch.exp(paper_theta(u[i], v[i]) / tau)
    denominator = positive
    for k in range(n):
        if k != i:
            denominator = denominator + torch.exp(paper_theta(u[i], v[k]) / tau)
            if intra_view:
                denominator = denominator + torch.exp(paper_theta(u[i], u[k]) / tau)
    return -torch.log(positive / denominator)


def paper_grace(u: Tensor, v: Tensor, tau: float = 0.5, intra_view: bool = True) -> Tensor:
    """J = 1/(2N) Σ_i (ℓ(u_i, v_i) + ℓ(v_i, u_i))."""
    n = u.size(0)
    return sum(paper_ell(u, v, i, tau, intra_view) + paper_ell(v, u, i, tau, intra_view) for i in range(n)) / (2 * n)


def test_projection_head_is_linear_elu_linear_back_to_the_embedding_size():
    head = ProjectionHead(8, 5)
    assert [type(m) for m in head] == [nn.Linear, nn.ELU, nn.Linear]
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (8, 5, 8)
    assert head(torch.randn(3, 8)).shape == (3, 8)
    assert list(weight_matrices(head)) == ["0.weight", "2.weight"]


@pytest.mark.parametrize("intra_view", [True, False])
def test_infonce_per_node_matches_the_paper(intra_view):
    u, v = views()
    for tau in (0.3, 1.0):
        value = infonce_per_node(u, v, tau, intra_view)
        reference = torch.stack([paper_ell(u, v, i, tau, intra_view) for i in range(u.size(0))])
        torch.testing.assert_close(value, reference, **TIGHT)
        for grad, reference_grad in zip(torch.autograd.grad(value.sum(), (u, v)),
                                        torch.autograd.grad(reference.sum(), (u, v))):
            torch.testing.assert_close(grad, reference_grad, **TIGHT)


@pytest.mark.parametrize("intra_view", [True, False])
def test_dense_loss_matches_the_paper(intra_view):
    assert_same_value_and_gradient(lambda u, v: grace_loss_dense(u, v, 0.4, intra_view),
                                   lambda u, v: paper_grace(u, v, 0.4, intra_view), *views())


def test_off_diagonal_logsumexp_skips_each_node_itself():
    s = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rows = torch.stack([torch.log(sum(torch.exp(s[i, k]) for k in range(4) if k != i)) for i in range(4)])
    columns = torch.stack([torch.log(sum(torch.exp(s[k, i]) for k in range(4) if k != i)) for i in range(4)])
    torch.testing.assert_close(off_diagonal_logsumexp(s), rows, **TIGHT)
    torch.testing.assert_close(off_diagonal_logsumexp(s, dim=0), columns, **TIGHT)


def test_row_blocks_cover_the_rows_once():
    for n, size in ((7, 3), (6, 3), (5, 1), (3, 10), (0, 4)):
        blocks = row_blocks(n, size)
        assert [i for start, stop in blocks for i in range(start, stop)] == list(range(n))
        assert all(0 < stop - start <= size for start, stop in blocks)
    with pytest.raises(ValueError, match="chunk_size"):
        row_blocks(5, 0)


def test_self_similarity_rows_are_a_block_of_the_gram_matrix_from_the_first_rows_column_without_self_pairs():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    block = self_similarity_rows(x, 2, 4, 0.5)
    expected = x @ x.t() / 0.5
    assert block.shape == (2, 3)  # rows 2-3, columns 2-4: the earlier columns are rows 0-1's
    for r, i in enumerate(range(2, 4)):
        for c, k in enumerate(range(2, 5)):
            assert block[r, c] == (float("-inf") if k == i else pytest.approx(float(expected[i, k]), rel=1e-12))


@pytest.mark.parametrize("kept", [True, False])
@pytest.mark.parametrize("intra_view", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 6, 7, 8, 50])
def test_chunked_loss_equals_the_plain_one_in_value_and_gradient(chunk_size, intra_view, kept):
    # N = 7: chunk sizes 2, 3, 4 and 6 leave a short last block; 8 and 50 exceed N.
    u, v = views(n=7, d=5, seed=chunk_size)
    max_kept_bytes = MAX_KEPT_BYTES if kept else 0
    assert_same_value_and_gradient(lambda u, v: grace_loss_chunked(u, v, 0.5, chunk_size, intra_view, max_kept_bytes),
                                   lambda u, v: grace_loss_dense(u, v, 0.5, intra_view), u, v)


class MatrixProducts(TorchDispatchMode):
    """Counts the similarity blocks computed (``aten.mm``; the gradients use ``addmm``)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten.mm.default
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("intra_view", [True, False])
def test_the_backward_reuses_the_forwards_blocks_only_if_all_fit_max_kept_bytes(intra_view, dtype):
    n, chunk_size = 50, 16  # 4 blocks; 50 x 50 similarity matrices, three of them with intra-view negatives
    fits = (3 if intra_view else 1) * n * n * (4 if dtype == torch.float32 else 8)
    u, v = (torch.randn(n, 8, dtype=dtype, generator=torch.Generator().manual_seed(s), requires_grad=True)
            for s in (0, 1))
    blocks = 4 * (3 if intra_view else 1)
    grads = {}
    for max_kept_bytes, backward_products in ((fits, 0), (fits - 1, blocks)):
        loss = grace_loss_chunked(u, v, 0.5, chunk_size, intra_view, max_kept_bytes)
        with MatrixProducts() as products:
            grads[max_kept_bytes] = torch.autograd.grad(loss, (u, v))
        assert products.count == backward_products
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-8) for a, b in zip(grads[fits], grads[fits - 1]))


class LiveBlocks(TorchDispatchMode):
    """The most similarity blocks (``aten.mm`` outputs) alive at one time."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[weakref.ref] = []
        self.most = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.mm.default:
            self.blocks.append(weakref.ref(out))
            self.most = max(self.most, sum(block() is not None for block in self.blocks))
        return out


def test_blocks_are_kept_only_for_a_backward_that_can_follow():
    n, chunk_size = 50, 16  # 4 blocks of S_uv, S_uu and S_vv
    u, v = (torch.randn(n, 8, generator=torch.Generator().manual_seed(s), requires_grad=True) for s in (0, 1))
    with LiveBlocks() as kept:
        grace_loss_chunked(u, v, 0.5, chunk_size).backward()
    assert kept.most == 12
    for max_kept_bytes, grad_mode in ((0, True), (MAX_KEPT_BYTES, False)):
        with LiveBlocks() as recomputed, torch.set_grad_enabled(grad_mode):
            loss = grace_loss_chunked(u, v, 0.5, chunk_size, max_kept_bytes=max_kept_bytes)
            if grad_mode:
                loss.backward()
        assert recomputed.most == 6  # a row block of each matrix, and the previous ones until they are replaced
    with LiveBlocks() as without_gradients:
        grace_loss_chunked(u.detach(), v.detach(), 0.5, chunk_size)
    assert without_gradients.most == 6


def test_a_second_backward_through_kept_blocks_gives_the_same_gradient():
    # The backward consumes the kept blocks in place, so a retained graph's second pass must recompute them.
    u, v = views(n=9, d=4)
    loss = grace_loss_chunked(u, v, 0.5, 4)
    first = torch.autograd.grad(loss, (u, v), retain_graph=True)
    second = torch.autograd.grad(loss, (u, v))
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(first, second))


def test_chunked_loss_matches_the_paper_and_passes_gradcheck():
    u, v = views(n=5, d=3)
    assert_same_value_and_gradient(lambda u, v: grace_loss_chunked(u, v, 0.7, 2), lambda u, v: paper_grace(u, v, 0.7),
                                   u, v)
    assert torch.autograd.gradcheck(lambda u, v: grace_loss_chunked(u, v, 0.7, 2), (u, v))


def test_edge_cases_two_nodes_and_one_node():
    u, v = views(n=2, d=3)
    for chunk_size in (1, 2, 5):
        assert_same_value_and_gradient(lambda u, v: grace_loss_chunked(u, v, 0.5, chunk_size), paper_grace, u, v)
    # A single node has no negatives: its positive is the whole denominator.
    u, v = views(n=1, d=3)
    assert grace_loss_chunked(u, v, 0.5, 1).item() == pytest.approx(0.0, abs=1e-15)
    assert grace_loss_dense(u, v).item() == pytest.approx(0.0, abs=1e-15)


def test_chunked_loss_with_repeated_nodes_and_a_small_temperature_equals_the_paper():
    # Repeated rows give the largest off-diagonal similarities (cos = 1), in the diagonal block and across blocks.
    u, v = views(n=7, d=3)
    u, v = (torch.cat([t[:4], t[:3]]).detach().requires_grad_() for t in (u, v))
    for chunk_size in (1, 3, 4):
        assert_same_value_and_gradient(lambda u, v: grace_loss_chunked(u, v, 0.05, chunk_size),
                                       lambda u, v: paper_grace(u, v, 0.05), u, v)


def test_small_temperature_is_stable_in_float32():
    # cos/τ up to 100: e^100 overflows float32, so this needs log-sum-exp throughout.
    u, v = (t.detach().float().requires_grad_() for t in views(n=9, d=4))
    reference = grace_loss_dense(u.detach().double(), v.detach().double(), 0.01)
    for chunk_size in (None, 4):
        loss = grace_loss(u, v, 0.01, chunk_size)
        loss.backward()
        assert torch.isfinite(u.grad).all() and torch.isfinite(v.grad).all()
        assert loss.item() == pytest.approx(reference.item(), rel=1e-4)
        u.grad = v.grad = None


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any ATen op produces (forward and backward alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        sizes = [t.numel() for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
        self.numel = max([self.numel, *sizes])
        return out


def test_chunked_loss_never_allocates_an_n_by_n_tensor():
    n, chunk_size = 600, 64
    u, v = (torch.randn(n, 8, generator=torch.Generator().manual_seed(s), requires_grad=True) for s in (0, 1))
    with LargestTensor() as chunked:  # above max_kept_bytes, as ogbn-arxiv
        grace_loss_chunked(u, v, 0.5, chunk_size, max_kept_bytes=0).backward()
    assert chunked.numel == chunk_size * n  # one block of similarities, in forward and backward
    with LargestTensor() as dense:  # the probe does see the plain path's N x N matrices
        grace_loss_dense(u, v).backward()
    assert dense.numel == n * n


def test_chunked_loss_is_deterministic():
    u, v = views(n=20, d=6)
    first = grace_loss_chunked(u.float(), v.float(), 0.5, 7)
    first_grads = torch.autograd.grad(first, (u, v))
    second = grace_loss_chunked(u.float(), v.float(), 0.5, 7)
    second_grads = torch.autograd.grad(second, (u, v))
    assert torch.equal(first, second)
    assert all(torch.equal(a, b) for a, b in zip(first_grads, second_grads))


def test_without_intra_view_negatives_it_is_the_toys_infonce():
    z1, z2 = toy.make_points(50, 16, seed=0), toy.make_points(50, 16, seed=1)
    expected = toy.infonce_loss(z1, z2, toy.INFONCE_TEMPERATURE)
    for chunk_size in (None, 16):
        actual = grace_loss(z1, z2, toy.INFONCE_TEMPERATURE, chunk_size, intra_view_negatives=False)
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def test_grace_objective_projects_then_scores_the_seeds():
    torch.manual_seed(0)
    objective = GRACELoss(6, projection_hidden=10, temperature=0.4).double()
    h1, h2 = views(n=9, d=6)
    head = objective.head
    assert_same_value_and_gradient(lambda a, b: objective(a, b, num_seeds=5),
                                   lambda a, b: paper_grace(head(a[:5]), head(b[:5]), 0.4), h1, h2)
    assert head[0].out_features == 10 and GRACELoss(6).head[0].out_features == 6


def test_grace_objective_chunked_and_plain_give_the_same_head_gradients():
    torch.manual_seed(0)
    chunked = GRACELoss(6, chunk_size=4).double()
    plain = GRACELoss(6, chunk_size=None).double()
    plain.load_state_dict(chunked.state_dict())
    h1, h2 = views(n=11, d=6)
    chunked(h1, h2).backward()
    plain(h1, h2).backward()
    for a, b in zip(chunked.head.parameters(), plain.head.parameters()):
        torch.testing.assert_close(a.grad, b.grad, **TIGHT)


def test_grace_objective_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        GRACELoss(4, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        GRACELoss(4, chunk_size=0)


# --- VICReg (Bardes et al., ICLR 2022), transcribed from the official main_vicreg.py and the paper --

def column_mean(z: Tensor, j: int) -> Tensor:
    return sum(z[i, j] for i in range(z.size(0))) / z.size(0)


def column_covariance(z: Tensor, j: int, k: int) -> Tensor:
    """Unbiased covariance of columns j and k over the rows."""
    mj, mk = column_mean(z, j), column_mean(z, k)
    return sum((z[i, j] - mj) * (z[i, k] - mk) for i in range(z.size(0))) / (z.size(0) - 1)


def paper_v(z: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """v(Z) = 1/d Σ_j max(0, γ − sqrt(Var(z^j) + ε))."""
    d = z.size(1)
    return sum(torch.clamp(gamma - torch.sqrt(column_covariance(z, j, j) + eps), min=0) for j in range(d)) / d


def paper_c(z: Tensor) -> Tensor:
    """c(Z) = 1/d Σ_{i≠j} C(Z)_ij²."""
    d = z.size(1)
    return sum(column_covariance(z, j, k) ** 2 for j in range(d) for k in range(d) if j != k) / d


def paper_s(z1: Tensor, z2: Tensor) -> Tensor:
    """s(Z, Z') = 1/n Σ_i ‖z_i − z'_i‖² (the paper's invariance: summed over dimensions)."""
    n, d = z1.shape
    return sum((z1[i, j] - z2[i, j]) ** 2 for i in range(n) for j in range(d)) / n


def paper_vicreg(z1: Tensor, z2: Tensor, lam: float, mu: float, nu: float) -> Tensor:
    """ℓ(Z, Z') = λ s(Z, Z') + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')]."""
    return lam * paper_s(z1, z2) + mu * (paper_v(z1) + paper_v(z2)) + nu * (paper_c(z1) + paper_c(z2))


def official_vicreg(x: Tensor, y: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                    cov_coeff: float = 1.0) -> Tensor:
    """main_vicreg.py: mse_loss (a mean over all entries), (std_loss_x + std_loss_y) / 2, cov summed."""
    n, d = x.shape
    repr_loss = paper_s(x, y) / d
    std_loss = paper_v(x) / 2 + paper_v(y) / 2
    cov_loss = paper_c(x) + paper_c(y)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def spread_views(n: int = 7, d: int = 4) -> tuple[Tensor, Tensor]:
    """Columns with std well below and well above γ = 1, so the hinge is both active and inactive."""
    u, v = views(n, d)
    scale = torch.tensor([0.2, 3.0, 0.5, 4.0][:d], dtype=torch.float64)
    return (u.detach() * scale).requires_grad_(), (v.detach() * scale).requires_grad_()


def test_expander_is_linear_batchnorm_relu_then_a_linear_without_bias():
    expander = Expander(6, [12, 10, 8])
    assert [type(m) for m in expander] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    assert expander[-1].bias is None and expander[-1].out_features == 8
    assert expander(torch.randn(5, 6)).shape == (5, 8)
    assert list(weight_matrices(expander)) == ["0.weight", "3.weight", "6.weight"]  # batch norm's are 1-D
    assert [type(m) for m in Expander(6, [8])] == [nn.Linear]
    with pytest.raises(ValueError, match="at least one layer"):
        Expander(6, [])


def test_variance_term_matches_the_paper():
    z, _ = spread_views()
    assert_same_value_and_gradient(variance_term, paper_v, z)
    assert variance_term(z[:, [1, 3]]).item() == 0.0  # std > γ: no penalty


def test_covariance_term_matches_the_paper():
    z, _ = spread_views()
    assert_same_value_and_gradient(covariance_term, paper_c, z)


def test_invariance_term_is_the_mean_squared_difference():
    assert_same_value_and_gradient(invariance_term, lambda a, b: paper_s(a, b) / a.size(1), *spread_views())


def test_vicreg_loss_matches_the_official_code():
    assert_same_value_and_gradient(vicreg_loss, official_vicreg, *spread_views())
    assert_same_value_and_gradient(lambda a, b: vicreg_loss(a, b, 2.0, 3.0, 0.5),
                                   lambda a, b: official_vicreg(a, b, 2.0, 3.0, 0.5), *spread_views())


def test_vicreg_loss_is_the_papers_formula_with_invariance_over_d_and_variance_halved():
    z1, z2 = spread_views()
    d = z1.size(1)
    assert_same_value_and_gradient(lambda a, b: vicreg_loss(a, b, 25.0, 25.0, 1.0),
                                   lambda a, b: paper_vicreg(a, b, 25.0 / d, 12.5, 1.0), z1, z2)


def test_vicreg_loss_reproduces_the_toys_vicreg_exactly():
    # The toy sums the two variance terms with weight 10; averaging them needs weight 20.
    z1, z2 = toy.make_points(100, 16, seed=0), toy.make_points(100, 16, seed=1) * 0.5
    variance, invariance, covariance = toy.VICREG_COEFFICIENTS
    assert torch.equal(vicreg_loss(z1, z2, invariance, 2 * variance, covariance), toy.vicreg_loss(z1, z2))


def test_vicreg_edge_cases():
    z1, z2 = spread_views(n=2)
    assert_same_value_and_gradient(vicreg_loss, official_vicreg, z1, z2)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        vicreg_loss(z1[:1], z2[:1])


def test_vicreg_objective_expands_then_scores_the_seeds():
    torch.manual_seed(0)
    objective = VICRegLoss(4, expander_layers=[6, 5], invariance_weight=3.0, variance_weight=2.0,
                           covariance_weight=0.5).double()
    h1, h2 = views(n=9, d=4)
    head = objective.head
    assert_same_value_and_gradient(lambda a, b: objective(a, b, num_seeds=6),
                                   lambda a, b: official_vicreg(head(a[:6]), head(b[:6]), 3.0, 2.0, 0.5), h1, h2)
    objective(h1, h2).backward()
    assert all(p.grad is not None for p in head.parameters())


# --- CCA-SSG (Zhang et al., NeurIPS 2021), transcribed from the paper and the official main.py --

def paper_standardize(h: Tensor) -> Tensor:
    """Z̃ = (H − μ(H)) / σ(H) / √N, column by column, σ unbiased as the official model.py."""
    n, d = h.shape
    columns = []
    for j in range(d):
        std = torch.sqrt(column_covariance(h, j, j))
        columns.append(torch.stack([(h[i, j] - column_mean(h, j)) / std / math.sqrt(n) for i in range(n)]))
    return torch.stack(columns, dim=1)


def gram_minus_identity_squared(z: Tensor) -> Tensor:
    n, d = z.shape
    return sum((sum(z[i, j] * z[i, k] for i in range(n)) - (1.0 if j == k else 0.0)) ** 2
               for j in range(d) for k in range(d))


def paper_cca_ssg(h1: Tensor, h2: Tensor, lambd: float) -> Tensor:
    """L = ‖Z̃_A − Z̃_B‖_F² + λ (‖Z̃_Aᵀ Z̃_A − I‖_F² + ‖Z̃_Bᵀ Z̃_B − I‖_F²)."""
    za, zb = paper_standardize(h1), paper_standardize(h2)
    n, d = za.shape
    invariance = sum((za[i, j] - zb[i, j]) ** 2 for i in range(n) for j in range(d))
    return invariance + lambd * (gram_minus_identity_squared(za) + gram_minus_identity_squared(zb))


def official_cca_ssg(h1: Tensor, h2: Tensor, lambd: float) -> Tensor:
    """main.py: z = (h − mean)/std; c = z1ᵀz2/N, c1 and c2 likewise;
    loss = −tr(c) + λ(‖I − c1‖² + ‖I − c2‖²)."""
    z1, z2 = (paper_standardize(h) * math.sqrt(h.size(0)) for h in (h1, h2))
    n, d = z1.shape
    loss_inv = -sum(sum(z1[i, j] * z2[i, j] for i in range(n)) / n for j in range(d))
    return loss_inv + lambd * (gram_minus_identity_squared(z1 / math.sqrt(n))
                               + gram_minus_identity_squared(z2 / math.sqrt(n)))


def test_standardize_matches_the_paper():
    h, _ = views(n=6, d=3)
    assert_same_value_and_gradient(standardize, paper_standardize, h)
    z = standardize(h)
    torch.testing.assert_close(z.mean(dim=0), torch.zeros(3, dtype=torch.float64), **TIGHT)
    torch.testing.assert_close((z.t() @ z).diagonal(), torch.full((3,), 5 / 6, dtype=torch.float64), **TIGHT)


def test_cca_terms_match_their_definitions():
    za, zb = (standardize(h) for h in views(n=6, d=3))
    assert_same_value_and_gradient(cca_invariance_term, lambda a, b: ((a - b) ** 2).sum() / 2, za, zb)
    assert_same_value_and_gradient(decorrelation_term, gram_minus_identity_squared, za)


@pytest.mark.parametrize("lambd", [1e-3, 0.5])
def test_cca_ssg_loss_is_half_the_papers_with_twice_lambda(lambd):
    assert_same_value_and_gradient(lambda a, b: cca_ssg_loss(a, b, lambd),
                                   lambda a, b: paper_cca_ssg(a, b, 2 * lambd) / 2, *views(n=6, d=3))


@pytest.mark.parametrize("lambd", [1e-3, 0.5])
def test_cca_ssg_loss_has_the_official_codes_gradient_and_value_up_to_a_constant(lambd):
    n, d = 6, 3
    shift = d * (n - 1) / n  # ½(‖Z̃_A‖² + ‖Z̃_B‖²), fixed by the standardization
    assert_same_value_and_gradient(lambda a, b: cca_ssg_loss(a, b, lambd),
                                   lambda a, b: official_cca_ssg(a, b, lambd) + shift, *views(n=n, d=d))


def test_cca_ssg_edge_cases():
    h1, h2 = views(n=2, d=3)
    assert_same_value_and_gradient(lambda a, b: cca_ssg_loss(a, b, 1e-3),
                                   lambda a, b: paper_cca_ssg(a, b, 2e-3) / 2, h1, h2)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        cca_ssg_loss(h1[:1], h2[:1])


def test_cca_ssg_counts_a_dead_unit_as_zeros_not_nan():
    """A ReLU unit that is 0 on every node has std 0: the official code's loss is NaN there. Here the
    column standardizes to zeros, adds only its decorrelation diagonal (0 − 1)² per view, and passes
    no gradient, so the other columns get the gradient they would get without it."""
    h1, h2 = (h.detach().requires_grad_(True) for h in views(n=6, d=3))
    without = cca_ssg_loss(h1, h2, 0.1)
    without_grads = torch.autograd.grad(without, (h1, h2))
    for constant in (0.0, 1 / 3):  # a dead ReLU unit; a constant whose float mean misses it
        dead = torch.full((6, 1), constant, dtype=h1.dtype)
        with_dead = [torch.cat([h[:, :1], dead, h[:, 1:]], dim=1).detach().requires_grad_(True) for h in (h1, h2)]
        loss = cca_ssg_loss(*with_dead, 0.1)
        torch.testing.assert_close(loss, without + 2 * 0.1, **TIGHT)
        for h, grad, grad_without in zip(with_dead, torch.autograd.grad(loss, with_dead), without_grads):
            assert not grad[:, 1].any() and not standardize(h)[:, 1].any()
            torch.testing.assert_close(grad[:, [0, 2, 3]], grad_without, **TIGHT)
    # Constant in one view only: that view's column is zeros and still passes no gradient.
    one_dead = torch.cat([h1[:, :1], torch.zeros(6, 1, dtype=h1.dtype), h1[:, 1:]], dim=1).detach().requires_grad_(True)
    other = torch.cat([h2[:, :1], h2[:, :1] ** 2, h2[:, 1:]], dim=1).detach()
    cca_ssg_loss(one_dead, other, 0.1).backward()
    assert torch.isfinite(one_dead.grad).all() and not one_dead.grad[:, 1].any()


def test_cca_ssg_objective_has_no_head_and_scores_the_seeds():
    objective = CCASSGLoss(lambd=0.01)
    assert objective.head is None and not list(objective.parameters())
    assert_same_value_and_gradient(lambda a, b: objective(a, b, num_seeds=5),
                                   lambda a, b: cca_ssg_loss(a[:5], b[:5], 0.01), *views(n=9, d=3))


# --- shared interface -----------------------------------------------------------------------------

OBJECTIVES = {"grace": lambda: GRACELoss(4, temperature=0.5, chunk_size=3),
              "vicreg": lambda: VICRegLoss(4, expander_layers=[8, 8]),
              "cca-ssg": lambda: CCASSGLoss()}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_takes_two_views_and_returns_a_deterministic_scalar(name):
    torch.manual_seed(0)
    objective = OBJECTIVES[name]().double()
    h1, h2 = views(n=10, d=4)
    loss = objective(h1, h2)
    assert loss.shape == () and torch.isfinite(loss)
    assert torch.equal(loss, objective(h1, h2))
    grads = torch.autograd.grad(loss, (h1, h2))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert objective.head is None or weight_matrices(objective.head)


@pytest.mark.parametrize("name", ["grace", "vicreg"])
def test_reset_parameters_redraws_the_head(name):
    torch.manual_seed(0)
    objective = OBJECTIVES[name]()
    before = {k: v.clone() for k, v in objective.state_dict().items()}
    objective.reset_parameters()
    changed = [k for k, v in objective.state_dict().items() if v.dtype.is_floating_point and v.dim() == 2
               and not torch.equal(v, before[k])]
    assert changed == [f"head.{name}" for name in weight_matrices(objective.head)]
