"""Median-estimation data: paper 1 appendix D.1's distributions, labels and determinism."""

import numpy as np

from setwise.tasks.median import data


def test_sets_hold_100_numbers_labelled_with_their_median():
    b = data.train_batch(seed=0, step=0, batch_size=32, set_size=100)
    assert b["x"].shape == (32, 100, 1) and b["x"].dtype == np.float32
    assert b["mask"].all() and b["mask"].shape == (32, 100)
    np.testing.assert_array_equal(b["y"], np.median(b["x"][..., 0], axis=1).astype(np.float32))


def test_each_distribution_has_the_papers_parameters():
    x, _, dist = data.sample_sets(np.random.default_rng(0), 3000, 100)
    x = x[..., 0]
    uniform, gamma, normal = (x[dist == k] for k in range(3))
    assert 900 < len(uniform) < 1100 and 900 < len(gamma) < 1100
    assert uniform.min() >= 0 and uniform.max() <= 1
    assert abs(gamma.mean() - 0.5 * 0.2) < 0.005 and abs(gamma.var() - 0.5 * 0.2**2) < 0.002
    assert gamma.min() >= 0
    assert abs(normal.mean() - 0.5) < 0.005 and abs(normal.std() - 0.4) < 0.005


def test_training_batches_are_a_function_of_seed_and_step():
    a = data.train_batch(1, 7, 8, 100)
    np.testing.assert_array_equal(a["x"], data.train_batch(1, 7, 8, 100)["x"])
    assert not np.array_equal(a["x"], data.train_batch(1, 8, 8, 100)["x"])
    assert not np.array_equal(a["x"], data.train_batch(2, 7, 8, 100)["x"])


def test_the_held_out_sample_is_fixed_and_differs_from_training():
    a = data.eval_batches(100, 100, 32)
    b = data.eval_batches(100, 100, 32)
    assert [len(x["y"]) for x in a] == [32, 32, 32, 4]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u["x"], v["x"])
    assert not np.array_equal(a[0]["x"], data.train_batch(0, 0, 32, 100)["x"])
