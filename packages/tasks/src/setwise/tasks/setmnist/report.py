"""The SetMNIST results page: Table 1 beside the paper, training curves per creator (paper 2,
appendix E), input sets and their reconstructions per creator, and training speed.

Written by ``setwise sweep setmnist`` through :meth:`SetMNISTTask.report
<setwise.tasks.setmnist.task.SetMNISTTask.report>`; every number comes from the runs (and, for
the backend speed table, from ``setmnist-speed.json`` written by
:mod:`setwise.tasks.setmnist.speed`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report as R

#: Paper 2, Table 1: test Chamfer (x 1e-5), mean and 95% CI over 6 runs.
PAPER = {("tspn", "iid"): (16.42, 0.53), ("tspn", "first_n"): (15.45, 1.41),
         ("tspn", "top_n"): (14.98, 0.59), ("dspn", "iid"): (28.56, 1.23),
         ("dspn", "first_n"): (26.61, 0.54), ("dspn", "top_n"): (22.59, 1.71)}
LABELS = {"iid": "i.i.d.", "first_n": "First-n", "top_n": "Top-n", "mlp": "MLP"}
COLORS = {"iid": "tab:red", "first_n": "tab:blue", "top_n": "tab:green", "mlp": "tab:gray"}
SPEED_FILE = "setmnist-speed.json"


def last_eval(run) -> dict:
    return [m for m in run.metrics if m["split"] == "eval"][-1]


def groups(runs) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for r in runs:
        out.setdefault((r.config["model"], r.config["creator"]), []).append(r)
    return out


def table1(runs) -> tuple[str, dict]:
    """Table 1's rows and ``{(model, creator): final chamfer_e5 values}``."""
    rows, finals = [], {}
    for (model, creator), group in groups(runs).items():
        values = [last_eval(r)["chamfer_e5"] for r in group]
        dspn = [last_eval(r)["chamfer_dspn_e5"] for r in group]
        finals[model, creator] = values
        paper = PAPER.get((model, creator))
        rows.append([model.upper(), LABELS[creator], len(group),
                     f"{R.mean(values):.4g} ± {R.ci95(values):.2g}",
                     f"{R.mean(dspn):.4g}",
                     f"{paper[0]} ± {paper[1]}" if paper else "not in Table 1"])
    head = ["model", "creator", "seeds", "Chamfer x 1e-5 (mean ± 95% CI)",
            "DSPN's channel-mean variant", "paper (6 runs)"]
    return R.markdown_table(head, rows), finals


def ordering(finals: dict) -> list[str]:
    """One honest line per model on the paper's ordering Top-n < First-n < i.i.d."""
    lines = []
    for model in ("dspn", "tspn"):
        keys = [(model, c) for c in ("top_n", "first_n", "iid")]
        if not all(k in finals for k in keys):
            continue
        means = {k[1]: R.mean(finals[k]) for k in keys}
        cis = {k[1]: R.ci95(finals[k]) for k in keys}
        holds = means["top_n"] < means["first_n"] < means["iid"]
        apart = all(abs(means[a] - means[b]) > cis[a] + cis[b]
                    for a, b in (("top_n", "first_n"), ("first_n", "iid")))
        ranked = " < ".join(LABELS[c] for c in sorted(means, key=means.get))
        verdict = ("holds" if holds else "does not hold") + (
            " and the 95% intervals do not overlap" if apart else
            " but the 95% intervals overlap, so this budget does not separate them"
            if holds else "")
        lines.append(f"- {model.upper()}: the paper's ordering Top-n < First-n < i.i.d. "
                     f"{verdict} (measured: {ranked}).")
    return lines


def speed_rows(runs) -> str:
    """Seconds per training step of the sweep's own runs (in-run time / steps)."""
    rows = []
    for (model, creator), group in groups(runs).items():
        per_step = [float(r.summary["time"]) / int(r.config["steps"]) for r in group]
        rows.append([model.upper(), LABELS[creator], group[0].config["backend"],
                     f"{1 / R.mean(per_step):.3g}"])
    return R.markdown_table(["model", "creator", "backend", "steps/s (whole run, with eval)"],
                            rows)


def backend_speed(out: Path) -> list[str]:
    """The table of :mod:`setwise.tasks.setmnist.speed`'s file, with Top-n's cost vs First-n."""
    path = out / SPEED_FILE
    if not path.exists():
        return [f"(No `{SPEED_FILE}`: run `python -m setwise.tasks.setmnist.speed --out "
                f"{path}`.)"]
    speed = json.loads(path.read_text())
    rates = speed["steps_per_second"]
    rows = []
    for key, rate in rates.items():
        model, creator, backend = key.split("/")
        first = rates.get(f"{model}/first_n/{backend}")
        ratio = f"{first / rate:.2f}" if first else ""
        rows.append([model.upper(), LABELS[creator], backend, f"{rate:.3g}", ratio])
    made = [f"- `python -m setwise.tasks.setmnist.speed --out {path} --backends "
            f"{' '.join(i['backends'])} --models {' '.join(i['models'])} --creators "
            f"{' '.join(i['creators'])} --steps {i['steps']} --warmup {i['warmup']}` on "
            f"{i['date']}, load average {i['load_before'][0]:.1f} before, "
            f"{i['load_after'][0]:.1f} after" for i in speed["invocations"]]
    return ["Timed Adam steps after untimed warm-up steps (JAX's compilations) at the sweep's "
            "budget, one CPU thread, while other work loaded the machine: compare rows with "
            "each other, not with a quiet machine. The last column is the step time relative "
            "to First-n's (Top-n's cost inside the full training step). With a few timed "
            "steps on a machine this loaded, differences of a few tens of percent between rows "
            "are within the noise. Made by:", "", *made,
            "",
            R.markdown_table(["model", "creator", "backend", "steps/s",
                              "time / First-n's"], rows)]


