"""Sets as arrays in JAX: the dense and segment forms, and reductions over sets.

Same functions and semantics as :mod:`setwise.reference.segments`. Internally every op works
on :class:`Segments`, a pytree whose static part (``num_sets`` and, for a dense batch,
``dense_size``) fixes every shape, so ops are jit-compatible:

- a dense batch ``x [num_sets, max_size, dim]`` is flattened without moving data and reduced
  with reshapes (padding gets weight 0);
- a segment batch ``x [num_elements, dim]`` with ``index`` is reduced with
  ``jax.ops.segment_sum`` / ``segment_max`` over the static ``num_sets``.

Eager calls (concrete arrays) pad the element axis (``max_size`` of a dense batch,
``num_elements`` of a segment batch) to a power of two with weight-0 rows, so that ragged
batches compile once per size bucket instead of once per shape; results are unchanged.
Under a caller's ``jit`` shapes are kept exactly as given.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from setwise.jax_backend.api import as_jax, is_concrete, jit_checks_on, traced_check
from setwise.reference import validation as V


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Segments:
    """A batch of sets in canonical segment form (a pytree; the sizes are static).

    Attributes:
        x: ``[num_elements, dim]`` element features (padding rows zeroed).
        index: ``[num_elements]`` set id of each element.
        weight: ``[num_elements]`` 1 for present elements, 0 for padding (dtype of ``x``).
        num_sets: number of sets (static).
        dense_size: ``max_size`` when the batch came dense (elements grouped by set, in
            order, ``dense_size`` per set), else ``None`` (static).
    """

    x: jax.Array
    index: jax.Array
    weight: jax.Array
    num_sets: int = dataclasses.field(metadata={"static": True})
    dense_size: int | None = dataclasses.field(default=None, metadata={"static": True})

    def sum(self, data):
        """``[num_elements, ...]`` -> per-set sums ``[num_sets, ...]`` (weights not applied)."""
        if self.dense_size is not None:
            return data.reshape((self.num_sets, self.dense_size) + data.shape[1:]).sum(1)
        return jax.ops.segment_sum(data, self.index, self.num_sets)

    def gather(self, per_set):
        """``[num_sets, ...]`` -> ``[num_elements, ...]``: each element gets its set's row."""
        if self.dense_size is not None:
            return jnp.repeat(per_set, self.dense_size, axis=0,
                              total_repeat_length=self.num_sets * self.dense_size)
        return per_set[self.index]

    def sizes(self):
        """Number of present elements per set, ``[num_sets]`` (dtype of ``weight``)."""
        return self.sum(self.weight)

    def present(self, ndim):
        """``weight > 0`` shaped to broadcast against an array of rank ``ndim``."""
        return (self.weight > 0).reshape((-1,) + (1,) * (ndim - 1))

    def extreme(self, data, largest):
        """Max (``largest``) or min of present elements per set; empty sets give 0."""
        fill = -jnp.inf if largest else jnp.inf
        data = jnp.where(self.present(data.ndim), data, fill)
        if self.dense_size is not None:
            grouped = data.reshape((self.num_sets, self.dense_size) + data.shape[1:])
            out = (jnp.max if largest else jnp.min)(grouped, axis=1, initial=fill)
        else:
            reduce = jax.ops.segment_max if largest else jax.ops.segment_min
            out = reduce(data, self.index, self.num_sets)
        # only an empty set is filled with 0: a NaN / Inf of the data is the true extreme
        full = self.sum((self.weight > 0).astype(data.dtype)) > 0
        return jnp.where(full.reshape((-1,) + (1,) * (out.ndim - 1)), out, 0).astype(data.dtype)

    def softmax(self, logits):
        """Softmax of ``logits [num_elements, ...]`` within each set; padding gets 0."""
        present = self.present(logits.ndim)
        top = jax.lax.stop_gradient(self.extreme(logits, largest=True))
        shifted = jnp.where(present, logits - self.gather(top), 0)
        # under jit XLA may compute the logits and their max in fusions whose roundings differ
        # by an ulp; at |logits| ~ 1e30 that ulp overflows exp (NaN where NumPy and PyTorch are
        # finite). A shift within a few ulps of the max is rounding noise: it is 0.
        noise = 8 * jnp.finfo(logits.dtype).eps * jax.lax.stop_gradient(jnp.abs(self.gather(top)))
        rounded = jnp.where(jnp.abs(shifted) <= noise, 0, jnp.minimum(shifted, 0))
        shifted = shifted + jax.lax.stop_gradient(rounded - shifted)  # gradient unchanged
        e = jnp.where(present, jnp.exp(shifted), 0)
        return e / jnp.maximum(self.gather(self.sum(e)), jnp.finfo(e.dtype).tiny)


