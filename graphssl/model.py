"""Building a self-supervised model, and its WERank, from a config.

The one place where a config becomes modules: the training loop, the run-folder
reader (which rebuilds a trained model from its checkpoint) and the benchmarks
all call :func:`build_model`, so none of them imports another for it.  Methods
are chosen by name in :data:`METHODS`; BGRL is the only one so far.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .bgrl import BGRL
from .encoders import GCNEncoder, Predictor
from .errors import GraphSSLError
from .regularizers import WERank


def _bgrl(config: dict[str, Any], in_channels: int) -> BGRL:
    enc = config["encoder"]
    encoder = GCNEncoder(in_channels, enc["layers"], enc["norm"], enc["activation"], enc["weight_standardization"])
    return BGRL(encoder, Predictor(encoder.out_channels, config["predictor"]["hidden"]))


METHODS: dict[str, Callable[[dict[str, Any], int], nn.Module]] = {"bgrl": _bgrl}


def build_model(config: dict[str, Any], in_channels: int, method: str = "bgrl") -> BGRL:
    """The untrained model of ``method`` for graphs with ``in_channels`` node features, as ``config`` sets it.

    Parameters are initialized from torch's global generator, so seed it first
    for a reproducible model.

    Returns:
        The model (for BGRL: online encoder, predictor and EMA target encoder).

    Example:
        >>> from graphssl.config import load_config
        >>> model = build_model(load_config(None), in_channels=1433)
        >>> model.online_encoder.out_channels
        128
    """
    if method not in METHODS:
        raise GraphSSLError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")
    return METHODS[method](config, in_channels)


def build_werank(model: BGRL, config: dict[str, Any]) -> WERank | None:
    """WERank on the online encoder's weights with ``config``'s ``werank`` settings.

    Returns:
        The hook, or ``None`` when every coefficient is 0 (plain BGRL pays nothing).

    Example:
        >>> from graphssl.config import load_config
        >>> build_werank(build_model(load_config(None), 1433), load_config(None, {"werank.alpha": 0.1}))
        WERank(alpha=[0.1, 0.1], squared=False, weights=['convs.0.lin.weight', 'convs.1.lin.weight'])
    """
    alpha = config["werank"]["alpha"]
    if not any(alpha) if isinstance(alpha, list) else alpha == 0:
        return None
    return WERank(model.online_encoder, alpha, squared=config["werank"]["squared"])
