"""Sets as tensors: the dense and segment forms, and reductions over segments.

Same contract as :mod:`setwise.reference.segments`. Internally every op works on the segment
form with a per-element ``weight``; a dense batch ``[num_sets, max_size, dim]`` is flattened
to ``[num_sets * max_size, dim]`` and remembers ``max_size``, so gathers and set sums become a
broadcast and a reshape-sum instead of an indexed scatter (static shapes, no sync).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from setwise.reference import validation as V
from setwise.torch_backend.nn import as_tensor, can_read_values, checking_values


class Segments(NamedTuple):
    """A batch of sets in canonical segment form.

    Attributes:
        x: ``[num_elements, dim]`` element features (padding rows zeroed).
        index: ``[num_elements]`` int64 set id of each element.
        weight: ``[num_elements]`` 1 for present elements, 0 for padding (dtype of ``x``).
        num_sets: number of sets (trailing empty sets included).
        max_size: for a flattened dense batch, its padded size (element ``i`` belongs to set
            ``i // max_size``); ``None`` for segment input.
        padded: whether some weights may be 0 (a dense batch with a mask); if not, every
            weight is 1 and ops skip multiplying by it.
    """

    x: torch.Tensor
    index: torch.Tensor
    weight: torch.Tensor
    num_sets: int
    max_size: int | None = None
    padded: bool = False


def gather(t, seg: Segments):
    """``t [num_sets, ...]`` -> ``[num_elements, ...]``: each element gets its set's row."""
    if seg.max_size is not None:
        return t.repeat_interleave(seg.max_size, dim=0)
    return t.index_select(0, seg.index)


def set_sum(t, seg: Segments):
    """``t [num_elements, ...]`` -> ``[num_sets, ...]``: the sum over each set's elements."""
    if seg.max_size is not None:
        return t.reshape(seg.num_sets, seg.max_size, *t.shape[1:]).sum(1)
    return t.new_zeros((seg.num_sets, *t.shape[1:])).index_add_(0, seg.index, t)


def _tensor(a, like):
    return None if a is None else as_tensor(a, like)


def _check_values(op, checks):
    """Run value checks ``[(kind, tensor or int, ...)]`` with one device-to-host transfer.

    Skipped when value checks are off (:func:`setwise.torch_backend.value_checks`), under
    ``torch.compile``, and where values cannot be read: meta / fake tensors and
    ``torch.func.vmap``'s batched tensors.
    """
    if not checks or not checking_values():
        return
    tensors = [t for _, *ts in checks for t in ts if isinstance(t, torch.Tensor)]
    if not can_read_values(*tensors):
        return
    values = iter(torch.stack([t.to(torch.int64) for t in tensors]).tolist())
    for kind, *ts in checks:
        got = [next(values) if isinstance(t, torch.Tensor) else t for t in ts]
        if kind == "finite":
            V.check_finite(op, "x", bool(got[0]))
        elif kind.startswith("finite:"):
            V.check_finite(op, kind[len("finite:"):], bool(got[0]))
        elif kind == "ptr":
            V.check_ptr_values(op, got[0], got[1], bool(got[2]), got[3])
        else:
            V.check_index_values(op, "index", got[0], got[1], got[2])


def as_segments(op: str, x, mask=None, index=None, ptr=None, num_sets=None,
                extra=()) -> Segments:
    """Validate a batch of sets in either form and return it as :class:`Segments`.

    Shapes and dtypes are checked by :func:`setwise.reference.validation.check_sets`; values
    (finite ``x``, ``index`` in range, ``ptr`` well formed, and ``extra`` checks
    ``("finite:<arg>", all_finite_tensor)`` of the caller) with one host sync, skipped under
    ``torch.compile``, ``torch.func.vmap`` and for meta tensors.
    """
    x = as_tensor(x)
    mask, index, ptr = _tensor(mask, x), _tensor(index, x), _tensor(ptr, x)
    layout = V.check_sets(op, x, mask, index, ptr, num_sets)
    if layout.dense:
        b, n, d = x.shape
        finite = torch.isfinite(x).all(-1)
        if mask is None:
            _check_values(op, [("finite", finite.all()), *extra])
            flat, weight = x.reshape(b * n, d), x.new_ones(b * n)
        else:
            _check_values(op, [("finite", (finite | ~mask).all()), *extra])
            flat = torch.where(mask[..., None], x, 0).reshape(b * n, d)
            weight = mask.reshape(-1).to(x.dtype)
        idx = torch.arange(b, device=x.device).repeat_interleave(n)
        return Segments(flat, idx, weight, b, n, mask is not None)
    e = x.shape[0]
    checks = [("finite", torch.isfinite(x).all()), *extra]
    if ptr is not None:
        diff = ptr[1:] - ptr[:-1]
        checks.append(("ptr", ptr[0], ptr[-1], (diff >= 0).all(), e))
        _check_values(op, checks)
        index = torch.arange(layout.num_sets, device=x.device).repeat_interleave(
            diff.long(), output_size=e)
    else:
        index = index.long()
        if e:
            checks.append(("index", index.min(), index.max(), layout.num_sets))
        _check_values(op, checks)
    return Segments(x, index, x.new_ones(e), layout.num_sets)


def _check_public(op, data, index, num_sets, weight=None):
    """Checks of the public segment functions: shapes and dtypes always, ``index``'s range
    with one host sync (like every op's value checks). Returns ``num_sets`` as an int."""
    num_sets = V.check_segment_args(op, data, index, num_sets, weight)
    if index.numel():
        _check_values(op, [("index", index.min(), index.max(), num_sets)])
    return num_sets


def index_from_ptr(ptr):
    """``ptr [num_sets + 1]`` (CSR offsets) -> ``index [ptr[-1]]`` of set ids."""
    op = "index_from_ptr"
    ptr = as_tensor(ptr)
    V.check_ptr(op, ptr)
    ptr = ptr.long()
    first, last, ok = torch.stack([ptr[0], ptr[-1], (ptr[1:] >= ptr[:-1]).all()]).tolist()
    V.check_ptr_values(op, first, last, bool(ok), last)
    return torch.arange(len(ptr) - 1, device=ptr.device).repeat_interleave(ptr[1:] - ptr[:-1])


def segment_sum(data, index, num_sets):
    """Sum ``data [num_elements, ...]`` into ``[num_sets, ...]`` by ``index``."""
    data = as_tensor(data)
    index = as_tensor(index, data)
    num_sets = _check_public("segment_sum", data, index, num_sets)
    return _segment_sum(data, index.long(), num_sets)


def _segment_sum(data, index, num_sets):
    return data.new_zeros((num_sets, *data.shape[1:])).index_add_(0, index, data)


def _public(op, data, index, num_sets, weight):
    data = as_tensor(data)
    index = as_tensor(index, data)
    weight = None if weight is None else as_tensor(weight, data)
    num_sets = _check_public(op, data, index, num_sets, weight)
    return data, index.long(), num_sets, weight


def segment_max(data, index, num_sets, weight=None):
    """Max of present elements per set; empty sets give 0 (NaN / Inf come out as they are)."""
    return _segment_extreme("amax", float("-inf"),
                            *_public("segment_max", data, index, num_sets, weight))


def segment_min(data, index, num_sets, weight=None):
    """Min of present elements per set; empty sets give 0 (NaN / Inf come out as they are)."""
    return _segment_extreme("amin", float("inf"),
                            *_public("segment_min", data, index, num_sets, weight))


def _present(weight, data):
    if weight is None:
        return None
    present = as_tensor(weight, data) > 0
    return present.reshape(-1, *([1] * (data.ndim - 1)))


def _segment_extreme(reduce, start, data, index, num_sets, weight):
    """Unchecked max / min of each set's present elements; 0 for an empty set only (a NaN or
    Inf of the data is the true result and comes out)."""
    present = _present(weight, data)
    if present is not None:
        data = torch.where(present, data, start)
    idx = index.reshape(-1, *([1] * (data.ndim - 1))).expand_as(data)
    out = data.new_full((num_sets, *data.shape[1:]), start)
    out = out.scatter_reduce(0, idx, data, reduce, include_self=True)
    count = data.new_zeros(num_sets).index_add_(
        0, index, data.new_ones(index.shape[0]) if weight is None else (weight > 0).to(data.dtype))
    return torch.where(count.reshape(-1, *([1] * (data.ndim - 1))) > 0, out, 0)


def segment_softmax(logits, index, num_sets, weight=None):
    """Softmax of ``logits [num_elements, ...]`` within each set; padding gets 0."""
    return _segment_softmax(*_public("segment_softmax", logits, index, num_sets, weight))


def _segment_softmax(logits, index, num_sets, weight=None):
    present = _present(weight, logits)
    if present is None:
        present = torch.ones_like(logits, dtype=torch.bool)
    top = _segment_extreme("amax", float("-inf"), torch.where(present, logits, float("-inf")),
                           index, num_sets, None)
    top = torch.where(torch.isfinite(top), top, 0)
    e = torch.where(present, torch.exp(logits - top[index]), 0)
    tiny = torch.finfo(e.dtype).tiny
    return e / _segment_sum(e, index, num_sets)[index].clamp_min(tiny)


def set_sizes(seg: Segments):
    """Number of present elements per set, ``[num_sets]`` (dtype of ``x``)."""
    return set_sum(seg.weight, seg)


def to_dense(x, index, num_sets, max_size=None):
    """Segments -> dense: ``(x [num_sets, max_size, dim], mask [num_sets, max_size])``.

    Elements keep their order within each set.
    """
    op = "to_dense"
    x = as_tensor(x)
    index = as_tensor(index, x)
    num_sets = _check_public(op, x, index, num_sets)
    index = index.long()
    counts = torch.bincount(index, minlength=num_sets)
    size = int(counts.max()) if counts.numel() else 0
    if max_size is not None:
        max_size = V.check_positive_int(op, "max_size", max_size, minimum=0)
        if max_size < size:
            V.fail(op, "max_size", f"is {max_size}", f">= the largest set's size {size}")
        size = max_size
    order = torch.argsort(index, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(index)
    slot[order] = torch.arange(len(index), device=x.device) - starts[index[order]]
    dense = x.new_zeros((num_sets, size, *x.shape[1:]))
    dense[index, slot] = x
    mask = torch.zeros((num_sets, size), dtype=torch.bool, device=x.device)
    mask[index, slot] = True
    return dense, mask


def to_segments(x, mask=None):
    """Dense -> segments: ``(x [num_present, dim], index [num_present], num_sets)``."""
    x = as_tensor(x)
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None \
        else as_tensor(mask, x)
    rows = torch.nonzero(mask)[:, 0]
    return x[mask], rows, x.shape[0]
