"""Properties 4 and 5: Top-n creation is a set function of its reference set, gradients reach
its angles and angle MLP, and an autoencoder with an invariant encoder and an invariant loss has
the same parameter gradients for X and any permutation of X ((F, l)-equivariance, paper 2
Lemma 1)."""

import numpy as np
from hypothesis import assume, given

from conformance.assertions import assert_close
from conformance.autodiff import grad
from conformance.strategies import seeds
from setwise.reference.top_n import top_n_scores


def created(B, params, z, n):
    x, mask = B.top_n_creation(B.convert_params(params), B.asarray(z), B.asarray(n), max_n=6)
    return B.to_numpy(x), B.to_numpy(mask)


@given(seed=seeds)
def test_reference_set_permutation_leaves_sets_unchanged(backend, ref, seed):
    rng = np.random.default_rng(seed)
    params = ref.init_top_n_creation(seed, 4, 3, 10, hidden=(8,), dtype="float64")
    z = rng.normal(size=(3, 4))
    n = rng.integers(0, 7, 3)
    perm = rng.permutation(10)
    # a tie at the selection boundary (e.g. a dead angle MLP: every cosine 0) is broken by
    # row index, which the permutation changes: such draws are outside the property
    scores = np.sort(top_n_scores(params, z), -1)[:, ::-1]
    gaps = [scores[s, k - 1] - scores[s, k] for s, k in enumerate(n) if 0 < k < 10]
    assume(min(gaps, default=1.0) > 1e-9)
    shuffled = dict(params, angles=params["angles"][perm], points=params["points"][perm])
    x1, m1 = created(backend, params, z, n)
    x2, m2 = created(backend, shuffled, z, n)
    np.testing.assert_array_equal(m1, m2)
    as_set = ref.hungarian_loss(x1, x2, m1, m2)  # 0 iff equal as sets (matched squared distance)
    assert_close(as_set, np.zeros(3), "invariance", "float64", "top_n_creation", f"seed={seed}")


@given(seed=seeds)
def test_gradients_reach_angles_and_angle_mlp(backend, ref, seed):
    rng = np.random.default_rng(seed)
    params = ref.init_top_n_creation(seed, 3, 2, 6, hidden=(16,), dtype="float64")
    z = rng.normal(size=(4, 3))  # 16 ReLU units and 4 latents: some unit is active
    weights = rng.normal(size=(4, 4, 2))

    def loss(p):
        x, _ = backend.top_n_creation(p, backend.asarray(z), 4)
        return (x * backend.asarray(weights)).sum()

    g = grad(backend, loss, params)
    for k in ("angles", "angle_mlp_0_w", "angle_mlp_1_w", "points", "w1", "w2", "w3", "w4"):
        assert np.abs(g[k]).max() > 1e-8, f"no gradient reaches {k}"


def autoencoder_loss(B, x, mask):
    """Invariant encoder (sum pooling + EA), Top-n decoder, invariant (Chamfer) loss."""
    xb, mb = B.asarray(x), B.asarray(mask)
    n = mask.sum(1)

    def loss(p):
        enc = {k[4:]: v for k, v in p.items() if k.startswith("enc_")}
        dec = {k[4:]: v for k, v in p.items() if k.startswith("dec_")}
        z = B.equilibrium_aggregation(enc, xb, mb, num_steps=3) + B.sum_pool(xb, mb)[:, :1]
        out, out_mask = B.top_n_creation(dec, z, B.asarray(n), max_n=x.shape[1])
        return B.chamfer_loss(out, xb, out_mask, mb).sum()

    return loss


@given(seed=seeds)
def test_f_l_equivariance(backend, ref, seed):
    rng = np.random.default_rng(seed)
    enc = ref.init_equilibrium_aggregation(seed, 2, 3, hidden=(4, 3), dtype="float64")
    dec = ref.init_top_n_creation(seed + 1, 3, 2, 6, hidden=(4,), dtype="float64")
    params = {**{f"enc_{k}": v for k, v in enc.items()}, **{f"dec_{k}": v for k, v in dec.items()}}
    x = rng.uniform(-1, 1, (2, 4, 2))
    mask = np.array([[True] * 4, [True, True, True, False]])
    perm = np.stack([rng.permutation(4) for _ in range(2)])
    xp, mp = np.take_along_axis(x, perm[..., None], 1), np.take_along_axis(mask, perm, 1)
    g1 = grad(backend, autoencoder_loss(backend, x, mask), params)
    g2 = grad(backend, autoencoder_loss(backend, xp, mp), params)
    # the reference's gradients are finite differences: compare them at that tolerance
    quantity = "finite_difference" if backend.__name__ == "setwise.reference" else "grad"
    for k in params:
        assert_close(g2[k], g1[k], quantity, "float64", f"d loss / d {k}", f"seed={seed}")