def _index_from_ptr(ptr, num_elements):
    """jit-compatible :func:`index_from_ptr` for a known ``num_elements = ptr[-1]``."""
    positions = jnp.arange(num_elements, dtype=ptr.dtype)
    return jnp.searchsorted(ptr, positions, side="right") - 1


def index_from_ptr(ptr):
    """``ptr [num_sets + 1]`` (CSR offsets) -> ``index [ptr[-1]]`` of set ids.

    The output length is ``ptr[-1]``, so ``ptr`` must be concrete (not traced); under ``jit``
    pass ``ptr`` to the ops themselves, which know ``num_elements`` from ``x``.
    """
    op = "index_from_ptr"
    ptr = jnp.asarray(ptr)
    V.check_ptr(op, ptr)
    if not is_concrete(ptr):
        V.fail(op, "ptr", "is traced", "a concrete array (its last value is "
               "the output length); under jit pass ptr to the op itself", TypeError)
    host = np.asarray(ptr)
    V.check_ptr_values(op, int(host[0]), int(host[-1]), bool(np.all(np.diff(host) >= 0)),
                       int(host[-1]))
    return _ptr_index(ptr, int(host[-1]))


def _traced_checks(op, x, mask, index, ptr, num_sets):
    """The value checks of :func:`as_segments` on traced arrays (checkify; opt-in)."""
    if not jit_checks_on():
        return
    finite = jnp.isfinite(x).all(-1)
    if mask is not None:
        finite = finite | ~mask
    traced_check(finite.all(), f"{op}: argument 'x' contains NaN or Inf; expected finite "
                 "values (padding excluded)")
    if index is not None and index.shape[0]:
        traced_check((index.min() >= 0) & (index.max() < num_sets),
                     f"{op}: argument 'index' has values outside [0, {num_sets}); expected "
                     f"values in [0, num_sets) = [0, {num_sets})")
    if ptr is not None:
        traced_check((ptr[0] == 0) & (ptr[-1] == x.shape[0]) & jnp.all(ptr[1:] >= ptr[:-1]),
                     f"{op}: argument 'ptr' is not a non-decreasing ptr from 0 to "
                     f"num_elements = {x.shape[0]}; expected one")


def _check_public(op, data, index, num_sets, weight=None):
    """The public segment functions' checks: shapes and dtypes always, ``index``'s range on
    the host when concrete (with checkify under :func:`setwise.jax_backend.checked`)."""
    num_sets = V.check_segment_args(op, data, index, num_sets, weight)
    if index.shape[0]:
        if is_concrete(index):
            host = np.asarray(index)
            V.check_index_values(op, "index", int(host.min()), int(host.max()), num_sets)
        else:
            traced_check((index.min() >= 0) & (index.max() < num_sets),
                         f"{op}: argument 'index' has values outside [0, {num_sets}); expected "
                         f"values in [0, num_sets) = [0, {num_sets})")
    return num_sets


