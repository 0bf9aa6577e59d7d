"""Numerical precision of training (``train.precision``): float32, bfloat16 mixed precision, TF32 on CUDA.

``bf16-mixed`` runs the dense matrix products of the forward passes (the GCN
layers' linear maps, the predictor and the heads) in bfloat16 under
``torch.autocast``, on CPU and on CUDA, and keeps the encoder's activations in
bfloat16 between them: the sparse propagation and the PReLU take a product's
bfloat16 output as it is and return bfloat16 (:func:`input_dtype_function`;
on CPU the propagation sums in float32 inside ``embedding_bag``'s kernel, with
``Â``'s weights rounded to bfloat16, and rounds each sum once), and the
normalization follows autocast's own rule (on CPU bfloat16 in and out with
float32 statistics, on CUDA float32).  A first layer fed sparse features
computes in float32 (:func:`graphssl.sparse.sparse_linear`), so its
activations are float32 up to the next product.  Casts of every activation to float32
and back ate most of what the bfloat16 products saved (README, 'Precision and
speed').  Everything whose precision matters more than its speed stays in
float32: the parameters, their gradients and the optimizer state (autocast
casts weights per call, never the master copy; a gradient computed in
bfloat16, such as a bias's, is rounded before it is added), the losses and
their reductions, the WERank penalty (its Gram matrix) and BGRL's EMA update.
The custom autograd functions that do that work run their forward in float32
(:func:`float32_function`); the autograd engine hands each input's gradient
back in that input's own dtype.

``tf32`` lets float32 matrix products on CUDA use TensorFloat-32 (Ampere and
later); it is a CUDA setting, and asking for it on another device is an error
(:func:`check_precision`), not a silent no-op.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, Callable, ContextManager, Iterator

import torch

from .errors import GraphSSLError

_REDUCED = (torch.bfloat16, torch.float16)
# The device types whose autocast the custom autograd functions leave (graphssl runs on CPU and CUDA).
_AUTOCAST_DEVICES = ("cpu", "cuda")

def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run: ``tf32`` needs CUDA.

    Example:
        >>> check_precision("bf16-mixed", torch.device("cpu"))
        >>> check_precision("tf32", torch.device("cpu"))
        Traceback (most recent call last):
        ...
        graphssl.errors.GraphSSLError: train.precision tf32 is a CUDA setting (TensorFloat-32 matrix products); this run is on cpu: use 32 or bf16-mixed
    """
    if precision == "tf32" and device.type != "cuda":
        raise GraphSSLError(f"train.precision tf32 is a CUDA setting (TensorFloat-32 matrix products); this run is on "
                            f"{device.type}: use 32 or bf16-mixed")


