"""Omniglot class counting: metric on hand-made cases, data purity, the ResNet family in three
backends, the model against its NumPy reference, batch-norm state, the paper's sizes.

The cross-backend check, training steps and resume after SIGKILL are in test_every_task.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from setwise.tasks.config import resolve
from setwise.tasks.layers import resnet as np_resnet
from setwise.tasks.layers.resnet import ResNetSpec, conv_out_size, init_resnet
from setwise.tasks.omniglot_counting import data
from setwise.tasks.omniglot_counting.metrics import counting_metrics, cross_entropy
from setwise.tasks.omniglot_counting.model import AGGREGATORS, numpy_model
from setwise.tasks.omniglot_counting.task import OmniglotCountingTask

TASK = OmniglotCountingTask()


def tiny(data_dir, **overrides):
    return resolve(TASK, "tiny", {"data_dir": str(data_dir), **overrides})


# metric -----------------------------------------------------------------------------------

def test_metrics_on_hand_made_logits():
    logits = np.zeros((4, 10))
    logits[0, 2] = 50.0  # predicts 3 classes, label 3: right, xent ~ 0
    logits[1, 0] = 50.0  # predicts 1, label 2: wrong, xent ~ 50
    # rows 2 and 3: uniform logits, xent log 10; argmax ties -> count 1
    label = np.array([3, 2, 1, 10])
    split = np.array([0, 0, 2, 2])
    metrics = counting_metrics([{"logits": logits[:2]}, {"logits": logits[2:]}],
                               [{"label": label[:2], "split": split[:2]},
                                {"label": label[2:], "split": split[2:]}])
    assert set(metrics) == {"train_accuracy", "train_xent", "test_accuracy", "test_xent"}
    assert metrics["train_accuracy"] == 0.5
    assert metrics["train_xent"] == pytest.approx(50.0 / 2, abs=1e-12)
    assert metrics["test_accuracy"] == 0.5
    assert metrics["test_xent"] == pytest.approx(math.log(10), abs=1e-12)


def test_cross_entropy_is_stable_and_checks_labels():
    logits = np.array([[1000.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(cross_entropy(logits, np.array([2, 1])), [1000.0, math.log(2)])
    with pytest.raises(ValueError, match="cross_entropy: argument 'label'"):
        cross_entropy(logits, np.array([0, 1]))


# data -------------------------------------------------------------------------------------

def test_train_batches_are_a_pure_function_of_seed_and_step(data_dir):
    path = data.resolve_data_dir(str(data_dir))
    a, b = data.train_batch(3, 7, 5, path), data.train_batch(3, 7, 5, path)
    assert a["x"].shape == (5, 16, 32, 32) and a["x"].dtype == np.float32
    assert a["mask"].all() and a["label"].dtype == np.int64
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["x"], data.train_batch(3, 8, 5, path)["x"])
    assert not np.array_equal(a["x"], data.train_batch(4, 7, 5, path)["x"])
    # the label is the number of distinct characters of the set
    sets = data.sampler("train", path).sample(5, np.random.default_rng([3, 7]))
    np.testing.assert_array_equal(sets.x, a["x"])
    np.testing.assert_array_equal([len(set(row)) for row in sets.classes], a["label"])


def test_eval_batches_are_fixed_and_tagged_by_split(data_dir):
    path = data.resolve_data_dir(str(data_dir))
    sizes = {"train": 6, "valid": 0, "test": 4}
    first, again = data.eval_batches(sizes, 4, path), data.eval_batches(sizes, 4, path)
    assert [len(b["label"]) for b in first] == [4, 2, 4]
    assert [b["split"].tolist() for b in first] == [[0] * 4, [0] * 2, [2] * 4]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["x"], b["x"])
    # test sets come from the evaluation alphabets: none of their images is a training image
    train_images = data.sampler("train", path).images.reshape(-1, 32 * 32)
    seen = {row.tobytes() for row in train_images[:2000]}
    test_x = np.rint(first[2]["x"] * 255).astype(np.uint8).reshape(-1, 32 * 32)
    assert not any(row.tobytes() in seen for row in test_x)


# ResNet family ----------------------------------------------------------------------------

def _family_inputs(norm):
    spec = ResNetSpec((3, 4, 5), (2, 1, 2), (1, 2, 1), norm=norm)
    rng = np.random.default_rng(0)
    params, state = {}, {}
    init_resnet(rng, params, state, "enc", 2, spec, "float64")
    state = {k: v + rng.random(v.shape) for k, v in state.items()}
    return spec, params, state, rng.random((3, 9, 9, 2))


@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("train", [True, False])
def test_resnet_family_same_in_numpy_torch_jax(norm, train):
    import jax
    import torch

    from setwise.tasks.layers.jax import resnet as jax_resnet
    from setwise.tasks.layers.torch import resnet as torch_resnet

    spec, params, state, x = _family_inputs(norm)
    want, want_state = np_resnet.resnet(params, state, "enc", spec, x, train)
    assert want.shape == (3, 3, 3, 5) == (3, *(2 * (spec.out_size(9),)), 5)
    assert set(want_state) == set(state)
    changed = any(not np.array_equal(want_state[k], state[k]) for k in state)
    assert changed == (train and norm == "batch")
    with jax.enable_x64(True):
        results = {
            "torch": torch_resnet.resnet({k: torch.from_numpy(v) for k, v in params.items()},
                                         {k: torch.from_numpy(v) for k, v in state.items()},
                                         "enc", spec, torch.from_numpy(x), train),
            "jax": jax_resnet.resnet({k: jax.numpy.asarray(v) for k, v in params.items()},
                                     {k: jax.numpy.asarray(v) for k, v in state.items()},
                                     "enc", spec, jax.numpy.asarray(x), train),
        }
        for backend, (got, got_state) in results.items():
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12,
                                       err_msg=backend)
            for k in state:
                np.testing.assert_allclose(np.asarray(got_state[k]), want_state[k],
                                           rtol=1e-12, atol=1e-12, err_msg=f"{backend} {k}")


@pytest.mark.parametrize("size", [5, 8, 9])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (1, 2), (5, 3)])
def test_conv2d_output_size_and_padding(size, kernel, stride):
    """Against a direct loop over output pixels with zero padding k // 2."""
    rng = np.random.default_rng(size)
    params = {"c_w": rng.standard_normal((kernel, kernel, 2, 3)), "c_b": rng.standard_normal(3)}
    x = rng.standard_normal((2, size, size, 2))
    out = np_resnet.conv2d(params, "c", x, stride)
    side = conv_out_size(size, kernel, stride)
    assert out.shape == (2, side, side, 3)
    pad = kernel // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    for i in range(side):
        for j in range(side):
            patch = padded[:, stride * i:stride * i + kernel, stride * j:stride * j + kernel]
            want = np.einsum("nabc,abco->no", patch, params["c_w"]) + params["c_b"]
            np.testing.assert_allclose(out[:, i, j], want, rtol=1e-12, atol=1e-12)


