"""The ``setwise`` command: tasks, train, plot, sweep, and its errors."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from setwise.tasks.cli import main

TINY = ["--dim=2", "--width=8", "--head-width=8", "--set-size=20", "--ea-steps=2",
        "--batch-size=8", "--eval-size=32", "--steps=6", "--eval-every=3", "--log-every=3",
        "--device=cpu", "--threads=1"]


@pytest.fixture(autouse=True)
def restore_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_console_script_is_installed():
    assert shutil.which("setwise", path=str(Path(sys.executable).parent)) is not None


def test_tasks_lists_median_and_its_figure(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "Fig. 3" in out


def test_train_prints_and_saves_metrics_then_plot_redraws(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "median", "--aggregator=sum", *TINY, f"--run-dir={run}",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"]["step"] == 6 and summary["config"]["dim"] == 2
    assert (run / "metrics.jsonl").exists() and (run / "curve.png").exists()
    (run / "curve.png").unlink()
    assert main(["plot", str(run)]) == 0
    assert (run / "curve.png").exists()


def test_errors_are_one_line_messages(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "median", "--aggregator=sum", *TINY, f"--run-dir={run}", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "median", "--steps=0", f"--run-dir={run}x"]) == 2
    assert "'steps' is 0; expected a positive int" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        main(["train", "median", "--aggregator=mean"])


def test_paper_preset_is_selectable_and_overridable():
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task

    config = resolve(get_task("median"), "paper", {"steps": 10})
    assert config["steps"] == 10 and config["width"] == 256


def test_sweep_writes_table_and_plot_with_command_and_date(tmp_path, capsys):
    out = tmp_path / "results"
    args = ["sweep", "median", "--dim", "1", "2", "--aggregator", "sum", "ea",
            "--seeds", "0", *[a for a in TINY if not a.startswith("--dim")],
            f"--runs-dir={tmp_path / 'runs'}", f"--out={out}", "--name=median-test"]
    assert main(args) == 0
    md = (out / "median-test.md").read_text()
    assert (out / "median-test.png").exists()
    assert "setwise sweep median --dim 1 2" in md and "| 1 |" in md and "| 2 |" in md
    assert "EA mean" in md and "Sum mean" in md
    assert len(list((tmp_path / "runs").iterdir())) == 4
    capsys.readouterr()
    assert main(args) == 0  # finished runs are reused, not retrained
    assert "step" not in capsys.readouterr().err


def test_data_subcommand_is_wired_when_the_datasets_cli_exists(capsys):
    from setwise.tasks.cli import _data_cli

    with pytest.raises(SystemExit):
        main(["--help"])
    assert ("data" in capsys.readouterr().out) == (_data_cli() is not None)
