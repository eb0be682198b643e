"""Plots: a run's training curve (``setwise plot``), one axis per quantity, and a sweep's
figure (``setwise sweep``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from setwise.tasks.runs import CONFIG, read_metrics  # noqa: E402

#: Quantities drawn on a linear axis (counts and fractions); every other one on a log axis
#: when all its values are positive.
LINEAR = ("ea_active_steps", "ea_aux_share", "accuracy", "acc", "ap", "auc", "validity")
#: Panel order: the loss, then the task's metric (placed by :func:`plot_run`), then EA's
#: diagnostics, then anything else a model logs.
ORDER = ("loss", "ea_aux", "ea_aux_share", "ea_grad_max_norm", "ea_active_steps")


def _series(lines, key):
    """``{split: (steps, values)}`` of ``key`` over the metrics lines, finite values only."""
    out = {}
    for split in ("train", "eval"):
        rows = [m for m in lines if m.get("split") == split and isinstance(m.get(key),
                                                                           (int, float))]
        if rows:
            out[split] = ([m["step"] for m in rows], [float(m[key]) for m in rows])
    return out


def run_panels(lines, metric=None) -> list[str]:
    """The quantities of a run's curve plot, one panel each: ``loss``, the task's ``metric``,
    EA's diagnostics (``ea_aux``, ``ea_aux_share``, ``ea_grad_max_norm``,
    ``ea_active_steps``), then every other logged scalar, in that order."""
    keys = list(dict.fromkeys(k for m in lines for k, v in m.items()
                              if k not in ("step", "split", "time")
                              and isinstance(v, (int, float))))
    first = [k for k in ("loss", metric) if k in keys]
    known = [k for k in ORDER if k in keys and k not in first]
    return first + known + [k for k in keys if k not in first and k not in known]


def plot_run(run_dir, out=None, *, metric=None) -> Path:
    """A run's training curve, one axis per quantity (:func:`run_panels`), shared step axis;
    returns the PNG path (default ``<run_dir>/curve.png``).

    Training lines (every ``log_every`` steps) are solid, evaluations are dots. Losses, the
    metric and EA's auxiliary loss and gradient max-norm are drawn on log axes (when all
    positive); active steps and the auxiliary term's share of the loss on linear ones.
    ``metric``: the task's metric key, placed second (default: the first quantity of the
    evaluation lines).
    """
    run_dir = Path(run_dir)
    lines = read_metrics(run_dir)
    if not lines:
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl lines to plot")
    config_path = run_dir / CONFIG
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    evaluated = [k for m in lines if m.get("split") == "eval" for k in m
                 if k not in ("step", "split", "time")]
    panels = run_panels(lines, metric or config.get("metric") or next(iter(evaluated), None))
    cols = 2 if len(panels) > 2 else 1
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.3 * rows + 0.6), sharex=True,
                             squeeze=False)
    for ax, key in zip(axes.flat, panels):
        positive = True
        for split, (steps, values) in _series(lines, key).items():
            style = "-" if split == "train" else "o-"
            ax.plot(steps, values, style, ms=3, lw=1, label=split)
            positive = positive and min(values) > 0
        if positive and key not in LINEAR:
            ax.set_yscale("log")
        ax.set_ylabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    fig.suptitle(f"{run_dir.name}  ({config.get('backend', '?')}, "
                 f"{config.get('aggregator', '?')})", fontsize=9)
    out = Path(out) if out else run_dir / "curve.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_sweep(out, axis: str, values: Sequence, curves: Mapping[str, Mapping[str, Sequence]],
               metric: str, title: str, *, hlines: Mapping[str, float] | None = None) -> Path:
    """One bold line (mean over seeds, with +-1 std error bars where ``curves`` has ``"std"``)
    and one faded line (best) per aggregator, log-log, like paper 1 Fig. 3.
    ``curves[aggregator] = {"mean": [...], "best": [...], "std": [...] (optional)}``;
    ``hlines``: ``{label: value}`` drawn as horizontal dotted lines (a constant predictor).

    Error bars are clipped at the axis' bottom where ``mean - std <= 0`` (log axis).
    """
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, (name, curve) in enumerate(curves.items()):
        color = f"C{i}"
        mean = np.asarray(curve["mean"], float)
        if "std" in curve:
            std = np.asarray(curve["std"], float)
            lower = np.minimum(std, mean * (1 - 1e-3))
            ax.errorbar(values, mean, yerr=[lower, std], fmt="o-", color=color, lw=2.2,
                        capsize=3, label=f"{name} (mean ± std)")
        else:
            ax.plot(values, mean, "o-", color=color, lw=2.2, label=f"{name} (mean)")
        ax.plot(values, curve["best"], "--", color=color, lw=1, alpha=0.5,
                label=f"{name} (best)")
    for j, (label, value) in enumerate((hlines or {}).items()):
        ax.axhline(value, color="0.3", ls=":", lw=1.2 + 0.3 * j, label=f"{label} ({value:.3g})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(values), [str(v) for v in values])
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out)


def plot_ablation(out, axis: str, values: Sequence, curves: Mapping[str, Mapping[str, Sequence]],
                  metric: str, title: str) -> Path:
    """An ablation: ``metric`` (mean ± std error bars) against the values of option ``axis``,
    one line per entry of ``curves`` (``{label: {"mean": [...], "std": [...]}}``). Numeric
    values are placed at their value (log scale when they span over a factor 20), others
    evenly."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    x = list(values) if numeric else list(range(len(values)))
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for i, (label, curve) in enumerate(curves.items()):
        ax.errorbar(x, curve["mean"], yerr=curve.get("std"), fmt="o-", color=f"C{i}", lw=2,
                    capsize=3, label=f"{label} (mean ± std)")
    if numeric and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in values])
    ax.minorticks_off()
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out)


def _save(fig, out, dpi: int = 120) -> Path:
    """Lay out ``fig``, write it to ``out`` (its folder made if needed), close it."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
