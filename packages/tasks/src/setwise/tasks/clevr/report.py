"""The CLEVR results page: Tables 2 and 3 beside paper 2's numbers, training curves, predicted
boxes drawn on test images per creator, and training speed.

Written by ``setwise sweep clevr`` through :meth:`ClevrTask.report
<setwise.tasks.clevr.task.ClevrTask.report>`; every number comes from the runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from setwise.tasks import report as R

CREATORS = ("mlp", "iid", "first_n", "top_n")
LABELS = {"iid": "i.i.d.", "first_n": "First-n", "top_n": "Top-n", "mlp": "MLP"}
COLORS = {"iid": "tab:red", "first_n": "tab:blue", "top_n": "tab:green", "mlp": "tab:purple"}
#: Table 2 (boxes): AP50..AP90 in %, mean and std over 6 runs.
PAPER_BOXES = {
    "mlp": ((93.7, 1.8), (82.8, 3.2), (59.6, 4.8), (26.2, 4.5), (1.8, 0.8)),
    "iid": ((97.3, 2.0), (93.2, 3.7), (80.6, 5.4), (51.8, 5.5), (11.6, 2.3)),
    "first_n": ((88.2, 5.1), (77.1, 7.3), (57.3, 8.2), (29.0, 6.1), (4.0, 1.3)),
    "top_n": ((97.3, 1.3), (93.0, 2.8), (80.8, 5.0), (53.0, 7.0), (12.5, 3.9)),
}
#: Table 3 (state): paper 2's columns AP_10, AP_20, AP_50, AP_100, AP_inf in %.
PAPER_STATE = {
    "mlp": ((2.7, 1.4), (17.9, 8.6), (42.1, 16.8), (54.5, 19.4), (71.2, 3.0)),
    "iid": ((2.6, 1.3), (26.0, 9.1), (60.5, 11.1), (76.6, 5.2), (80.4, 4.3)),
    "first_n": ((0.7, 0.4), (11.7, 4.3), (50.3, 9.1), (81.2, 5.3), (84.8, 5.0)),
    "top_n": ((8.3, 1.9), (48.2, 6.4), (86.4, 3.8), (93.0, 2.6), (94.1, 2.3)),
}
#: Mean APs (%) below this are read as "nothing learnt": no ordering is claimed.
NOISE_AP = 1.0
BOX_KEYS = ("ap50", "ap60", "ap70", "ap80", "ap90")
#: Our keys in the order of paper 2's Table 3 columns (see the task's Notes).
STATE_KEYS = ("ap_0.125", "ap_0.25", "ap_0.5", "ap_1", "ap_inf")
STATE_HEADS = ("AP_10 (d ≤ 0.125)", "AP_20 (d ≤ 0.25)", "AP_50 (d ≤ 0.5)", "AP_100 (d ≤ 1)",
               "AP_inf")


def last_eval(run) -> dict:
    return [m for m in run.metrics if m["split"] == "eval"][-1]


def groups(runs, target) -> dict[str, list]:
    out: dict[str, list] = {}
    for creator in CREATORS:
        group = [r for r in runs if r.config["target"] == target and r.config["creator"] == creator]
        if group:
            out[creator] = group
    return out


def table(runs, target) -> tuple[str, dict]:
    """Rows of Table 2 (boxes) or 3 (state): ours (mean ± std over seeds, in %) over the
    paper's; and ``{creator: {key: [values]}}``."""
    keys, paper = (BOX_KEYS, PAPER_BOXES) if target == "boxes" else (STATE_KEYS, PAPER_STATE)
    heads = ([k.upper() for k in BOX_KEYS] if target == "boxes" else list(STATE_HEADS))
    rows, finals = [], {}
    for creator, group in groups(runs, target).items():
        values = {k: [100 * last_eval(r)[k] for r in group] for k in keys}
        values["set_loss"] = [last_eval(r)["set_loss"] for r in group]
        finals[creator] = values
        rows.append([LABELS[creator], f"ours ({len(group)} seeds)",
                     *(R.mean_std(values[k], 3) for k in keys), R.mean_std(values["set_loss"])])
        rows.append(["", "paper 2 (6 runs)", *(f"{m} ± {s}" for m, s in paper[creator]), ""])
    return R.markdown_table(["creator", "", *heads, "held-out set loss"], rows), finals


