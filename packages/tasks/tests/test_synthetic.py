"""The synthetic-set VAE task (paper 2, section 5.3): metrics on hand-made sets, the
transformer and VAE layer families across NumPy / torch / JAX, batches, the loss's
regularisers, and padding invariance of the model."""

from __future__ import annotations

import numpy as np
import pytest

from setwise.tasks.config import resolve
from setwise.tasks.layers import transformer as T
from setwise.tasks.layers import vae as V
from setwise.tasks.rng import NumpyRng
from setwise.tasks.synthetic import data, metrics
from setwise.tasks.synthetic.model import VAESpec
from setwise.tasks.synthetic.task import SyntheticTask

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.fixture(autouse=True)
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


# --- metrics on hand-made sets -------------------------------------------------------------

CHAIN = np.array([[0.0, 0, 0], [1.5, 0, 0], [3.0, 0, 0], [4.5, 0, 0]])  # bonds 0-1-2-3


def test_valencies_count_neighbours_closer_than_two():
    assert metrics.valencies(CHAIN).tolist() == [1, 2, 2, 1]
    star = np.array([[0.0, 0, 0], [1.5, 0, 0], [-1.5, 0, 0], [0, 1.5, 0], [0, -1.5, 0],
                     [0, 0, 1.5], [9, 9, 9]])
    assert metrics.valencies(star).tolist() == [5, 1, 1, 1, 1, 1, 0]


def test_valency_loss_and_incorrect_valency_by_hand():
    same = metrics.valency_stats([CHAIN], np.array([0.5, 0.5, 0, 0]))
    assert same == {"valency_loss": pytest.approx(0.0), "incorrect_valency": 0.0}
    # generated valencies {1, 2, 2, 1} against a dataset of degree 4 only: W1 = |1.5 - 4| = 2.5
    shifted = metrics.valency_stats([CHAIN], np.array([0, 0, 0, 1.0]))
    assert shifted["valency_loss"] == pytest.approx(2.5)
    lonely = np.array([[0.0, 0, 0], [5, 0, 0]])  # two points of valency 0
    got = metrics.valency_stats([CHAIN, lonely], np.array([0.5, 0.5, 0, 0]))
    assert got["incorrect_valency"] == pytest.approx(100 * 2 / 6)


def test_exact_ot_and_w2_by_hand():
    a = np.array([[0.0, 0, 0], [1.5, 0, 0], [3, 0, 0]])
    # 1-D: the integral of |F - G| = 1.5 / 6 + 1.5 / 3
    assert metrics.exact_ot(a, a[:2]) == pytest.approx(0.75)
    assert metrics.exact_ot(a, a[::-1]) == pytest.approx(0.0)
    assert metrics.w2(a, a[::-1] + [0, 2, 0]) == pytest.approx(2.0)
    assert metrics.w2(a, a[[2, 0, 1]]) == pytest.approx(0.0)
    assert metrics.diversity([a, a, a], 10) == pytest.approx(0.0)
    assert metrics.diversity([a, a + [0, 0, 3]], 50, seed=1) > 0
    with pytest.raises(ValueError, match="w2"):
        metrics.w2(a, a[:2])


def test_evaluate_reads_parts_and_unpads():
    mask = np.array([[True, True, True, False]])
    x = np.zeros((1, 4, 3))
    x[0, :3] = CHAIN[:3]
    recon = {"x": x, "mask": mask, "part": np.array(0)}
    gen = {"mask": mask, "part": np.array(2), "degree_dist": np.array([0.5, 0.5, 0, 0])}
    pred = {"points": x + [0, 1, 0], "mask": mask}
    out = SyntheticTask().evaluate([pred, pred], [recon, gen])
    assert out["test_w2"] == pytest.approx(1.0)
    assert out["valency_loss"] == pytest.approx(metrics.valency_stats(
        [CHAIN[:3]], gen["degree_dist"])["valency_loss"])
    assert out["diversity"] == 0.0 and "train_w2" not in out


# --- layer families: transformer and vae ---------------------------------------------------

def _sets(seed=0, b=3, n=5, width=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, n, width))
    mask = np.arange(n)[None] < np.array([5, 3, 0])[:, None]
    return np.where(mask[..., None], x, 0), mask


