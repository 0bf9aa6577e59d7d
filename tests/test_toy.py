"""The synthetic collapse experiments: the data, each loss, WERank's mechanism, the sweep."""

import json
import math

import pytest
import torch

from graphssl import toy
from graphssl.cli import main
from graphssl.config import TOY_LOSSES
from graphssl.regularizers import werank_penalty


def test_points_have_exactly_identity_covariance():
    x = toy.make_points()
    assert x.shape == (1000, 16)
    torch.testing.assert_close(x.mean(0), torch.zeros(16), atol=1e-6, rtol=0)
    torch.testing.assert_close(x.t() @ x / 1000, torch.eye(16), atol=1e-5, rtol=0)


def test_noise_lives_only_on_the_last_eight_coordinates():
    torch.manual_seed(0)
    x = toy.make_points()
    noise = toy.noisy_view(x, 0.5) - x
    assert torch.equal(noise[:, :8], torch.zeros(1000, 8))
    torch.testing.assert_close(noise[:, 8:].var(0), torch.full((8,), 0.5), atol=0.08, rtol=0)


def test_werank_alone_drives_every_weight_singular_value_to_one():
    torch.manual_seed(0)
    network = toy.linear_network(3)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.05)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 1500)
    for _ in range(1500):
        optimizer.zero_grad()
        werank_penalty([layer.weight for layer in network], 1.0).backward()
        optimizer.step()
        decay.step()
    for layer in network:
        assert (torch.linalg.svdvals(layer.weight.detach()) - 1).abs().max() < 1e-3


@pytest.mark.parametrize("loss", TOY_LOSSES)
def test_each_loss_decreases(loss):
    result = toy.train_toy(toy.ToyConfig(loss, layers=2, werank=0.0, k=0.1, epochs=80, log_every=10))
    losses = [h["loss"] for h in result["history"][1:]]
    assert len(losses) == 8 and losses[-1] < losses[0] and min(losses[4:]) < min(losses[:4])


def test_toy_command_writes_spectra_and_png(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["toy", "--loss", "vicreg", "--layers", "2", "--werank", "0.1", "--k", "0.1", "--epochs", "50",
                 "--out", str(out)]) == 0
    data = json.loads((out / "spectra.json").read_text())
    assert len(data["final"]["weights"]) == 2 and len(data["final"]["weights"][0]) == 16
    assert len(data["final"]["embedding"]) == 16
    assert data["final"]["embedding"] == sorted(data["final"]["embedding"], reverse=True)
    assert (out / "spectra.png").stat().st_size > 1000
    assert "smallest weight singular value" in capsys.readouterr().out
    assert main(["toy", "--loss", "vicreg", "--layers", "0", "--out", str(out)]) == 2


def test_sweep_writes_its_table(tmp_path, monkeypatch):
    monkeypatch.setattr(toy, "SWEEP_DEPTHS", (1, 2))
    monkeypatch.setattr(toy, "SWEEP_KS", (0.1, 1.0))
    readme = toy.run_sweep(tmp_path, epochs=20, progress=False, losses=("vicreg", "ema"))
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n| vicreg |") + table.count("\n| ema |") == 2 * 2 * 3  # losses x WERank x runs
    assert "fig2_embedding_vs_depth.png" in readme.read_text() and "--losses vicreg ema" in readme.read_text()
    for png in ("fig2_embedding_vs_depth.png", "fig3_weights_vs_k.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_vicreg_is_the_papers_equation_6_with_the_documented_weights():
    """Bardes et al., ICLR 2022: v (eq. 1-2), c (eq. 3-4), s (eq. 5) written out from their definitions and
    combined as eq. 6, λ s + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')], with s per coordinate (toy.vicreg_loss)."""
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.1, 0.3, 0.6, 0.9, 1.2, 2.0], dtype=torch.float64)  # some dimensions below std 1
    z1 = torch.randn(50, 6, generator=g, dtype=torch.float64) * scales
    z2 = z1 + 0.2 * torch.randn(50, 6, generator=g, dtype=torch.float64)
    n, d = z1.shape

    def v(z):
        return sum(max(0.0, 1 - math.sqrt(float(z[:, j].var()) + 1e-4)) for j in range(d)) / d

    def c(z):
        centered = z - z.mean(dim=0)
        cov = centered.t() @ centered / (n - 1)
        return float(sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j)) / d

    s = float(sum(((z1[i] - z2[i]) ** 2).sum() for i in range(n))) / n
    mu, lam, nu = toy.VICREG_COEFFICIENTS
    assert v(z1) > 0 and v(z2) > 0
    assert float(toy.vicreg_loss(z1, z2)) == pytest.approx(lam * s / d + mu * (v(z1) + v(z2)) + nu * (c(z1) + c(z2)))
    # The official code's weighting averages the two variance terms: half of ours.
    official = lam * s / d + mu * (v(z1) + v(z2)) / 2 + nu * (c(z1) + c(z2))
    assert float(toy.vicreg_loss(z1, z2)) - official == pytest.approx(mu * (v(z1) + v(z2)) / 2)


@pytest.mark.parametrize("loss, lr", [("infonce", "1e30"), ("vicreg", "5")])
def test_a_diverging_toy_run_exits_3_in_one_line_and_leaves_no_folder(loss, lr, tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["toy", "--loss", loss, "--lr", lr, "--epochs", "5", "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged at epoch" in err and "Traceback" not in err
    assert not out.exists()
