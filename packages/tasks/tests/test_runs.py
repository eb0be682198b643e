"""Run files under fault injection: partial lines, corrupt JSON, wrong paths, resume checks."""

from __future__ import annotations

import json

import pytest

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
