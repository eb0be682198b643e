"""Every set aggregator behind one table: sum, mean, max, multi-head attention, PNA, EA.

A readout turns a batch of sets (dense ``x [num_sets, max_size, dim]`` with ``mask``, or
segments ``x [num_elements, dim]`` with ``index`` and ``num_sets``) into ``[num_sets, width]``
by calling the setwise operator of whichever backend module ``ops`` is
(``setwise.reference``, ``setwise.torch_backend``, ``setwise.jax_backend``: the same
signatures), so this module is the one place where a task reaches an aggregator, in every
backend.

Layout: the operator's own parameter names behind ``{prefix}_`` (``{prefix}_potential_0_w``,
``{prefix}_step_size_raw`` for EA; ``{prefix}_query``... for attention; see each operator's
``init_*``). ``sum``, ``mean`` and ``max`` have no parameters and keep the input width.

EA's diagnostics come back as logs, each a mean over the batch's sets: ``ea_aux`` (eq. 5's
auxiliary loss, differentiable: a model adds ``weight * ea_aux`` to its loss),
``ea_grad_max_norm`` (the final gradient's max-norm, paper 1 Fig. 5) and ``ea_active_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setwise.reference import init_attention_pool, init_equilibrium_aggregation, init_pna_pool

READOUTS = ("sum", "mean", "max", "mha", "pna", "ea")
LABELS = {"sum": "Sum", "mean": "Mean", "max": "Max", "mha": "MHA", "pna": "PNA", "ea": "EA"}
GRAD_MODES = ("unrolled", "implicit", "truncated")


@dataclass(frozen=True)
class ReadoutSpec:
    """One aggregator and its sizes.

    Attributes:
        kind: one of :data:`READOUTS`.
        in_dim: element width.
        out_dim: output width of ``mha``, ``pna`` and ``ea`` (``sum``/``mean``/``max`` keep
            ``in_dim``); ``None`` means ``in_dim``.
        num_heads: attention heads (``mha``).
        pna_delta: PNA's ``delta``, the mean ``log(N + 1)`` over the training sets.
        ea_hidden: EA potential's residual-MLP sizes (paper: ``[2h, h, 32]``).
        ea_steps: EA's inner steps ``T``.
        ea_step_size, ea_momentum: initial inner step size and momentum (paper 0.125, 0.9).
        ea_gtol: a set stops moving below this gradient max-norm (paper 1e-3).
        ea_clip: clip ``y`` to ``[-c, c]`` after every step, or None.
        ea_grad_mode: ``unrolled`` / ``implicit`` / ``truncated``.
        ea_truncate_steps: steps back-propagated in ``truncated`` mode.
    """

    kind: str
    in_dim: int
    out_dim: int | None = None
    num_heads: int = 4
    pna_delta: float = 1.0
    ea_hidden: tuple[int, ...] = (256, 128, 32)
    ea_steps: int = 5
    ea_step_size: float = 0.125
    ea_momentum: float = 0.9
    ea_gtol: float = 1e-3
    ea_clip: float | None = None
    ea_grad_mode: str = "unrolled"
    ea_truncate_steps: int | None = None

    def __post_init__(self):
        if self.kind not in READOUTS:
            raise ValueError(f"ReadoutSpec: kind is {self.kind!r}; expected one of "
                             f"{', '.join(map(repr, READOUTS))}")
        if self.ea_grad_mode not in GRAD_MODES:
            raise ValueError(f"ReadoutSpec: ea_grad_mode is {self.ea_grad_mode!r}; expected one "
                             f"of {', '.join(map(repr, GRAD_MODES))}")

    @property
    def width(self) -> int:
        """The output width."""
        if self.kind in ("sum", "mean", "max") or self.out_dim is None:
            return self.in_dim
        return self.out_dim


def init_readout(rng, params, prefix, spec: ReadoutSpec, dtype="float32"):
    """Add readout ``{prefix}`` of ``spec`` to ``params`` (nothing for sum / mean / max)."""
    if spec.kind == "ea":
        own = init_equilibrium_aggregation(rng, spec.in_dim, spec.width, hidden=spec.ea_hidden,
                                           step_size=spec.ea_step_size,
                                           momentum=spec.ea_momentum, dtype=dtype)
    elif spec.kind == "mha":
        own = init_attention_pool(rng, spec.in_dim, spec.width, num_heads=spec.num_heads,
                                  dtype=dtype)
    elif spec.kind == "pna":
        own = init_pna_pool(rng, spec.in_dim, spec.width, dtype=dtype)
    else:
        own = {}
    params.update({f"{prefix}_{k}": v for k, v in own.items()})


def own_params(params, prefix) -> dict:
    """Readout ``{prefix}``'s entries of ``params`` under the operator's own names."""
    start = prefix + "_"
    return {k[len(start):]: v for k, v in params.items() if k.startswith(start)}


def _ea(ops, params, spec, x, sets, set_mask=None):
    y, info = ops.equilibrium_aggregation(
        params, x, **sets, num_steps=spec.ea_steps, gtol=spec.ea_gtol, clip=spec.ea_clip,
        grad_mode=spec.ea_grad_mode, truncate_steps=spec.ea_truncate_steps, return_info=True)
    if set_mask is None:
        def mean(v):
            return v.mean()
    else:
        def mean(v):
            return (v * set_mask).sum() / set_mask.sum()
    logs = {"ea_aux": mean(info.aux_loss), "ea_grad_max_norm": mean(info.grad_max_norm),
            "ea_active_steps": mean(info.active_steps * 1.0)}
    return y, logs


_TABLE = {
    "sum": lambda ops, p, spec, x, sets: (ops.sum_pool(x, **sets), {}),
    "mean": lambda ops, p, spec, x, sets: (ops.mean_pool(x, **sets), {}),
    "max": lambda ops, p, spec, x, sets: (ops.max_pool(x, **sets), {}),
    "mha": lambda ops, p, spec, x, sets: (ops.attention_pool(p, x, **sets), {}),
    "pna": lambda ops, p, spec, x, sets: (ops.pna_pool(p, x, **sets, delta=spec.pna_delta), {}),
    "ea": _ea,
}


def readout(ops, params, prefix, spec: ReadoutSpec, x, mask=None, *, index=None,
            num_sets=None, set_mask=None):
    """Aggregate every set of ``x`` with readout ``{prefix}`` of ``spec``.

    Args:
        ops: a setwise backend module (``setwise.reference``, ``setwise.torch_backend``,
            ``setwise.jax_backend``).
        params: the model's flat mapping (the readout reads its ``{prefix}_`` entries).
        x: ``[num_sets, max_size, in_dim]`` with ``mask [num_sets, max_size]``, or
            ``[num_elements, in_dim]`` with ``index [num_elements]`` and ``num_sets``.
        set_mask: ``[num_sets]`` bool, the sets EA's logs average over (padding sets of a
            fixed-shape batch left out); all sets when None.

    Returns:
        ``(y [num_sets, spec.width], logs)``; ``logs`` holds EA's diagnostics (see the module
        docstring) and is empty for the other readouts.
    """
    sets = {"mask": mask} if index is None else {"index": index, "num_sets": num_sets}
    if spec.kind == "ea":
        return _ea(ops, own_params(params, prefix), spec, x, sets, set_mask)
    return _TABLE[spec.kind](ops, own_params(params, prefix), spec, x, sets)


def init_readout_params(seed, prefix, spec: ReadoutSpec, dtype="float32") -> dict:
    """Only readout ``{prefix}``'s parameters, from ``seed`` (tests, benchmarks)."""
    params: dict[str, np.ndarray] = {}
    init_readout(np.random.default_rng(seed), params, prefix, spec, dtype)
    return params
