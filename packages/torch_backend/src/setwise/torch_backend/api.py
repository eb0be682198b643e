"""Array conversion for the PyTorch backend (:mod:`setwise.reference.api` lists the shared API).

>>> import numpy as np
>>> t = asarray(np.ones(3), dtype="float32")
>>> (t.dtype, to_numpy(t).tolist())
(torch.float32, [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import numpy as np
import torch

from setwise.torch_backend.nn import as_tensor, torch_dtype


def asarray(x, dtype=None):
    """A tensor (on the default device unless ``x`` is already a tensor).

    ``dtype``: a name (``"float32"``), a NumPy dtype or a ``torch.dtype``.
    """
    return as_tensor(x, dtype=None if dtype is None else torch_dtype(dtype))


def to_numpy(x):
    """A NumPy array from a tensor (detached, on the CPU; bfloat16 becomes float32) or array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def convert_params(params, dtype=None):
    """A parameter mapping with every value as a tensor (optionally cast to ``dtype``)."""
    return {k: asarray(v, dtype) for k, v in params.items()}