def curves_figure(runs, path: Path):
    """Training Chamfer (per point, squared) against steps, one line per creator (mean over
    seeds, band: min-max), one panel per model; evaluation Table 1 metric as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r.config["model"] for r in runs})
    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 7), squeeze=False)
    for j, model in enumerate(models):
        for (m, creator), group in groups(runs).items():
            if m != model:
                continue
            train = [[(x["step"], x["chamfer"]) for x in r.metrics if x["split"] == "train"]
                     for r in group]
            steps = np.array([s for s, _ in train[0]])
            values = np.array([[v for _, v in t[:len(steps)]] for t in train])
            ax = axes[0, j]
            ax.plot(steps, values.mean(0), color=COLORS[creator], label=LABELS[creator])
            ax.fill_between(steps, values.min(0), values.max(0), color=COLORS[creator],
                            alpha=0.2)
            evals = [[(x["step"], x["chamfer_e5"]) for x in r.metrics if x["split"] == "eval"]
                     for r in group]
            es = np.array([s for s, _ in evals[0]])
            ev = np.array([[v for _, v in e[:len(es)]] for e in evals])
            axes[1, j].errorbar(es, ev.mean(0), yerr=ev.std(0), color=COLORS[creator],
                                marker="o", label=LABELS[creator], capsize=3)
        axes[0, j].set(title=f"{model.upper()}: training loss", xlabel="step",
                       ylabel="Chamfer (squared, per point)", yscale="log")
        axes[1, j].set(title=f"{model.upper()}: test Chamfer (Table 1's metric)",
                       xlabel="step", ylabel="Chamfer x 1e-5", yscale="log")
        axes[0, j].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reconstructions_figure(task, runs, path: Path, count: int = 4):
    """The first ``count`` test sets and their reconstructions by each creator (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = {(r.config["model"], r.config["creator"]): r for r in runs
              if r.config["seed"] == min(x.config["seed"] for x in runs)}
    models = sorted({m for m, _ in chosen})
    creators = [c for c in ("iid", "first_n", "top_n", "mlp") if any(k[1] == c for k in chosen)]
    rows = 1 + len(models) * len(creators)
    fig, axes = plt.subplots(rows, count, figsize=(1.8 * count, 1.8 * rows), squeeze=False)
    batch = None
    r = 1
    for model in models:
        for creator in creators:
            run = chosen.get((model, creator))
            if run is None:
                continue
            config = {**run.config, "eval_size": count, "eval_batch_size": count}
            batch, pred = R.run_predictions(task, run, config)
            for i in range(count):
                ax = axes[r, i]
                pts = pred["points"][i]
                if "presence" in pred:
                    alpha = np.clip(pred["presence"][i], 0, 1)
                    ax.scatter(pts[:, 1], -pts[:, 0], s=4, c="k", alpha=alpha)
                else:
                    n = int(batch["size"][i])
                    ax.scatter(pts[:n, 1], -pts[:n, 0], s=4, c=COLORS[creator])
            axes[r, 0].set_ylabel(f"{model.upper()}\n{LABELS[creator]}", fontsize=8)
            r += 1
    for i in range(count):
        x = batch["x"][i][batch["mask"][i]]
        axes[0, i].scatter(x[:, 1], -x[:, 0], s=4, c="k")
    axes[0, 0].set_ylabel("input", fontsize=8)
    for ax in axes.ravel():
        ax.set(xlim=(-0.1, 1.1), ylim=(-1.1, 0.1), xticks=[], yticks=[], aspect="equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_page(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """The page ``<out>/<name>.md`` with ``<name>.png`` (curves) and
    ``<name>-reconstructions.png``; returns ``(markdown path, curves path)``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    table, finals = table1(runs)
    curves, recon = out / f"{name}.png", out / f"{name}-reconstructions.png"
    curves_figure(runs, curves)
    reconstructions_figure(task, runs, recon)
    lines = R.header("SetMNIST autoencoding, paper 2 (Top-n) Table 1: reduced-budget "
                     "reproduction", runs, command=command, defaults=R.task_defaults(task),
                     notes=task.sweep.notes)
    lines += ["## Table 1: test Chamfer (x 1e-5)", "",
              "Last evaluation of each run; Table 1's metric (smooth-L1 Chamfer summed over "
              "channels, averaged over the points, DSPN over all padded slots with the "
              "presence channel, TSPN over the set's points; `setwise.tasks.setmnist."
              "metrics`). MLP is an extra row (paper 2 reports it for CLEVR only).", "",
              table, "", *ordering(finals), "",
              "## Training curves (paper 2, appendix E, Fig. 4)", "", f"![curves]({curves.name})",
              "", "## Inputs and reconstructions (seed 0, first test sets)", "",
              "DSPN's points are drawn with their predicted presence as opacity; TSPN draws "
              "the target's number of points.", "", f"![reconstructions]({recon.name})", "",
              "## Speed", "", "The sweep's own runs (torch, training time per step including "
              "evaluations, under the sweep's load):", "", speed_rows(runs), "",
              *backend_speed(out), ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, curves
