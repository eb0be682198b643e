"""The median models: the PyTorch and JAX models equal the NumPy reference model (same
parameters, setwise.reference operators), and their loss is the paper's."""

import numpy as np
import pytest

from setwise.tasks.config import resolve
from setwise.tasks.median.model import init_params, reference_forward
from setwise.tasks.registry import get_task
from setwise.tasks.rng import NumpyRng

TASK = get_task("median")
AGGREGATORS = ("sum", "mha", "pna", "ea")


def tiny(aggregator, **kw):
    return resolve(TASK, overrides={"aggregator": aggregator, "dim": 4, "width": 16,
                                    "head_width": 8, "set_size": 20, "ea_steps": 3, **kw})


def to_backend(backend, arrays):
    if backend == "torch":
        import torch

        return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    import jax.numpy as jnp

    return {k: jnp.asarray(v) for k, v in arrays.items()}


def reference_error(backend, aggregator):
    """max |model - reference model| / max |reference model| on one batch (float32 vs 64)."""
    config = tiny(aggregator)
    params = TASK.init_params(config)
    batch = {k: v[:6] for k, v in TASK.train_batch(config, 0).items()}
    want = reference_forward(TASK.spec(config), {k: v.astype(np.float64) for k, v in
                                                 params.items()},
                             batch["x"].astype(np.float64), batch["mask"])
    model = TASK.build_model(backend, config)
    got = model.predict(to_backend(backend, params), {}, to_backend(backend, batch),
                        NumpyRng(0))["y"]
    got = got.detach().numpy() if backend == "torch" else np.asarray(got)
    return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_model_matches_reference_model(backend, aggregator):
    assert reference_error(backend, aggregator) < 1e-4


def test_ea_has_no_encoder_and_takes_the_raw_numbers():
    params = TASK.init_params(tiny("ea"))
    assert not any(k.startswith("encoder") for k in params)
    # potential input is (x, y): 1 + D wide; hidden sizes [width, width, 1]
    assert params["agg_potential_0_w"].shape == (1 + 4, 16)
    assert params["agg_potential_2_w"].shape == (16, 1)


def test_paper_preset_has_the_papers_sizes():
    config = resolve(TASK, "paper", {"aggregator": "sum", "dim": 32})
    spec = TASK.spec(config)
    assert config["steps"] == 10**7 and config["eval_size"] == 80_000
    assert spec.encoder.sizes == (256, 256, 32) and spec.encoder.residual
    assert spec.head.sizes == (32, 128, 1)
    ea = TASK.spec(resolve(TASK, "paper", {"aggregator": "ea", "dim": 32})).readout
    assert ea.ea_hidden == (256, 256, 1) and ea.ea_steps == 5 and ea.ea_step_size == 0.125
    mha = TASK.spec(resolve(TASK, "paper", {"aggregator": "mha", "dim": 32}))
    assert mha.readout.num_heads == 4
    assert init_params(mha, 0)["agg_query"].shape == (4, 8)


def backend_loss(backend, config):
    model = TASK.build_model(backend, config)
    params, batch = TASK.init_params(config), TASK.train_batch(config, 0)
    loss, logs, _ = model.loss(to_backend(backend, params), {}, to_backend(backend, batch),
                               NumpyRng(0), True)
    return float(loss), {k: float(v) for k, v in logs.items()}


def test_loss_is_mse_plus_weighted_ea_aux_in_both_backends():
    config = tiny("ea")
    (t_loss, t_logs), (j_loss, j_logs) = (backend_loss(b, config) for b in ("torch", "jax"))
    assert set(t_logs) == set(j_logs) == {"mse", "ea_aux", "ea_aux_share", "ea_grad_max_norm",
                                          "ea_active_steps"}
    assert t_loss == pytest.approx(t_logs["mse"] + config["ea_aux_weight"] * t_logs["ea_aux"],
                                   rel=1e-5)
    assert t_logs["ea_aux_share"] == pytest.approx(
        config["ea_aux_weight"] * t_logs["ea_aux"] / t_loss, rel=1e-5)
    assert j_loss == pytest.approx(t_loss, rel=1e-4)
    assert j_logs["ea_aux"] == pytest.approx(t_logs["ea_aux"], rel=1e-4)
