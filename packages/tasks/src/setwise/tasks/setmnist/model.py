"""SetMNIST autoencoders (paper 2, section 5.1): DSPN and TSPN with a swappable set creator.

Both encode the input set with DSPN's ``FSEncoder`` (:mod:`setwise.tasks.layers.dspn`) into
``z [B, latent]``, create an initial set from ``z`` with one of the four creators (Top-n,
First-n, i.i.d., MLP; the backends' ``create_set``), and refine it:

- **DSPN** (Zhang et al. 2019): the created set has ``N = 342`` slots and 3 channels, the
  point and its presence; ``+ 0.5`` centres it on the canvas (DSPN starts from
  ``U[0, 1]`` points and presence 0.5). The inner loop moves points and presence by gradient
  descent on ``||enc(X, m) - z||`` (``dspn_steps`` steps of size ``dspn_step_size``). The loss
  is the Chamfer loss between ``[X^t, m^t]`` and the padded target ``[x, mask]`` over all 342
  slots, averaged over the slots and over every inner step ``t = 0..T`` (DSPN's ``train.py``).
- **TSPN** (Kosiorek et al. 2020; LukeBolly/tf-tspn): the creator makes the target's ``n``
  points (``set_dim`` channels; the ground-truth size, as TSPN at training and
  reconstruction), ``z`` is concatenated to each, a linear map to ``d_model``, transformer
  blocks over the present points, and a linear map to 2 channels (zero weights, bias 0.5: the
  canvas centre, as tf-tspn). Loss: Chamfer over the ``n`` points, averaged over them. A size
  predictor (MLP on ``stop_gradient(z)``, cross-entropy over sizes ``0..342``) is trained
  beside it, as tf-tspn's, without touching the autoencoder.

Chamfer is the sum over channels (paper 2, appendix D.1); the per-channel mean of DSPN's code
is logged as ``chamfer_dspn``. Layout of the flat parameters: ``enc_*`` (FSEncoder),
``create_*`` (the creator's own names), and for TSPN ``tspn_in_*``, ``tspn_tf_*``,
``tspn_out_*``, ``size_*``.

:class:`SetAutoencoder` is written once over a backend (:class:`Backend`); ``torch_model`` and
``jax_model`` fill it.

Notes:
    - The creators take ``z`` (the latent) for every model; DSPN's own starting set ignores
      it (First-n here adds ``z W``, eq. 11). DSPN's presence is a channel of the created set,
      so Top-n selects a presence with each point, as the Top-n authors' DSPN.
    - i.i.d. creation: the noise is drawn with the step's ``rng`` (the protocol's randomness,
      shared by both backends in ``setwise check``) and mapped as the backends'
      ``iid_creation`` maps it, ``E W_e + z W_z``, with its parameters (``noise_w``, ``z_w``).
    - Top-n's reference set has ``n0 = 2 N`` points (appendix D.1).
    - TSPN's encoder is DSPN's FSEncoder here (tf-tspn: leaky ReLU and two linear layers
      after FSPool), pooled over the present points only; its mask feature is 1.
    - TSPN's transformer blocks are ``layers.transformer``'s post-norm layers (as tf-tspn's:
      ``LN(x + att(x))``, ``LN(h + FF(h))``, feed-forward width ``d_model``) with ReLU (tf-tspn:
      leaky ReLU), biased q/k/v projections (tf-tspn: none) and layer-norm eps 1e-5 (1e-6).
    - The outer loss averages the Chamfer loss over the slots (DSPN) or points (TSPN), as both
      codes do; ``chamfer`` / ``chamfer_dspn`` log the last step's values in that unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from setwise.reference import init_creation
from setwise.tasks.datasets.mnist import DSPN_MAX_POINTS
from setwise.tasks.layers import mlp as mlp_layers
from setwise.tasks.layers.dspn import FSEncoderSpec, init_fs_encoder
from setwise.tasks.layers.transformer import init_transformer_layer
from setwise.tasks.setmnist.data import max_size

MODELS = ("dspn", "tspn")
CREATORS = ("top_n", "first_n", "iid", "mlp")
#: Channels of a SetMNIST point (row, column).
POINT_DIM = 2


@dataclass(frozen=True)
class SetMNISTSpec:
    """Sizes of a SetMNIST autoencoder (see the module docstring).

    Attributes:
        model: ``"dspn"`` or ``"tspn"``; creator: one of :data:`CREATORS`.
        encoder: the FSEncoder on 2-channel points.
        max_size: ``N``, the padded set size (342).
        set_dim: channels of the created set (DSPN: 3 = point + presence).
        creator_hidden: hidden width of Top-n's angle MLP and of the MLP creator.
        dspn_steps / dspn_eval_steps / dspn_step_size: DSPN's inner loop.
        d_model, num_layers, num_heads: TSPN's transformer; size_hidden: its size predictor.
    """

    model: str
    creator: str
    encoder: FSEncoderSpec
    max_size: int = DSPN_MAX_POINTS
    set_dim: int = POINT_DIM + 1
    creator_hidden: int = 64
    dspn_steps: int = 10
    dspn_eval_steps: int = 10
    dspn_step_size: float = 25.0
    d_model: int = 64
    num_layers: int = 3
    num_heads: int = 4
    size_hidden: int = 128

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"setmnist model: model is {self.model!r}; expected one of {MODELS}")
        if self.creator not in CREATORS:
            raise ValueError(f"setmnist model: creator is {self.creator!r}; expected one of "
                             f"{CREATORS}")

    @property
    def num_points(self) -> int:
        """The creator's reference size: ``n0 = 2 N`` for Top-n, ``N`` otherwise."""
        return 2 * self.max_size if self.creator == "top_n" else self.max_size

    @property
    def size_head(self) -> mlp_layers.MLPSpec:
        return mlp_layers.MLPSpec((self.size_hidden, self.max_size + 1), "relu")


