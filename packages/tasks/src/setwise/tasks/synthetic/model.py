"""The set VAE of paper 2, appendix D.2, described once for every backend.

Encoder: ``x [num_sets, n, 3 + 4]`` (positions and one-hot degree, the authors' layout) ->
2-layer MLP -> 3 transformer layers -> pooling (sum, mean, max, std per channel) -> 2-layer
MLP -> ``(mu, log_var)`` of the latent ``z [latent_dim]``. Decoder: a set creator (Top-n,
First-n, i.i.d., MLP) makes ``n`` points of ``set_channels`` from ``z`` -> linear -> 3
transformer layers -> 2-layer MLP -> ``[n, 3]`` positions. Every block is followed by batch
normalisation, and transformer blocks are residual, as in the authors' code:
``h = h + BN(relu(T(h)))``.

Loss per set (appendix D.2):

.. math::

    L = W_2^2(X, \\hat X) + \\lambda_1 \\mathrm{KL}(q(z|X) \\| N(0, I))
        + \\lambda_2 \\sum_{i<j} (d_0 - \\|\\hat x_i - \\hat x_j\\|)_+
        + \\lambda_3 \\sum_i \\Big[(s^i_0 - d_1)_+ + \\sum_{j \\ge v_{max}} (d_1 - s^i_j)_+\\Big]

with ``s^i`` the sorted distances from point i to the others, ``d0 = 1``, ``d1 = 2``
(neighbour distance), ``v_max = 4``; the batch loss is the mean over the batch's sets.

The model's structure is written here once (:func:`vae_loss`, :func:`vae_predict`) over a
backend namespace ``K`` (see ``torch_model.py`` / ``jax_model.py``) that supplies the layer
families (``mlp``, ``transformer_layer``, ``batch_norm``, ``readout``, ``reparameterize``,
``kl_standard_normal``), the setwise operators (``create_set``, ``hungarian_loss``) and a few
array functions (``where``, ``sqrt``, ``sort``, ``relu``, ``sum``, ``concat``, ``asfloat``).

Notes:
    Values the paper does not give are the authors' released ones (``config/model_config.yaml``
    and ``utils/metrics.py`` of cvignac/Top-N): latent 30, set channels 16, width 64, 4 heads,
    feed-forward 256, encoder MLP width 128, Top-n angles of size 3 with a 32-unit angle MLP,
    MLP creator width 512, lambda1 = 0.003, lambda2 = lambda3 = 200. The reconstruction term
    is the paper's W2 (appendix B: the sum of matched squared distances,
    ``hungarian_loss``); the released code uses the mean matched Euclidean distance. reg2
    sums over pairs i < j as the paper writes (the released code counts each pair twice).
    The pooling is the paper's (sum, mean, max, std); the released code also multiplies each
    by PNA's two degree scalers. The decoder's first layer is the paper's linear layer (the
    released code uses a 2-layer MLP with a sigmoid-gated FiLM of z). The creators are
    setwise's (``create_set``): every creator adds a linear map of z to its points; Top-n is
    DESIGN.md section 5's (true cosine, softmax over the selected points, linear FiLM). i.i.d.
    noise is drawn through the step's Rng (shared by ``setwise check``). Distances inside
    reg2/reg3 are ``sqrt(d^2 + 1e-12)`` so coincident points have a finite gradient. The
    encoder's last layer starts 100x smaller than the other layers (``mu`` and ``log_var``
    near 0): with the default initialisation the summed pooling gives ``log_var`` of tens
    and a KL of ~1e5 at the first step, and training without the released code's gradient
    clipping diverged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from setwise.reference import init_creation
from setwise.tasks.layers.batch_norm import init_batch_norm
from setwise.tasks.layers.mlp import MLPSpec, init_linear, init_mlp
from setwise.tasks.layers.readout import ReadoutSpec
from setwise.tasks.layers.transformer import init_transformer_layer

CREATORS = ("top_n", "first_n", "iid", "mlp")
LABELS = {"top_n": "Top-n", "first_n": "First-n", "iid": "i.i.d.", "mlp": "MLP"}
IN_DIM = 7  # positions (3) and one-hot degree (4)
POOLS = ("sum", "mean", "max")
DIST_EPS = 1e-12
LATENT_INIT_SCALE = 0.01


@dataclass(frozen=True)
class VAESpec:
    """Sizes and loss weights of the synthetic-set VAE (defaults: the authors' release)."""

    creator: str = "top_n"
    latent_dim: int = 30
    set_channels: int = 16
    width: int = 64
    num_heads: int = 4
    ff_width: int = 256
    num_layers: int = 3
    encoder_hidden: int = 128
    decoder_hidden: int = 64
    n_max: int = 35
    ref_points: int = 35
    angle_dim: int = 3
    angle_hidden: int = 32
    mlp_creator_hidden: int = 512
    kl_weight: float = 0.003
    reg2_weight: float = 200.0
    reg3_weight: float = 200.0
    min_dist: float = 1.0
    neighbor_dist: float = 2.0
    max_valency: int = 4

    def __post_init__(self):
        if self.creator not in CREATORS:
            raise ValueError(f"VAESpec: creator is {self.creator!r}; expected one of "
                             f"{', '.join(map(repr, CREATORS))}")

    @property
    def encoder_in(self) -> MLPSpec:
        return MLPSpec((self.encoder_hidden, self.width), "relu")

    @property
    def encoder_out(self) -> MLPSpec:
        return MLPSpec((self.encoder_hidden, 2 * self.latent_dim), "relu")

    @property
    def decoder_out(self) -> MLPSpec:
        return MLPSpec((self.decoder_hidden, 3), "relu")

    def pool(self, kind) -> ReadoutSpec:
        return ReadoutSpec(kind, self.width)

    @property
    def creator_points(self) -> int:
        """Reference points of Top-n (``ref_points``), rows of First-n / MLP (``n_max``)."""
        return self.ref_points if self.creator == "top_n" else self.n_max


def creator_kwargs(spec: VAESpec) -> dict:
    if spec.creator == "top_n":
        return {"angle_dim": spec.angle_dim, "hidden": (spec.angle_hidden,)}
    if spec.creator == "mlp":
        return {"hidden": (spec.mlp_creator_hidden,)}
    return {}


def init_params(spec: VAESpec, seed: int, dtype="float32") -> dict[str, np.ndarray]:
    """The flat parameters of the VAE (names in the module docstring's order)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    init_mlp(rng, params, "enc_in", IN_DIM, spec.encoder_in, dtype)
    _init_blocks(rng, params, state, "enc", spec, dtype)
    init_mlp(rng, params, "enc_out", 4 * spec.width, spec.encoder_out, dtype)
    last = f"enc_out_{len(spec.encoder_out.sizes) - 1}_w"
    params[last] = (params[last] * LATENT_INIT_SCALE).astype(dtype)
    creator = init_creation(spec.creator, rng, spec.latent_dim, spec.set_channels,
                            spec.creator_points, dtype=dtype, **creator_kwargs(spec))
    params.update({f"creator_{k}": v for k, v in creator.items()})
    init_linear(rng, params, "dec_in", spec.set_channels, spec.width, dtype)
    _init_blocks(rng, params, state, "dec", spec, dtype)
    init_mlp(rng, params, "dec_out", spec.width, spec.decoder_out, dtype)
    return params


def init_state(spec: VAESpec, dtype="float32") -> dict[str, np.ndarray]:
    """Batch-norm running statistics ``{enc,dec}_{0..num_layers}_bn_mean/_bn_var``."""
    state: dict[str, np.ndarray] = {}
    _init_blocks(np.random.default_rng(0), {}, state, "enc", spec, dtype)
    _init_blocks(np.random.default_rng(0), {}, state, "dec", spec, dtype)
    return state


def _init_blocks(rng, params, state, prefix, spec, dtype):
    """Batch norm ``{prefix}_0`` after the input layer; per transformer layer ``i``: layer
    ``{prefix}_t{i}`` and batch norm ``{prefix}_{i + 1}``."""
    init_batch_norm(params, state, f"{prefix}_0", spec.width, dtype)
    for i in range(spec.num_layers):
        init_transformer_layer(rng, params, f"{prefix}_t{i}", spec.width, spec.num_heads,
                               spec.ff_width, dtype)
        init_batch_norm(params, state, f"{prefix}_{i + 1}", spec.width, dtype)


def creator_params(params: Mapping) -> dict:
    return {k[len("creator_"):]: v for k, v in params.items() if k.startswith("creator_")}


def _blocks(K, params, state, prefix, spec, h, mask, train, updates):
    """``BN(relu(h))``, then per layer ``h = h + BN(relu(T(h)))`` (the authors' blocks)."""
    h, up = K.batch_norm(params, state, f"{prefix}_0", K.relu(h), train=train, mask=mask)
    updates.update(up)
    for i in range(spec.num_layers):
        out = K.relu(K.transformer_layer(params, f"{prefix}_t{i}", h, mask, spec.num_heads))
        out, up = K.batch_norm(params, state, f"{prefix}_{i + 1}", out, train=train, mask=mask)
        updates.update(up)
        h = K.where(mask[..., None], h + out, 0.0)
    return h


def encode(K, params, state, spec: VAESpec, feat, mask, train, updates):
    """``feat [num_sets, n, 7]`` -> ``(mu, log_var)``, each ``[num_sets, latent_dim]``."""
    h = K.mlp(params, "enc_in", spec.encoder_in, feat)
    h = _blocks(K, params, state, "enc", spec, h, mask, train, updates)
    mean = K.readout(params, "pool", spec.pool("mean"), h, mask)[0]
    square = K.readout(params, "pool", spec.pool("mean"), h * h, mask)[0]
    pooled = [K.readout(params, "pool", spec.pool(kind), h, mask)[0] for kind in POOLS]
    std = K.sqrt(K.relu(square - mean * mean) + DIST_EPS)
    g = K.relu(K.concat(pooled + [std], -1))
    return K.split_gaussian(K.mlp(params, "enc_out", spec.encoder_out, g))


def decode(K, params, state, spec: VAESpec, z, n, mask, rng, train, updates):
    """``z [num_sets, latent_dim]``, sizes ``n [num_sets]`` -> points ``[num_sets, P, 3]``
    (``P = mask.shape[1]``, padding rows 0)."""
    x0 = create(K, params, spec, z, n, mask, rng)
    h = K.linear(params, "dec_in", x0)
    h = _blocks(K, params, state, "dec", spec, h, mask, train, updates)
    return K.where(mask[..., None], K.mlp(params, "dec_out", spec.decoder_out, h), 0.0)


def create(K, params, spec: VAESpec, z, n, mask, rng):
    """The creator's ``[num_sets, P, set_channels]`` from ``z``; i.i.d. noise from ``rng``."""
    cp = creator_params(params)
    max_n = mask.shape[1]
    if spec.creator == "iid":
        noise = K.asfloat(rng.normal((z.shape[0], max_n, cp["noise_w"].shape[0])), z)
        x = noise @ cp["noise_w"] + (z @ cp["z_w"])[:, None]
        return K.where(mask[..., None], x, 0.0)
    return K.create_set(spec.creator, cp, z, n, max_n=max_n)[0]


def pair_distances(K, x, mask):
    """``(d [num_sets, n, n], valid [num_sets, n, n])``: distances between distinct present
    points (``sqrt(d^2 + 1e-12)``); ``valid`` marks them."""
    diff = x[:, :, None, :] - x[:, None, :, :]
    sq = K.sum(diff * diff, -1)
    n = x.shape[1]
    valid = mask[:, :, None] & mask[:, None, :] & ~K.eye_bool(n, x)[None]
    return K.sqrt(K.where(valid, sq, 1.0) + DIST_EPS), valid


def regularizers(K, spec: VAESpec, x, mask):
    """``(reg2 [num_sets], reg3 [num_sets])`` of appendix D.2 on generated ``x [num_sets, n,
    3]``."""
    d, valid = pair_distances(K, x, mask)
    n = x.shape[1]
    upper = valid & K.triu_bool(n, x)[None]
    reg2 = K.sum(K.sum(K.where(upper, K.relu(spec.min_dist - d), 0.0), -1), -1)
    big = 1e6
    s = K.sort(K.where(valid, d, big), -1)  # [num_sets, n, n]; invalid entries last
    nearest = s[:, :, 0]
    l1 = K.where(mask & (nearest < big), K.relu(nearest - spec.neighbor_dist), 0.0)
    far = s[:, :, spec.max_valency:] if n > spec.max_valency else s[:, :, :0]
    l2 = K.sum(K.relu(spec.neighbor_dist - far), -1)
    reg3 = K.sum(K.where(mask, l1 + l2, 0.0), -1)
    return reg2, reg3


def vae_loss(K, params, state, spec: VAESpec, batch, rng, train):
    """The protocol's ``loss`` (see the module docstring): ``(scalar, logs, new_state)``."""
    mask, n = batch["mask"], batch["n"]
    updates: dict = {}
    mu, log_var = encode(K, params, state, spec, batch["feat"], mask, train, updates)
    z = K.reparameterize(mu, log_var, rng)
    recon = decode(K, params, state, spec, z, n, mask, rng, train, updates)
    w2 = K.hungarian_loss(recon, batch["x"], mask, mask)
    kl = K.kl_standard_normal(mu, log_var)
    reg2, reg3 = regularizers(K, spec, recon, mask)
    present = K.asfloat(n > 0, mu)
    count = K.sum(present, -1)

    def mean(v):
        return K.sum(v * present, -1) / count

    size = K.where(n > 0, K.asfloat(n, mu), 1.0)
    w2, reg2, reg3 = w2 / size, reg2 / size, reg3 / size
    total = w2 + spec.kl_weight * kl + spec.reg2_weight * reg2 + spec.reg3_weight * reg3
    logs = {"w2": mean(w2), "kl": mean(kl), "reg2": mean(reg2), "reg3": mean(reg3)}
    new_state = {**state, **updates} if train else state
    return mean(total), logs, new_state


def vae_predict(K, params, state, spec: VAESpec, batch, rng):
    """The protocol's ``predict``: sets decoded from the posterior mean of ``feat`` or, where
    ``generate`` (0-d bool) is True, from the batch's latents ``z`` (generation). Both kinds
    of batch have the same arrays, so one compiled function serves every evaluation batch of
    a width. Returns ``{"points" [num_sets, P, 3], "mask"}``."""
    mask, n = batch["mask"], batch["n"]
    mu, _ = encode(K, params, state, spec, batch["feat"], mask, False, {})
    z = K.where(batch["generate"], K.asfloat(batch["z"], mu), mu)
    points = decode(K, params, state, spec, z, n, mask, rng, False, {})
    return {"points": points, "mask": mask}
