"""The ``setwise`` command: tasks, train, plot, compare, sweep, and its errors."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from setwise.tasks.cli import main

TINY = ["--preset=tiny", "--device=cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def restore_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny finished run (torch, sum), copied by the tests that change it."""
    run = tmp_path_factory.mktemp("runs") / "median" / "sum"
    assert main(["train", "median", "--aggregator=sum", *TINY, f"--run-dir={run}"]) == 0
    return run


def copy_run(run, tmp_path, name="run"):
    return Path(shutil.copytree(run, tmp_path / name))


def test_console_script_is_installed():
    assert shutil.which("setwise", path=str(Path(sys.executable).parent)) is not None


def test_tasks_lists_median_and_its_figure(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "Fig. 3" in out


def test_train_prints_a_short_summary_and_plot_redraws(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["step"] == 20 and summary["config"]["dim"] == 4
    assert (run / "metrics.jsonl").exists() and (run / "curve.png").exists()
    from setwise.tasks.cli import end_of_run
    from setwise.tasks.registry import get_task

    text = end_of_run(get_task("median"), summary, run)
    assert len(text.splitlines()) <= 8
    assert f"best  mse {summary['best']['mse']:.4g} at step" in text
    assert f"setwise train median --run-dir {run} --resume --steps 40" in text
    assert f"setwise plot {run}" in text
    (run / "curve.png").unlink()
    assert main(["plot", str(run)]) == 0
    assert (run / "curve.png").exists()


def test_the_run_directory_is_printed_at_the_start_and_default_paths_agree(tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "median", "--aggregator=sum", *TINY, "--steps=2",
                 "--eval-every=2"]) == 0
    out, err = capsys.readouterr()
    run = Path("runs/median/torch-sum-D4-s0")
    assert err.splitlines()[0] == f"run directory: {run}"
    assert (tmp_path / run / "summary.json").exists()
    assert f"setwise plot {run}" in out and "setwise compare runs/median/*" in out


@pytest.mark.parametrize("bad, message", [
    (["--device=cuda"], "--device cuda: PyTorch finds no CUDA GPU"),
    (["--device=tpu"], "--device tpu: the torch backend does not run on TPUs"),
    (["--lr=-1"], "'lr' (--lr) is -1.0; expected a number > 0"),
    (["--eval-size=0"], "'eval_size' (--eval-size) is 0; expected a number >= 1"),
    (["--eval-batch-size=0"], "(--eval-batch-size) is 0; expected a number >= 1"),
    (["--set-size=0"], "'set_size' (--set-size) is 0; expected a number >= 1"),
    (["--ea-aux-weight=-0.1"], "(--ea-aux-weight) is -0.1; expected a number >= 0"),
    (["--steps=0"], "'steps' is 0; expected a positive int"),
])
def test_bad_options_are_one_line_exit_2_and_leave_no_run_dir(tmp_path, capsys, bad, message):
    run = tmp_path / "run"
    if torch_has_cuda() and "cuda" in bad[0]:
        pytest.skip("this machine has a CUDA GPU")
    assert main(["train", "median", *TINY, f"--run-dir={run}", *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("setwise train: error: ") and message in err[0]
    assert not run.exists()


def torch_has_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("bad, message", [
    (["--threads=-2"], "argument --threads: -2 is not a positive integer"),
    (["--threads=0"], "argument --threads: 0 is not a positive integer"),
    (["--lr=nan"], "argument --lr: 'nan' is not a finite number"),
    (["--lr=inf"], "argument --lr: 'inf' is not a finite number"),
    (["--dim=two"], "argument --dim: invalid int value: 'two'"),
    (["--device=quantum"], "argument --device: invalid choice: 'quantum'"),
])
def test_bad_values_are_refused_by_the_parser(tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit) as info:
        main(["train", "median", *TINY, f"--run-dir={tmp_path / 'run'}", *bad])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("setwise train median: error: ") and message in err
    assert not (tmp_path / "run").exists()


def test_run_dir_errors_are_one_line(finished_run, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "median", *TINY, f"--run-dir={a_file}"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    run = copy_run(finished_run, tmp_path)
    assert main(["train", "median", "--aggregator=sum", *TINY, f"--run-dir={run}"]) == 2
    assert "--resume" in capsys.readouterr().err
    (run / "config.json").write_text('{"backend": "tor')
    for args in (["train", "median", *TINY, f"--run-dir={run}", "--resume"],
                 ["plot", str(run)], ["compare", str(run)]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{run / 'config.json'}: cannot read" in err[0]
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_resume_takes_the_saved_options_and_says_what_it_does(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    assert main(["train", "median", "--device=cpu", "--no-progress", f"--run-dir={run}",
                 "--resume", "--steps=25", "--eval-every=5"]) == 2  # another schedule: refused
    assert "different configuration (eval_every: 10 -> 5)" in capsys.readouterr().err
    assert main(["train", "median", "--device=cpu", "--no-progress", f"--run-dir={run}",
                 "--resume", "--steps=25"]) == 0
    out, err = capsys.readouterr()
    assert f"resuming {run} from checkpoint.npz" in err and "25 steps" in out
    fresh = tmp_path / "fresh"
    assert main(["train", "median", *TINY, "--steps=2", "--eval-every=2", f"--run-dir={fresh}",
                 "--resume"]) == 0
    assert f"--resume: nothing to resume in {fresh}; starting a new run" in \
        capsys.readouterr().err


def test_compare_prints_a_table_and_writes_one_plot(finished_run, tmp_path, capsys):
    other = tmp_path / "median" / "ea"
    assert main(["train", "median", "--aggregator=ea", *TINY, "--steps=10",
                 f"--run-dir={other}"]) == 0
    capsys.readouterr()
    out_png = tmp_path / "cmp.png"
    assert main(["compare", str(finished_run), str(other), f"--out={out_png}"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "| run | aggregator | steps | final mse | best mse (step) | time |"
    assert lines[2].startswith("| sum | sum | 20/20 |") and lines[3].startswith("| ea | ea | ")
    assert "shared by every run: backend=torch" in out
    assert out_png.exists() and f"plot: {out_png}" in err
    assert main(["compare", *map(str, other.parent.iterdir())]) == 0
    assert (other.parent / "compare.png").exists()  # default: beside the runs
    assert main(["compare", *map(str, other.parent.iterdir())]) == 0  # a glob with the png
    assert main(["compare", str(tmp_path / "none")]) == 2
    assert main(["compare", str(other), "--metric=accuracy"]) == 2
    assert "no evaluation of the runs has the metric 'accuracy'" in capsys.readouterr().err


def test_paper_preset_is_selectable_and_overridable():
    from setwise.tasks.config import resolve
    from setwise.tasks.registry import get_task

    config = resolve(get_task("median"), "paper", {"steps": 10})
    assert config["steps"] == 10 and config["width"] == 256


def test_sweep_writes_table_and_plot_with_command_and_date(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "results"
    args = ["sweep", "median", "--dim", "1", "2", "--aggregator", "sum", "ea",
            "--seeds", "0", "--preset=tiny", "--device=cpu", "--steps=6", "--eval-every=3",
            f"--runs-dir={runs}", "--name=median-test"]
    assert main(args) == 0
    err = capsys.readouterr().err
    names = {p.name for p in runs.iterdir() if p.is_dir()}
    assert len(names) == 4
    evals = [line for line in err.splitlines() if "eval" in line and "step" in line]
    assert len(evals) == 8 and all(line.split()[0] in names for line in evals)  # labelled
    md = (runs / "median-test.md").read_text()  # by default beside the runs, not in docs/
    assert "setwise sweep median --dim 1 2" in md and "| 1 |" in md and "| 2 |" in md
    assert "EA mean" in md and "Sum mean" in md
    assert "depart from the sweep's own budget, which the notes above describe:** `steps` " \
        "1000 -> 6" in md  # the fixed notes no longer pass for this budget's
    assert main([*args, f"--out={out}"]) == 0  # finished runs are reused, not retrained
    assert "step" not in capsys.readouterr().err
    assert (out / "median-test.md").exists() and (out / "median-test.png").exists()


def test_data_subcommand_is_wired_when_the_datasets_cli_exists(capsys):
    from setwise.tasks.cli import _data_cli

    with pytest.raises(SystemExit):
        main(["--help"])
    assert ("data" in capsys.readouterr().out) == (_data_cli() is not None)


@pytest.mark.parametrize("backend, modes", [("torch", ("unrolled", "implicit", "truncated")),
                                             ("jax", ("truncated",))])
def test_every_ea_grad_mode_trains_end_to_end(tmp_path, capsys, backend, modes):
    """Every --ea-grad-mode trains through the command (JAX's unrolled and implicit modes are
    trained by the every-task test's variants; truncated is new here)."""
    finals = {}
    for mode in modes:
        run = tmp_path / mode
        assert main(["train", "median", *TINY, f"--backend={backend}", "--steps=2",
                     "--eval-every=2", "--eval-size=32", f"--ea-grad-mode={mode}",
                     "--ea-truncate-steps=1", f"--run-dir={run}"]) == 0, capsys.readouterr().err
        summary = json.loads((run / "summary.json").read_text())
        finals[mode] = summary["final"]["mse"]
        assert summary["config"]["ea_grad_mode"] == mode and np.isfinite(finals[mode])
    if "unrolled" in finals:  # the last inner step only: another gradient, another model
        assert finals["truncated"] != finals["unrolled"]
    assert main(["train", "median", *TINY, f"--backend={backend}",
                 "--ea-truncate-steps=0", f"--run-dir={tmp_path / 'zero'}"]) == 2
    assert "(--ea-truncate-steps) is 0; expected a number >= 1" in capsys.readouterr().err
