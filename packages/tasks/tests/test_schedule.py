"""The plateau learning-rate schedule (paper 2's "halves the rate on a plateau"): the rule
against ``torch.optim.lr_scheduler.ReduceLROnPlateau``, the rate both trainers apply, and a
run that cuts its rate, killed and resumed, following the same rates as an uninterrupted one."""

import numpy as np
import pytest

from setwise.tasks.config import ConfigError, resolve
from setwise.tasks.registry import get_task
from setwise.tasks.runs import read_metrics
from setwise.tasks.schedule import Plateau
from setwise.tasks.train import fit, trainer_class

TASK = get_task("median")


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_the_rule_is_reduce_lr_on_plateau(patience):
    """The same rates as torch's scheduler (mode min, rel threshold 1e-4) stepped on each
    interval's mean loss, including losses that improve by less than the threshold."""
    import torch

    rng = np.random.default_rng(patience)
    losses = np.concatenate([np.linspace(3.0, 1.0, 6), 1.0 - 1e-6 * np.arange(6),
                             1.0 + rng.uniform(-0.2, 0.2, 12), -np.linspace(0.1, 0.5, 4),
                             -0.5 + rng.uniform(0, 0.1, 8)])
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5,
                                                           patience=patience)
    ours = Plateau(0.1, patience, 0.5)
    for loss in losses:
        # an interval of 4 steps whose mean is `loss`
        for offset in (-0.3, 0.1, 0.1, 0.1):
            ours.add(loss + offset, 1)
        ours.end_interval()
        reference.step(float(loss))
        assert ours.lr == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
    assert ours.lr < 0.1 / 4  # the sequence did cut the rate, several times


def test_no_patience_is_a_constant_rate_and_state_round_trips():
    constant = Plateau(0.01)
    for loss in [1.0, 2.0, 3.0, 4.0]:
        constant.add(loss, 2)
        assert constant.end_interval() is None
    assert constant.lr == 0.01
    cut = Plateau(0.01, patience=0)
    for loss in [1.0, 2.0]:
        cut.add(loss, 1)
    cut.end_interval()
    cut.add(0.5, 3)
    copy = Plateau(1.0, patience=0)
    copy.load(cut.state())
    assert vars(copy) == vars(cut)
    with pytest.raises(ValueError, match="factor"):
        Plateau(0.1, 1, factor=1.0)


def test_the_options_are_checked():
    with pytest.raises(ConfigError, match="lr_factor.*in \\(0, 1\\)"):
        resolve(TASK, "tiny", {"lr_factor": 1.5})
    with pytest.raises(ConfigError, match="lr_patience"):
        resolve(TASK, "tiny", {"lr_patience": -1})
    assert resolve(TASK, "tiny")["lr_patience"] is None


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_both_trainers_step_with_the_rate_they_are_given(backend):
    """Halving the rate halves Adam's first update (its size is lr, whatever the gradient)."""
    config = resolve(TASK, "tiny", {"aggregator": "sum", "backend": backend})
    batch = TASK.train_batch(config, 0)
    moves = []
    for lr in (1e-3, 5e-4):
        trainer = trainer_class(backend)(TASK, config, "cpu")
        before = trainer.checkpoint(0, 0.0).params
        trainer.set_lr(lr)
        trainer.step(batch, 0)
        after = trainer.checkpoint(1, 0.0).params
        moves.append(np.concatenate([np.abs(after[k] - before[k]).ravel() for k in before]))
    np.testing.assert_allclose(moves[1], moves[0] / 2, rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_resumed_run_follows_the_same_rates(backend, tmp_path):
    """patience 0 at a large rate: the loss stalls, the rate is cut and logged; a run stopped
    half way and resumed logs exactly what an uninterrupted one does."""
    config = resolve(TASK, "tiny", {"aggregator": "sum", "backend": backend, "steps": 12,
                                    "eval_every": 2, "log_every": 1, "lr": 0.3,
                                    "lr_patience": 0})
    fit(TASK, config, tmp_path / "whole", device="cpu", progress=False, plot=False)
    fit(TASK, {**config, "steps": 6}, tmp_path / "part", device="cpu", progress=False,
        plot=False)
    fit(TASK, config, tmp_path / "part", device="cpu", progress=False, plot=False, resume=True)

    def lines(run):
        return [{k: v for k, v in m.items() if k != "time"} for m in read_metrics(tmp_path / run)]

    whole = lines("whole")
    rates = [m["lr"] for m in whole if m["split"] == "train"]
    assert rates[0] == 0.3 and min(rates) < 0.3, rates
    assert all(b in (a, a / 2) for a, b in zip(rates, rates[1:]))
    assert lines("part") == whole
