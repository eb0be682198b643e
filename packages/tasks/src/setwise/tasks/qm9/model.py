"""Set2GraphVAE of paper 2, appendix D.3, described once for every backend.

**Encoder.** The molecule in flat form (``x [9B, 9]`` OGB atom features, every ordered pair
of a molecule's slots as an edge, ``edge_mask`` marking bonds, see :mod:`.data`) ->
``num_layers_enc`` (3) message-passing layers with edge features (OGB's GIN or GCN with the
bond encoder, :mod:`setwise.tasks.layers.gnn`, batch norm over the real atoms) -> PNA global
pooling per molecule (:mod:`setwise.tasks.layers.readout`, padding atoms routed to a dropped
extra set) -> MLP -> ``(mu, log_var)`` of ``z [latent_dim]``.

**Decoder.** A set creator (Top-n with a 12-point reference set, First-n, i.i.d., MLP) makes
``n`` points of ``set_channels`` from ``z`` -> linear to ``width`` -> ``num_layers_dec``
transformer layers, attention within each molecule only (masked, post-norm) -> ``h [B, 9,
width]``; then

- (i) a Set2Graph layer ``{s2g}`` (:mod:`setwise.tasks.layers.set2graph`: ``psi([h_i,
  h_j])``, symmetrised) and ReLU, followed by two MLPs, ``edge`` -> one edge-presence logit
  and ``etype`` -> 3 bond-type logits per pair; and an MLP ``node`` -> the predicted valency
  ``v_i`` of each atom (its node feature);
- (ii) an MLP ``atom`` on ``[h_i, v_i]`` (the set representation and the predicted valency)
  -> 4 atom-type logits (C, N, O, F).

**Matching and loss** (appendix D.3). The target molecule is ordered by the atom score
``s(i) = 1e5 t(i) + 1e4 deg(i) + sum_j e(i, j) t(j)`` in :mod:`.data`; the prediction is
ordered by the same score computed on its argmax atom types, its edges (logit > 0) and
their argmax types (a permutation ``P`` without gradient; stable sort, padding last). With
``A``, ``E``, ``T``, ``v`` the ordered atom logits, edge logits, type logits and
valencies, per molecule of ``n`` atoms:

.. math::

    L = \\mathrm{CE}(A, t) + \\mathrm{BCE}(E, [e > 0]) + \\mathrm{CE}(T, e \\mid e > 0)
        + \\lambda_v \\overline{(v - \\mathrm{val})^2}
        + \\lambda_r \\big[\\overline{(\\textstyle\\sum_i \\sigma(A_i) - \\#t)^2}
        + (\\bar d_{pred} - \\bar d)^2 + \\overline{(\\pi_{pred} - \\pi)^2}\\big]
        + \\lambda_{KL} \\mathrm{KL}

with cross-entropies averaged over the atoms, the ordered pairs ``i != j`` and the bonded
pairs; ``val(i) = sum_j e(i, j)`` the valency; the matching-free regularisers compare the
atomic formula (expected counts of C, N, O, F), the mean number of edges per atom
(``sum_{i != j} sigmoid(E_ij) / n`` against ``2 |bonds| / n``) and the distribution of the
edge types (expected, over the predicted edges); the batch loss is the mean over the
batch's molecules.

The model is written here once (:func:`vae_loss`, :func:`vae_predict`) over a backend
namespace ``K`` (``torch_model.py`` / ``jax_model.py``) that supplies the layer families
(``gnn_node``, ``readout``, ``mlp``, ``linear``, ``transformer_layer``, ``set2graph``,
``reparameterize``, ``kl_standard_normal``, ``split_gaussian``), ``create_set`` and a few
array functions.

Notes:
    The paper gives the blocks, not their sizes; the sizes here are options (CPU defaults
    smaller than a GPU run's). Atom features into the encoder are the atom type alone
    (OGB's atomic-number column; hydrogens implicit, no charges), bonds the bond type. The
    valency the atom-type MLP reads is the ``node`` MLP's regression output (trained by the
    valency MSE), one reading of "the valencies predicted for each atom". Set2Graph's
    ``psi`` is an MLP on ``[h_i, h_j]`` averaged over both directions (undirected bonds).
    The released code clipped 9-atom molecules to 8 and let the decoder's attention run
    across the batch; here molecules keep their 9 atoms and attention is masked per
    molecule. The encoder's last layer starts 100x smaller (``mu``, ``log_var`` near 0), as
    in the synthetic VAE. i.i.d. noise is drawn through the step's Rng (shared by
    ``setwise check``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from setwise.reference import init_creation
from setwise.tasks.layers.gnn import GNNS, init_gnn_node
from setwise.tasks.layers.mlp import MLPSpec, init_linear, init_mlp
from setwise.tasks.layers.readout import ReadoutSpec, init_readout
from setwise.tasks.layers.set2graph import init_set2graph
from setwise.tasks.layers.transformer import init_transformer_layer

CREATORS = ("top_n", "first_n", "iid", "mlp")
LABELS = {"top_n": "Top-n", "first_n": "First-n", "iid": "i.i.d.", "mlp": "MLP"}
NUM_ATOM_TYPES, NUM_BOND_TYPES, MAX_ATOMS = 4, 3, 9
LATENT_INIT_SCALE = 0.01
PAD_SCORE = 1e9
#: the loss terms logged (besides ``loss``)
TERMS = ("atom_ce", "edge_bce", "type_ce", "valency_mse", "formula_mse", "edges_mse",
         "edge_dist_mse", "kl")


@dataclass(frozen=True)
class QM9Spec:
    """Sizes and loss weights of the Set2GraphVAE."""

    creator: str = "top_n"
    gnn: str = "gin"
    latent_dim: int = 32
    enc_width: int = 64
    enc_layers: int = 3
    enc_hidden: int = 128
    pna_delta: float = 2.3
    set_channels: int = 32
    width: int = 64
    num_heads: int = 4
    ff_width: int = 128
    dec_layers: int = 2
    s2g_hidden: int = 64
    head_hidden: int = 64
    ref_points: int = 12
    angle_dim: int = 3
    angle_hidden: int = 32
    mlp_creator_hidden: int = 256
    kl_weight: float = 0.01
    valency_weight: float = 1.0
    reg_weight: float = 1.0

    def __post_init__(self):
        if self.creator not in CREATORS:
            raise ValueError(f"QM9Spec: creator is {self.creator!r}; expected one of "
                             f"{', '.join(map(repr, CREATORS))}")
        if self.gnn not in GNNS:
            raise ValueError(f"QM9Spec: gnn is {self.gnn!r}; expected one of {GNNS}")

    @property
    def pool(self) -> ReadoutSpec:
        return ReadoutSpec("pna", self.enc_width, self.enc_width, pna_delta=self.pna_delta)

    @property
    def encoder_out(self) -> MLPSpec:
        return MLPSpec((self.enc_hidden, 2 * self.latent_dim), "relu")

    @property
    def s2g(self) -> MLPSpec:
        return MLPSpec((self.s2g_hidden, self.s2g_hidden), "relu")

    def head(self, out: int) -> MLPSpec:
        return MLPSpec((self.head_hidden, out), "relu")

    @property
    def creator_points(self) -> int:
        """Reference points of Top-n (``ref_points``), rows of First-n / MLP (9)."""
        return self.ref_points if self.creator == "top_n" else MAX_ATOMS


def creator_kwargs(spec: QM9Spec) -> dict:
    if spec.creator == "top_n":
        return {"angle_dim": spec.angle_dim, "hidden": (spec.angle_hidden,)}
    if spec.creator == "mlp":
        return {"hidden": (spec.mlp_creator_hidden,)}
    return {}


def _build(spec: QM9Spec, seed: int, dtype):
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    init_gnn_node(rng, params, state, "enc", spec.gnn, spec.enc_width, spec.enc_layers,
                  dtype=dtype)
    init_readout(rng, params, "pool", spec.pool, dtype)
    init_mlp(rng, params, "enc_out", spec.pool.width, spec.encoder_out, dtype)
    last = f"enc_out_{len(spec.encoder_out.sizes) - 1}_w"
    params[last] = (params[last] * LATENT_INIT_SCALE).astype(dtype)
    creator = init_creation(spec.creator, rng, spec.latent_dim, spec.set_channels,
                            spec.creator_points, dtype=dtype, **creator_kwargs(spec))
    params.update({f"creator_{k}": v for k, v in creator.items()})
    init_linear(rng, params, "dec_in", spec.set_channels, spec.width, dtype)
    for i in range(spec.dec_layers):
        init_transformer_layer(rng, params, f"dec_t{i}", spec.width, spec.num_heads,
                               spec.ff_width, dtype)
    init_set2graph(rng, params, "s2g", spec.width, spec.s2g, dtype)
    init_mlp(rng, params, "edge", spec.s2g_hidden, spec.head(1), dtype)
    init_mlp(rng, params, "etype", spec.s2g_hidden, spec.head(NUM_BOND_TYPES), dtype)
    init_mlp(rng, params, "node", spec.width, spec.head(1), dtype)
    init_mlp(rng, params, "atom", spec.width + 1, spec.head(NUM_ATOM_TYPES), dtype)
    return params, state


def init_params(spec: QM9Spec, seed: int, dtype="float32") -> dict[str, np.ndarray]:
    """The flat parameters: ``enc_*`` (GNN), ``pool_*`` (PNA), ``enc_out_*``,
    ``creator_*``, ``dec_in_*``, ``dec_t{i}_*``, ``s2g_*``, ``edge_*``, ``etype_*``,
    ``node_*``, ``atom_*``."""
    return _build(spec, seed, dtype)[0]


def init_state(spec: QM9Spec, dtype="float32") -> dict[str, np.ndarray]:
    """The encoder's batch-norm running statistics (``enc_{l}_bn_*``, GIN's
    ``enc_{l}_mlp_bn_*``)."""
    return _build(spec, 0, dtype)[1]


def creator_params(params: Mapping) -> dict:
    return {k[len("creator_"):]: v for k, v in params.items() if k.startswith("creator_")}


def encode(K, params, state, spec: QM9Spec, batch, train, updates):
    """Flat molecules -> ``(mu, log_var)``, each ``[B, latent_dim]``."""
    num = batch["n"].shape[0]
    h, new_state, _ = K.gnn_node(params, state, "enc", batch["x"], batch["edge_index"],
                                 batch["edge_attr"], batch["node_mask"], batch["edge_mask"],
                                 gnn=spec.gnn, num_layers=spec.enc_layers, train=train)
    updates.update(new_state)
    index = K.where(batch["node_mask"], batch["node_graph"], num)
    pooled = K.readout(params, "pool", spec.pool, h, index=index, num_sets=num + 1)[0][:num]
    return K.split_gaussian(K.mlp(params, "enc_out", spec.encoder_out, pooled))


def create(K, params, spec: QM9Spec, z, n, mask, rng):
    """The creator's ``[B, 9, set_channels]`` from ``z``; i.i.d. noise from ``rng``."""
    cp = creator_params(params)
    if spec.creator == "iid":
        noise = K.asfloat(rng.normal((z.shape[0], MAX_ATOMS, cp["noise_w"].shape[0])), z)
        x = noise @ cp["noise_w"] + (z @ cp["z_w"])[:, None]
        return K.where(mask[..., None], x, 0.0)
    return K.create_set(spec.creator, cp, z, n, max_n=MAX_ATOMS)[0]