def ordering(finals: dict, target: str) -> str:
    """An honest sentence on paper 2's ordering at this budget."""
    if not finals:
        return ""
    score = {c: R.mean([np.mean(v) for k, v in vals.items() if k != "set_loss"])
             for c, vals in finals.items()}
    spread = {c: R.std([np.mean([vals[k][i] for k in vals if k != "set_loss"])
                        for i in range(len(vals["set_loss"]))]) for c, vals in finals.items()}
    ranked = sorted(score, key=score.get, reverse=True)
    measured = ", ".join(f"{LABELS[c]} {score[c]:.3g} ± {spread[c]:.2g}" for c in ranked)
    loss = {c: R.mean(vals["set_loss"]) for c, vals in finals.items()}
    by_loss = " < ".join(LABELS[c] for c in sorted(loss, key=loss.get))
    if max(score.values()) < NOISE_AP:
        verdict = (f"cannot be judged: every creator's mean AP is below {NOISE_AP:g}% (the "
                   "model has not learnt to locate objects at this budget)")
    elif target == "boxes":
        holds = set(ranked[:2]) == {"top_n", "iid"}
        verdict = ("holds at this budget (Top-n and i.i.d. are the two best)" if holds else
                   f"does not hold at this budget (the two best are {LABELS[ranked[0]]} and "
                   f"{LABELS[ranked[1]] if len(ranked) > 1 else '-'})")
    else:
        holds = ranked[0] == "top_n"
        verdict = ("holds at this budget (Top-n is best)" if holds else
                   f"does not hold at this budget (best: {LABELS[ranked[0]]})")
    what = ("Top-n and i.i.d. best on boxes" if target == "boxes" else
            "Top-n best on full-scene prediction")
    close = [c for c in ranked[1:] if abs(score[ranked[0]] - score[c]) <= spread[ranked[0]]
             + spread[c]]
    noise = (f" The gap between {LABELS[ranked[0]]} and "
             f"{', '.join(LABELS[c] for c in close)} is within one standard deviation of the "
             "seeds." if close else "")
    return (f"Paper 2's ordering ({what}) {verdict}. Mean AP over the table's columns (%), "
            f"mean ± std over seeds: {measured}.{noise} Held-out set loss, lowest first: "
            f"{by_loss}{'' if by_loss.endswith('.') else '.'}")


