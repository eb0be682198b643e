"""Training on several devices: ``setwise train <task> --devices N``, both backends.

One global batch per step, as on one device: every batch is a pure function of
``(seed, step)``, so every rank (torch) or host (JAX) builds the *global* batch in NumPy and
takes its rows. The cost is building ``N`` times the batch (the NumPy data pipeline runs on
every rank); the model's work is split, and the union of the shards is exactly the
single-device batch.

PyTorch (:class:`TorchDistributedTrainer`): ``torchrun`` starts ``N`` processes (gloo on CPU,
nccl on CUDA; one GPU per process, ``cuda:LOCAL_RANK``). Rank ``r`` of ``N`` trains on rows
``[r B / N, (r + 1) B / N)`` of the global batch of ``B`` sets (graphs for graph batches:
:func:`shard_batch`). After ``loss.backward()`` the gradients of the flat parameter mapping
are flattened into one buffer, summed by one ``all_reduce`` and divided by ``N`` (the mean
of the shards' gradients), then every rank applies the same Adam step, so the parameters stay
identical without being broadcast. This is DistributedDataParallel's averaging with a single
bucket; DDP itself needs an ``nn.Module`` whose forward is the loss, and the task models are
pure functions of a flat ``{name: tensor}`` mapping, so the engine does the one collective
itself (no module wrapper, no hooks; the all_reduce does not overlap the backward pass,
which matters little at these model sizes). The logged scalars are averaged the same way;
the model state (batch-norm running statistics) is averaged after each step so every rank
holds the same state.

With a loss that is a mean over the batch's sets, the mean of ``N`` equal shards' means *is*
the global mean, so a 2-way run follows the 1-device run up to float32 rounding. Departures:

- a loss averaged over a data-dependent count (molecules: BCE over the *labelled* targets)
  weighs the shards equally instead of by their counts: close, not equal;
- batch-norm in training normalises by the shard's statistics (no SyncBN: the layers belong
  to the layer families and take no process group); the running statistics are the mean of
  the shards' (exact for the mean, the variance misses the between-shard spread);
- the step's noise (dropout, VAE, i.i.d. creation) is drawn per rank from
  ``(seed, step, rank)``: the same distribution as one device, not the same numbers.

Only rank 0 writes the run directory (config, metrics, checkpoints, summary, plot) and
evaluates (the evaluation batches on rank 0 only; the other ranks wait at the next step's
all_reduce). A resumed run reads the checkpoint on every rank (several nodes need a shared
file system for the run directory).

JAX (:class:`JaxShardedTrainer`): one process drives a :class:`jax.sharding.Mesh` of ``N``
devices with one axis ``"batch"``. Parameters, state and Adam's state are replicated
(``NamedSharding(mesh, P())``); every batch array whose leading axis divides by ``N`` is
sharded along it (``P("batch")``: sets, nodes, edges, graphs), the others replicated. The
training step is the same single ``jit`` as on one device: XLA's SPMD partitioner splits the
computation and inserts the collectives, so the step computes the *global* batch's loss
(batch statistics and masked means included) and draws the global batch's noise: a 2-way run
equals the 1-device run up to reduction order. Evaluation runs sharded the same way, the
predictions gathered (replicated) for :meth:`Task.evaluate`. Several hosts: call
:func:`initialize_jax` (``jax.distributed.initialize``) in every host's process before
anything else touches JAX; each host then builds the global batch and places its
addressable devices' slices (:func:`jax.make_array_from_callback`).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping

import numpy as np

from setwise.tasks.config import ConfigError


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process as ``torchrun`` sets them (``(0, 1)`` alone)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """True on rank 0 (the process that writes the run directory)."""
    return world()[0] == 0


def barrier(devices: int = 2) -> None:
    """Wait for every torch rank (no-op for a 1-device run or without a process group)."""
    if devices > 1 and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def _leading(batch: Mapping[str, np.ndarray]) -> int:
    for name in ("mask", "graph_mask"):
        if name in batch:
            return int(np.shape(batch[name])[0])
    return int(np.shape(next(iter(batch.values())))[0])


def shard_batch(batch: Mapping[str, np.ndarray], rank: int, world_size: int
                ) -> dict[str, np.ndarray]:
    """Rank ``rank``'s share of a global batch: a contiguous block of its sets.

    Dense batches (``[B, ...]`` arrays): rows ``[r B / N, (r + 1) B / N)`` of every array whose
    leading axis is ``B`` (others, if any, kept whole). Graph batches (``node_graph``,
    ``edge_index``, ``graph_mask``: flat nodes and edges, padding nodes in padding graphs): a
    block of the real graphs plus the padding graphs, their nodes and edges, re-indexed.
    Raises :class:`ConfigError` if ``B`` (the real graphs) does not divide by ``N``.
    """
    if world_size == 1:
        return dict(batch)
    if "node_graph" in batch and "edge_index" in batch and "graph_mask" in batch:
        return _shard_graphs(batch, rank, world_size)
    size = _leading(batch)
    if size % world_size:
        raise ConfigError(f"--devices {world_size}: the batch has {size} sets, not a multiple "
                          f"of {world_size}; pass a --batch-size divisible by --devices")
    per = size // world_size
    rows = slice(rank * per, (rank + 1) * per)
    return {k: (v[rows] if np.ndim(v) and np.shape(v)[0] == size else v)
            for k, v in batch.items()}


def _shard_graphs(batch, rank, world_size):
    graph_mask = np.asarray(batch["graph_mask"])
    real = np.flatnonzero(graph_mask)
    if len(real) % world_size:
        raise ConfigError(f"--devices {world_size}: the batch has {len(real)} graphs, not a "
                          f"multiple of {world_size}; pass a --batch-size divisible by "
                          "--devices")
    per = len(real) // world_size
    graphs = np.concatenate([real[rank * per:(rank + 1) * per], np.flatnonzero(~graph_mask)])
    graphs.sort()
    node_graph = np.asarray(batch["node_graph"])
    nodes = np.flatnonzero(np.isin(node_graph, graphs))
    edge_index = np.asarray(batch["edge_index"])
    edges = np.flatnonzero(np.isin(edge_index[0], nodes) & np.isin(edge_index[1], nodes))
    new_node = np.full(len(node_graph), -1, np.int64)
    new_node[nodes] = np.arange(len(nodes))
    new_graph = np.full(len(graph_mask), -1, np.int64)
    new_graph[graphs] = np.arange(len(graphs))
    n_nodes, n_edges, n_graphs = len(node_graph), edge_index.shape[1], len(graph_mask)
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        if k == "edge_index":
            out[k] = new_node[v[:, edges]].astype(v.dtype)
        elif k == "node_graph":
            out[k] = new_graph[v[nodes]].astype(v.dtype)
        elif v.ndim and v.shape[0] == n_graphs:
            out[k] = v[graphs]
        elif v.ndim and v.shape[0] == n_nodes:
            out[k] = v[nodes]
        elif v.ndim and v.shape[0] == n_edges:
            out[k] = v[edges]
        else:
            out[k] = v
    return out


def check_devices(backend: str, device: str, devices: int) -> None:
    """Raise :class:`ConfigError` if ``--devices`` cannot be honoured here."""
    if devices == 1:
        return
    if backend == "torch":
        rank, size = world()
        if size != devices:
            raise ConfigError(f"--devices {devices}: the torch backend runs one process per "
                              f"device under torchrun (WORLD_SIZE is {size}); start it with "
                              f"torchrun --nproc_per_node {devices} -m setwise.tasks.cli train "
                              "... (setwise train does this itself when not under torchrun)")
        return
    import jax

    kind = "gpu" if device in ("cuda", "gpu") else (None if device == "auto" else device)
    found = jax.devices(kind) if kind else jax.devices()
    if len(found) < devices:
        raise ConfigError(f"--devices {devices}: JAX sees {len(found)} {found[0].platform} "
                          "device(s); on a CPU set XLA_FLAGS=--xla_force_host_platform_device_"
                          f"count={devices} before JAX starts (setwise train does this itself)")


def force_cpu_devices(devices: int) -> None:
    """Ask XLA for ``devices`` host (CPU) devices (before JAX's first computation)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if devices > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (f"{flags} --xla_force_host_platform_device_count={devices}"
                                   ).strip()