def _transformer_params(width=8, heads=2):
    params = {}
    T.init_transformer_layer(np.random.default_rng(1), params, "t", width, heads, 16, "float64")
    return params


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_layer_same_in_numpy_torch_jax(norm_first):
    from setwise.tasks.layers.jax import transformer as TJ
    from setwise.tasks.layers.torch import transformer as TT

    x, mask = _sets()
    params = _transformer_params()
    want = T.transformer_layer(params, "t", x, mask, 2, norm_first)
    got_t = TT.transformer_layer({k: torch.tensor(v) for k, v in params.items()}, "t",
                                 torch.tensor(x), torch.tensor(mask), 2, norm_first)
    got_j = TJ.transformer_layer({k: jnp.asarray(v) for k, v in params.items()}, "t",
                                 jnp.asarray(x), jnp.asarray(mask), 2, norm_first)
    np.testing.assert_allclose(got_t.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got_j), want, rtol=1e-10, atol=1e-12)
    assert np.all(want[~mask] == 0)


def test_transformer_layer_equivariant_and_blind_to_padding_and_companions():
    x, mask = _sets()
    params = _transformer_params()
    y = T.transformer_layer(params, "t", x, mask, 2)
    perm = np.array([3, 0, 4, 1, 2])
    y_perm = T.transformer_layer(params, "t", x[:, perm], mask[:, perm], 2)
    np.testing.assert_allclose(y_perm, y[:, perm], atol=1e-12)
    padded = np.concatenate([x, np.full((3, 2, 8), 7.0)], 1)
    y_pad = T.transformer_layer(params, "t", padded, np.pad(mask, ((0, 0), (0, 2))), 2)
    np.testing.assert_allclose(y_pad[:, :5], y, atol=1e-12)
    alone = T.transformer_layer(params, "t", x[1:2], mask[1:2], 2)
    np.testing.assert_allclose(alone[0], y[1], atol=1e-12)
    with pytest.raises(ValueError, match="num_heads"):
        T.init_transformer_layer(np.random.default_rng(0), {}, "t", 8, 3, 16)


def test_vae_kl_and_reparameterisation_by_hand_and_across_backends():
    from setwise.tasks.layers.jax import vae as VJ
    from setwise.tasks.layers.torch import vae as VT

    mu = np.array([[0.0, 0.0], [1.0, 0.0]])
    log_var = np.array([[0.0, 0.0], [0.0, np.log(2.0)]])
    # KL = 0.5 * (mu^2 + s^2 - 1 - log s^2) per dimension
    np.testing.assert_allclose(V.kl_standard_normal(mu, log_var),
                               [0.0, 0.5 + 0.5 * (1 - np.log(2.0))])
    np.testing.assert_allclose(VT.kl_standard_normal(torch.tensor(mu), torch.tensor(log_var)),
                               V.kl_standard_normal(mu, log_var))
    z = V.reparameterize(mu, log_var, NumpyRng(3, dtype="float64"))
    eps = np.random.default_rng(3).standard_normal(mu.shape)
    np.testing.assert_allclose(z, mu + np.exp(0.5 * log_var) * eps)
    zt = VT.reparameterize(torch.tensor(mu), torch.tensor(log_var),
                           NumpyRng(3, torch.from_numpy, "float64"))
    zj = VJ.reparameterize(jnp.asarray(mu), jnp.asarray(log_var),
                           NumpyRng(3, jnp.asarray, "float64"))
    np.testing.assert_allclose(zt.numpy(), z)
    np.testing.assert_allclose(np.asarray(zj), z)
    assert [a.shape for a in V.split_gaussian(np.zeros((4, 6)))] == [(4, 3), (4, 3)]


# --- data ----------------------------------------------------------------------------------

def test_train_batches_are_pure_one_size_and_padded():
    task = SyntheticTask()
    config = resolve(task, None, {"seed": 3})
    a, b = task.train_batch(config, 17), task.train_batch(config, 17)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = task.train_batch(resolve(task, None, {"seed": 4}), 17)
    assert not all(np.array_equal(a[k], other[k]) for k in a if a[k].shape == other[k].shape)
    present = a["n"][a["n"] > 0]
    assert len(set(present.tolist())) == 1
    assert a["mask"].shape[1] == data.bucket(int(present[0]), 35)
    assert np.array_equal(a["mask"].sum(1), a["n"])
    assert np.all(a["feat"][~a["mask"]] == 0)
    assert np.array_equal(a["feat"][..., :3], a["x"])
    assert np.all(a["feat"][a["mask"]][:, 3:].sum(1) == 1)