def test_resnet_spec_errors():
    with pytest.raises(ValueError, match="ResNetSpec: norm is 'group'"):
        ResNetSpec((4,), (2,), (1,), norm="group")
    with pytest.raises(ValueError, match="one entry per stage"):
        ResNetSpec((4, 8), (2,), (1, 1))


# model ------------------------------------------------------------------------------------

@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_torch_model_matches_numpy_reference(data_dir, aggregator):
    import torch

    config = tiny(data_dir, aggregator=aggregator)
    params, state = TASK.init_params(config, "float64"), TASK.init_state(config, "float64")
    batch = TASK.train_batch(config, 0)
    batch["x"] = batch["x"].astype(np.float64)
    want, want_logs, want_state = numpy_model(TASK.spec(config)).loss(params, state, batch,
                                                                        None, True)
    model = TASK.build_model("torch", config)
    got, logs, got_state = model.loss({k: torch.from_numpy(v) for k, v in params.items()},
                                      {k: torch.from_numpy(v) for k, v in state.items()},
                                      {k: torch.from_numpy(v) for k, v in batch.items()},
                                      None, True)
    assert float(got) == pytest.approx(float(want), rel=1e-10)
    assert set(logs) == set(want_logs) >= {"xent", "accuracy"}
    assert ("ea_aux" in logs) == (aggregator == "ea")
    for k in state:
        np.testing.assert_allclose(got_state[k].numpy(), want_state[k], rtol=1e-10)


