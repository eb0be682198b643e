"""Synthetic molecule-like 3-D sets: a set VAE with four set creators (paper 2, section 5.3,
Table 4; appendix D.2).

The VAE (:mod:`.model`) reconstructs sets of 2-35 points in 3-D and generates new ones from
``z ~ N(0, I)`` with a size drawn from the training distribution. Table 4 compares the
creators (Top-n, First-n, i.i.d., MLP) on train/test W2 and, on generated sets, the valency
loss, the % of points of incorrect valency and the diversity, also in the extrapolation
setting (10 more points per set). Metrics: :mod:`.metrics`. Table 6 (appendix D.2), Top-n
with 11 to 50 reference points on the variant dataset of at most 11 points, is the ablation
``setwise sweep synthetic:reference-size`` (:data:`TABLE6_NOTES`, :func:`.report.table6_page`).

Notes:
    The CPU configuration (the default) trains for minutes instead of 10,000 epochs: batch 32
    (paper code: 128), Adam at a constant 1e-3 (paper: 2e-4 with a plateau scheduler halving
    it after 750 epochs without improvement: the ``paper`` preset's ``lr_patience`` 15
    intervals of 50 epochs; the released code also stops once the rate is below 1e-5, which
    is not done here; measured: at the CPU budget the training loss falls in every
    interval, so the schedule never cuts: Top-n on the ``n_max`` 11 variant, 800 steps,
    ``--lr-patience 1 --eval-every 100``, gave the constant rate's metrics exactly, and the
    CPU default keeps ``lr_patience`` None), no gradient
    clipping (the released code clips the norm at 4), 500 generated sets and 500 diversity
    pairs per evaluation (released: 1000 and 1000). Train W2 is measured like test W2, from
    the posterior mean on the first ``eval_train_sets`` training sets in evaluation mode (the
    released code logs the training loss of the epoch).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from setwise.tasks.config import training_options
from setwise.tasks.registry import Option, SweepSpec, Task
from setwise.tasks.symmetries import SetOutput, Symmetries, dense_sets
from setwise.tasks.synthetic import data, metrics
from setwise.tasks.synthetic.model import CREATORS, LABELS, VAESpec, init_params, init_state

SWEEP_NOTES = (
    "Reduced budget against the paper's Table 4 (5 runs of up to 10,000 epochs, about "
    "450,000 steps of batch 128 on a GPU): every run here trains `steps` Adam steps of batch "
    "32 at a constant rate `lr` = 1e-3, the CPU default (paper: 2e-4 halved on plateaus; no "
    "gradient clipping, the released code clips at norm 4), on the torch backend, 3 seeds "
    "(paper: 5); generation metrics on "
    "`num_generated` sets (paper code: 1000) with as many diversity pairs; train W2 on the "
    "first `eval_train_sets` training sets and test W2 on the first `eval_test_sets` test "
    "sets, from the posterior mean. W2 here is the true "
    "Wasserstein-2 distance per set (sqrt of the mean matched squared distance); the "
    "released code's number is the mean matched Euclidean distance (at most W2). The loss "
    "terms are per point (W2², reg2, reg3 divided by the set size; see the task's Notes). "
    "Table 6 (reference-set sizes) is its own page, `setwise sweep "
    "synthetic:reference-size`.")

#: Table 6's reference-set sizes n0, on the variant dataset of sets of at most 11 points.
REFERENCE_SIZES = (11, 13, 15, 20, 30, 50)

#: Table 6 (paper 2, appendix D.2), mean ± std over 5 runs: train W2 and valency loss (the
#: paper prints the valency loss in units of 1e-1; here in plain units).
PAPER_TABLE6 = {11: {"train_w2": (0.75, .04), "valency_loss": (0.28, .07)},
                13: {"train_w2": (0.78, .03), "valency_loss": (0.22, .07)},
                15: {"train_w2": (0.79, .04), "valency_loss": (0.21, .09)},
                20: {"train_w2": (0.87, .05), "valency_loss": (0.24, .12)},
                30: {"train_w2": (0.93, .04), "valency_loss": (0.16, .02)},
                50: {"train_w2": (1.03, .06), "valency_loss": (0.28, .08)}}

#: CPU budget of Table 6: 18 runs in about 45 min on one core of a loaded machine (one run
#: of 750 steps measured at about 2.5 min under load 7).
TABLE6_OVERRIDES = {"creator": "top_n", "n_max": 11, "steps": 750, "eval_every": 250,
                    "log_every": 25, "num_generated": 250, "eval_test_sets": 250,
                    "eval_train_sets": 250}

TABLE6_NOTES = (
    "Table 6 of paper 2 (appendix D.2): Top-n with reference sets of 11 to 50 points on the "
    "variant dataset whose sets have at most 11 points (`n_max` 11: the authors' generator "
    "stopped at 11 points, same seed; its sets have 6.6 points on average here, the paper "
    "says 9). Reduced budget: every run trains `steps` Adam steps of batch 32 at the CPU "
    "default's constant rate 1e-3 (paper: up to 10,000 epochs of batch 128 at 2e-4, halved "
    "on plateaus of 750 epochs), on the torch backend, 3 seeds (paper: 5); train W2 on "
    "`eval_train_sets` training sets from the posterior mean (the paper's is the training "
    "loss, the released code's mean matched distance, at most our W2); valency loss on "
    "`num_generated` generated sets. Table 4's notes on W2 and the loss apply. The budget: "
    "one run of 750 steps measured 3.5 min at load 7-9, so 18 runs fit about 45 min on one "
    "core (the sweep took 32 min of wall time at load 4.5-8). At this budget Top-n's "
    "generated sets are too wide: a set decoded from z ~ N(0, I) has 2.6x (30 points, seed "
    "0) to 8x (11 points, seed 0) the mean diameter of a training set, whose posterior "
    "means lie far from the prior (norm 25-29 against 5.4; see `synthetic.md`, Top-n's "
    "instability), so every valency loss here is dominated by that failure more than by "
    "the reference size.")

PAPER_TABLE4 = {  # mean and 95% CI over 5 runs (paper 2, Table 4)
    "mlp": {"train_w2": (0.47, .07), "test_w2": (0.42, .03), "valency_loss": (0.73, .06),
            "incorrect_valency": (22.4, 2.2), "diversity": (4.6, .1),
            "extra_valency_loss": (1.06, .14), "extra_incorrect_valency": (26.6, 1.9),
            "extra_diversity": (4.3, .2)},
    "iid": {"train_w2": (1.20, .01), "test_w2": (0.81, .12), "valency_loss": (1.40, .07),
            "incorrect_valency": (36.8, 20.9), "diversity": (5.0, .3),
            "extra_valency_loss": (0.24, .06), "extra_incorrect_valency": (7.8, 0.5),
            "extra_diversity": (4.9, .2)},
    "first_n": {"train_w2": (0.43, .08), "test_w2": (0.50, .07), "valency_loss": (0.84, .06),
                "incorrect_valency": (24.6, 2.1), "diversity": (5.1, .3),
                "extra_valency_loss": (0.81, .19), "extra_incorrect_valency": (22.5, 3.0),
                "extra_diversity": (4.6, .3)},
    "top_n": {"train_w2": (0.58, .05), "test_w2": (0.44, .03), "valency_loss": (0.37, .12),
              "incorrect_valency": (13.9, 3.7), "diversity": (4.8, .2),
              "extra_valency_loss": (0.80, .10), "extra_incorrect_valency": (17.0, 1.8),
              "extra_diversity": (4.5, .2)},
}


def _options():
    # "aggregator" is the encoder's global pooling: PNA's sum, mean, max, std (appendix D.2)
    base = training_options(aggregators=("pna",), aggregator="pna", steps=1500,
                            batch_size=32, lr=1e-3, eval_every=500, log_every=50)
    return (
        *base,
        Option("creator", "top_n", "set creator of the decoder", str, CREATORS),
        Option("latent_dim", 30, "latent size (released: 30)", int),
        Option("set_channels", 16, "channels of the created set (released: 16)", int),
        Option("width", 64, "transformer width (released: 64)", int),
        Option("num_heads", 4, "attention heads (released: 4)", int),
        Option("ff_width", 256, "transformer feed-forward width (released: 256)", int),
        Option("num_layers", 3, "transformer layers in encoder and decoder (paper: 3)", int),
        Option("encoder_hidden", 128, "hidden width of the encoder MLPs (released: 128)", int),
        Option("decoder_hidden", 64, "hidden width of the decoder's output MLP", int),
        Option("ref_points", 35, "Top-n reference points n0 (paper: 35)", int),
        Option("mlp_creator_hidden", 512, "hidden width of the MLP creator (released: 512)",
               int),
        Option("n_max", 35, "largest set of the dataset (35; Table 6's variant: 11)", int),
        Option("kl_weight", 0.003, "lambda1, KL weight (released: 0.003)", float),
        Option("reg2_weight", 200.0, "lambda2, too-close penalty (released: 200)", float),
        Option("reg3_weight", 200.0, "lambda3, valency penalty (released: 200)", float),
        Option("buckets", [8, 16], "padded set widths below n_max (one JAX compilation each)",
               int, sequence=True),
        Option("eval_batch_size", 128, "sets per evaluation batch", int),
        Option("eval_test_sets", 0, "test sets reconstructed per evaluation (0: all 500)", int),
        Option("eval_train_sets", 500, "training sets reconstructed for train W2", int),
        Option("num_generated", 500, "sets generated per evaluation, and random pairs of the "
               "diversity score (released: 1000)", int),
    )


class SyntheticTask(Task):
    name = "synthetic"
    reproduces = "paper 2 (Top-n), Table 4: set VAE on synthetic 3-D molecule-like sets"
    description = "autoencode and generate 3-D point sets with valency constraints"
    aggregators = CREATORS
    labels = LABELS
    metric = "valency_loss"
    metric_mode = "min"
    options = _options()
    presets = {
        "cpu": {},
        "tiny": {"latent_dim": 4, "set_channels": 4, "width": 8, "num_heads": 2, "ff_width": 8,
                 "num_layers": 1, "encoder_hidden": 8, "decoder_hidden": 8,
                 "mlp_creator_hidden": 8, "batch_size": 4, "steps": 6, "eval_every": 3,
                 "log_every": 2, "eval_batch_size": 8, "eval_test_sets": 8,
                 "eval_train_sets": 8, "num_generated": 8, "buckets": []},
        # the released main.py: 10,000 epochs of batch 128 (45 same-size batches an epoch:
        # 450,000 steps), Adam 2e-4, ReduceLROnPlateau(factor 0.5, patience 750 epochs) on
        # the epoch's training loss. Here the schedule watches the mean training loss of an
        # evaluation interval: 50 epochs (2250 steps), so a patience of 15 intervals is 750
        # epochs.
        "paper": {"batch_size": 128, "lr": 2e-4, "lr_patience": 15, "lr_factor": 0.5,
                  "steps": 450_000, "eval_every": 2250, "log_every": 450,
                  "num_generated": 1000, "eval_train_sets": 2000},
    }

    sweep = SweepSpec(grid={"creator": CREATORS}, seeds=(0, 1, 2),
                      overrides={"steps": 300, "eval_every": 300, "log_every": 25,
                                 "num_generated": 200, "eval_test_sets": 200,
                                 "eval_train_sets": 100},
                      figure="Table 4", notes=SWEEP_NOTES)
    ablations = {"reference-size": SweepSpec(
        grid={"ref_points": REFERENCE_SIZES}, seeds=(0, 1, 2),
        overrides=TABLE6_OVERRIDES, figure="Table 6 (Top-n reference-set size, n_max 11)",
        notes=TABLE6_NOTES)}

    def spec(self, config: Mapping) -> VAESpec:
        keys = ("latent_dim", "set_channels", "width", "num_heads", "ff_width", "num_layers",
                "encoder_hidden", "decoder_hidden", "ref_points", "mlp_creator_hidden", "n_max")
        return VAESpec(creator=config["creator"], **{k: int(config[k]) for k in keys},
                       kl_weight=float(config["kl_weight"]),
                       reg2_weight=float(config["reg2_weight"]),
                       reg3_weight=float(config["reg3_weight"]))

    def train_batch(self, config, step):
        return data.train_batch(int(config["seed"]), step, int(config["batch_size"]),
                                int(config["n_max"]), tuple(config["buckets"]))

    def eval_batches(self, config):
        size, n_max, seed = int(config["eval_batch_size"]), int(config["n_max"]), 0
        latent, buckets = int(config["latent_dim"]), tuple(config["buckets"])
        recon = [data.recon_batches(split, int(config[f"eval_{split}_sets"]), size, n_max,
                                    part, latent, buckets)
                 for part, split in enumerate(("test", "train"))]
        generated = [data.generation_batches(int(config["num_generated"]), seed, latent, size,
                                             n_max, extra, part, buckets)
                     for part, extra in ((2, False), (3, True))]
        return [b for group in recon + generated for b in group]

    def init_params(self, config, dtype="float32"):
        return init_params(self.spec(config), int(config["seed"]), dtype)

    def init_state(self, config, dtype="float32"):
        return init_state(self.spec(config), dtype)

    def build_model(self, backend, config):
        if backend == "torch":
            from setwise.tasks.synthetic.torch_model import SyntheticVAE
        elif backend == "jax":
            from setwise.tasks.synthetic.jax_model import SyntheticVAE
        else:
            raise ValueError(f"synthetic: backend is {backend!r}; expected 'torch' or 'jax'")
        return SyntheticVAE(self.spec(config))

    def evaluate(self, predictions, batches):
        """Table 4's metrics (:func:`evaluate_sets`)."""
        return evaluate_sets(predictions, batches)

    def sample(self, config, predict, num_sets: int, seed: int = 0,
               extrapolation: bool = False):
        """Generate ``num_sets`` sets (``z ~ N(0, I)``, sizes from the training distribution;
        ``extrapolation``: 10 more points) with ``predict(batch, index)``; returns ``(sets
        [{"points": [n, 3], "valency": [n]}], metrics)`` (valency loss, incorrect valency,
        diversity with ``num_sets`` pairs)."""
        part = 3 if extrapolation else 2
        batches = data.generation_batches(num_sets, seed, int(config["latent_dim"]),
                                          int(config["eval_batch_size"]), int(config["n_max"]),
                                          extrapolation, part, tuple(config["buckets"]))
        predictions = [predict(b, i) for i, b in enumerate(batches)]
        sets = [s for p, b in zip(predictions, batches)
                for s in metrics.unpad(p["points"], b["mask"])]
        found = evaluate_sets(predictions, batches)
        prefix = "extra_" if extrapolation else ""
        return ([{"points": s, "valency": metrics.valencies(s)} for s in sets],
                {k[len(prefix):]: v for k, v in found.items() if k.startswith(prefix)})

    def check_variants(self, config):
        """Every creator (i.i.d. with the shared NumPy noise of ``setwise check``)."""
        return [{"creator": c} for c in CREATORS]

    def symmetries(self, config):
        """Sets ``x [B, P, 3]`` / ``feat [B, P, 7]`` with ``mask``; the decoded ``points`` are
        set-valued (rows of ``mask``); Lemma 1 (paper 2). The i.i.d. creator draws its noise
        per row and slot of the padded batch: no slots appended, no batch independence with
        fixed noise."""
        batch, points = dense_sets({k: 0 for k in ("x", "feat", "mask", "n", "z")},
                                   ("x", "feat", "mask"), "mask",
                                   resizable=config["creator"] != "iid", name="points")
        return Symmetries(batch, (points,), equivariant=(SetOutput(("points",), "mask"),),
                          lemma1=True, per_set_noise=config["creator"] == "iid")

    def report(self, runs, out, *, command: str = "", name: str | None = None):
        """Table 4 beside the paper, training curves, generated sets (:mod:`.report`)."""
        from setwise.tasks.synthetic.report import page

        return page(self, runs, out, command=command, name=name)

    def report_ablation(self, which, runs, out, *, command: str = "",
                        name: str | None = None):
        """Table 6 beside the paper and its plot (:func:`.report.table6_page`); other
        ablations get the default page."""
        if which != "reference-size":
            return super().report_ablation(which, runs, out, command=command, name=name)
        from setwise.tasks.synthetic.report import table6_page

        return table6_page(self, which, runs, out, command=command, name=name)

    def run_name(self, config):
        return f"{config['backend']}-{config['creator']}-s{config['seed']}"


