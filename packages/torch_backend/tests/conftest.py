"""Shared fixtures of the PyTorch backend tests: one thread, float64 batches of sets."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

# value tolerances against the float64 reference, by dtype of the backend's computation
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=2e-4, atol=2e-4)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_dense_batch(rng, num_sets=4, max_size=5, dim=3, empty=1):
    """``x [num_sets, max_size, dim]`` float64 and a mask with set ``empty`` empty."""
    x = rng.standard_normal((num_sets, max_size, dim))
    mask = rng.random((num_sets, max_size)) > 0.3
    mask[:, 0] = True
    if empty is not None:
        mask[empty] = False
    return x, mask


def check_close(ref, got, dtype=torch.float64, what=""):
    got = got.detach().cpu().double().numpy() if isinstance(got, torch.Tensor) else got
    np.testing.assert_allclose(got, np.asarray(ref, np.float64), err_msg=what, **TOL[dtype])


@pytest.fixture
def dense_batch():
    """Factory ``dense_batch(rng, num_sets=4, max_size=5, dim=3, empty=1) -> (x, mask)``."""
    return make_dense_batch


@pytest.fixture
def assert_close():
    """``assert_close(ref, got, dtype=torch.float64, what="")`` with the dtype's tolerance."""
    return check_close