def test_generation_sizes_follow_the_training_distribution_and_extrapolate():
    sizes = data.generation_sizes(4000, 0, 35, False)
    extra = data.generation_sizes(4000, 0, 35, True)
    train_mean = data.dataset("train").points.sizes.mean()
    assert abs(sizes.mean() - train_mean) < 0.3
    assert extra.max() <= 34 and extra.mean() > sizes.mean() + 8


# --- the loss's regularisers and the model -------------------------------------------------

def test_regularisers_by_hand():
    from setwise.tasks.synthetic import model as M
    from setwise.tasks.synthetic.torch_model import TorchOps

    spec = VAESpec()
    pts = torch.tensor([[[0.0, 0, 0], [0.5, 0, 0], [5.0, 0, 0], [0.0, 0, 0]]],
                       dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False]])
    reg2, reg3 = M.regularizers(TorchOps, spec, pts, mask)
    # one pair closer than 1 (0.5 apart); point 2 has no neighbour within 2 (nearest 4.5)
    assert reg2.item() == pytest.approx(0.5, abs=1e-6)
    assert reg3.item() == pytest.approx(2.5, abs=1e-6)
    crowd = torch.zeros(1, 6, 3, dtype=torch.float64)
    crowd[0, :, 0] = torch.arange(6) * 0.3  # every point has 5 neighbours: l2 = (2 - s_4)+
    _, reg3 = M.regularizers(TorchOps, spec, crowd, torch.ones(1, 6, dtype=torch.bool))
    d = np.abs(np.arange(6)[:, None] - np.arange(6)[None]) * 0.3
    want = sum(max(0, 2 - np.sort(d[i][np.arange(6) != i])[4]) for i in range(6))
    assert reg3.item() == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("creator", ["top_n", "iid"])
def test_loss_is_blind_to_padding_width(creator):
    """The same sets padded to 35 instead of 8 give the same loss and batch-norm state."""
    task = SyntheticTask()
    config = resolve(task, "tiny", {"creator": creator})
    model = task.build_model("torch", config)
    params = {k: torch.tensor(v) for k, v in task.init_params(config, "float64").items()}
    state = {k: torch.tensor(v) for k, v in task.init_state(config, "float64").items()}
    narrow = data.train_batch(0, 3, 4, 35, (8, 16))
    width = narrow["mask"].shape[1]
    wide = {k: np.pad(v, ((0, 0), (0, 35 - width)) + ((0, 0),) * (v.ndim - 2))
            if k in ("x", "feat", "mask") else v for k, v in narrow.items()}

    def run(batch):
        tb = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
        tb["x"], tb["feat"] = tb["x"].double(), tb["feat"].double()
        rng = NumpyRng(5, torch.from_numpy, "float64")
        if creator == "iid":  # the same noise for the present rows
            rng = _PaddedNoise(rng, width)
        return model.loss(params, state, tb, rng, True)

    l1, logs1, s1 = run(narrow)
    l2, logs2, s2 = run(wide)
    assert l1.item() == pytest.approx(l2.item(), rel=1e-10)
    for k in s1:
        np.testing.assert_allclose(s1[k].numpy(), s2[k].numpy(), rtol=1e-10, atol=1e-12)


class _PaddedNoise:
    """Draws of the narrow batch's shape, zero-padded to the requested width (so that the
    present rows see the same i.i.d. noise at both widths)."""

    def __init__(self, rng, width):
        self.rng, self.width = rng, width

    def normal(self, shape, dtype=None):
        if len(shape) == 3:
            draw = self.rng.normal((shape[0], self.width, shape[2]))
            return torch.nn.functional.pad(draw, (0, 0, 0, shape[1] - self.width))
        return self.rng.normal(shape)


# --- generation from a checkpoint ----------------------------------------------------------