def decode(K, params, spec: QM9Spec, z, n, rng):
    """``z [B, latent_dim]``, sizes ``n [B]`` -> logits and valencies (padding 0):
    ``atom [B, 9, 4]``, ``edge [B, 9, 9]``, ``etype [B, 9, 9, 3]``, ``valency [B, 9]``."""
    mask = K.slots(n, MAX_ATOMS)
    h = K.linear(params, "dec_in", create(K, params, spec, z, n, mask, rng))
    for i in range(spec.dec_layers):
        h = K.transformer_layer(params, f"dec_t{i}", h, mask, spec.num_heads)
    h = K.where(mask[..., None], h, 0.0)
    pairs = K.relu(K.set2graph(params, "s2g", spec.s2g, h, mask))
    pmask = K.pair_mask(mask)
    edge = K.where(pmask, K.mlp(params, "edge", spec.head(1), pairs)[..., 0], 0.0)
    etype = K.where(pmask[..., None], K.mlp(params, "etype", spec.head(NUM_BOND_TYPES), pairs),
                    0.0)
    valency = K.where(mask, K.mlp(params, "node", spec.head(1), h)[..., 0], 0.0)
    atom = K.mlp(params, "atom", spec.head(NUM_ATOM_TYPES), K.concat([h, valency[..., None]],
                                                                       -1))
    return {"atom_logits": K.where(mask[..., None], atom, 0.0), "edge_logits": edge,
            "type_logits": etype, "valency": valency}


