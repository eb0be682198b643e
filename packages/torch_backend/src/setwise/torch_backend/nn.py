"""Small building blocks of the PyTorch backend: dtype names, parameter conversion, MLPs.

Initial values come from :mod:`setwise.reference` (one place decides them); this module only
converts them to tensors and applies the shared parameter layout (weights ``[in, out]``,
``x @ W + b``).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch

from setwise.reference import nn as ref_nn

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32, "float64": torch.float64}


def dtype_name(dtype) -> str:
    """``torch.float32`` / ``np.float32`` / ``'float32'`` -> ``'float32'``."""
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    if isinstance(dtype, str):
        return dtype
    return np.dtype(dtype).name


def torch_dtype(dtype) -> torch.dtype:
    """A ``torch.dtype`` from any of the names :func:`dtype_name` accepts."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = dtype_name(dtype)
    if name in TORCH_DTYPES:
        return TORCH_DTYPES[name]
    return torch.from_numpy(np.zeros(0, np.dtype(name))).dtype


def as_tensor(a, like: torch.Tensor | None = None, dtype=None) -> torch.Tensor:
    """``a`` as a tensor, on ``like``'s device (default device otherwise), cast to ``dtype``."""
    device = like.device if like is not None else None
    if isinstance(a, torch.Tensor):
        return a.to(device=device if device is not None else a.device, dtype=dtype)
    if device is None:
        device = torch.get_default_device()
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def as_params(params, like: torch.Tensor) -> dict:
    """The parameter mapping as tensors with ``like``'s dtype and device.

    NumPy arrays are copied in; tensors already in the right dtype and device pass through
    unchanged (so gradients reach the caller's tensors); others are cast differentiably.
    """
    return {k: as_tensor(v, like, like.dtype) for k, v in params.items()}


def init_params(ref_init, *args, dtype="float32", **kwargs) -> dict:
    """Run a reference ``init_*`` and convert its arrays to tensors of ``dtype``.

    ``dtype`` may be a name or a ``torch.dtype``; float16/bfloat16 parameters are initialised in
    float32 by the reference and then cast.
    """
    target = torch_dtype(dtype)
    name = dtype_name(dtype)
    ref_dtype = "float32" if name in ("float16", "bfloat16") else name
    params = ref_init(*args, dtype=ref_dtype, **kwargs)
    device = torch.get_default_device()
    return {k: torch.as_tensor(v, device=device).to(target) for k, v in params.items()}


def mlp_depth(params, prefix) -> int:
    return ref_nn.mlp_depth(params, prefix)


def mlp(params, prefix, x):
    """ReLU MLP over the last axis, no activation after the last layer."""
    depth = mlp_depth(params, prefix)
    for i in range(depth):
        x = x @ params[f"{prefix}_{i}_w"] + params[f"{prefix}_{i}_b"]
        if i < depth - 1:
            x = torch.relu(x)
    return x


def finite_or_zero(t):
    return torch.where(torch.isfinite(t), t, torch.zeros((), dtype=t.dtype, device=t.device))


_VALUE_CHECKS = [os.environ.get("SETWISE_VALUE_CHECKS", "1") != "0"]


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Turn the value checks (NaN/Inf, index range, ptr order) on or off inside a block.

    They are on by default (a bad input gets a clear error) and cost one host sync per op
    call, which dominates cheap ops in eager mode; ``SETWISE_VALUE_CHECKS=0`` turns them off
    for a whole process. Shape, dtype and parameter-mapping checks always run. Value checks are
    skipped where values cannot be read: under ``torch.compile``, ``torch.func.vmap``, and
    for meta / fake tensors (``torch.export``).

    >>> import torch
    >>> from setwise import torch_backend as B
    >>> with B.value_checks(False):
    ...     B.sum_pool(torch.full((1, 2, 1), float("nan"))).isnan().all().item()
    True
    """
    previous = _VALUE_CHECKS[0]
    _VALUE_CHECKS[0] = bool(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS[0] = previous


def can_read_values(*tensors) -> bool:
    """Whether the values of ``tensors`` can be read on the host now: not meta or fake tensors,
    not ``torch.func.vmap``'s batched tensors (value checks skip those)."""
    from torch._C._functorch import is_batchedtensor
    from torch._subclasses.fake_tensor import is_fake

    for t in tensors:
        if t.is_meta or is_fake(t):
            return False
        try:
            if is_batchedtensor(t) or torch._C._functorch.is_functorch_wrapped_tensor(t) \
                    and _unwrapped_batched(t):
                return False
        except (AttributeError, RuntimeError):
            return False
    return True


def _unwrapped_batched(t) -> bool:
    """A functorch wrapper (``grad``, ``jvp``) around a batched tensor (``vmap`` outside)."""
    from torch._C._functorch import get_unwrapped, is_batchedtensor, is_functorch_wrapped_tensor

    while is_functorch_wrapped_tensor(t):
        if is_batchedtensor(t):
            return True
        t = get_unwrapped(t)
    return is_batchedtensor(t)


def checking_values() -> bool:
    """Whether value checks run now: switched on (:func:`value_checks`) and not compiling."""
    return _VALUE_CHECKS[0] and not torch.compiler.is_compiling()