def test_batch_norm_state_threads_and_evaluation_ignores_companions(data_dir):
    import torch

    config = tiny(data_dir, aggregator="sum")
    model = TASK.build_model("torch", config)
    params = {k: torch.from_numpy(v) for k, v in TASK.init_params(config).items()}
    state = {k: torch.from_numpy(v) for k, v in TASK.init_state(config).items()}
    batch = {k: torch.from_numpy(v) for k, v in TASK.train_batch(config, 0).items()}
    _, _, trained = model.loss(params, state, batch, None, True)
    assert set(trained) == set(state) and any(
        not torch.equal(trained[k], state[k]) for k in state)
    _, _, same = model.loss(params, trained, batch, None, False)
    assert all(torch.equal(same[k], trained[k]) for k in state)
    both = model.predict(params, trained, batch, None)["logits"]
    alone = model.predict(params, trained, {k: v[:1] for k, v in batch.items()}, None)["logits"]
    torch.testing.assert_close(alone[0], both[0], rtol=1e-5, atol=1e-5)


def test_paper_preset_has_the_papers_sizes(data_dir):
    config = resolve(TASK, "paper", {"data_dir": str(data_dir), "aggregator": "ea"})
    spec = TASK.spec(config)
    assert spec.encoder.channels == (16, 32, 64) and spec.encoder.strides == (2, 2, 2)
    assert spec.feature_size == 4 * 4 * 64 and spec.dim == 256
    assert spec.readout.ea_hidden == (512, 512, 32) and spec.readout.ea_steps == 10
    assert spec.head.sizes == (128, 10) and spec.ea_aux_weight == 1e-4
    assert config["batch_size"] == 8 and config["steps"] == 10_000_000
    params = TASK.init_params(config)
    assert params["embed_w"].shape == (1024, 256)
    assert params["encoder_0_0_conv1_w"].shape == (3, 3, 1, 16)
    assert params["encoder_2_0_down_w"].shape == (1, 1, 32, 64)
    mha = TASK.spec(resolve(TASK, "paper", {"aggregator": "mha"}))
    assert mha.readout.num_heads == 4 and mha.readout.width == 256


# report -----------------------------------------------------------------------------------

def test_report_page_states_the_ordering(tmp_path):
    from setwise.tasks.sweep import Run

    def run(agg, seed, train, test):
        metrics = [{"step": s, "split": "eval", "train_accuracy": train * s / 2,
                    "test_accuracy": test * s / 2, "train_xent": 2.0, "test_xent": 2.1}
                   for s in (1, 2)]
        if agg == "ea":
            metrics.insert(1, {"step": 2, "split": "train", "xent": 2.3, "ea_aux": 0.4,
                               "ea_grad_max_norm": 0.15, "ea_active_steps": 10.0})
        summary = {"final": {k: v for k, v in metrics[-1].items() if k not in ("split",)},
                   "time": 1.0, "steps_per_second_this_process": 3.0}
        config = {**resolve(TASK, None, {"aggregator": agg, "seed": seed})}
        return Run(config, summary, metrics, tmp_path)

    runs = [run("sum", s, 0.3, 0.2) for s in (0, 1)] + [run("ea", s, 0.5, 0.1) for s in (0, 1)]
    md, png = TASK.report(runs, tmp_path / "out", command="setwise sweep omniglot-counting")
    text = md.read_text()
    assert png.exists() and png.stat().st_size > 0
    assert "| Sum | 2 | 0.3 ± 0 | 0.2 ± 0 |" in text
    assert "the paper's ordering does not hold" in text
    assert "train accuracy: EA 0.500 > Sum 0.300 (EA above both baselines)" in text
    assert "test accuracy: Sum 0.200 > EA 0.100 (EA not above both baselines)" in text
    assert "cross-entropy 2.300-2.300" in text and "active inner steps 10-10 of the 10" in text
