"""The one validation layer of setwise.

Every op of every backend calls these functions before it computes anything, so a bad input
gets the same message everywhere: the op, the argument, what it got, and what was expected.
The checks look only at shapes, dtypes and (where the caller passes them) a few reduced
values, so backends can use them without converting their arrays to NumPy.

What is checked: the layout of a batch of sets (:func:`check_sets`), integers (Python, NumPy
and 0-d integer arrays of any backend are accepted: :func:`as_int`), the whole parameter
mapping of an op once per call (:func:`check_params`: names, shapes, floating dtypes; the
input's width is checked against it by each op's ``check_*`` helper), the public segment
functions' arguments (:func:`check_segment_args`), and values where the backend can read them
(:func:`check_finite`, :func:`check_index_values`, :func:`check_ptr_values`). When each
backend runs the value checks (eager, ``jit``, ``torch.compile``) is in README.md, "What is
checked, and when".
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import NamedTuple

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def dtype_name(dtype) -> str:
    """Backend-neutral dtype name: ``torch.float32`` / ``dtype('float32')`` -> ``'float32'``."""
    return str(dtype).removeprefix("torch.")


def fail(op: str, arg: str, got: str, expected: str, exc: type[Exception] = ValueError):
    """Raise ``exc`` with setwise's message format."""
    raise exc(f"{op}: argument '{arg}' {got}; expected {expected}")


def check_rank(op: str, arg: str, shape: Sequence[int], ranks: Sequence[int], layout: str):
    if len(shape) not in ranks:
        fail(op, arg, f"has shape {tuple(shape)} (rank {len(shape)})", layout)


def check_float(op: str, arg: str, dtype):
    name = dtype_name(dtype)
    if name not in FLOAT_DTYPES:
        fail(op, arg, f"has dtype {name}", f"a floating dtype ({', '.join(FLOAT_DTYPES)})",
             TypeError)


def check_int(op: str, arg: str, dtype):
    name = dtype_name(dtype)
    if name not in INT_DTYPES:
        fail(op, arg, f"has dtype {name}", "an integer dtype", TypeError)


def check_bool(op: str, arg: str, dtype):
    if dtype_name(dtype) != "bool":
        fail(op, arg, f"has dtype {dtype_name(dtype)}", "bool (True = element present)",
             TypeError)


def check_finite(op: str, arg: str, all_finite: bool):
    if not all_finite:
        fail(op, arg, "contains NaN or Inf", "finite values (padding excluded)")


def check_choice(op: str, arg: str, value, choices: Sequence):
    if value not in choices:
        fail(op, arg, f"is {value!r}", f"one of {', '.join(map(repr, choices))}")


def as_int(op: str, arg: str, value, exc: type[Exception] = TypeError) -> int:
    """``value`` as a Python int: an ``int``, a NumPy integer, or a 0-d integer array of any
    backend (NumPy, torch, JAX; concrete, not traced). ``bool`` and floats are refused."""
    shape = getattr(value, "shape", None)
    if shape is not None and (tuple(shape) != () or
                              dtype_name(getattr(value, "dtype", None)) not in INT_DTYPES):
        fail(op, arg, f"is an array of shape {tuple(shape)} and dtype "
             f"{dtype_name(getattr(value, 'dtype', None))}",
             "an int (Python int, NumPy integer or 0-d integer array)", exc)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        fail(op, arg, f"is {value!r}", "an int (Python int, NumPy integer or 0-d integer array)",
             exc)
    try:
        return operator.index(value)
    except Exception:  # a traced JAX value, a meta / fake tensor, ...
        fail(op, arg, f"is a {type(value).__name__} whose value cannot be read here",
             "a concrete int (a static argument under jit)", exc)


def check_positive_int(op: str, arg: str, value, minimum: int = 1) -> int:
    """``value`` as a Python int (see :func:`as_int`); ``ValueError`` if it is not an int
    or is below ``minimum``."""
    value = as_int(op, arg, value, ValueError) if not isinstance(value, int) or isinstance(
        value, bool) else value
    if value < minimum:
        fail(op, arg, f"is {value!r}", f"an int >= {minimum}")
    return value


