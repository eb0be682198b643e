"""The aggregators every invariance / agreement property runs over, with small parameters."""

from __future__ import annotations

AGGREGATORS = ("equilibrium_aggregation", "sum_pool", "mean_pool", "max_pool", "attention_pool",
               "pna_pool")


def aggregator_case(ref, name, dim, dtype="float64"):
    """``(args, kwargs)`` so that ``B.<name>(*args, x, mask, **kwargs)`` aggregates a batch."""
    if name == "equilibrium_aggregation":
        params = ref.init_equilibrium_aggregation(3, dim, 3, hidden=(8, 6, 4), dtype=dtype)
        return (params,), {"num_steps": 4, "gtol": 0.0}
    if name == "attention_pool":
        return (ref.init_attention_pool(3, dim, 4, num_heads=2, dtype=dtype),), {}
    if name == "pna_pool":
        return (ref.init_pna_pool(3, dim, 3, dtype=dtype),), {"delta": 1.3}
    return (), {}
