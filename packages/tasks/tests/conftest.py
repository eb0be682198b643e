"""Fixtures of the setwise.tasks tests: where the real data and the caches are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Tests that convert whole large datasets (ogbg-molhiv, ogbg-molmuv: about a minute each on
#: a fresh cache) run only when this environment variable is set.
FULL_DATA_ENV = "SETWISE_FULL_DATA_TESTS"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data: ``$SETWISE_DATA`` or ``<repo>/../shared/data``; skips when absent."""
    path = Path(os.environ.get("SETWISE_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"no data directory at {path} (set SETWISE_DATA)")
    return path


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """A cache kept between test runs: ``$SETWISE_CACHE`` or ``~/.cache/setwise``."""
    return Path(os.environ.get("SETWISE_CACHE") or Path.home() / ".cache" / "setwise")


@pytest.fixture
def full_data():
    """Skip unless ``$SETWISE_FULL_DATA_TESTS`` asks for the slow full-dataset checks."""
    if not os.environ.get(FULL_DATA_ENV):
        pytest.skip(f"set {FULL_DATA_ENV}=1 to convert the large OGB datasets in full")


@pytest.fixture
def one_torch_thread():
    """Small models on a shared CPU: one torch thread is far faster than torch's default
    (a module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
