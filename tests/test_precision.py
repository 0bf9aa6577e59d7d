"""train.precision: bf16-mixed keeps what must stay float32 in float32, records itself, resumes exactly; bad values
are one line and exit 2; the custom autograd functions give float32-close gradients under bfloat16 autocast."""

import json
import warnings

import pytest
import torch
from torch import nn

from graphssl import regularizers
from graphssl.bgrl import cosine_loss, ema_update
from graphssl.cli import main
from graphssl.config import load_config
from graphssl.encoders import PReLU, gcn_adjacency
from graphssl.grace import grace_loss_chunked
from graphssl.model import build_model
from graphssl.precision import matmul_precision
from graphssl.regularizers import werank_terms
from graphssl.sparse import propagate, sparse_linear
from graphssl.train import Pretrainer
from test_encoders import random_graph

# This project's CPUs have no native bfloat16 products, and graphssl says so (tested below).
pytestmark = pytest.mark.filterwarnings("ignore:train.precision bf16-mixed")

# Small enough to train in seconds even where bfloat16 matrix products are slow (CPUs without AVX-512).
SMALL = {"encoder.layers": [32, 16], "predictor.hidden": 32, "vicreg.expander_layers": [32, 32],
         "grace.projection_hidden": 16, "train.spectra_every": 0, "train.log_every": 1}
BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def small_config(**overrides):
    return load_config(None, {**SMALL, **overrides})


@pytest.mark.parametrize("batch_size", [0, 512], ids=["full-batch", "mini-batch"])
@pytest.mark.parametrize("method", ["bgrl", "grace", "vicreg", "cca-ssg"])
def test_under_bf16_mixed_parameters_gradients_optimizer_state_and_target_stay_float32(method, batch_size, cora,
                                                                                      monkeypatch):
    grams = []

    def recording(weight, gram_of_smaller_side=regularizers.gram_of_smaller_side):
        grams.append(gram_of_smaller_side(weight))
        return grams[-1]

    monkeypatch.setattr(regularizers, "gram_of_smaller_side", recording)
    config = small_config(method=method, **{"werank.alpha": 0.1, "train.precision": "bf16-mixed",
                                            "train.batch_size": batch_size})
    torch.manual_seed(0)
    trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    seen = []

    def recording_linear(*args, linear=torch.nn.functional.linear, **kwargs):
        seen.append(linear(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(torch.nn.functional, "linear", recording_linear)
    trainer.step(0)
    assert seen and all(out.dtype == torch.bfloat16 for out in seen)  # the dense products: autocast is on
    assert grams and all(gram.dtype == torch.float32 for gram in grams)  # WERank's Gram matrices
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # the EMA target's too, for BGRL
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainer.model.parameters())
    state = [value for per_parameter in trainer.optimizer.state.values() for value in per_parameter.values()]
    assert state and all(value.dtype == torch.float32 for value in state)


def test_werank_and_the_ema_update_are_the_same_inside_autocast():
    torch.manual_seed(0)
    weights = [torch.randn(24, 40, requires_grad=True), torch.randn(16, 24, requires_grad=True)]
    total, terms = werank_terms(weights, 0.1)
    with torch.autocast(**BF16):
        total_autocast, terms_autocast = werank_terms(weights, 0.1)
    assert total_autocast.dtype == torch.float32 and torch.equal(total, total_autocast)
    assert all(torch.equal(a, b) for a, b in zip(terms, terms_autocast))
    teacher, student = nn.Linear(8, 8), nn.Linear(8, 8)
    expected = [t.detach().lerp(s.detach(), 0.01) for t, s in zip(teacher.parameters(), student.parameters())]
    with torch.autocast(**BF16):
        ema_update(teacher, student, 0.99)
    assert all(p.dtype == torch.float32 and torch.equal(p, e) for p, e in zip(teacher.parameters(), expected))


def _gradients(function, inputs, autocast):
    """function's output and the gradients of a fixed projection of it with respect to each input."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    with torch.autocast(**BF16, enabled=autocast):
        out = function(*leaves)
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    (out.float() * weights).sum().backward()
    return out, [leaf.grad for leaf in leaves]


def _custom_functions():
    """(name, function, inputs) for each custom autograd function, inputs as autocast hands them over, split into
    those that compute in float32 under autocast and those that compute in their input's dtype."""
    torch.manual_seed(0)
    adj = gcn_adjacency(random_graph(), 300)
    features = (torch.rand(300, 40) < 0.1).float().to_sparse_csr()
    mask = (torch.rand(40) > 0.3).float()
    target = torch.randn(300, 16)
    prelu = PReLU()
    in_float32 = [("sparse features", lambda w: sparse_linear(features, w, mask), [torch.randn(16, 40)]),
                  ("cosine loss", lambda p: cosine_loss(p, target), [torch.randn(300, 16)]),
                  ("werank", lambda w: werank_terms([w], 0.1)[0], [torch.randn(16, 40)]),
                  ("grace", lambda u, v: grace_loss_chunked(u, v, 0.5, chunk_size=64),
                   [torch.randn(300, 16), torch.randn(300, 16)])]
    in_input_dtype = [("propagation", lambda h: propagate(adj, h), [torch.randn(300, 16)]),
                      ("prelu", prelu, [torch.randn(300, 16)])]
    return in_float32, in_input_dtype


IN_FLOAT32, IN_INPUT_DTYPE = _custom_functions()


def _check_under_autocast(function, inputs, bf16_output_dtype):
    out, grads = _gradients(function, inputs, autocast=False)
    # Handed float32 inputs inside autocast they compute exactly what they compute outside it.
    out_autocast, grads_autocast = _gradients(function, inputs, autocast=True)
    assert out_autocast.dtype == torch.float32 and torch.equal(out, out_autocast)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_autocast))
    # Handed bfloat16 inputs (a product computed under autocast), they return each input's gradient in bfloat16,
    # equal to the float32 one up to bfloat16's rounding (8 bits of mantissa, ~0.4%).
    out_bf16, grads_bf16 = _gradients(function, [x.to(torch.bfloat16) for x in inputs], autocast=True)
    assert out_bf16.dtype == bf16_output_dtype
    torch.testing.assert_close(out_bf16.float(), out, rtol=2e-2, atol=2e-2 * out.abs().max().item())
    for a, b in zip(grads, grads_bf16):
        assert b.dtype == torch.bfloat16
        torch.testing.assert_close(b.float(), a, rtol=3e-2, atol=3e-2 * a.abs().max().item())


