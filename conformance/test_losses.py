"""Property 6: Chamfer, Hungarian and Sinkhorn are invariant to permuting either argument and
are 0 on equal sets; Sinkhorn tends to Hungarian as epsilon -> 0; Hungarian is the exact
optimum (checked against brute force over permutations)."""

import itertools

import numpy as np
import pytest
from hypothesis import given

from conformance.assertions import assert_close
from conformance.strategies import seeds, set_batches

LOSSES = ("chamfer_loss", "hungarian_loss", "sinkhorn_loss")
KW = {"sinkhorn_loss": {"epsilon": 0.05, "num_iters": 300}}


def loss_of(B, name, x, y, xm, ym):
    out = getattr(B, name)(B.asarray(x), B.asarray(y), B.asarray(xm), B.asarray(ym),
                           **KW.get(name, {}))
    return B.to_numpy(out)


def shuffle(x, m, rng):
    perm = np.stack([rng.permutation(x.shape[1]) for _ in range(x.shape[0])])
    return np.take_along_axis(x, perm[..., None], 1), np.take_along_axis(m, perm, 1)


@pytest.mark.parametrize("name", LOSSES)
@given(a=set_batches(min_sets=2, max_sets=3, dims=(1, 3)), seed=seeds)
def test_invariant_to_permuting_either_argument(backend, name, a, seed):
    rng = np.random.default_rng(seed)
    x, xm = a.dense()
    y = rng.uniform(-2, 2, x.shape)
    ym = rng.random(xm.shape) < 0.6
    base = loss_of(backend, name, x, y, xm, ym)
    xp, xmp = shuffle(x, xm, rng)
    yp, ymp = shuffle(y, ym, rng)
    assert_close(loss_of(backend, name, xp, y, xmp, ym), base, "invariance", "float64", name)
    assert_close(loss_of(backend, name, x, yp, xm, ymp), base, "invariance", "float64", name)


@pytest.mark.parametrize("name", ["chamfer_loss", "hungarian_loss"])
@given(a=set_batches(min_sets=1, max_sets=3), seed=seeds)
def test_zero_on_equal_sets(backend, name, a, seed):
    x, xm = a.dense()
    xp, xmp = shuffle(x, xm, np.random.default_rng(seed))
    assert_close(loss_of(backend, name, x, xp, xm, xmp), np.zeros(a.num_sets), "invariance",
                 "float64", name)


@given(seed=seeds)
def test_hungarian_is_the_optimum_and_sinkhorn_approaches_it(ref, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 5, 2))
    brute = [min(((x[s] - y[s][list(p)]) ** 2).sum() for p in itertools.permutations(range(5)))
             for s in range(2)]
    assert_close(ref.hungarian_loss(x, y), np.array(brute), "value", "float64", "hungarian_loss")
    sink = ref.sinkhorn_loss(x, y, epsilon=1e-2, num_iters=3000)
    assert np.allclose(sink, brute, rtol=1e-2, atol=1e-3), (sink, brute)


def test_chamfer_dspn_variant_divides_by_channels(ref):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3))
    assert_close(ref.chamfer_loss(x, y, variant="dspn") * 3, ref.chamfer_loss(x, y), "value",
                 "float64", "chamfer_loss")


@pytest.mark.parametrize("name", LOSSES)
def test_padding_values_never_leak(backend, name):
    """NaN in padding rows changes nothing (the rows are masked, never read)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 2))
    xm = np.array([[True, True, True, False], [True, False, False, False]])
    ym = np.array([[True, True, False, False], [True, True, True, False]])
    clean = loss_of(backend, name, x, y, xm, ym)
    xn, yn = np.where(xm[..., None], x, np.nan), np.where(ym[..., None], y, np.nan)
    assert_close(loss_of(backend, name, xn, yn, xm, ym), clean, "invariance", "float64", name)