def as_segments(op: str, x, mask=None, index=None, ptr=None, num_sets=None) -> Segments:
    """Validate a batch of sets in either form and return it as :class:`Segments`.

    Shapes and dtypes are always checked; values (finite, index range, ptr) when the arrays
    are concrete, on the host (no compilation per shape for a check), and under ``jit`` only
    inside :func:`setwise.jax_backend.checked` (``jax.experimental.checkify``).
    """
    x, mask, index, ptr = as_jax(x), as_jax(mask), as_jax(index), as_jax(ptr)
    layout = V.check_sets(op, x, mask, index, ptr, num_sets)
    if not is_concrete(x, mask, index, ptr):
        _traced_checks(op, x, mask, index, ptr, layout.num_sets)
    if layout.dense:
        if is_concrete(x, mask):
            host = np.asarray(x)
            if mask is not None:
                host = host[np.asarray(mask)]
            V.check_finite(op, "x", bool(np.isfinite(host).all()))
            x, mask = _bucket_dense(x, mask)
        return _dense_segments(x, mask)
    if ptr is not None:
        if is_concrete(ptr):
            host = np.asarray(ptr)
            V.check_ptr_values(op, int(host[0]), int(host[-1]), bool(np.all(np.diff(host) >= 0)),
                               x.shape[0])
            index = jnp.asarray(np.repeat(np.arange(len(host) - 1), np.diff(host)))
        else:
            index = _ptr_index(ptr, x.shape[0])
    elif is_concrete(index) and index.shape[0]:
        host = np.asarray(index)
        V.check_index_values(op, "index", int(host.min()), int(host.max()), layout.num_sets)
    if is_concrete(x, index):
        V.check_finite(op, "x", bool(np.isfinite(np.asarray(x)).all()))
        if layout.num_sets:
            return _bucket_segments(x, index, layout.num_sets)
    return _segment_segments(x, index, num_sets=layout.num_sets)


BUCKET_MIN = 8


def bucket(n: int) -> int:
    """The padded size of an axis of ``n`` elements in an eager call: a power of two >= 8."""
    return n if n == 0 else max(BUCKET_MIN, 1 << (n - 1).bit_length())


def _bucket_dense(x, mask):
    """Pad ``max_size`` to :func:`bucket` with absent slots."""
    b, n, _ = x.shape
    extra = bucket(n) - n
    if mask is None:
        mask = jnp.ones((b, n), bool)
    if not extra:
        return x, mask
    return (jnp.pad(x, ((0, 0), (0, extra), (0, 0))), jnp.pad(mask, ((0, 0), (0, extra))))


def _bucket_segments(x, index, num_sets):
    """Pad ``num_elements`` to :func:`bucket` with weight-0 rows (index 0, zero features)."""
    e = x.shape[0]
    extra = bucket(e) - e
    weight = np.concatenate([np.ones(e), np.zeros(extra)]).astype(x.dtype)
    return Segments(jnp.pad(x, ((0, extra), (0, 0))),
                    jnp.pad(index, (0, extra)).astype(index.dtype), jnp.asarray(weight), num_sets)


@jax.jit
def _dense_segments(x, mask):
    b, n, d = x.shape
    present = jnp.ones((b, n), bool) if mask is None else mask
    flat = jnp.where(present[..., None], x, 0).reshape(b * n, d)
    idx = jnp.repeat(jnp.arange(b), n, total_repeat_length=b * n)
    return Segments(flat, idx, present.reshape(-1).astype(x.dtype), b, n)


@functools.partial(jax.jit, static_argnames="num_elements")
def _ptr_index(ptr, num_elements):
    return _index_from_ptr(ptr, num_elements)


@functools.partial(jax.jit, static_argnames="num_sets")
def _segment_segments(x, index, num_sets):
    return Segments(x, index, jnp.ones(x.shape[0], x.dtype), num_sets)


def segment_sum(data, index, num_sets):
    """Sum ``data [num_elements, ...]`` into ``[num_sets, ...]`` by ``index``.

    See :func:`setwise.reference.segment_sum`; ``num_sets`` is static under ``jit``.
    """
    data, index = jnp.asarray(data), jnp.asarray(index)
    num_sets = _check_public("segment_sum", data, index, num_sets)
    return _segment_sum(data, index, num_sets)


@functools.partial(jax.jit, static_argnums=2)
def _segment_sum(data, index, num_sets):
    return jax.ops.segment_sum(data, index, num_sets)


