"""The shared layer families and step randomness: NumPy, PyTorch and JAX agree (float64)."""

import importlib

import numpy as np
import pytest

from setwise.tasks.layers import batch_norm as np_bn
from setwise.tasks.layers import mlp as np_mlp
from setwise.tasks.layers import readout as np_readout
from setwise.tasks.layers.mlp import MLPSpec
from setwise.tasks.layers.readout import READOUTS, ReadoutSpec
from setwise.tasks.rng import JaxRng, NumpyRng, TorchRng, step_key

BACKENDS = ("torch", "jax")


@pytest.fixture(scope="module", autouse=True)
def x64():
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def family(backend, name):
    return importlib.import_module(f"setwise.tasks.layers.{backend}.{name}")


def to_backend(backend, tree):
    if backend == "torch":
        import torch

        return {k: torch.from_numpy(np.asarray(v)) for k, v in tree.items()}
    import jax.numpy as jnp

    return {k: jnp.asarray(v) for k, v in tree.items()}


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", [MLPSpec((5, 5, 3), "relu", normalize=True, residual=True),
                                  MLPSpec((4, 2), "tanh"), MLPSpec((6,), "none", residual=True)])
def test_mlp_matches_numpy(backend, spec):
    params = {}
    np_mlp.init_mlp(np.random.default_rng(0), params, "enc", 6, spec, "float64")
    x = np.random.default_rng(1).normal(size=(3, 4, 6))
    want = np_mlp.mlp(params, "enc", spec, x)
    got = family(backend, "mlp").mlp(to_backend(backend, params), "enc", spec,
                                     to_backend(backend, {"x": x})["x"])
    close(got, want)


def test_mlp_layer_norm_numpy_is_layer_norm():
    params = {}
    np_mlp.init_layer_norm(params, "ln", 4, "float64")
    y = np_mlp.layer_norm(params, "ln", np.array([[1.0, 2.0, 3.0, 6.0]]))
    close(y.mean(), 0.0, atol=1e-12)
    close(y.var(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_numpy_and_ignores_padding(backend, train):
    params, state = {}, {}
    np_bn.init_batch_norm(params, state, "bn", 3, "float64")
    rng = np.random.default_rng(2)
    params["bn_bn_scale"] = rng.normal(size=3)
    state["bn_bn_mean"], state["bn_bn_var"] = rng.normal(size=3), rng.uniform(1, 2, 3)
    x = rng.normal(size=(2, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool)
    y, upd = np_bn.batch_norm(params, state, "bn", x, train=train, mask=mask)
    x_pad = np.where(mask[..., None], x, 1e6)   # padding must not enter any statistic
    got, got_upd = family(backend, "batch_norm").batch_norm(
        to_backend(backend, params), to_backend(backend, state), "bn",
        to_backend(backend, {"x": x_pad})["x"], train=train,
        mask=to_backend(backend, {"m": mask})["m"])
    close(np.asarray(got)[mask], y[mask])
    assert set(got_upd) == set(upd) == ({"bn_bn_mean", "bn_bn_var"} if train else set())
    for k in upd:
        close(got_upd[k], upd[k])
    if train:
        rows = x[mask]
        close(upd["bn_bn_mean"], 0.9 * state["bn_bn_mean"] + 0.1 * rows.mean(0))
        close(upd["bn_bn_var"], 0.9 * state["bn_bn_var"] + 0.1 * rows.var(0, ddof=1))
        close(y[mask].mean(0), params["bn_bn_offset"], atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", READOUTS)
def test_readout_matches_numpy_dense_and_segments(backend, kind):
    spec = ReadoutSpec(kind, in_dim=3, out_dim=4, num_heads=2, ea_hidden=(8, 4), ea_steps=3,
                       pna_delta=1.2)
    params = np_readout.init_readout_params(0, "agg", spec, "float64")
    params["unrelated_w"] = np.zeros((2, 2))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 3))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    import setwise.reference as ref

    want, want_logs = np_readout.readout(ref, params, "agg", spec, x, mask)
    assert want.shape == (3, spec.width)
    assert set(want_logs) == ({"ea_aux", "ea_grad_max_norm", "ea_active_steps"}
                              if kind == "ea" else set())
    fam = family(backend, "readout")
    p = to_backend(backend, params)
    arrays = to_backend(backend, {"x": x, "mask": mask, "flat": x[mask],
                                  "index": np.nonzero(mask)[0]})
    got, logs = fam.readout(p, "agg", spec, arrays["x"], arrays["mask"])
    close(got, want, rtol=1e-8, atol=1e-10)
    for k, v in want_logs.items():
        close(logs[k], v, rtol=1e-8, atol=1e-10)
    seg, _ = fam.readout(p, "agg", spec, arrays["flat"], index=arrays["index"], num_sets=3)
    close(seg, want, rtol=1e-8, atol=1e-10)


def test_readout_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind is 'avg'"):
        ReadoutSpec("avg", 3)


def test_rngs_are_pure_functions_of_seed_and_step():
    import torch

    a, b, c = TorchRng(0, 5), TorchRng(0, 5), TorchRng(0, 6)
    first = a.normal((4,))
    assert torch.equal(first, b.normal((4,))) and not torch.equal(first, c.normal((4,)))
    assert not torch.equal(first, a.normal((4,)))       # each draw is fresh
    assert a.bernoulli(0.5, (3,)).dtype == torch.bool
    j1, j2 = JaxRng(step_key(0, 5)), JaxRng(step_key(0, 5))
    np.testing.assert_array_equal(np.asarray(j1.normal((4,))), np.asarray(j2.normal((4,))))
    n1, n2 = NumpyRng(3, dtype="float64"), NumpyRng(3, dtype="float64")
    np.testing.assert_array_equal(n1.uniform((2, 2)), n2.uniform((2, 2)))
    assert n1.normal((2,)).dtype == np.float64


def test_jax_rng_works_under_jit():
    import jax

    @jax.jit
    def draw(step):
        rng = JaxRng(step_key(1, step))
        return rng.normal((3,)), rng.normal((3,))

    u, v = draw(2)
    w, _ = draw(2)
    np.testing.assert_array_equal(np.asarray(u), np.asarray(w))
    assert not np.array_equal(np.asarray(u), np.asarray(v))
