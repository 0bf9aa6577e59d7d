"""Building a self-supervised model, and its WERank, from a config.

The one place where a config becomes modules: the training loop, the run-folder
reader (which rebuilds a trained model from its checkpoint) and the benchmarks
all call :func:`build_model`, so none of them imports another for it.  Methods
are chosen by name (the config's ``method``) in :data:`METHODS`.

Every model has the same face to the rest of graphssl: ``encoder`` (the GCN
whose embeddings are probed), ``head`` (the module between the encoder and the
loss that ``werank.scope: encoder+head`` regularizes too, or ``None``) and
``trainable_parameters()``.  BGRL (:class:`graphssl.bgrl.BGRL`) is trained one
view at a time against its EMA target; GRACE, VICReg and CCA-SSG score both
views' embeddings at once (:class:`TwoViewModel`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Union

from torch import Tensor, nn

from .bgrl import BGRL
from .cca_ssg import CCASSGLoss
from .encoders import GCNEncoder, Predictor
from .errors import GraphSSLError
from .grace import GRACELoss
from .regularizers import WERank, weight_matrices
from .vicreg import VICRegLoss


class TwoViewModel(nn.Module):
    """A shared encoder and an objective scored on its embeddings of two views (GRACE, VICReg, CCA-SSG).

    Args:
        encoder: called as ``encoder(x, adj_t, feature_mask)``.
        objective: called as ``objective(h1, h2, num_seeds)``; its ``head`` (projection
            head, expander, or ``None``) is part of the model.

    Example:
        >>> import torch
        >>> from graphssl.cca_ssg import CCASSGLoss
        >>> from graphssl.encoders import gcn_adjacency
        >>> model = TwoViewModel(GCNEncoder(16, [32, 8]), CCASSGLoss())
        >>> x, adj = torch.randn(5, 16), gcn_adjacency(torch.tensor([[0, 1], [1, 0]]), 5)
        >>> model(x, adj, None, adj, None).backward()
    """

    def __init__(self, encoder: nn.Module, objective: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.objective = objective

    @property
    def head(self) -> nn.Module | None:
        """The objective's projection head or expander (``None`` for CCA-SSG)."""
        return self.objective.head

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """What the optimizer updates: the encoder and the head."""
        return self.parameters()

    def forward(self, x: Tensor, adj_1: Tensor, mask_1: Tensor | None, adj_2: Tensor, mask_2: Tensor | None,
                num_seeds: int | None = None) -> Tensor:
        """The loss of two views (adjacency and feature mask each) of ``x``, scored on the first
        ``num_seeds`` nodes (a mini-batch's seeds, compared with each other; ``None``: all nodes)."""
        return self.objective(self.encoder(x, adj_1, mask_1), self.encoder(x, adj_2, mask_2), num_seeds)


SSLModel = Union[BGRL, TwoViewModel]


def _encoder(config: dict[str, Any], in_channels: int) -> GCNEncoder:
    enc = config["encoder"]
    return GCNEncoder(in_channels, enc["layers"], enc["norm"], enc["activation"], enc["weight_standardization"],
                      enc["last_activation"])


def _bgrl(config: dict[str, Any], in_channels: int) -> BGRL:
    encoder = _encoder(config, in_channels)
    return BGRL(encoder, Predictor(encoder.out_channels, config["predictor"]["hidden"]))


def _grace(config: dict[str, Any], in_channels: int) -> TwoViewModel:
    encoder, grace = _encoder(config, in_channels), config["grace"]
    return TwoViewModel(encoder, GRACELoss(encoder.out_channels, grace["projection_hidden"], grace["temperature"],
                                           grace["chunk_size"]))


def _vicreg(config: dict[str, Any], in_channels: int) -> TwoViewModel:
    encoder, vicreg = _encoder(config, in_channels), config["vicreg"]
    return TwoViewModel(encoder, VICRegLoss(encoder.out_channels, vicreg["expander_layers"],
                                            vicreg["invariance_weight"], vicreg["variance_weight"],
                                            vicreg["covariance_weight"]))


def _cca_ssg(config: dict[str, Any], in_channels: int) -> TwoViewModel:
    return TwoViewModel(_encoder(config, in_channels), CCASSGLoss(config["cca_ssg"]["lambd"]))


# Keyed as graphssl.config.METHOD_NAMES (a test keeps the two equal).
METHODS: dict[str, Callable[[dict[str, Any], int], SSLModel]] = {
    "bgrl": _bgrl, "grace": _grace, "vicreg": _vicreg, "cca-ssg": _cca_ssg}


def build_model(config: dict[str, Any], in_channels: int) -> SSLModel:
    """The untrained model of ``config``'s ``method`` for graphs with ``in_channels`` node features.

    Parameters are initialized from torch's global generator, so seed it first
    for a reproducible model.

    Returns:
        The model: for BGRL online encoder, predictor and EMA target encoder; for the
        others a :class:`TwoViewModel` (encoder and objective with its head).

    Example:
        >>> from graphssl.config import load_config
        >>> model = build_model(load_config(None), in_channels=1433)
        >>> model.encoder.out_channels, type(model).__name__
        (256, 'BGRL')
        >>> type(build_model(load_config(None, {"method": "grace"}), 1433).objective).__name__
        'GRACELoss'
    """
    method = config["method"]
    if method not in METHODS:
        raise GraphSSLError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")
    return METHODS[method](config, in_channels)


def build_werank(model: SSLModel, config: dict[str, Any]) -> WERank | None:
    """WERank with ``config``'s ``werank`` settings, on the encoder's weights, and with ``werank.scope:
    encoder+head`` on the head's too (encoder matrices first, then the head's).

    Returns:
        The hook, or ``None`` when every coefficient is 0 (the plain method pays nothing) under the constant
        schedule; ``werank.schedule: adaptive`` always gets one, as it may raise α from 0.

    Example:
        >>> from graphssl.config import load_config
        >>> build_werank(build_model(load_config(None), 1433), load_config(None, {"werank.alpha": 0.1}))
        WERank(alpha=[0.1, 0.1], squared=True, weights=['convs.0.lin.weight', 'convs.1.lin.weight'])
        >>> config = load_config(None, {"method": "grace", "werank.alpha": 0.1, "werank.scope": "encoder+head"})
        >>> build_werank(build_model(config, 1433), config).names[2:]
        ['objective.head.0.weight', 'objective.head.2.weight']
    """
    settings = config["werank"]
    alpha = settings["alpha"]
    if settings["schedule"] == "constant" and (not any(alpha) if isinstance(alpha, list) else alpha == 0):
        return None
    if settings["scope"] == "encoder" or model.head is None:
        return WERank(model.encoder, alpha, squared=settings["squared"])
    # Named explicitly: regularizing the head is a choice here, not the slip WERank warns about.
    name_of = {id(parameter): name for name, parameter in model.named_parameters()}
    names = [name_of[id(weight)] for part in (model.encoder, model.head) for weight in weight_matrices(part).values()]
    return WERank(model, alpha, squared=settings["squared"], weights=names)
