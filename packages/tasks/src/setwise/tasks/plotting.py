"""Plots: a run's training curve (``setwise plot``) and a sweep's figure (``setwise sweep``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from setwise.tasks.runs import CONFIG, read_metrics  # noqa: E402


def plot_run(run_dir, out=None) -> Path:
    """Training loss and evaluation metrics against steps, log scale; returns the PNG path
    (default ``<run_dir>/curve.png``)."""
    run_dir = Path(run_dir)
    lines = read_metrics(run_dir)
    if not lines:
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl lines to plot")
    config_path = run_dir / CONFIG
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for split, style in (("train", "-"), ("eval", "o-")):
        rows = [m for m in lines if m["split"] == split]
        keys = [k for k in rows[0] if k not in ("step", "split", "time")] if rows else []
        for key in keys:
            steps = [m["step"] for m in rows]
            values = [m[key] for m in rows]
            ax.plot(steps, values, style, ms=3, lw=1, label=f"{split} {key}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(f"{run_dir.name}  ({config.get('backend', '?')}, "
                 f"{config.get('aggregator', '?')})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(out) if out else run_dir / "curve.png"
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_sweep(out, axis: str, values: Sequence, curves: Mapping[str, Mapping[str, Sequence]],
               metric: str, title: str) -> Path:
    """One bold line (mean over seeds) and one faded line (best) per aggregator, log-log,
    like paper 1 Fig. 3. ``curves[aggregator] = {"mean": [...], "best": [...]}``."""
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, (name, curve) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(values, curve["mean"], "o-", color=color, lw=2.2, label=f"{name} (mean)")
        ax.plot(values, curve["best"], "--", color=color, lw=1, alpha=0.5,
                label=f"{name} (best)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(values), [str(v) for v in values])
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
