"""The run curve plot (one axis per quantity) and the sweep figure (error bars, lines)."""

import json

import matplotlib.pyplot as plt
import pytest

from setwise.tasks import plotting


def write_run(tmp_path):
    lines = [{"step": s, "split": "train", "loss": 1.0 / s, "mse": 0.9 / s, "ea_aux": 10.0 / s,
              "ea_aux_share": 0.1, "ea_grad_max_norm": 2.0 / s, "ea_active_steps": 5.0,
              "time": s} for s in (10, 20, 30)]
    lines.append({"step": 30, "split": "eval", "mse": 0.02, "time": 31})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    (tmp_path / "config.json").write_text(json.dumps({"backend": "jax", "aggregator": "ea"}))
    return lines


def test_run_panels_put_loss_metric_then_ea_diagnostics(tmp_path):
    lines = write_run(tmp_path)
    assert plotting.run_panels(lines, "mse") == [
        "loss", "mse", "ea_aux", "ea_aux_share", "ea_grad_max_norm", "ea_active_steps"]


def test_plot_run_draws_one_axis_per_quantity(tmp_path, monkeypatch):
    write_run(tmp_path)
    seen = {}
    save = plt.Figure.savefig

    def record(fig, *args, **kwargs):
        axes = [ax for ax in fig.axes if ax.get_visible()]
        seen.update({ax.get_ylabel(): ax.get_yscale() for ax in axes})
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", record)
    out = plotting.plot_run(tmp_path)
    assert out.exists() and out.stat().st_size > 0
    assert seen == {"loss": "log", "mse": "log", "ea_aux": "log", "ea_aux_share": "linear",
                    "ea_grad_max_norm": "log", "ea_active_steps": "linear"}


def test_plot_run_without_metrics_names_the_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path.name)):
        plotting.plot_run(tmp_path)


def test_plot_sweep_error_bars_and_constant_line(tmp_path, monkeypatch):
    seen = {}
    save = plt.Figure.savefig

    def record(fig, *args, **kwargs):
        ax = fig.axes[0]
        seen["labels"] = ax.get_legend_handles_labels()[1]
        seen["hline"] = [line.get_ydata()[0] for line in ax.get_lines()
                         if line.get_linestyle() == ":"]
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", record)
    curves = {"EA": {"mean": [0.1, 0.01], "std": [0.2, 0.001], "best": [0.05, 0.008]},
              "Sum": {"mean": [0.2, 0.1], "best": [0.1, 0.05]}}
    plotting.plot_sweep(tmp_path / "f.png", "dim", [1, 2], curves, "mse", "t",
                        hlines={"constant predictor": 0.047})
    assert "EA (mean ± std)" in seen["labels"] and "Sum (mean)" in seen["labels"]
    assert seen["hline"] == [0.047]