def bf16_is_native(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run at hardware speed on ``device``.

    On CPU torch sends them to oneDNN only on CPUs with AVX-512 (or Arm's BF16);
    elsewhere they fall back to a generic kernel tens of times slower than float32
    (measured on an AVX2-only EPYC: 0.9 vs 25-34 GFLOP/s; README, 'Precision and speed').

    Returns:
        ``True`` on CUDA and on CPUs where oneDNN does bfloat16.

    Example:
        >>> isinstance(bf16_is_native(torch.device("cpu")), bool)
        True
    """
    if device.type != "cpu":
        return True
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: assume the hardware is fine
        return True


def warn_if_slow(precision: str, device: torch.device) -> None:
    """Warn when ``bf16-mixed`` would make this device slower, not faster (it still trains correctly).

    Example:
        >>> warn_if_slow("32", torch.device("cpu"))  # float32 never warns
    """
    if precision == "bf16-mixed" and not bf16_is_native(device):
        warnings.warn(f"train.precision bf16-mixed: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no "
                      f"native bfloat16 matrix products, so they run many times slower than float32; use "
                      f"--precision 32 here", UserWarning, stacklevel=2)


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context a forward pass runs in: bfloat16 autocast for ``bf16-mixed``, else nothing.

    Backward passes run outside it (autocast's own rule: they follow the forward's dtypes).

    Returns:
        A context manager: ``torch.autocast`` in bfloat16, or a null context.

    Example:
        >>> with autocast("bf16-mixed", torch.device("cpu")):
        ...     (torch.ones(2, 3) @ torch.ones(3, 2)).dtype
        torch.bfloat16
    """
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device) -> Iterator[None]:
    """Within it, float32 matrix products on CUDA use TF32 when ``precision`` is ``tf32`` (restored on exit).

    Yields:
        Nothing; the setting holds inside the ``with`` block.

    Example:
        >>> with matmul_precision("32", torch.device("cpu")):
        ...     pass
    """
    if precision != "tf32" or device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    # torch 2.9 replaced the allow_tf32 switch by fp32_precision; older releases have only the switch.
    name, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
    before = getattr(matmul, name)
    setattr(matmul, name, value)
    try:
        yield
    finally:
        setattr(matmul, name, before)


def float32_function(function: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """Make a custom autograd function compute in float32 inside autocast, on CPU and CUDA.

    Its ``forward`` gets its floating-point inputs cast to float32 and runs
    with autocast off (``torch.amp.custom_fwd(cast_inputs=torch.float32)``), its
    ``backward`` runs in the same autocast state (``torch.amp.custom_bwd``).
    Outside autocast nothing changes (float64 stays float64).

    Returns:
        ``function``, its ``forward`` and ``backward`` wrapped.

    Example:
        >>> @float32_function
        ... class Square(torch.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         return x * x
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         return grad
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     Square.apply(torch.ones(2, dtype=torch.bfloat16)).dtype
        torch.float32
    """
    forward, backward = function.forward, function.backward
    for device_type in _AUTOCAST_DEVICES:
        forward = torch.amp.custom_fwd(forward, device_type=device_type, cast_inputs=torch.float32)
        backward = torch.amp.custom_bwd(backward, device_type=device_type)
    function.forward, function.backward = staticmethod(forward), staticmethod(backward)
    return function


def input_dtype_function(function: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """Make a custom autograd function compute in its inputs' own dtype, also inside autocast.

    Its ``forward`` runs with autocast off, so bfloat16 activations stay
    bfloat16 and float32 ones float32 (autocast would cast some of its operators
    to bfloat16 and leave others alone); its ``backward`` gets gradients in the
    output's dtype.

    Returns:
        ``function``, its ``forward`` wrapped.

    Example:
        >>> @input_dtype_function
        ... class Double(torch.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         return torch.mm(x, torch.full((2, 2), 2.0, dtype=x.dtype))
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         return 2 * grad
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     Double.apply(torch.eye(2)).dtype, Double.apply(torch.eye(2, dtype=torch.bfloat16)).dtype
        (torch.float32, torch.bfloat16)
    """
    forward = function.forward

    @functools.wraps(forward)
    def forward_without_autocast(ctx: Any, *args: Any) -> Any:
        device_type = next(arg.device.type for arg in args if isinstance(arg, torch.Tensor))
        with torch.autocast(device_type, enabled=False):
            return forward(ctx, *args)

    function.forward = staticmethod(forward_without_autocast)
    return function


def in_float32(function: Callable[..., torch.Tensor], *tensors: torch.Tensor, **options: Any) -> torch.Tensor:
    """``function(*tensors, **options)`` with autocast off and bfloat16/float16 ``tensors`` cast to float32:
    how the losses are computed from embeddings made under ``bf16-mixed``.

    Returns:
        What ``function`` returns.

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     in_float32(torch.mm, torch.ones(2, 3, dtype=torch.bfloat16), torch.ones(3, 2)).dtype
        torch.float32
    """
    with torch.autocast(tensors[0].device.type, enabled=False):
        return function(*(t.float() if t.dtype in _REDUCED else t for t in tensors), **options)
