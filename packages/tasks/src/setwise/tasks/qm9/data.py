"""Batches of QM9 molecules, each a pure function of (seed, step).

Molecules come from :mod:`setwise.tasks.datasets.qm9` (RDKit-parsed, kekulized, C/N/O/F,
3 bond types, at most 9 heavy atoms: none is clipped). A fixed subset is used: the first
``train_molecules`` of the training split in a permutation drawn with the data seed 0 (the
same subset for every run), and the first ``test_molecules`` of the test split. Every graph
is ordered by the atom score of appendix D.3 (:func:`~setwise.tasks.datasets.qm9.score_order`)
once, here: that order is the target order of the loss.

A batch (``B`` molecules, every molecule padded to 9 atom slots, so the shapes depend only
on ``B`` and one JAX compilation serves every step):

- graph axis: ``n [B]`` atoms per molecule (0: a padding row), ``graph_mask [B]``, the
  score-ordered targets ``atoms [B, 9]`` (type index into C, N, O, F; -1 padding) and
  ``bonds [B, 9, 9]`` (0 none, 1..3 single / double / triple);
- node axis (the encoder's flat input): ``x [9B, 9]`` OGB atom features (column 0 the
  atomic number - 1, the other columns 0), ``node_graph [9B]``, ``node_mask [9B]``;
- edge axis: every ordered pair of distinct slots of a molecule, ``edge_index [2, 72B]``,
  ``edge_attr [72B, 3]`` OGB bond features (column 0 the bond type - 1), ``edge_mask
  [72B]`` True where the pair is bonded.

Evaluation batches add ``z [B, latent_dim]`` (zeros, or the latents of a generation batch),
``generate`` (0-d bool) and ``part`` (0-d int: 0 reconstruction of test molecules, 1
generation), so one compiled ``predict`` serves both. A generation batch carries test
molecules as (unused) encoder input and its sizes ``n`` drawn from the training subset's size
distribution.
"""

from __future__ import annotations

import functools

import numpy as np

from setwise.tasks.datasets import qm9 as Q
from setwise.tasks.datasets.sets import batch_indices

MAX_ATOMS = Q.MAX_ATOMS
ATOMIC_NUMBER = (6, 7, 8, 9)  # C, N, O, F
PARTS = ("reconstruction", "generation")
DATA_SEED = 0


@functools.lru_cache(maxsize=8)
def molecules(split: str, count: int) -> Q.MolGraphs:
    """The first ``count`` molecules of ``split`` (``"train"`` in a data-seed permutation,
    ``"test"`` in file order; 0 = all), score-ordered."""
    graphs = Q.load_qm9(split, progress=False)
    if split == "train":
        rows = np.random.default_rng(DATA_SEED).permutation(len(graphs))
    else:
        rows = np.arange(len(graphs))
    if count > 0:
        rows = rows[:count]
    graphs = graphs.take(rows)
    return graphs.reorder(Q.score_order(graphs))


def size_distribution(count: int) -> np.ndarray:
    """``[10]`` fraction of training molecules with 0..9 heavy atoms."""
    sizes = molecules("train", count).num_atoms
    return np.bincount(sizes, minlength=MAX_ATOMS + 1) / len(sizes)


@functools.lru_cache(maxsize=1)
def _pairs():
    i, j = np.nonzero(~np.eye(MAX_ATOMS, dtype=bool))
    return i, j


def pack(graphs: Q.MolGraphs, batch_size: int) -> dict:
    """``graphs`` (at most ``batch_size``, score-ordered) as one padded batch (see the module
    docstring)."""
    count = len(graphs)
    if count > batch_size:
        raise ValueError(f"qm9 pack: {count} molecules > batch_size {batch_size}")
    atoms = np.full((batch_size, MAX_ATOMS), -1, np.int64)
    bonds = np.zeros((batch_size, MAX_ATOMS, MAX_ATOMS), np.int64)
    atoms[:count], bonds[:count] = graphs.atoms, graphs.bonds
    mask = atoms >= 0
    n = mask.sum(1)
    x = np.zeros((batch_size * MAX_ATOMS, 9), np.int64)
    x[:, 0] = np.where(mask, np.asarray(ATOMIC_NUMBER)[np.maximum(atoms, 0)] - 1, 0).ravel()
    pi, pj = _pairs()
    offset = (np.arange(batch_size) * MAX_ATOMS)[:, None]
    edge_index = np.stack([(offset + pi).ravel(), (offset + pj).ravel()])
    edge_type = bonds[:, pi, pj].ravel()
    edge_attr = np.zeros((len(edge_type), 3), np.int64)
    edge_attr[:, 0] = np.maximum(edge_type - 1, 0)
    return {"n": n, "graph_mask": n > 0, "atoms": atoms, "bonds": bonds,
            "x": x, "node_graph": np.repeat(np.arange(batch_size), MAX_ATOMS),
            "node_mask": mask.ravel(), "edge_index": edge_index, "edge_attr": edge_attr,
            "edge_mask": edge_type > 0}


def train_batch(seed: int, step: int, batch_size: int, count: int) -> dict:
    """Batch ``step % K`` of epoch ``step // K`` (``K`` full batches per epoch of the
    training subset, shuffled with ``(seed, epoch)``)."""
    graphs = molecules("train", count)
    per_epoch = max(len(graphs) // batch_size, 1)
    epoch, k = divmod(step, per_epoch)
    chunks = list(batch_indices(len(graphs), batch_size, seed, epoch,
                                drop_last=len(graphs) >= batch_size))
    return pack(graphs.take(chunks[k]), batch_size)


def eval_arrays(batch, latent_dim, z=None, generate=False, part=0):
    zz = np.zeros((len(batch["n"]), latent_dim), np.float32)
    if z is not None:
        zz[:len(z)] = z
    return {**batch, "z": zz, "generate": np.array(generate), "part": np.array(part)}


def recon_batches(count: int, batch_size: int, latent_dim: int) -> list[dict]:
    """The first ``count`` test molecules, in batches (part 0)."""
    graphs = molecules("test", count)
    return [eval_arrays(pack(graphs.take(np.arange(s, min(s + batch_size, len(graphs)))),
                              batch_size), latent_dim)
            for s in range(0, len(graphs), batch_size)]


def generation_batches(num: int, seed: int, latent_dim: int, batch_size: int,
                       train_count: int) -> list[dict]:
    """``num`` latents ``z ~ N(0, I)`` with sizes drawn from the training subset (part 1)."""
    rng = np.random.default_rng([seed, 7])
    sizes = rng.choice(MAX_ATOMS + 1, size=num, p=size_distribution(train_count))
    z = rng.standard_normal((num, latent_dim)).astype(np.float32)
    graphs = molecules("test", batch_size)
    out = []
    for start in range(0, num, batch_size):
        chunk = sizes[start:start + batch_size]
        batch = eval_arrays(pack(graphs, batch_size), latent_dim, z[start:start + batch_size],
                             True, 1)
        n = np.zeros(batch_size, np.int64)
        n[:len(chunk)] = chunk
        batch["n"], batch["graph_mask"] = n, n > 0
        out.append(batch)
    return out