def curves_figure(runs, path: Path):
    """Training set loss (mean over seeds) and evaluation AP against steps, per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in ("boxes", "state") if any(r.config["target"] == t for r in runs)]
    fig, axes = plt.subplots(2, len(targets), figsize=(5.5 * len(targets), 7), squeeze=False)
    for j, target in enumerate(targets):
        for creator, group in groups(runs, target).items():
            train = [[(x["step"], x["set_loss"]) for x in r.metrics if x["split"] == "train"]
                     for r in group]
            n = min(len(t) for t in train)
            steps = np.array([s for s, _ in train[0][:n]])
            values = np.array([[v for _, v in t[:n]] for t in train])
            axes[0, j].plot(steps, values.mean(0), color=COLORS[creator], label=LABELS[creator])
            axes[0, j].fill_between(steps, values.min(0), values.max(0), color=COLORS[creator],
                                    alpha=0.2)
            evals = [[(x["step"], 100 * x["ap"]) for x in r.metrics if x["split"] == "eval"]
                     for r in group]
            n = min(len(e) for e in evals)
            es = np.array([s for s, _ in evals[0][:n]])
            ev = np.array([[v for _, v in e[:n]] for e in evals])
            axes[1, j].errorbar(es, ev.mean(0), yerr=ev.std(0), color=COLORS[creator],
                                marker="o", capsize=3, label=LABELS[creator])
        axes[0, j].set(title=f"{target}: training set loss (Hungarian)", xlabel="step",
                       ylabel="set loss", yscale="log")
        axes[1, j].set(title=f"{target}: held-out AP (mean of the table's columns)",
                       xlabel="step", ylabel="AP (%)")
        axes[0, j].legend()
    fig.suptitle("synthetic CLEVR-like scenes (reduced budget)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def boxes_figure(task, runs, path: Path, count: int = 4):
    """The first ``count`` validation images with their ground-truth boxes, then the boxes
    each creator's seed-0 run predicts (presence as opacity; slots above 0.5 solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from setwise.tasks.clevr import data

    seed = min(r.config["seed"] for r in runs)
    chosen = {c: g[0] for c, g in groups([r for r in runs if r.config["seed"] == seed],
                                         "boxes").items()}
    if not chosen:
        return None
    any_run = next(iter(chosen.values()))
    scenes = data.load("val", *data.source_args(any_run.config))
    images = scenes.images[:count]
    rows = 1 + len(chosen)
    fig, axes = plt.subplots(rows, count, figsize=(2.2 * count, 2.2 * rows), squeeze=False)

    def draw(ax, boxes, alphas, color):
        for (x0, y0, x1, y1), a in zip(boxes, alphas):
            ax.add_patch(Rectangle((x0 * 128, y0 * 128), (x1 - x0) * 128, (y1 - y0) * 128,
                                   fill=False, ec=color, lw=1.2 if a > 0.5 else 0.6,
                                   alpha=float(np.clip(a, 0.05, 1)),
                                   ls="-" if a > 0.5 else ":"))

    for i in range(count):
        axes[0, i].imshow(images[i])
        draw(axes[0, i], scenes.boxes[i][scenes.mask[i]], np.ones(scenes.mask[i].sum()), "k")
    axes[0, 0].set_ylabel("ground truth", fontsize=8)
    for r, (creator, run) in enumerate(chosen.items(), 1):
        config = {**run.config, "eval_size": count, "eval_batch_size": count}
        _, pred = R.run_predictions(task, run, config)
        for i in range(count):
            axes[r, i].imshow(images[i])
            draw(axes[r, i], pred["objects"][i], pred["presence"][i], COLORS[creator])
        axes[r, 0].set_ylabel(f"{LABELS[creator]} (seed {seed})", fontsize=8)
    for ax in axes.ravel():
        ax.set(xticks=[], yticks=[], xlim=(0, 128), ylim=(128, 0))
    fig.suptitle("synthetic CLEVR-like validation images: predicted boxes (reduced budget)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speed_rows(runs) -> str:
    """Steps per second of the sweep's own runs (in-run time / steps, evaluations included)."""
    rows = []
    for target in ("boxes", "state"):
        for creator, group in groups(runs, target).items():
            per_step = [float(r.summary["time"]) / int(r.config["steps"]) for r in group]
            rows.append([target, LABELS[creator], group[0].config["backend"],
                         f"{1 / R.mean(per_step):.3g}"])
    return R.markdown_table(["target", "creator", "backend", "steps/s (whole run, with eval)"],
                            rows)


SPEED_FILE = "clevr-speed.json"


def backend_speed(out: Path) -> list[str]:
    """The table of :mod:`setwise.tasks.clevr.speed`'s file (both backends), if present."""
    path = out / SPEED_FILE
    if not path.exists():
        return [f"(No `{SPEED_FILE}`: `python -m setwise.tasks.clevr.speed --out {path}` "
                "times both backends.)"]
    speed = json.loads(path.read_text())
    rows = []
    for key, rate in speed["steps_per_second"].items():
        target, creator, backend = key.split("/")
        rows.append([target, LABELS[creator], backend, f"{rate:.3g}"])
    made = [f"- `python -m setwise.tasks.clevr.speed --out {path} --backends "
            f"{' '.join(i['backends'])} --targets {' '.join(i['targets'])} --creators "
            f"{' '.join(i['creators'])} --steps {i['steps']} --warmup {i['warmup']}` on "
            f"{i['date']}, load average {i['load_before'][0]:.1f} before, "
            f"{i['load_after'][0]:.1f} after" for i in speed["invocations"]]
    return ["Timed Adam steps (the trainers' own step, batches included) after untimed "
            "warm-up steps (JAX's compilation) at the sweep's budget, one CPU thread, while "
            "other work loaded the machine: compare rows with each other, not with a quiet "
            "machine. Made by:", "", *made, "",
            R.markdown_table(["target", "creator", "backend", "steps/s"], rows)]


def write_page(task, runs: Sequence, out, *, command: str, name: str | None = None):
    """``<out>/<name>.md`` with ``<name>.png`` (curves) and ``<name>-boxes.png``; returns
    ``(markdown path, curves path)``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or task.name
    curves, boxes = out / f"{name}.png", out / f"{name}-boxes.png"
    curves_figure(runs, curves)
    drawn = boxes_figure(task, runs, boxes)
    synthetic = all(r.config.get("source") == "synthetic" for r in runs)
    data_name = "synthetic CLEVR-like scenes" if synthetic else "CLEVR v1.0"
    lines = R.header(f"CLEVR object detection and full-scene prediction on {data_name}, "
                     "paper 2 (Top-n) Tables 2 and 3: reduced-budget reproduction", runs,
                     command=command, defaults=R.task_defaults(task), notes=task.sweep.notes)
    weights = sorted({r.config.get("encoder_weights") or "none (trained from scratch)"
                      for r in runs})
    lines += [f"Encoder weights: {', '.join(weights)}. Data: {data_name}"
              f"{' (setwise.tasks.datasets.clevr_render, not CLEVR)' if synthetic else ''}.",
              ""]
    for target, title in (("boxes", "Table 2: bounding boxes, AP at IoU 0.5 ... 0.9 (%)"),
                          ("state", "Table 3: full scene, AP at coordinate distance d with "
                           "every attribute right (%)")):
        text, finals = table(runs, target)
        if not finals:
            continue
        lines += [f"## {title} ({data_name})", "",
                  "Last evaluation of each run, DSPN's AP (`setwise.tasks.clevr.metrics`: every "
                  "predicted slot is a detection with its presence as confidence); the held-out "
                  "set loss is DSPN's Hungarian training loss on the evaluated scenes.", "",
                  text, "", ordering(finals, target), ""]
    lines += ["## Training curves", "", f"![curves]({curves.name})", ""]
    if drawn:
        lines += ["## Predicted boxes (first validation images, seed 0 of each creator)", "",
                  "Solid: slots with presence above 0.5 (DSPN's display threshold); dotted: "
                  "the other slots, opacity = presence. Images are drawn at 128 x 128; the "
                  f"model saw them at {runs[0].config['image_size']} x "
                  f"{runs[0].config['image_size']}.", "", f"![boxes]({boxes.name})", ""]
    lines += ["## Speed", "", "The sweep's own runs (training time per step including "
              "evaluations, measured under the sweep's load, the machine shared with another "
              "sweep):", "", speed_rows(runs), "", *backend_speed(out), ""]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines))
    return md, curves
