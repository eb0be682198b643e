"""Training runs: files, reproducibility, backend agreement, init-from, Adam across backends
(resume after SIGKILL: test_every_task.py, for every task)."""

import json

import pytest

from setwise.tasks.config import resolve
from setwise.tasks.registry import get_task
from setwise.tasks.runs import RunDirError, read_metrics
from setwise.tasks.train import fit

TASK = get_task("median")
BACKENDS = ("torch", "jax")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(backend, **kw):
    return resolve(TASK, overrides={
        "backend": backend, "aggregator": "ea", "dim": 4, "width": 8, "head_width": 8,
        "set_size": 20, "ea_steps": 2, "batch_size": 8, "eval_size": 64, "steps": 20,
        "eval_every": 10, "log_every": 5, **kw})


def numbers(run_dir):
    """The metric lines without their wall-clock times."""
    return [{k: v for k, v in m.items() if k != "time"} for m in read_metrics(run_dir)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_writes_config_metrics_checkpoint_summary_and_plot(backend, tmp_path):
    config = tiny(backend)
    summary = fit(TASK, config, tmp_path, device="cpu", progress=False)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "curve.png"} <= names
    assert any(n.startswith("checkpoint.") for n in names)
    assert json.loads((tmp_path / "config.json").read_text()) == config
    lines = read_metrics(tmp_path)
    assert [m["step"] for m in lines if m["split"] == "train"] == [5, 10, 15, 20]
    assert [m["step"] for m in lines if m["split"] == "eval"] == [10, 20]
    assert summary["final"]["mse"] == lines[-1]["mse"] and summary["device"].lower() \
        .startswith("cpu")
    assert lines[-2]["loss"] < lines[0]["loss"]


def test_the_two_backends_train_alike(tmp_path):
    """Same seed, same initial parameters, same batches, same Adam: float32 agreement."""
    runs = [numbers(fit(TASK, tiny(b, aggregator="sum", steps=10), tmp_path / b,
                        progress=False, plot=False) and tmp_path / b) for b in BACKENDS]
    for t, j in zip(*runs):
        assert t["step"] == j["step"]
        assert j["mse"] == pytest.approx(t["mse"], rel=1e-3)


def test_a_run_is_not_overwritten_or_resumed_with_another_config(tmp_path):
    fit(TASK, tiny("torch", steps=5, eval_every=5), tmp_path, progress=False, plot=False)
    with pytest.raises(RunDirError, match="--resume"):
        fit(TASK, tiny("torch", steps=5, eval_every=5), tmp_path, progress=False)
    with pytest.raises(RunDirError, match="lr"):
        fit(TASK, tiny("torch", steps=5, eval_every=5, lr=0.1), tmp_path, resume=True,
            progress=False)


def test_init_from_starts_from_another_run_and_refuses_a_mismatch(tmp_path, capsys):
    """``setwise train --init-from``: the new run starts from the source run's checkpoint
    (its first training loss is the source's model on batch 0), and a run of another model,
    or a directory without a checkpoint, is one line, exit 2."""
    from setwise.tasks.checkpoint import CHECKPOINT, load_checkpoint
    from setwise.tasks.cli import main
    from setwise.tasks.rng import NumpyRng

    source = tmp_path / "source"
    fit(TASK, resolve(TASK, "tiny", {"backend": "torch", "steps": 5, "eval_every": 5}), source,
        progress=False, plot=False)
    args = ["train", "median", "--preset=tiny", "--backend=torch", "--steps=1",
            "--eval-every=1", "--log-every=1", "--device=cpu", "--no-progress"]
    assert main([*args, f"--init-from={source}", f"--run-dir={tmp_path / 'b'}"]) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["init_from"] == str(source)
    import torch

    model = TASK.build_model("torch", resolve(TASK, "tiny"))
    params = {k: torch.from_numpy(v) for k, v in load_checkpoint(source / CHECKPOINT)
              .params.items()}
    batch = {k: torch.from_numpy(v) for k, v in TASK.train_batch(resolve(TASK, "tiny"), 0)
             .items()}
    want = float(model.loss(params, {}, batch, NumpyRng(0), True)[0])
    assert read_metrics(tmp_path / "b")[0]["loss"] == pytest.approx(want, rel=1e-6)
    capsys.readouterr()
    assert main([*args, "--dim=3", f"--init-from={source}", f"--run-dir={tmp_path / 'c'}"]) == 2
    assert "--init-from" in capsys.readouterr().err
    assert main([*args, f"--init-from={tmp_path}", f"--run-dir={tmp_path / 'd'}"]) == 2
    assert "no checkpoint.npz" in capsys.readouterr().err


def test_adam_state_moves_between_backends(tmp_path):
    """A torch checkpoint (parameters and Adam's moments and count) continues on JAX, and
    back, with the same next update: torch.optim.Adam and optax.adam are one update rule."""
    import numpy as np

    from setwise.tasks.checkpoint import load_checkpoint, save_checkpoint
    from setwise.tasks.train import trainer_class

    config = resolve(TASK, "tiny", {"aggregator": "sum"})
    batches = [TASK.train_batch(config, s) for s in range(5)]
    torch_trainer = trainer_class("torch")(TASK, config, "cpu")
    for s in range(3):
        torch_trainer.step(batches[s], s)
    save_checkpoint(tmp_path / "c.npz", torch_trainer.checkpoint(3, 1.5))
    jax_trainer = trainer_class("jax")(TASK, config, "cpu")
    assert jax_trainer.restore(load_checkpoint(tmp_path / "c.npz")) == (3, 1.5)

    def assert_same(a, b):
        assert a.adam_count == b.adam_count
        for group in ("params", "adam_mu", "adam_nu"):
            want, got = getattr(a, group), getattr(b, group)
            assert set(want) == set(got) == set(a.params)
            for k in want:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-7,
                                           err_msg=f"{group}/{k}")

    torch_trainer.step(batches[3], 3)
    jax_trainer.step(batches[3], 3)
    assert_same(torch_trainer.checkpoint(4, 0.0), jax_trainer.checkpoint(4, 0.0))
    back = trainer_class("torch")(TASK, config, "cpu")
    back.restore(jax_trainer.checkpoint(4, 0.0))
    back.step(batches[4], 4)
    jax_trainer.step(batches[4], 4)
    assert_same(jax_trainer.checkpoint(5, 0.0), back.checkpoint(5, 0.0))
    assert back.checkpoint(5, 0.0).adam_count == 5