def test_sample_command_writes_generated_sets_and_metrics(tmp_path, capsys):
    import json

    from setwise.tasks import cli
    from setwise.tasks.train import fit

    task = SyntheticTask()
    run_dir = tmp_path / "run"
    torch.set_num_threads(1)
    fit(task, resolve(task, "tiny", {"backend": "torch", "steps": 3, "eval_every": 3}),
        run_dir, device="cpu", progress=False, plot=False)
    out = tmp_path / "samples"
    for extra in ([], ["--extrapolation"]):
        argv = ["sample", "synthetic", "--run-dir", str(run_dir), "--num", "6", "--out",
                str(out), *extra]
        assert cli.main(argv) == 0
    capsys.readouterr()
    generated = np.load(out / "generated.npz")
    sizes = np.diff(generated["points_ptr"])
    assert len(sizes) == 6 and sizes.min() >= 2 and generated["points"].shape[1] == 3
    assert np.array_equal(generated["valency"][:sizes[0]],
                          metrics.valencies(generated["points"][:sizes[0]]))
    extra_sizes = np.diff(np.load(out / "extrapolation.npz")["points_ptr"])
    assert extra_sizes.mean() > sizes.mean()
    got = json.loads((out / "generated_metrics.json").read_text())
    assert set(got) == {"valency_loss", "incorrect_valency", "diversity"}


# --- Table 6 (reference-set sizes) and the paper preset's schedule ---------------------------

def test_reference_size_ablation_is_table6_on_the_eleven_point_variant():
    from setwise.tasks.sweep import grid

    task = SyntheticTask()
    configs = grid(task, which="reference-size")
    assert [c["ref_points"] for c in configs[::3]] == [11, 13, 15, 20, 30, 50]
    assert {c["seed"] for c in configs} == {0, 1, 2} and len(configs) == 18
    assert all(c["creator"] == "top_n" and c["n_max"] == 11 for c in configs)
    # the variant dataset really stops at 11 points (and has its own cache)
    assert data.features("train", 11).sizes.max() == 11
    assert data.features("train", 35).sizes.max() > 11


def test_paper_preset_halves_the_rate_on_plateaus_of_750_epochs():
    task = SyntheticTask()
    config = resolve(task, "paper", {})
    assert config["lr"] == 2e-4 and config["lr_factor"] == 0.5
    sizes = data.features("train", 35).sizes
    steps_per_epoch = sum(-(-c // config["batch_size"]) for c in np.bincount(sizes) if c)
    epochs = config["lr_patience"] * config["eval_every"] / steps_per_epoch
    assert epochs == pytest.approx(750, rel=0.01)
    assert resolve(task, None, {})["lr_patience"] is None  # the CPU default: constant


def _fake_table6_runs():
    from pathlib import Path

    from setwise.tasks.sweep import Run, grid

    runs = []
    for config in grid(SyntheticTask(), which="reference-size", seeds=(0, 1)):
        size, seed = config["ref_points"], config["seed"]
        final = {"train_w2": 0.5 + size / 100 + seed / 100, "test_w2": 0.6 + size / 100,
                 "valency_loss": 0.3 - 0.05 * (size == 30) + seed / 100,
                 "incorrect_valency": 10.0, "step": 1000}
        runs.append(Run(config, {"final": final, "best": final, "time": 60.0}, [],
                        Path(f"/runs/{size}-{seed}")))
    return runs


def test_table6_page_from_fake_runs(tmp_path):
    from setwise.tasks.synthetic import report

    task = SyntheticTask()
    md, png = task.report_ablation("reference-size", _fake_table6_runs(), tmp_path,
                                   command="setwise sweep synthetic:reference-size",
                                   name="synthetic-reference-size")
    text = md.read_text()
    assert md.name == "synthetic-reference-size.md" and png.exists()
    assert (tmp_path / "synthetic-reference-size-w2.png").exists()
    assert "| Reference points | Seeds | Train W2 | Train W2 (paper) | Valency loss |" in text
    # ref 13: train W2 0.63, 0.64 (mean 0.635, std 0.0071); the paper's 0.78 ± 0.03
    assert f"| 13 | 2 | 0.635 ± {report.R.std([0.63, 0.64]):.2g} | 0.78 ± 0.03 |" in text
    assert "| 30 | 2 |" in text and "0.16 ± 0.02" in text
    assert "Spearman rho +1.00 (paper +1.00)" in text and "holds at this budget" in text
    # 30: 0.25, 0.26 (std 0.0071) against 11: 0.30, 0.31: 0.05 apart, more than the stds
    assert "lowest mean valency loss is at 30 reference points (0.255; paper: 30), as the " \
        "paper, clear of the runner-up" in text
    assert "x the paper's" in text
    assert "`n_max`: 11 (default 35)" in text
