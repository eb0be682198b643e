"""Median's Fig. 3 page: constant predictor, EA's inner-loop diagnostics, the 'before' table."""

import json

import numpy as np
import pytest

from setwise.tasks.median import data, report
from setwise.tasks.registry import get_task
from setwise.tasks.sweep import Run, grid

MEDIAN = get_task("median")


def test_constant_predictor_is_the_mean_median_scored_on_the_held_out_sets():
    config = {**grid(MEDIAN, values={"dim": (1,), "aggregator": ("sum",)}, seeds=(0,))[0],
              "eval_size": 256}
    level, mse = report.constant_mse(MEDIAN, config)
    _, medians, _ = data.sample_sets(np.random.default_rng(123), 5_000, 100)
    assert level == pytest.approx(medians.mean(), abs=0.01)
    target = np.concatenate([b["y"] for b in MEDIAN.eval_batches(config)]).astype(float)
    assert mse == pytest.approx(np.mean((target - level) ** 2), rel=1e-9)
    assert mse == pytest.approx(target.var(), rel=0.05)  # the mean is the best constant


def ea_run(tmp_path, dim, seed, aux):
    config = grid(MEDIAN, values={"dim": (dim,), "aggregator": ("ea",)}, seeds=(seed,))[0]
    run_dir = tmp_path / f"ea-{dim}-{seed}"
    run_dir.mkdir()
    metrics = [{"step": s, "split": "train", "loss": 0.1, "mse": 0.1, "ea_aux": a,
                "ea_aux_share": 0.5 * a / aux[0], "ea_grad_max_norm": a / 10,
                "ea_active_steps": 5.0, "time": s} for s, a in zip((50, 100), aux)]
    metrics.append({"step": 100, "split": "eval", "mse": 0.01, "time": 101})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (run_dir / "config.json").write_text(json.dumps(config))
    summary = {"final": {"mse": 0.01 * (seed + 1), "step": 100}, "best": {"mse": 0.005},
               "time": 10.0}
    return Run(config, summary, metrics, run_dir)


def test_page_has_constant_line_ea_diagnostics_curve_and_before_table(tmp_path):
    runs = [ea_run(tmp_path, dim, seed, aux) for dim in (1, 4)
            for seed, aux in ((0, (10.0, 2.0)), (1, (30.0, 4.0)))]
    out = tmp_path / "out"
    out.mkdir()
    before = ["| dim | EA mean ± std |", "|---|---|", "| 1 | 0.5 ± 0.1 |"]
    (out / "median-before.md").write_text("# old\n\ntext\n\n" + "\n".join(before) + "\n\nend\n")
    md, png = MEDIAN.report(runs, out, command="setwise sweep median --dim 1 4")
    text = md.read_text()
    assert png.exists() and (out / "median-ea-curve.png").exists()
    assert "constant predictor" in text and "MSE 0.047" in text
    # mean over seeds, first -> last training line: aux (10, 30) -> (2, 4)
    assert "| 4 | 50 → 100 | 20 → 3 | 0.5 → 0.0833 | 2 → 0.3 | 5 → 5 |" in text
    assert "ea-4-0" in text  # the curve shown is EA's at the largest D, first seed
    assert "## Before" in text and "\n".join(before) in text


def test_verdict_says_whether_ea_is_below_every_baseline_at_most_d():
    def run(agg, dim, mse):
        config = grid(MEDIAN, values={"dim": (dim,), "aggregator": (agg,)}, seeds=(0,))[0]
        return Run(config, {"final": {"mse": mse}, "best": {"mse": mse}}, [], None)

    table = report.curves(MEDIAN, [run("sum", 1, 0.2), run("mha", 1, 0.1), run("ea", 1, 0.05),
                                   run("sum", 2, 0.2), run("mha", 2, 0.01),
                                   run("ea", 2, 0.05)])[1]
    text = "\n".join(report.ratio_lines(MEDIAN, [1, 2], table))
    assert "does not hold here: EA is below all of Sum, MHA at 1 of 2 values of dim" in text
    table["mha"]["mean"][1] = 0.1
    assert "ordering (EA's mean error below every baseline's at most values of dim) holds" in \
        "\n".join(report.ratio_lines(MEDIAN, [1, 2], table))