def predicted_scores(K, out, mask):
    """Appendix D.3's atom score of a prediction (argmax types, edges with logit > 0), ``[B,
    9]`` floats without gradient; padding gets :data:`PAD_SCORE`."""
    pmask = K.pair_mask(mask)
    t = K.asfloat(K.argmax(out["atom_logits"], -1), out["valency"]) + 1
    bonded = K.asfloat((out["edge_logits"] > 0) & pmask, t)
    e = bonded * (K.asfloat(K.argmax(out["type_logits"], -1), t) + 1)
    score = 1e5 * t + 1e4 * K.sum(bonded, -1) + K.sum(e * t[:, None, :], -1)
    return K.where(mask, score, PAD_SCORE)


def graph_terms(K, spec: QM9Spec, out, batch):
    """Per molecule ``{term: [B]}`` of the loss (module docstring)."""
    n = batch["n"]
    mask = K.slots(n, MAX_ATOMS)
    like = out["valency"]
    fmask = K.asfloat(mask, like)
    pmask = K.asfloat(K.pair_mask(mask), like)
    count = K.where(n > 0, K.asfloat(n, like), 1.0)
    # the prediction ordered by its score: P[b, i, a] = 1 where atom a comes i-th
    perm = K.one_hot(K.argsort(predicted_scores(K, out, mask), -1), MAX_ATOMS, like)
    atom = K.einsum("bia,bak->bik", perm, out["atom_logits"])
    edge = K.einsum("bia,bac,bjc->bij", perm, out["edge_logits"], perm)
    etype = K.einsum("bia,back,bjc->bijk", perm, out["type_logits"], perm)
    valency = K.einsum("bia,ba->bi", perm, out["valency"])

    atoms, bonds = batch["atoms"], batch["bonds"]
    t_hot = K.one_hot(K.where(atoms >= 0, atoms, 0), NUM_ATOM_TYPES, like) * fmask[..., None]
    bonded = K.asfloat(bonds > 0, like) * pmask
    e_hot = K.one_hot(K.where(bonds > 0, bonds - 1, 0), NUM_BOND_TYPES, like) * bonded[..., None]
    num_pairs = K.sum(K.sum(pmask, -1), -1)
    num_bonded = K.sum(K.sum(bonded, -1), -1)

    atom_ce = -K.sum(K.sum(t_hot * K.log_softmax(atom, -1), -1), -1) / count
    bce = K.softplus(edge) - bonded * edge
    edge_bce = K.sum(K.sum(bce * pmask, -1), -1) / K.maximum(num_pairs, 1.0)
    type_ce = -K.sum(K.sum(K.sum(e_hot * K.log_softmax(etype, -1), -1), -1), -1) \
        / K.maximum(num_bonded, 1.0)
    target_valency = K.sum(K.asfloat(bonds, like) * pmask, -1)
    valency_mse = K.sum((valency - target_valency) ** 2 * fmask, -1) / count

    formula = K.sum(K.softmax(out["atom_logits"], -1) * fmask[..., None], 1)
    formula_mse = K.mean((formula - K.sum(t_hot, 1)) ** 2, -1)
    p_edge = K.sigmoid(out["edge_logits"]) * pmask
    edges_mse = (K.sum(K.sum(p_edge, -1), -1) / count - num_bonded / count) ** 2
    p_type = K.sum(K.sum(p_edge[..., None] * K.softmax(out["type_logits"], -1), 1), 1)
    p_type = p_type / K.maximum(K.sum(K.sum(p_edge, -1), -1), 1e-6)[:, None]
    target_type = K.sum(K.sum(e_hot, 1), 1) / K.maximum(num_bonded, 1.0)[:, None]
    edge_dist_mse = K.mean((p_type - target_type) ** 2, -1)
    return {"atom_ce": atom_ce, "edge_bce": edge_bce, "type_ce": type_ce,
            "valency_mse": valency_mse, "formula_mse": formula_mse, "edges_mse": edges_mse,
            "edge_dist_mse": edge_dist_mse}