def init_params(spec: SetMNISTSpec, seed: int, dtype="float32") -> dict[str, np.ndarray]:
    """All parameters, drawn from ``default_rng(seed)`` in the order ``enc``, ``create``,
    (TSPN) ``tspn_in``, ``tspn_tf_{i}`` (transformer layers, feed-forward width ``d_model``
    as tf-tspn's), ``tspn_out``, ``size``."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    init_fs_encoder(rng, params, "enc", spec.encoder, dtype)
    kwargs = {"hidden": (spec.creator_hidden,)} if spec.creator in ("top_n", "mlp") else {}
    creator = init_creation(spec.creator, rng, spec.encoder.latent, spec.set_dim,
                            spec.num_points, dtype=dtype, **kwargs)
    params.update({f"create_{k}": np.asarray(v) for k, v in creator.items()})
    if spec.model == "tspn":
        mlp_layers.init_linear(rng, params, "tspn_in", spec.set_dim + spec.encoder.latent,
                               spec.d_model, dtype)
        for i in range(spec.num_layers):
            init_transformer_layer(rng, params, f"tspn_tf_{i}", spec.d_model, spec.num_heads,
                                   spec.d_model, dtype)
        params["tspn_out_w"] = np.zeros((spec.d_model, POINT_DIM), dtype)
        params["tspn_out_b"] = np.full(POINT_DIM, 0.5, dtype)
        mlp_layers.init_mlp(rng, params, "size", spec.encoder.latent, spec.size_head, dtype)
    return params


@dataclass(frozen=True)
class Backend:
    """What :class:`SetAutoencoder` needs of a backend: its layer families, operators and a
    few array functions (torch and JAX spell them differently)."""

    mlp: SimpleNamespace           # layers.<backend>.mlp
    dspn: SimpleNamespace          # layers.<backend>.dspn
    transformer: SimpleNamespace   # layers.<backend>.transformer
    create_set: Callable           # the backend's create_set
    chamfer_loss: Callable         # the backend's chamfer_loss
    concat: Callable               # (arrays, axis)
    stack: Callable                # (arrays, axis)
    stop_gradient: Callable
    log_softmax: Callable
    cast: Callable                 # (array, like) -> array of like's dtype
    arange: Callable               # (n, like) -> integer range on like's device


class SetAutoencoder:
    """The DSPN / TSPN autoencoder of :class:`SetMNISTSpec` on one backend (the protocol's
    ``Model``; holds no parameters)."""

    def __init__(self, spec: SetMNISTSpec, backend: Backend):
        self.spec = spec
        self.b = backend

    def encode(self, params, x, m, valid=None):
        return self.b.dspn.fs_encoder(params, "enc", self.spec.encoder, x, m, valid)

    def create(self, params, z, n, rng):
        """``(x0 [B, N, set_dim], mask [B, N])`` from the creator."""
        spec, b = self.spec, self.b
        p = {k[len("create_"):]: v for k, v in params.items() if k.startswith("create_")}
        if spec.creator != "iid":
            return b.create_set(spec.creator, p, z, n, max_n=spec.max_size)
        noise = b.cast(rng.normal((z.shape[0], spec.max_size, p["noise_w"].shape[0])), z)
        mask = b.arange(spec.max_size, z)[None, :] < (n if isinstance(n, int) else n[:, None])
        x0 = noise @ p["noise_w"] + (z @ p["z_w"])[:, None]
        return x0 * b.cast(mask[..., None], x0), mask

    def dspn_forward(self, params, x, mask, rng, train):
        """DSPN: ``(sets, masks, info)`` of the inner loop (``T + 1`` of each) and ``z``."""
        spec, b = self.spec, self.b
        m = b.cast(mask, x)
        z = self.encode(params, x, m)
        x0, _ = self.create(params, z, spec.max_size, rng)
        x0 = x0 + 0.5
        steps = spec.dspn_steps if train else spec.dspn_eval_steps
        return b.dspn.dspn_refine(lambda s, sm: self.encode(params, s, sm), z,
                                  x0[..., :POINT_DIM], x0[..., POINT_DIM],
                                  num_steps=steps, step_size=spec.dspn_step_size,
                                  differentiable=train)

    def tspn_forward(self, params, x, mask, size, rng):
        """TSPN: ``(points [B, N, 2], z)``; rows past each set's size are padding."""
        spec, b = self.spec, self.b
        z = self.encode(params, x, b.cast(mask, x), mask)
        x0, _ = self.create(params, z, size, rng)
        zz = z[:, None, :] * b.cast(mask, z)[..., None]
        h = b.mlp.linear(params, "tspn_in", b.concat([x0, zz], -1))
        for i in range(spec.num_layers):
            h = b.transformer.transformer_layer(params, f"tspn_tf_{i}", h, mask, spec.num_heads)
        return b.mlp.linear(params, "tspn_out", h), z

    def loss(self, params, state, batch, rng, train):
        x, mask = batch["x"], batch["mask"]
        if self.spec.model == "dspn":
            return self._dspn_loss(params, state, x, mask, rng, train)
        return self._tspn_loss(params, state, x, mask, batch["size"], rng)

    def _dspn_loss(self, params, state, x, mask, rng, train):
        b, n = self.b, self.spec.max_size
        sets, masks, info = self.dspn_forward(params, x, mask, rng, train)
        target = b.concat([x, b.cast(mask, x)[..., None]], -1)
        pred = b.concat([b.stack(sets, 0), b.stack(masks, 0)[..., None]], -1)
        steps = pred.shape[0]
        pred = pred.reshape((-1,) + tuple(pred.shape[2:]))
        tiled = b.concat([target] * steps, 0)
        per_set = b.chamfer_loss(pred, tiled).reshape((steps, -1)) / n
        last = per_set[-1]
        dspn_last = b.chamfer_loss(pred[-x.shape[0]:], target, variant="dspn") / n
        logs = {"chamfer": last.mean(), "chamfer_dspn": dspn_last.mean(),
                "chamfer_first": per_set[0].mean()}
        if info["repr_loss"].shape[0]:
            logs.update(repr_loss_first=info["repr_loss"][0], repr_loss_last=info["repr_loss"][-1])
        return per_set.mean(), logs, state

    def _tspn_loss(self, params, state, x, mask, size, rng):
        b = self.b
        pred, z = self.tspn_forward(params, x, mask, size, rng)
        count = b.cast(size, x)
        per_set = b.chamfer_loss(pred, x, mask, mask) / count
        dspn_var = b.chamfer_loss(pred, x, mask, mask, variant="dspn") / count
        logits = b.mlp.mlp(params, "size", self.spec.size_head, b.stop_gradient(z))
        onehot = b.cast(b.arange(self.spec.max_size + 1, x)[None, :] == size[:, None], x)
        size_ce = -(b.log_softmax(logits) * onehot).sum(-1).mean()
        chamfer = per_set.mean()
        logs = {"chamfer": chamfer, "chamfer_dspn": dspn_var.mean(), "size_ce": size_ce}
        return chamfer + size_ce, logs, state

    def predict(self, params, state, batch, rng):
        """DSPN: ``points [B, N, 2]`` and ``presence [B, N]`` after the eval inner steps;
        TSPN: ``points [B, N, 2]`` (the first ``size`` rows) and ``size_pred [B]``."""
        x, mask = batch["x"], batch["mask"]
        if self.spec.model == "dspn":
            sets, masks, _ = self.dspn_forward(params, x, mask, rng, False)
            return {"points": sets[-1], "presence": masks[-1]}
        pred, z = self.tspn_forward(params, x, mask, batch["size"], rng)
        logits = self.b.mlp.mlp(params, "size", self.spec.size_head, z)
        return {"points": pred, "size_pred": logits.argmax(-1)}


def spec_from_config(config: Mapping) -> SetMNISTSpec:
    """The model of a resolved setmnist configuration."""
    dspn = config["model"] == "dspn"
    return SetMNISTSpec(
        model=config["model"], creator=config["creator"],
        encoder=FSEncoderSpec(POINT_DIM, int(config["hidden"]), int(config["latent"]),
                              int(config["n_pieces"])),
        max_size=max_size(int(config["downsample"])),
        set_dim=POINT_DIM + 1 if dspn else int(config["tspn_set_dim"]),
        creator_hidden=int(config["creator_hidden"]),
        dspn_steps=int(config["dspn_steps"]), dspn_eval_steps=int(config["dspn_eval_steps"]),
        dspn_step_size=float(config["dspn_step_size"]),
        d_model=int(config["tspn_width"]), num_layers=int(config["tspn_layers"]),
        num_heads=int(config["tspn_heads"]), size_hidden=int(config["size_hidden"]))
