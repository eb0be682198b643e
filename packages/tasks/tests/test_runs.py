"""Run files under fault injection: partial lines, corrupt JSON, wrong paths, resume checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from setwise.tasks import checkpoint
from setwise.tasks.checkpoint import CHECKPOINT
from setwise.tasks.runs import (
    CONFIG,
    METRICS,
    RunDir,
    RunDirError,
    RunFileError,
    read_config,
    read_metrics,
)

CONFIG_A = {"backend": "torch", "aggregator": "sum", "seed": 0, "steps": 6, "dim": 2}


def started_run(tmp_path, lines=3):
    """A run directory with a config, ``lines`` metrics lines and a checkpoint file."""
    run = RunDir(tmp_path / "run", "checkpoint.npz")
    run.prepare(CONFIG_A, resume=False, overwrite=False)
    for step in range(1, lines + 1):
        run.log({"step": step, "split": "train", "loss": 1.0 / step, "time": 0.1 * step})
    run.checkpoint.write_bytes(b"checkpoint")
    return run


def test_a_partial_last_line_is_dropped_and_the_run_resumes(tmp_path):
    run = started_run(tmp_path)
    with open(run.path / METRICS, "a") as f:
        f.write('{"step": 4, "split": "train", "lo')  # killed mid-write
    assert [m["step"] for m in read_metrics(run.path)] == [1, 2, 3]
    assert run.prepare(CONFIG_A, resume=True, overwrite=False)
    run.truncate_metrics(2)
    run.log({"step": 3, "split": "train", "loss": 0.3, "time": 0.3})
    text = (run.path / METRICS).read_text()
    assert text.endswith("\n") and "lo\n" not in text
    assert [m["step"] for m in read_metrics(run.path)] == [1, 2, 3]


def test_a_corrupt_complete_line_names_the_file_and_line(tmp_path):
    run = started_run(tmp_path)
    lines = (run.path / METRICS).read_text().splitlines()
    lines[1] = lines[1][:10] + "\x00garbage"
    (run.path / METRICS).write_text("\n".join(lines) + "\n")
    with pytest.raises(RunFileError, match=r"metrics.jsonl: line 2 .*--overwrite"):
        read_metrics(run.path)
    with pytest.raises(RunFileError, match="line 2"):  # refused before anything is written
        run.check(CONFIG_A, resume=True, overwrite=False)
    (run.path / METRICS).write_text('[1, 2]\n')
    with pytest.raises(RunFileError, match="line 1 is not a metrics record"):
        read_metrics(run.path)


@pytest.mark.parametrize("content", [b"", b'{"backend": "tor', b"\xff\xfe\x00", b"[1, 2]"])
def test_a_corrupt_config_names_the_file(tmp_path, content):
    run = started_run(tmp_path)
    (run.path / CONFIG).write_bytes(content)
    with pytest.raises(RunFileError, match=r"run/config.json: .*--overwrite"):
        read_config(run.path)
    with pytest.raises(RunFileError, match="config.json"):
        run.check(CONFIG_A, resume=True, overwrite=False)
    run.prepare(CONFIG_A, resume=False, overwrite=True)  # --overwrite still starts again
    assert read_config(run.path) == CONFIG_A


def test_check_writes_nothing_and_refuses_what_is_inconsistent(tmp_path):
    fresh = RunDir(tmp_path / "new", "checkpoint.npz")
    assert not fresh.check(CONFIG_A, resume=False, overwrite=False)
    assert not fresh.path.exists()  # a failed start leaves no run directory
    run = started_run(tmp_path)
    with pytest.raises(RunDirError, match="already holds a run"):
        run.check(CONFIG_A, resume=False, overwrite=False)
    with pytest.raises(RunDirError, match=r"different configuration \(dim: 2 -> 3\)"):
        run.check({**CONFIG_A, "dim": 3}, resume=True, overwrite=False)
    assert run.check({**CONFIG_A, "steps": 60}, resume=True, overwrite=False)
    assert run.check({**CONFIG_A, "new_option": 1}, resume=True, overwrite=False)
    with pytest.raises(RunDirError, match="contradict"):
        run.check(CONFIG_A, resume=True, overwrite=True)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        RunDir(a_file, "checkpoint.npz").check(CONFIG_A, resume=False, overwrite=False)
    with pytest.raises(RunDirError, match=r"at step 500, beyond --steps 200; pass --steps 500"):
        RunDir.check_resume_step(run.checkpoint, 500, 200)
    RunDir.check_resume_step(run.checkpoint, 200, 200)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    nothing = RunDir(tmp_path / "none", "checkpoint.npz")
    assert not nothing.check(CONFIG_A, resume=True, overwrite=False)
    assert "nothing to resume" in nothing.start_message(resume=True, resuming=False)
    run = started_run(tmp_path)
    run.checkpoint.unlink()  # killed before its first checkpoint
    assert not run.check(CONFIG_A, resume=True, overwrite=False)
    assert "no checkpoint yet" in run.start_message(resume=True, resuming=False)
    run.checkpoint.write_bytes(b"x")
    assert run.start_message(resume=True, resuming=True).startswith("resuming")


def test_overwrite_removes_every_file_of_the_old_run(tmp_path):
    run = started_run(tmp_path)
    (run.path / "checkpoint.prev.npz").write_bytes(b"x")
    (run.path / "checkpoint.npz.tmp").write_bytes(b"x")
    (run.path / "notes.txt").write_text("mine")
    run.prepare({**CONFIG_A, "dim": 5}, resume=False, overwrite=True)
    assert sorted(p.name for p in run.path.iterdir()) == [CONFIG, "notes.txt"]
    assert json.loads((run.path / CONFIG).read_text())["dim"] == 5


# --- checkpoints: checksum, previous checkpoint, one-line errors ---------------------------

def small_arrays(value=1.0):
    return {"params/w": np.full((3, 4), value, np.float32), "step": np.asarray(7, np.int64)}


@pytest.mark.parametrize("fault", ["truncate", "empty", "garbage", "flip", "delete"])
def test_a_bad_checkpoint_is_one_line_naming_it_and_the_previous_one(tmp_path, fault):
    path = tmp_path / CHECKPOINT
    checkpoint.save(path, small_arrays(1.0))
    checkpoint.save(path, small_arrays(2.0))
    np.testing.assert_array_equal(checkpoint.load(checkpoint.previous(path))["params/w"], 1.0)
    data = bytearray(path.read_bytes())
    if fault == "truncate":
        path.write_bytes(bytes(data[:len(data) // 2]))
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "garbage":
        path.write_bytes(b"\x00garbage" * 50)
    elif fault == "flip":  # two bytes of the parameter values: a valid zip, wrong numbers
        start = bytes(data).index(np.float32(2.0).tobytes() * 12)
        data[start + 5] ^= 0x10
        data[start + 21] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert f"the previous checkpoint checkpoint.prev.npz is good: resume from it with 'mv " \
           f"{checkpoint.previous(path)} {path}' and --resume" in message
    checkpoint.previous(path).unlink()
    with pytest.raises(checkpoint.CheckpointError, match="start again with --overwrite"):
        checkpoint.load(path)


def test_a_checkpoint_killed_mid_write_leaves_the_old_one_whole(tmp_path):
    path = tmp_path / CHECKPOINT
    script = (f"import numpy as np\nfrom setwise.tasks import checkpoint\n"
              f"for i in range(100000):\n"
              f"    checkpoint.save({str(path)!r}, {{'w': np.full(400_000, i, np.float64)}})\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while not checkpoint.previous(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()  # SIGKILL, most likely in the middle of a write
    proc.wait()
    now, prev = checkpoint.load(path)["w"], checkpoint.load(checkpoint.previous(path))["w"]
    assert now[0] == now[-1] and prev[0] == prev[-1]  # both whole
    # the one before, or (killed between keeping the old one and renaming the new one into
    # place) the same one twice: never a newer "previous"
    assert prev[0] in (now[0] - 1, now[0]), (prev[0], now[0])


# --- fit: validation before writing, NaN, Ctrl-C, fewer steps ------------------------------

def tiny_config(**overrides):
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task

    task = get_task("median")
    return task, resolve(task, "tiny", {"aggregator": "sum", "steps": 10, "eval_every": 5,
                                        "log_every": 1, **overrides})


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_nan_loss_stops_at_its_step_keeping_the_last_good_checkpoint(tmp_path, one_thread,
                                                                      monkeypatch):
    from setwise.tasks.train import NonFiniteLoss, fit

    task, config = tiny_config()
    clean = task.train_batch

    def poisoned(config, step):
        batch = clean(config, step)
        return {**batch, "y": batch["y"] * np.nan} if step == 6 else batch

    monkeypatch.setattr(task, "train_batch", poisoned)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"training loss is nan at step 7; stopped \(the "
                       r"last good checkpoint .*checkpoint.npz is kept\)"):
        fit(task, config, run, progress=False, plot=False)
    assert checkpoint.load_checkpoint(run / CHECKPOINT).step == 5
    assert [m["step"] for m in read_metrics(run) if m["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert not (run / "summary.json").exists()


def test_ctrl_c_saves_a_checkpoint_and_the_resumed_run_is_exact(tmp_path, one_thread,
                                                                monkeypatch, capsys):
    from setwise.tasks.cli import main
    from setwise.tasks.train import fit

    task, config = tiny_config()
    whole = fit(task, config, tmp_path / "whole", progress=False, plot=False)
    clean = task.train_batch

    def interrupt_at_3(config, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return clean(config, step)

    monkeypatch.setattr(task, "train_batch", interrupt_at_3)
    monkeypatch.setattr("setwise.tasks.cli.get_task", lambda name: task)
    run = tmp_path / "run"
    args = ["train", "median", "--preset=tiny", "--aggregator=sum", "--steps=10",
            "--eval-every=5", "--log-every=1", "--device=cpu", "--no-progress",
            f"--run-dir={run}"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert f"interrupted after step 4; checkpoint saved in {run}. Resume with: setwise train " \
           f"median --run-dir {run} --resume" in err
    assert checkpoint.load_checkpoint(run / CHECKPOINT).step == 4
    monkeypatch.setattr(task, "train_batch", clean)
    assert main(["train", "median", "--device=cpu", "--no-progress", f"--run-dir={run}",
                 "--resume"]) == 0
    resumed = checkpoint.load_checkpoint(run / CHECKPOINT)
    reference = checkpoint.load_checkpoint(tmp_path / "whole" / CHECKPOINT)
    for name, value in reference.params.items():
        np.testing.assert_array_equal(resumed.params[name], value, err_msg=name)
    assert json.loads((run / "summary.json").read_text())["final"] == whole["final"]


def test_resuming_with_fewer_steps_is_refused_and_a_failed_start_writes_nothing(
        tmp_path, one_thread):
    from setwise.tasks.train import fit

    task, config = tiny_config(steps=5)
    run = tmp_path / "run"
    fit(task, config, run, progress=False, plot=False)
    saved = (run / CONFIG).read_text()
    with pytest.raises(RunDirError, match=r"at step 5, beyond --steps 3; pass --steps 5"):
        fit(task, {**config, "steps": 3}, run, resume=True, progress=False, plot=False)
    assert (run / CONFIG).read_text() == saved
    (run / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint.npz: not a readable"):
        fit(task, {**config, "steps": 8}, run, resume=True, progress=False, plot=False)
    assert (run / CONFIG).read_text() == saved
    fresh = tmp_path / "fresh"
    with pytest.raises(Exception):  # noqa: B017 - whatever the backend raises for the device
        fit(task, config, fresh, device="no-such-device", progress=False, plot=False)
    assert not fresh.exists()