def vae_loss(K, params, state, spec: QM9Spec, batch, rng, train):
    """The protocol's ``loss``: ``(mean over molecules of L, {term: mean}, new_state)``."""
    updates: dict = {}
    mu, log_var = encode(K, params, state, spec, batch, train, updates)
    z = K.reparameterize(mu, log_var, rng)
    out = decode(K, params, spec, z, batch["n"], rng)
    terms = graph_terms(K, spec, out, batch)
    terms["kl"] = K.kl_standard_normal(mu, log_var)
    total = (terms["atom_ce"] + terms["edge_bce"] + terms["type_ce"]
             + spec.valency_weight * terms["valency_mse"]
             + spec.reg_weight * (terms["formula_mse"] + terms["edges_mse"]
                                  + terms["edge_dist_mse"])
             + spec.kl_weight * terms["kl"])
    present = K.asfloat(batch["n"] > 0, mu)
    num = K.maximum(K.sum(present, -1), 1.0)

    def mean(v):
        return K.sum(v * present, -1) / num

    new_state = {**state, **updates} if train else state
    return mean(total), {k: mean(v) for k, v in terms.items()}, new_state


def vae_predict(K, params, state, spec: QM9Spec, batch, rng):
    """The protocol's ``predict``: the graph decoded from the posterior mean or, where
    ``generate`` (0-d bool) is True, from the batch's latents ``z``. Returns
    ``atom_logits [B, 9, 4]``, ``edge_logits [B, 9, 9]``, ``type_logits [B, 9, 9, 3]``,
    ``valency [B, 9]`` in creation order (padding 0)."""
    mu, _ = encode(K, params, state, spec, batch, False, {})
    z = mu
    if "generate" in batch:
        z = K.where(batch["generate"], K.asfloat(batch["z"], mu), mu)
    return decode(K, params, spec, z, batch["n"], rng)
