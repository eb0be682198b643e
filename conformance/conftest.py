"""Conformance suite configuration: hypothesis profiles and the ``backend`` fixture.

Every test taking ``backend`` runs once per installed backend in one process, with ids naming
it (``test_x[torch]``), so one backend's failure hides nothing. Select backends with
``--backends numpy,torch``. Profiles: ``ci`` (derandomized, the default under CI=true), ``dev``
(the default otherwise), ``thorough`` (10x examples); pick one with ``--hypothesis-profile``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from setwise.reference import available_backends, get_backend

settings.register_profile(
    "ci", max_examples=12, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", max_examples=120, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _accurate_numerics():
    """No TF32 in torch, float32 matmul precision and x64 availability in JAX (Keras' habit)."""
    try:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "float32")
    except ImportError:
        pass


_accurate_numerics()
BACKENDS = available_backends()


def pytest_addoption(parser):
    parser.addoption("--backends", default=None,
                     help="comma-separated backends to check (default: every installed one)")


def _selected(config):
    opt = config.getoption("--backends")
    if opt is None:
        return BACKENDS
    names = [n.strip() for n in opt.split(",") if n.strip()]
    for n in names:
        get_backend(n)  # a clear ImportError for a backend that is asked for but missing
    return names


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        names = _selected(metafunc.config)
        metafunc.parametrize("backend", [get_backend(n) for n in names], ids=names)
    if "other_backend" in metafunc.fixturenames:
        names = [n for n in _selected(metafunc.config) if n != "numpy"]
        metafunc.parametrize("other_backend", [get_backend(n) for n in names], ids=names)


@pytest.fixture(scope="session")
def ref():
    """The float64 ground truth."""
    return get_backend("numpy")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