class SetLayout(NamedTuple):
    """How a batch of sets is laid out, as decided by :func:`check_sets`.

    ``dense`` is True for ``x [num_sets, max_size, dim]`` (+ optional ``mask``), False for
    segments ``x [num_elements, dim]`` with ``index`` (or ``ptr``) and ``num_sets``.
    """

    dense: bool
    num_sets: int
    max_size: int  # dense: the padded size; segments: the number of elements
    dim: int


DENSE_OR_SEGMENTS = (
    "x [num_sets, max_size, dim] with optional mask [num_sets, max_size], "
    "or x [num_elements, dim] with index [num_elements] (or ptr [num_sets + 1]) and num_sets"
)


def check_sets(op: str, x, mask=None, index=None, ptr=None, num_sets=None) -> SetLayout:
    """Check a batch of sets in either input form and return its :class:`SetLayout`.

    Only shapes and dtypes are checked here; the caller checks values (finite, index range)
    with :func:`check_finite` and :func:`check_index_values`, where its arrays allow it.
    """
    check_float(op, "x", x.dtype)
    if x.ndim == 3:
        if index is not None or ptr is not None:
            fail(op, "index", "was given with a dense x of rank 3",
                 "index/ptr only with a segment x [num_elements, dim]")
        b, n, d = x.shape
        if mask is not None:
            check_bool(op, "mask", mask.dtype)
            if tuple(mask.shape) != (b, n):
                fail(op, "mask", f"has shape {tuple(mask.shape)}",
                     f"[num_sets, max_size] = {(b, n)} to match x {tuple(x.shape)}")
        if num_sets is not None:
            num_sets = check_positive_int(op, "num_sets", num_sets, minimum=0)
        if num_sets is not None and num_sets != b:
            fail(op, "num_sets", f"is {num_sets}", f"{b}, the first dimension of a dense x")
        return SetLayout(True, b, n, d)
    if x.ndim == 2:
        if mask is not None:
            fail(op, "mask", "was given with a segment x of rank 2",
                 "mask only with a dense x [num_sets, max_size, dim]")
        e, d = x.shape
        if index is None and ptr is None:
            fail(op, "index", "is missing for a segment x [num_elements, dim]",
                 "index [num_elements] or ptr [num_sets + 1]")
        if index is not None and ptr is not None:
            fail(op, "ptr", "was given together with index", "exactly one of index and ptr")
        if index is not None:
            check_int(op, "index", index.dtype)
            if tuple(index.shape) != (e,):
                fail(op, "index", f"has shape {tuple(index.shape)}",
                     f"[num_elements] = {(e,)} to match x {tuple(x.shape)}")
            if num_sets is None:
                fail(op, "num_sets", "is missing", "an int: the number of sets (index alone "
                     "cannot tell trailing empty sets)")
            num_sets = check_positive_int(op, "num_sets", num_sets, minimum=0)
        else:
            check_int(op, "ptr", ptr.dtype)
            check_rank(op, "ptr", ptr.shape, (1,), "ptr [num_sets + 1]")
            if ptr.shape[0] < 1:
                fail(op, "ptr", "is empty", "ptr [num_sets + 1] starting at 0")
            if num_sets is None:
                num_sets = ptr.shape[0] - 1
            num_sets = check_positive_int(op, "num_sets", num_sets, minimum=0)
            if num_sets != ptr.shape[0] - 1:
                fail(op, "num_sets", f"is {num_sets}", f"len(ptr) - 1 = {ptr.shape[0] - 1}")
        return SetLayout(False, num_sets, e, d)
    fail(op, "x", f"has shape {tuple(x.shape)} (rank {x.ndim})", DENSE_OR_SEGMENTS)