def initialize_jax(**kwargs) -> None:
    """Several hosts: ``jax.distributed.initialize(coordinator_address, num_processes,
    process_id)`` (arguments or the environment / cluster auto-detection), once per host
    before JAX's first computation. ``jax.devices()`` then lists every host's devices and
    ``--devices`` counts them all."""
    import jax

    jax.distributed.initialize(**kwargs)


def make_trainer(task, config, device: str, devices: int):
    """The trainer of ``config["backend"]`` over ``devices`` devices."""
    if config["backend"] == "torch":
        return TorchDistributedTrainer(task, config, device)
    return JaxShardedTrainer(task, config, device, devices=devices)


def _torch_classes():
    import torch
    import torch.distributed as dist

    from setwise.tasks.loops.torch_loop import TorchTrainer, torch_device
    from setwise.tasks.rng import TorchRng, step_seed

    return torch, dist, TorchTrainer, torch_device, TorchRng, step_seed


def _destroy_process_group(dist) -> None:
    """At exit: a process group left to the interpreter's teardown can abort the process
    (``terminate called without an active exception`` from its threads, exit status -6,
    which ``torchrun`` reports as the run failing)."""
    if dist.is_initialized():
        dist.destroy_process_group()


class TorchDistributedTrainer:
    """The torch trainer of one rank under ``torchrun`` (see the module docstring).

    Initialises the process group (nccl on CUDA, gloo on CPU) if needed and wraps a
    :class:`~setwise.tasks.loops.torch_loop.TorchTrainer`: same parameters, checkpoint and
    restore; ``step`` trains on this rank's shard and averages gradients, logs and state.
    """

    def __init__(self, task, config, device="auto", dtype="float32"):
        torch, dist, TorchTrainer, torch_device, self._Rng, step_seed = _torch_classes()
        self._torch, self._dist = torch, dist
        self.rank, self.world_size = world()
        cuda = torch_device(device).type == "cuda"
        if cuda:
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
            atexit.register(_destroy_process_group, dist)
        self.inner = TorchTrainer(task, config, device, dtype)
        self.device = self.inner.device
        backend = "nccl" if cuda else "gloo"
        self.device_name = f"{self.inner.device_name} x{self.world_size} (torch {backend})"
        seed = int(config["seed"])
        # rank 0 draws as one device would; the others from (seed, rank)-derived seeds
        self.seed = seed if self.rank == 0 else step_seed(seed, 2**40 + self.rank)

    def __getattr__(self, name):
        return getattr(self.__dict__["inner"], name)

    def _mean(self, tensors: list):
        torch = self._torch
        flat = torch.cat([t.reshape(-1).to(torch.float64 if t.dtype == torch.float64
                                           else torch.float32) for t in tensors])
        self._dist.all_reduce(flat)
        flat /= self.world_size
        out, at = [], 0
        for t in tensors:
            out.append(flat[at:at + t.numel()].reshape(t.shape).to(t.dtype))
            at += t.numel()
        return out

    def step(self, batch, step: int):
        inner, torch = self.inner, self._torch
        shard = shard_batch(batch, self.rank, self.world_size)
        rng = self._Rng(self.seed, step, inner.device)
        loss, logs, state = inner.model.loss(inner.params, inner.state, inner.to_device(shard),
                                             rng, True)
        inner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = list(inner.params.values())
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        for p, g in zip(params, self._mean(grads)):
            p.grad = g
        inner.optimizer.step()
        names = [k for k, v in state.items() if v.is_floating_point()]
        state = {k: v.detach() for k, v in state.items()}
        if names:
            state.update(zip(names, self._mean([state[k] for k in names])))
        inner.state = state
        keys = list(logs)
        scalars = self._mean([loss.detach().reshape(())] +
                             [torch.as_tensor(logs[k]).detach().reshape(()) for k in keys])
        return {"loss": scalars[0], **dict(zip(keys, scalars[1:]))}

    def predict(self, batch, index: int = 0):
        return self.inner.predict(batch, index)

    def checkpoint(self, step, elapsed):
        return self.inner.checkpoint(step, elapsed)

    def restore(self, ckpt):
        return self.inner.restore(ckpt)

    def set_weights(self, params, state):
        self.inner.set_weights(params, state)


