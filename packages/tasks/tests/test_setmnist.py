"""SetMNIST (paper 2, 5.1): the metric on hand-made sets, the data, FSPool in three backends,
DSPN's second-order gradients against finite differences, TSPN's creators across backends."""

from __future__ import annotations

import numpy as np
import pytest

from setwise.tasks.check import compare, jax_result, torch_result
from setwise.tasks.config import resolve
from setwise.tasks.layers import dspn as np_dspn
from setwise.tasks.layers.dspn import FSEncoderSpec, init_fs_encoder
from setwise.tasks.setmnist import data, metrics
from setwise.tasks.setmnist.task import SetMNISTTask

BACKENDS = ("torch", "jax")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# The metric.

def test_huber_chamfer_on_hand_made_sets():
    x = np.array([[[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]]])
    y = np.array([[[0.0, 0.1], [3.0, 0.0], [7.0, 7.0]]])
    x_mask, y_mask = np.array([[True, True, False]]), np.array([[True, True, False]])
    # x -> y: (0,0)->(0,0.1): 0.5*0.01 = 0.005; (1,0)->(0,0.1): 0.5 + 0.005 = 0.505
    # y -> x: (0,0.1)->(0,0): 0.005; (3,0)->(1,0): |2| - 0.5 = 1.5
    want = (0.005 + 0.505) / 2 + (0.005 + 1.5) / 2
    got = metrics.huber_chamfer(x, y, x_mask, y_mask)
    assert got == pytest.approx([want])
    assert metrics.huber_chamfer(x, y, x_mask, y_mask, "dspn") == pytest.approx([want / 2])
    sq = (0.01 + 1.01) / 2 + (0.01 + 4.0) / 2
    assert metrics.sq_chamfer(x, y, x_mask, y_mask) == pytest.approx([sq])


def test_huber_chamfer_is_zero_on_equal_sets_and_symmetric_under_permutation():
    rng = np.random.default_rng(0)
    x = rng.random((3, 5, 2))
    perm = x[:, rng.permutation(5)]
    assert metrics.huber_chamfer(x, perm) == pytest.approx(np.zeros(3), abs=1e-15)
    y = rng.random((3, 4, 2))
    assert metrics.huber_chamfer(x, y) == pytest.approx(metrics.huber_chamfer(y, x))
    assert metrics.huber_chamfer(x, y).min() > 0
    with pytest.raises(ValueError, match="variant"):
        metrics.huber_chamfer(x, y, variant="mean")


def test_evaluate_compares_dspn_slots_and_tspn_points():
    task = SetMNISTTask()
    x = np.zeros((1, 3, 2))
    x[0, :2] = [[0.2, 0.2], [0.8, 0.4]]
    batch = {"x": x, "mask": np.array([[True, True, False]]), "size": np.array([2])}
    exact = {"points": x, "presence": batch["mask"].astype(float)}
    assert task.evaluate([exact], [batch])["chamfer_e5"] == pytest.approx(0.0, abs=1e-9)
    wrong_presence = {"points": x, "presence": np.ones((1, 3))}  # the padding slot present
    assert task.evaluate([wrong_presence], [batch])["chamfer_e5"] > 0
    # TSPN: padding rows of the prediction are ignored
    tspn = {"points": np.concatenate([x[:, :2], [[[5.0, 5.0]]]], 1), "size_pred": np.array([2])}
    out = task.evaluate([tspn], [batch])
    assert out["chamfer_e5"] == pytest.approx(0.0, abs=1e-9) and out["size_accuracy"] == 1.0


# The data.

def test_batches_are_a_pure_function_of_seed_and_step(data_dir):
    a = data.train_batch(0, 5, 4, 100, str(data_dir), 2)
    b = data.train_batch(0, 5, 4, 100, str(data_dir), 2)
    c = data.train_batch(0, 6, 4, 100, str(data_dir), 2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["x"], c["x"])
    assert a["x"].shape == (4, 96, 2) and a["x"].dtype == np.float32
    assert (a["mask"].sum(1) == a["size"]).all()
    assert (a["x"][~a["mask"]] == 0).all()
    assert a["x"].min() >= 0 and a["x"].max() <= 1