def check_segment_args(op: str, data, index, num_sets, weight=None) -> int:
    """Shapes and dtypes of a public segment reduction's arguments: ``data [num_elements,
    ...]`` (float), ``index [num_elements]`` (int), ``num_sets`` (an int >= 0; returned as a
    Python int), ``weight [num_elements]`` where given. The caller checks ``index``'s values
    with :func:`check_index_values`."""
    num_sets = check_positive_int(op, "num_sets", num_sets, minimum=0)
    check_int(op, "index", index.dtype)
    check_rank(op, "index", index.shape, (1,), "index [num_elements]")
    if data is not None:
        if len(data.shape) < 1 or data.shape[0] != index.shape[0]:
            fail(op, "index", f"has shape {tuple(index.shape)}",
                 f"one entry per row of the data {tuple(data.shape)}")
    if weight is not None and tuple(weight.shape) != tuple(index.shape):
        fail(op, "weight", f"has shape {tuple(weight.shape)}", f"{tuple(index.shape)} (one per "
             "element)")
    return num_sets


def check_ptr(op: str, ptr):
    """Shape and dtype of ``ptr [num_sets + 1]``; values with :func:`check_ptr_values`."""
    check_int(op, "ptr", ptr.dtype)
    check_rank(op, "ptr", ptr.shape, (1,), "ptr [num_sets + 1]")
    if ptr.shape[0] < 1:
        fail(op, "ptr", "is empty", "ptr [num_sets + 1] starting at 0")


def check_index_values(op: str, arg: str, lo: int, hi: int, num_sets: int):
    """``lo``/``hi``: the smallest and largest index value (skip when there are no elements)."""
    if lo < 0 or hi >= num_sets:
        fail(op, arg, f"has values in [{lo}, {hi}]", f"values in [0, num_sets) = [0, {num_sets})")


def check_ptr_values(op: str, first: int, last: int, nondecreasing: bool, num_elements: int):
    if first != 0 or last != num_elements or not nondecreasing:
        fail(op, "ptr", f"starts at {first}, ends at {last} (non-decreasing: {nondecreasing})",
             f"a non-decreasing ptr from 0 to num_elements = {num_elements}")


def check_last_dim(op: str, arg: str, shape: Sequence[int], dim: int, what: str):
    if shape[-1] != dim:
        fail(op, arg, f"has last dimension {shape[-1]} (shape {tuple(shape)})", f"{dim} ({what})")


def _shape_dtype(a):
    shape, dtype = getattr(a, "shape", None), getattr(a, "dtype", None)
    if shape is None or dtype is None:
        import numpy as np  # a Python scalar or list: what the op would make of it

        a = np.asarray(a)
        shape, dtype = a.shape, a.dtype
    return tuple(shape), dtype


def _shape_text(shape) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def check_params(op: str, params, spec: Mapping[str, Sequence[int | None] | None],
                 optional: Sequence[str] = ()):
    """The whole parameter mapping of an op, checked once per call, before any arithmetic.

    ``params`` must be a mapping; every name of ``spec`` must be in it (except those in
    ``optional``), with a floating dtype and the shape ``spec[name]`` (``None`` entries match
    any size; a ``None`` shape matches any shape). Names not in ``spec`` are ignored (a mapping
    may hold more than one op's parameters). Raises ``TypeError`` (not a mapping, a non-float
    dtype), ``KeyError`` (a missing name) or ``ValueError`` (a wrong shape), each naming the op
    and the parameter.
    """
    if not isinstance(params, Mapping):
        fail(op, "params", f"is a {type(params).__name__}",
             "a mapping name -> array (as returned by the op's init function)", TypeError)
    missing = [n for n in spec if n not in params and n not in optional]
    if missing:
        have = ", ".join(sorted(params)) or "nothing"
        fail(op, f"params['{missing[0]}']", "is missing",
             f"a mapping holding {', '.join(missing)} (it holds: {have})", KeyError)
    for name, want in spec.items():
        if name not in params:
            continue
        shape, dtype = _shape_dtype(params[name])
        check_float(op, f"params['{name}']", dtype)
        if want is not None and (len(shape) != len(want) or any(
                w is not None and s != w for s, w in zip(shape, want))):
            fail(op, f"params['{name}']", f"has shape {shape}", _shape_text(tuple(want)))