def _jax_trainer_base():
    from setwise.tasks.loops.jax_loop import JaxTrainer

    return JaxTrainer


def JaxShardedTrainer(task, config, device="auto", dtype="float32", *, devices: int = 2):
    """The JAX trainer over a ``Mesh`` of ``devices`` devices (see the module docstring):
    a :class:`~setwise.tasks.loops.jax_loop.JaxTrainer` whose arrays are placed replicated
    (parameters, state, Adam) or sharded along ``"batch"`` (batches); the same jitted step."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from setwise.tasks.loops import EVAL_STEP
    from setwise.tasks.rng import JaxRng, step_key

    base = _jax_trainer_base()
    kind = "gpu" if device in ("cuda", "gpu") else (None if device == "auto" else device)
    found = jax.devices(kind) if kind else jax.devices()
    if len(found) < devices:
        raise ConfigError(f"--devices {devices}: JAX sees {len(found)} device(s)")
    mesh = Mesh(np.array(found[:devices]), ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())
    rows = NamedSharding(mesh, PartitionSpec("batch"))

    def place(value, sharding):
        value = np.array(value, copy=True)
        return jax.make_array_from_callback(value.shape, sharding, lambda idx: value[idx])

    class _Sharded(base):
        def put(self, arrays):
            return {k: place(v, replicated) for k, v in arrays.items()}

        def put_batch(self, batch):
            return {k: place(v, rows if np.ndim(v) and np.shape(v)[0] % devices == 0
                             else replicated) for k, v in batch.items()}

        def step(self, batch, step):
            self.params, self.state, self.opt_state, logs = self._train_step(
                self.params, self.state, self.opt_state, self.put_batch(batch),
                place(np.asarray(step, np.int32), replicated), place(self._lr, replicated))
            return logs

        def restore(self, ckpt):
            done = super().restore(ckpt)
            # the base class puts Adam's count on one device: replicate every leaf
            self.opt_state = jax.tree.map(lambda a: place(np.asarray(a), replicated),
                                          self.opt_state)
            return done

        def predict(self, batch, index=0):
            out = self._predict_gathered(self.params, self.state, self.put_batch(batch),
                                         place(np.asarray(index, np.int32), replicated))
            return {k: np.asarray(v) for k, v in out.items()}

    trainer = _Sharded(task, config, device, dtype)
    seed, model = int(config["seed"]), trainer.model
    trainer._predict_gathered = jax.jit(
        lambda params, state, batch, index: model.predict(
            params, state, batch, JaxRng(step_key(seed, EVAL_STEP - index))),
        out_shardings=replicated)
    trainer.mesh = mesh
    trainer.device_name = f"{found[0].platform} x{devices} (jax mesh)"
    return trainer