@pytest.mark.parametrize("downsample", [2, 4])
def test_downsampled_sets_fit_their_padding(data_dir, downsample):
    for split in ("train", "test"):
        sets = data.load(split, str(data_dir), downsample)
        assert sets.points.sizes.max() <= data.max_size(downsample)
        assert sets.points.sizes.min() > 0


def test_full_resolution_is_dspn_setmnist(data_dir):
    batch = data.eval_batches(4, 4, str(data_dir))[0]
    assert batch["x"].shape == (4, 342, 2)
    pixels = np.round(batch["x"][batch["mask"]] * 27)
    np.testing.assert_allclose(batch["x"][batch["mask"]] * 27, pixels, atol=1e-5)


# FSPool and the FSEncoder.

def encoder_case(seed=0, n=7, dtype="float64"):
    rng = np.random.default_rng(seed)
    spec = FSEncoderSpec(2, 5, 3, n_pieces=4)
    params = {}
    init_fs_encoder(rng, params, "enc", spec, dtype)
    x = rng.random((3, n, 2))
    m = rng.random((3, n))
    valid = np.arange(n)[None] < np.array([[n], [3], [1]]).T.reshape(3, 1)
    return spec, params, x, m, valid


def backend_encoder(backend):
    if backend == "torch":
        import torch

        from setwise.tasks.layers.torch import dspn

        return dspn, torch.from_numpy, lambda a: a.detach().numpy()
    import jax

    from setwise.tasks.layers.jax import dspn

    jax.config.update("jax_enable_x64", True)
    return dspn, jax.numpy.asarray, np.asarray


@pytest.mark.parametrize("backend", BACKENDS)
def test_fs_encoder_backends_match_numpy(backend):
    spec, params, x, m, valid = encoder_case()
    want_all = np_dspn.fs_encoder(params, "enc", spec, x, m)
    want_valid = np_dspn.fs_encoder(params, "enc", spec, x, m, valid)
    mod, to, back = backend_encoder(backend)
    p = {k: to(v) for k, v in params.items()}
    np.testing.assert_allclose(back(mod.fs_encoder(p, "enc", spec, to(x), to(m))), want_all,
                               rtol=1e-12)
    np.testing.assert_allclose(back(mod.fs_encoder(p, "enc", spec, to(x), to(m), to(valid))),
                               want_valid, rtol=1e-12)


def test_fspool_is_invariant_to_order_and_padding():
    spec, params, x, m, valid = encoder_case()
    out = np_dspn.fs_encoder(params, "enc", spec, x, m, valid)
    perm = np.random.default_rng(1).permutation(x.shape[1])
    shuffled = np_dspn.fs_encoder(params, "enc", spec, x[:, perm], m[:, perm], valid[:, perm])
    np.testing.assert_allclose(shuffled, out, rtol=1e-12)
    junk = np.where(valid[..., None], x, 123.0)
    np.testing.assert_allclose(np_dspn.fs_encoder(params, "enc", spec, junk, m, valid), out,
                               rtol=1e-12)
    # all slots pooled (valid=None, DSPN's mode): the padding counts, so the result changes
    assert not np.allclose(np_dspn.fs_encoder(params, "enc", spec, junk, m), out)


# DSPN's inner loop: second-order gradients against finite differences (float64).