def mlp_spec(params, prefix: str, in_dim: int | None, op: str) -> tuple[dict, int | None]:
    """Shapes of a chain of linear layers ``{prefix}_{i}_w [in_i, out_i]``, ``{prefix}_{i}_b
    [out_i]`` starting from width ``in_dim`` (``None``: taken from the first layer): returns
    ``(spec, out_width)``. A gap (``{prefix}_2_w`` without ``{prefix}_1_w``) is reported as the
    missing layer."""
    spec, width, depth = {}, in_dim, 0
    while f"{prefix}_{depth}_w" in params:
        shape, _ = _shape_dtype(params[f"{prefix}_{depth}_w"])
        out = shape[-1] if len(shape) == 2 else None
        spec[f"{prefix}_{depth}_w"] = (width, out)
        spec[f"{prefix}_{depth}_b"] = (out,)
        width, depth = out, depth + 1
    extra = sorted(k for k in params if k.startswith(f"{prefix}_") and k.endswith("_w")
                   and k[len(prefix) + 1:-2].isdigit() and int(k[len(prefix) + 1:-2]) > depth)
    if extra or depth == 0:
        spec[f"{prefix}_{depth}_w"] = (width, None)
    return spec, width


def check_param(op: str, params, name: str, shape: Sequence[int] | None = None):
    """A parameter mapping must hold ``name``, with ``shape`` where given."""
    if not isinstance(params, Mapping):
        check_params(op, params, {})
    if name not in params:
        have = ", ".join(sorted(params)) or "nothing"
        fail(op, f"params['{name}']", "is missing", f"a mapping holding it (it holds: {have})",
             KeyError)
    if shape is not None and tuple(params[name].shape) != tuple(shape):
        fail(op, f"params['{name}']", f"has shape {tuple(params[name].shape)}", f"{tuple(shape)}")


def check_set_sizes(op: str, n_values: Sequence[int], num_sets: int, limit: int | None,
                    limit_name: str, max_n: int | None):
    """Sizes requested of a set creator: one per set, >= 0, <= the creator's limit and max_n."""
    if len(n_values) != num_sets:
        fail(op, "n", f"has {len(n_values)} entries", f"an int or one size per set ({num_sets})")
    if num_sets and min(n_values) < 0:
        fail(op, "n", f"has a negative size {min(n_values)}", "sizes >= 0")
    biggest = max(n_values, default=0)
    if limit is not None and biggest > limit:
        fail(op, "n", f"asks for {biggest} points", f"at most {limit_name} = {limit}")
    if max_n is not None and biggest > max_n:
        fail(op, "max_n", f"is {max_n}", f">= the largest requested size {biggest}")


def check_set_pair(op: str, x, y, x_mask=None, y_mask=None):
    """Shapes and dtypes of two padded batches of sets compared by a set loss:
    ``x [num_sets, n, dim]``, ``y [num_sets, m, dim]``, masks ``[num_sets, n]`` / ``[num_sets, m]``.
    """
    for name, a, m in (("x", x, x_mask), ("y", y, y_mask)):
        check_rank(op, name, a.shape, (3,), f"{name} [num_sets, max_size, dim]")
        check_float(op, name, a.dtype)
        if m is not None:
            check_bool(op, f"{name}_mask", m.dtype)
            if tuple(m.shape) != tuple(a.shape[:2]):
                fail(op, f"{name}_mask", f"has shape {tuple(m.shape)}",
                     f"{tuple(a.shape[:2])} to match {name}")
    if x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        fail(op, "y", f"has shape {tuple(y.shape)}",
             f"the same num_sets and dim as x {tuple(x.shape)}")
