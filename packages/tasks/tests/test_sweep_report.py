"""Sweeps over any options and the results pages written from their runs (no training: the
runs are made by hand)."""

from pathlib import Path

import numpy as np
import pytest

from setwise.tasks import report
from setwise.tasks.registry import get_task
from setwise.tasks.sweep import Run, grid, run_names

MEDIAN = get_task("median")


def test_ci95_is_students_t_half_width():
    # t_{0.975, 2} = 4.302653; std of [1, 2, 3] = 1
    assert report.ci95([1.0, 2.0, 3.0]) == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert report.ci95([5.0]) == 0.0 and report.std([5.0]) == 0.0
    assert report.std([1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_markdown_table_and_budget_notes_from_the_configs_used():
    table = report.markdown_table(["a", "b"], [[1, 0.123456], ["x", 2.0]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.123 |", "| x | 2 |"]
    configs = [{"steps": 100, "lr": 0.1, "seed": 0}, {"steps": 100, "lr": 0.2, "seed": 1}]
    notes = report.budget_notes(configs, defaults={"steps": 1500, "lr": 0.1})
    assert notes == ["- `lr`: {0.1, 0.2} (default 0.1)", "- `steps`: 100 (default 1500)"]


def test_the_grid_is_every_combination_of_any_options_times_seeds():
    configs = grid(MEDIAN, values={"dim": (1, 2), "aggregator": ("sum", "ea")}, seeds=(0, 1),
                   overrides={"steps": 7})
    assert len(configs) == 8
    assert {(c["dim"], c["aggregator"], c["seed"]) for c in configs} == {
        (d, a, s) for d in (1, 2) for a in ("sum", "ea") for s in (0, 1)}
    assert all(c["steps"] == 7 for c in configs)
    assert all(c["eval_every"] == MEDIAN.sweep.overrides["eval_every"] for c in configs)
    with pytest.raises(ValueError, match="not in the grid"):
        grid(MEDIAN, values={"lr": (0.1,)})


def test_run_names_tell_every_grid_point_apart():
    configs = grid(MEDIAN, values={"dim": (4,), "aggregator": ("sum",)}, seeds=(0,))
    configs = [configs[0], {**configs[0], "lr": 0.5}]  # the task's names would collide
    names = run_names(MEDIAN, configs)
    assert len(set(names)) == 2 and "lr=0.5" in names[1]


def fake_runs(final):
    """Finished runs with the given ``{(aggregator, dim): [final mse per seed]}``."""
    runs = []
    for (agg, dim), values in final.items():
        for seed, v in enumerate(values):
            config = grid(MEDIAN, values={"dim": (dim,), "aggregator": (agg,)},
                          seeds=(seed,))[0]
            summary = {"final": {"mse": v, "step": 1000}, "best": {"mse": v / 2},
                       "time": 60.0}
            runs.append(Run(config, summary, [], Path(f"/runs/{agg}-{dim}-{seed}")))
    return runs


def test_median_page_has_the_table_ratios_notes_and_plot(tmp_path):
    runs = fake_runs({("sum", 1): [0.4, 0.2], ("ea", 1): [0.02, 0.04],
                      ("sum", 2): [0.1, 0.1], ("ea", 2): [0.2, 0.2]})
    md, png = MEDIAN.report(runs, tmp_path, command="setwise sweep median --dim 1 2")
    text = md.read_text()
    assert png.exists() and md.name == "median.md"
    assert "Made by `setwise sweep median --dim 1 2`" in text and "load average" in text
    assert "| dim | Sum mean ± std | Sum best | EA mean ± std | EA best |" in text
    assert "| 1 | 0.3 ± 0.14 | 0.1 | 0.03 ± 0.014 | 0.01 |" in text
    assert "| 1 | 10 |" in text and "| 2 | 0.5 |" in text  # Sum's mean over EA's
    assert "below Sum's at 1 of 2 values of dim" in text
    assert MEDIAN.sweep.notes in text


def test_a_task_without_its_own_page_gets_the_grid_table(tmp_path):
    from setwise.tasks.registry import Task

    runs = fake_runs({("sum", 1): [0.4, 0.2], ("ea", 1): [0.02, 0.04]})
    md, png = Task.report(MEDIAN, runs, tmp_path, command="setwise sweep median")
    text = md.read_text()
    assert png is None
    assert "| dim | aggregator | seeds | final mse mean ± std | 95% CI ± | best mse |" in text
    assert f"| 1 | EA | 2 | 0.03 ± 0.014 | {report.ci95([0.02, 0.04]):.2g} | 0.01 |" in text


def test_an_ablation_is_its_own_sweep_with_its_own_page(tmp_path, monkeypatch, capsys):
    """``Task.ablations`` grids run as ``setwise sweep <task>:<name>``: their own overrides,
    run folder and page (table and plot against the ablated option), and an unknown name is
    refused naming the ablations there are."""
    from setwise.tasks import cli
    from setwise.tasks.median.task import MedianTask
    from setwise.tasks.registry import SweepSpec

    tiny = dict(MedianTask.presets["tiny"])
    spec = SweepSpec(grid={"width": (4, 8), "aggregator": ("sum",)}, seeds=(0, 1),
                     overrides={**tiny, "steps": 4, "eval_every": 2}, figure="Width ablation",
                     notes="Two widths.")
    monkeypatch.setattr(MedianTask, "ablations", {"width": spec})
    task = get_task("median")
    configs = grid(task, which="width")
    assert [(c["width"], c["seed"], c["steps"]) for c in configs] == \
        [(4, 0, 4), (4, 1, 4), (8, 0, 4), (8, 1, 4)]
    with pytest.raises(ValueError, match="no ablation 'depth'; its ablations: width"):
        grid(task, which="depth")
    assert cli.main(["sweep", "median:width", "--runs-dir", str(tmp_path / "runs"), "--out",
                     str(tmp_path / "page"), "--threads", "1", "--seeds", "0", "1",
                     "--device", "cpu"]) == 0
    page = tmp_path / "page" / "median-width.md"
    text = page.read_text()
    assert "# median: Width ablation" in text and "Two widths." in text
    assert "| width | aggregator | seeds | final mse mean ± std |" in text
    assert "| 8 | Sum | 2 |" in text and (tmp_path / "page" / "median-width.png").exists()
    assert len(list((tmp_path / "runs").iterdir())) == 4
    capsys.readouterr()
    cli.main(["tasks"])
    assert "setwise sweep median:width: Width ablation" in capsys.readouterr().out