def dspn_outer_loss(backend, steps=3, step_size=4.0):
    """``(loss(params) -> scalar, grad(params) -> dict)`` of a small DSPN: encode a target
    set, refine a learned initial set for ``steps`` steps, squared error to the target."""
    spec, params, x, m, _ = encoder_case(n=5)
    target = np.where(np.arange(5)[None, :, None] < 3, x, 0.0)
    params = {**params, "x0": np.random.default_rng(2).random((1, 5, 2)),
              "m0": np.full((1, 5), 0.5)}
    mod, to, back = backend_encoder(backend)

    def loss(p):
        enc = lambda s, sm: mod.fs_encoder(p, "enc", spec, s, sm)  # noqa: E731
        z = enc(to(target), to(m))
        b = z.shape[0]
        x0 = p["x0"] + 0 * to(target)
        m0 = p["m0"] + 0 * to(m)
        sets, masks, _ = mod.dspn_refine(enc, z, x0, m0, num_steps=steps, step_size=step_size)
        assert len(sets) == steps + 1 and b == 3
        return ((sets[-1] - to(target)) ** 2).sum() + ((masks[-1] - to(m)) ** 2).sum()

    if backend == "torch":
        import torch

        def value(p):
            return float(loss({k: torch.from_numpy(v) for k, v in p.items()}).detach())

        def grad(p):
            t = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in p.items()}
            loss(t).backward()
            return {k: np.zeros_like(p[k]) if v.grad is None else v.grad.numpy()
                    for k, v in t.items()}
    else:
        import jax

        jit_loss, jit_grad = jax.jit(loss), jax.jit(jax.grad(loss))

        def value(p):
            return float(jit_loss({k: jax.numpy.asarray(v) for k, v in p.items()}))

        def grad(p):
            g = jit_grad({k: jax.numpy.asarray(v) for k, v in p.items()})
            return {k: np.asarray(v) for k, v in g.items()}

    return params, value, grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_dspn_second_order_gradients_match_finite_differences(backend):
    params, value, grad = dspn_outer_loss(backend)
    g = grad(params)
    rng = np.random.default_rng(3)
    eps = 1e-6  # the loss is piecewise smooth (sort, ReLU, clip): 1e-4 already crosses kinks
    for _ in range(3):
        v = {k: rng.standard_normal(a.shape) for k, a in params.items()}
        plus = value({k: params[k] + eps * v[k] for k in params})
        minus = value({k: params[k] - eps * v[k] for k in params})
        fd = (plus - minus) / (2 * eps)
        analytic = sum(float((g[k] * v[k]).sum()) for k in params)
        assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_dspn_gradient_needs_the_second_order_term(monkeypatch):
    """The gradient with the inner gradients detached (first order only, as without
    ``create_graph``) is measurably different: the finite-difference test above would catch a
    loop that drops the second-order term."""
    import torch

    params, _, grad = dspn_outer_loss("torch")
    full = grad(params)
    inner_grad = torch.autograd.grad

    def detached(outputs, inputs, create_graph=False, **kw):
        return [g.detach() for g in inner_grad(outputs, inputs, create_graph=False, **kw)]

    monkeypatch.setattr(torch.autograd, "grad", detached)
    truncated = grad(params)
    diff = max(float(np.abs(full[k] - truncated[k]).max()) for k in full)
    assert diff > 1e-3 * max(float(np.abs(full[k]).max()) for k in full)


# TSPN's creators reach the loss (the shared check runs at initialisation, where TSPN's zero
# output layer, as tf-tspn's, stops every gradient before it).

@pytest.mark.parametrize("creator", ["top_n", "iid"])  # create_set's path, and i.i.d.'s own
def test_tspn_creators_agree_across_backends_past_the_zero_output_layer(creator):
    task = SetMNISTTask()
    config = resolve(task, "tiny", {"model": "tspn", "creator": creator})
    params = task.init_params(config, "float64")
    params["tspn_out_w"] = np.random.default_rng(0).standard_normal(params["tspn_out_w"].shape)
    batch = {k: (v.astype(np.float64) if v.dtype == np.float32 else v)
             for k, v in task.train_batch(config, 0).items()}
    results = [f(task.build_model(b, config), params, {}, batch)
               for f, b in ((torch_result, "torch"), (jax_result, "jax"))]
    row = compare("setmnist", creator, params, {}, *results)
    assert row.ok, row.failures
    created = [k for k in params if k.startswith("create_")]
    assert max(float(np.abs(results[1].grads[k]).max()) for k in created) > 0