@pytest.mark.parametrize("name, function, inputs", IN_FLOAT32, ids=[c[0] for c in IN_FLOAT32])
def test_custom_autograd_functions_compute_in_float32_under_autocast(name, function, inputs):
    _check_under_autocast(function, inputs, bf16_output_dtype=torch.float32)


@pytest.mark.parametrize("name, function, inputs", IN_INPUT_DTYPE, ids=[c[0] for c in IN_INPUT_DTYPE])
def test_propagation_and_prelu_compute_in_their_input_dtype_under_autocast(name, function, inputs):
    _check_under_autocast(function, inputs, bf16_output_dtype=torch.bfloat16)


def test_prelu_slope_gradient_stays_float32_and_close_under_bf16():
    slopes = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        prelu, x = PReLU(), torch.randn(300, 16).to(dtype)
        with torch.autocast(**BF16):
            prelu(x).float().mul(torch.linspace(-1, 1, x.numel()).view_as(x)).sum().backward()
        slopes[dtype] = prelu.weight.grad
    assert slopes[torch.bfloat16].dtype == torch.float32
    torch.testing.assert_close(slopes[torch.bfloat16], slopes[torch.float32], rtol=2e-2, atol=1e-3)


def test_bf16_propagation_sums_in_float32_both_ways():
    # A hub with 1000 neighbours of weight 1: summed in bfloat16 the total would stop at 256 (256 + 1 rounds back
    # to 256 with 8 bits of mantissa); summed in float32 and rounded once it is 1000, exact in bfloat16.
    leaves = torch.arange(1, 1001)
    edges = torch.stack([torch.cat([torch.zeros(1000, dtype=torch.long), leaves]),
                         torch.cat([leaves, torch.zeros(1000, dtype=torch.long)])])
    adj = torch.sparse_coo_tensor(edges, torch.ones(2000), (1001, 1001)).to_sparse_csr()
    x = torch.ones(1001, 4, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast(**BF16):
        out = propagate(adj, x)
    assert out.dtype == torch.bfloat16 and torch.equal(out[0], torch.full((4,), 1000.0, dtype=torch.bfloat16))
    out.backward(torch.ones_like(out))
    assert x.grad.dtype == torch.bfloat16 and x.grad[0].eq(1000).all()


def test_a_bf16_mixed_step_gives_gradients_close_to_float32(cora):
    grads = {}
    for precision in ("32", "bf16-mixed"):
        config = small_config(**{"werank.alpha": 0.1, "train.precision": precision})
        torch.manual_seed(0)
        trainer = Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
        trainer.optimizer.step = lambda: None  # keep the gradients of step 0
        trainer.step(0)
        grads[precision] = torch.cat([p.grad.flatten() for p in trainer.model.trainable_parameters()])
    cosine = torch.nn.functional.cosine_similarity(grads["32"], grads["bf16-mixed"], dim=0)
    assert cosine > 0.999


def test_precision_is_recorded_and_a_bf16_mixed_run_resumes_exactly(tmp_path, data_root, monkeypatch, capsys):
    common = ["--dataset", "cora", "--data-root", str(data_root), "--precision", "bf16-mixed", "--steps", "6",
              "--checkpoint-every", "3", "--werank", "0.1", "--quiet",
              *[item for key, value in SMALL.items() for item in ("--set", f"{key}={json.dumps(value)}")]]
    assert main(["train", *common, "--out", str(tmp_path / "full")]) == 0
    step = Pretrainer.step

    def stop_at_step_4(self, index):
        if index == 4:
            raise KeyboardInterrupt
        return step(self, index)

    monkeypatch.setattr(Pretrainer, "step", stop_at_step_4)
    assert main(["train", *common, "--out", str(tmp_path / "killed")]) == 130
    monkeypatch.setattr(Pretrainer, "step", step)
    assert main(["train", "--resume", str(tmp_path / "killed"), "--data-root", str(data_root), "--quiet"]) == 0
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(tensor, resumed["model"][name]) for name, tensor in full["model"].items())
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert metrics["precision"] == "bf16-mixed"
    assert metrics["final_loss"] == json.loads((tmp_path / "full" / "metrics.json").read_text())["final_loss"]
    assert all(tensor.dtype == torch.float32 for tensor in full["model"].values() if tensor.is_floating_point())