@functools.partial(jax.jit, static_argnames=("num_sets", "reduction"))
def _segment_reduce(data, index, weight, *, num_sets, reduction):
    if weight is None:
        weight = jnp.ones(data.shape[0], data.dtype)
    seg = Segments(data, index, weight, num_sets)
    if reduction == "softmax":
        return seg.softmax(data)
    return seg.extreme(data, largest=reduction == "max")


def segment_max(data, index, num_sets, weight=None):
    """Max of present elements per set; empty sets give 0."""
    data, index, weight = jnp.asarray(data), jnp.asarray(index), as_jax(weight)
    num_sets = _check_public("segment_max", data, index, num_sets, weight)
    return _segment_reduce(data, index, weight, num_sets=num_sets, reduction="max")


def segment_min(data, index, num_sets, weight=None):
    """Min of present elements per set; empty sets give 0."""
    data, index, weight = jnp.asarray(data), jnp.asarray(index), as_jax(weight)
    num_sets = _check_public("segment_min", data, index, num_sets, weight)
    return _segment_reduce(data, index, weight, num_sets=num_sets, reduction="min")


def segment_softmax(logits, index, num_sets, weight=None):
    """Softmax of ``logits [num_elements, ...]`` within each set; padding gets 0.

    See :func:`setwise.reference.segment_softmax`.
    """
    logits, index, weight = jnp.asarray(logits), jnp.asarray(index), as_jax(weight)
    num_sets = _check_public("segment_softmax", logits, index, num_sets, weight)
    return _segment_reduce(logits, index, weight, num_sets=num_sets, reduction="softmax")


def to_dense(x, index, num_sets, max_size=None):
    """Segments -> dense: ``(x [num_sets, max_size, dim], mask [num_sets, max_size])``.

    Elements keep their order within each set. ``max_size=None`` reads the largest set size
    from ``index``, which must then be concrete; give ``max_size`` under ``jit`` (elements
    beyond it are dropped there; eagerly a ``max_size`` below the largest set is refused).
    """
    op = "to_dense"
    x, index = jnp.asarray(x), jnp.asarray(index)
    num_sets = _check_public(op, x, index, num_sets)
    if max_size is not None:
        max_size = V.check_positive_int(op, "max_size", max_size, minimum=0)
    if is_concrete(index):
        size = int(np.bincount(np.asarray(index), minlength=num_sets).max(initial=0))
        if max_size is not None and max_size < size:
            V.fail(op, "max_size", f"is {max_size}", f">= the largest set's size {size}")
        max_size = size if max_size is None else max_size
    elif max_size is None:
        V.fail(op, "max_size", "is None with a traced index",
               "an int under jit (the padded set size)", TypeError)
    return _to_dense(x, index, num_sets, max_size)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _to_dense(x, index, num_sets, max_size):
    counts = jnp.bincount(index, length=num_sets)
    order = jnp.argsort(index, stable=True)
    starts = jnp.cumsum(counts) - counts
    slot = jnp.zeros_like(index).at[order].set(
        jnp.arange(index.shape[0], dtype=index.dtype) - starts[index[order]])
    dense = jnp.zeros((num_sets, max_size) + x.shape[1:], x.dtype)
    mask = jnp.zeros((num_sets, max_size), bool)
    return (dense.at[index, slot].set(x, mode="drop"),
            mask.at[index, slot].set(True, mode="drop"))


def to_segments(x, mask=None):
    """Dense -> segments: ``(x [num_present, dim], index [num_present], num_sets)``.

    The output length is the number of present elements, so ``mask`` must be concrete
    (this conversion happens outside ``jit``; the ops accept the dense form directly).
    """
    x = jnp.asarray(x)
    mask = jnp.ones(x.shape[:2], bool) if mask is None else jnp.asarray(mask)
    if not is_concrete(mask):
        V.fail("to_segments", "mask", "is traced", "a concrete array (the output length "
               "depends on it); under jit pass the dense form to the ops", TypeError)
    host = np.asarray(mask)
    rows, _ = np.nonzero(host)
    return x[host], jnp.asarray(rows), x.shape[0]
