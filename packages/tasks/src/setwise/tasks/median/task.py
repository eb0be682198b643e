"""Median estimation (paper 1, section 5.1, appendix D.1, Fig. 3).

Models (section 5.1): Sum / MHA / PNA pooling baselines encode each number with a ResNet of
layer sizes ``[256, 256, D]``, pool, and predict with ``[D, 128, 1]``; Equilibrium
Aggregation runs 5 steps on a residual potential ``[256, 256, 1]`` over the ``D + 1``
inputs ``(x, y)`` and uses the same output network. Square loss; Adam.

Notes:
    The paper does not give the encoder's or the head's activation: setwise uses ReLU, and
    LayerNorm on the encoder's hidden layers (Listing 1's SuperMLP with ``normalize``), a
    plain ReLU MLP for the head. Attention uses ``min(4, D)`` heads so that D = 1, 2 exist
    (the paper's 4 heads of width D/4 need D >= 4). EA's auxiliary loss weight is 1e-4
    (appendix D.2: "as in the rest of the experiments"). The batch size is not given: 64 in
    the paper preset. The CPU configuration (the default) is narrower (width 32, batch 32)
    and far shorter (1500 steps). EA's inner step size starts at the paper's 0.125: with the
    residual potential's initial values (:func:`setwise.reference.init_potential`'s Notes) the
    untrained inner descent goes downhill at 0.125 (with Haiku's zero biases it diverged, ``y``
    reaching ~1e4 in 5 steps, and the CPU default was 0.02 until issue #9).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from setwise.tasks.config import training_options
from setwise.tasks.layers.readout import LABELS
from setwise.tasks.median import data
from setwise.tasks.median.model import AGGREGATORS, MedianSpec, init_params, spec
from setwise.tasks.registry import Option, SweepSpec, Task
from setwise.tasks.symmetries import Symmetries, dense_sets

PAPER_WIDTH = 256
SWEEP_NOTES = (
    "Against the paper's Fig. 3: 10^3 steps instead of 10^7, widths 32 instead of 256, batch "
    "32, evaluation on 4096 held-out sets instead of 80000, 3 seeds instead of 5, no "
    "exponential smoothing, attention with min(4, D) heads (one head of width 1 at D = 1). "
    "EA's inner step size starts at the paper's 0.125 (the residual potential's "
    "initialisation makes the untrained inner descent go downhill: "
    "`setwise.reference.init_potential`'s Notes). The paper's claim is about the end of a "
    "10^7-step training; this is its first 10^3 steps.")


class MedianTask(Task):
    name = "median"
    reproduces = "paper 1 (Equilibrium Aggregation), Fig. 3: median of 100 numbers, MSE vs D"
    description = "predict the median of a set of 100 numbers (uniform / gamma / normal)"
    aggregators = AGGREGATORS
    metric = "mse"
    metric_mode = "min"
    options = (
        *training_options(aggregators=AGGREGATORS, aggregator="ea", steps=1500, batch_size=32,
                          lr=1e-3, eval_every=250, log_every=50),
        Option("dim", 16, "set embedding size D", int, bound=">= 1"),
        Option("width", 32, "hidden width of encoder and EA potential (paper: 256)", int,
               bound=">= 1"),
        Option("head_width", 128, "hidden width of the output network [D, head_width, 1]", int,
               bound=">= 1"),
        Option("ea_steps", 5, "EA gradient steps T (paper: 5)", int, bound=">= 1"),
        Option("ea_grad_mode", "unrolled", "EA gradient", str,
               ("unrolled", "implicit", "truncated")),
        Option("ea_truncate_steps", 2, "with --ea-grad-mode truncated: back-propagate through "
               "the last K of EA's T steps (K >= T is the unrolled gradient)", int,
               bound=">= 1"),
        Option("ea_aux_weight", 1e-4, "weight of EA's auxiliary loss (eq. 5)", float,
               bound=">= 0"),
        Option("ea_step_size", 0.125, "EA's initial inner step size (paper: 0.125)", float,
               bound="> 0"),
        Option("ea_clip", 0.0, "clip EA's y to [-c, c] after every step; 0: no clipping "
               "(paper: none given)", float, bound=">= 0"),
        Option("num_heads", 4, "attention heads (min(num_heads, D) are used)", int,
               bound=">= 1"),
        Option("set_size", 100, "numbers per set (paper: 100)", int, bound=">= 1"),
        Option("eval_size", 4096, "held-out sets per evaluation (paper: 80000)", int,
               bound=">= 1"),
        Option("eval_batch_size", 1024, "sets per evaluation batch", int, bound=">= 1"),
    )
    presets = {
        "cpu": {},
        "tiny": {"dim": 4, "width": 8, "head_width": 8, "set_size": 20, "ea_steps": 2,
                 "batch_size": 8, "eval_size": 64, "eval_batch_size": 32, "steps": 20,
                 "eval_every": 10, "log_every": 5},
        "paper": {"steps": 10_000_000, "width": PAPER_WIDTH, "batch_size": 64,
                  "eval_size": 80_000, "eval_every": 100_000, "log_every": 1000, "lr": 3e-4,
                  "ea_step_size": 0.125},
    }
    sweep = SweepSpec(grid={"dim": (1, 2, 4, 8, 16, 32), "aggregator": ("sum", "mha", "ea")},
                      seeds=(0, 1, 2), overrides={"steps": 1000, "eval_every": 250},
                      figure="Fig. 3", notes=SWEEP_NOTES)
    labels = LABELS

    def spec(self, config: Mapping) -> MedianSpec:
        return spec(config)

    def train_batch(self, config, step):
        return data.train_batch(int(config["seed"]), step, int(config["batch_size"]),
                                int(config["set_size"]))

    def eval_batches(self, config):
        return data.eval_batches(int(config["eval_size"]), int(config["set_size"]),
                                 int(config["eval_batch_size"]))

    def init_params(self, config, dtype="float32"):
        return init_params(self.spec(config), int(config["seed"]), dtype)

    def evaluate(self, predictions, batches):
        pred = np.concatenate([np.asarray(p["y"], np.float64) for p in predictions])
        target = np.concatenate([np.asarray(b["y"], np.float64) for b in batches])
        return {"mse": float(np.mean((pred - target) ** 2))}

    def check_variants(self, config):
        """Every aggregator, and EA's implicit gradient."""
        return [*({"aggregator": a} for a in AGGREGATORS),
                {"aggregator": "ea", "ea_grad_mode": "implicit"}]

    def symmetries(self, config):
        """Sets ``x [B, N, 1]`` with ``mask``; the median ``y`` is set-level."""
        batch, points = dense_sets({"x": 0, "mask": 0, "y": 0}, ("x", "mask"), "mask")
        return Symmetries(batch, (points,), invariant=("y",), lemma1=True)

    def report(self, runs, out, *, command="", name=None):
        """Fig. 3's page: MSE against D per aggregator (:mod:`setwise.tasks.median.report`)."""
        from setwise.tasks.median.report import write

        return write(self, runs, out, command=command, name=name)

    def run_name(self, config):
        return f"{config['backend']}-{config['aggregator']}-D{config['dim']}-s{config['seed']}"