def evaluate_sets(predictions, batches) -> dict:
    """Table 4's metrics from predictions on :meth:`SyntheticTask.eval_batches`: W2 of the
    reconstructions (parts 0, 1); valency loss, incorrect valency and diversity (as many
    random pairs as generated sets, like the released code) of the generated sets (parts 2,
    3), against the dataset's degree histogram carried by the generation batches."""
    recon = {0: [], 1: []}
    generated = {2: [], 3: []}
    for pred, batch in zip(predictions, batches):
        part = int(batch["part"])
        sets = metrics.unpad(pred["points"], batch["mask"])
        if part in recon:
            recon[part] += [metrics.w2(s, t) for s, t in
                            zip(sets, metrics.unpad(batch["x"], batch["mask"]))]
        else:
            generated[part] += sets
    degree = next((np.asarray(b["degree_dist"]) for b in batches if "degree_dist" in b), None)
    out = {}
    if recon[0]:
        out["test_w2"] = float(np.mean(recon[0]))
    if recon[1]:
        out["train_w2"] = float(np.mean(recon[1]))
    for part, prefix in ((2, ""), (3, "extra_")):
        if generated[part]:
            got = metrics.generation_metrics(generated[part], degree, len(generated[part]))
            out.update({prefix + k: v for k, v in got.items()})
    return out