@pytest.mark.parametrize("args, message", [
    (["--precision", "fp16"], "config key 'train.precision' is 'fp16'; it must be one of 32, bf16-mixed, tf32"),
    (["--set", "train.precision=16"], "config key 'train.precision' is '16'; it must be one of 32, bf16-mixed"),
    (["--precision", "tf32", "--device", "cpu"], "train.precision tf32 is a CUDA setting"),
])
def test_a_bad_precision_is_one_line_and_exit_2_before_any_folder(args, message, tmp_path, data_root, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cora", "--data-root", str(data_root), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_precision_32_from_yaml_or_set_is_the_name_32(tmp_path):
    assert load_config(None, {"train.precision": 32})["train"]["precision"] == "32"
    path = tmp_path / "c.yaml"
    path.write_text("train: {precision: 32}\n")
    assert load_config(path) == load_config(None)


def test_bf16_mixed_warns_where_bfloat16_products_are_slow(cora, monkeypatch):
    config = small_config(**{"train.precision": "bf16-mixed"})
    monkeypatch.setattr("graphssl.precision.bf16_is_native", lambda device: False)
    with pytest.warns(UserWarning, match="no native bfloat16 matrix products"):
        Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))
    monkeypatch.setattr("graphssl.precision.bf16_is_native", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pretrainer(build_model(config, cora.num_features), cora, config, torch.device("cpu"))


def test_tf32_sets_cuda_matmul_precision_only_inside_its_context():
    before = torch.backends.cuda.matmul.fp32_precision
    with matmul_precision("tf32", torch.device("cuda")):  # the flag is set without a GPU being touched
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.backends.cuda.matmul.fp32_precision == before
    for precision, device in (("32", "cuda"), ("bf16-mixed", "cuda"), ("tf32", "cpu")):
        with matmul_precision(precision, torch.device(device)):
            assert torch.backends.cuda.matmul.fp32_precision == before
