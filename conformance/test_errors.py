"""Property 7: bad input gets a clear error naming the op and the argument, never a NaN.

Every case runs on every backend: the validation layer is shared."""

import numpy as np
import pytest

P = dict(seed=0, dim=2, out=3)


def ea_params(ref):
    return ref.init_equilibrium_aggregation(0, 2, 3, hidden=(4, 3), dtype="float64")


def call(B, name, *args, **kwargs):
    conv = lambda a: (B.convert_params(a) if isinstance(a, dict)  # noqa: E731
                      else B.asarray(a) if isinstance(a, np.ndarray) else a)
    return getattr(B, name)(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})


X = np.ones((2, 3, 2))
M = np.ones((2, 3), bool)
CASES = [
    # (id, op, args builder(ref), kwargs, exception, words the message must hold)
    ("rank", "sum_pool", lambda r: (np.ones((2, 3, 2, 1)),), {}, ValueError, ["sum_pool", "'x'"]),
    ("mask shape", "mean_pool", lambda r: (X, np.ones((2, 4), bool)), {}, ValueError,
     ["mean_pool", "'mask'", "(2, 3)"]),
    ("mask dtype", "max_pool", lambda r: (X, np.ones((2, 3))), {}, TypeError,
     ["max_pool", "'mask'", "bool"]),
    ("int x", "sum_pool", lambda r: (np.ones((2, 3, 2), np.int64),), {}, TypeError,
     ["sum_pool", "'x'", "float"]),
    ("nan", "equilibrium_aggregation", lambda r: (ea_params(r), np.full((2, 3, 2), np.nan), M),
     {}, ValueError, ["equilibrium_aggregation", "'x'", "NaN"]),
    ("inf", "sum_pool", lambda r: (np.array([[np.inf, 0.0]]),),
     {"index": np.array([0]), "num_sets": 1}, ValueError, ["sum_pool", "'x'", "Inf"]),
    ("index range", "sum_pool", lambda r: (np.ones((3, 2)),),
     {"index": np.array([0, 1, 5]), "num_sets": 2}, ValueError, ["sum_pool", "'index'", "[0, 2)"]),
    ("index length", "mean_pool", lambda r: (np.ones((3, 2)),),
     {"index": np.array([0, 1]), "num_sets": 2}, ValueError,
     ["mean_pool", "'index'", "[num_elements]"]),
    ("index dtype", "mean_pool", lambda r: (np.ones((3, 2)),),
     {"index": np.array([0.0, 1.0, 1.0]), "num_sets": 2}, TypeError,
     ["mean_pool", "'index'", "integer"]),
    ("num_sets missing", "sum_pool", lambda r: (np.ones((3, 2)),), {"index": np.array([0, 1, 1])},
     ValueError, ["sum_pool", "'num_sets'"]),
    ("bad ptr", "sum_pool", lambda r: (np.ones((3, 2)),), {"ptr": np.array([0, 2, 1])},
     ValueError, ["sum_pool", "'ptr'"]),
    ("ea dim", "equilibrium_aggregation", lambda r: (ea_params(r), np.ones((2, 3, 5)), M), {},
     ValueError, ["equilibrium_aggregation", "'x'"]),
    ("num_steps", "equilibrium_aggregation", lambda r: (ea_params(r), X, M), {"num_steps": -1},
     ValueError, ["equilibrium_aggregation", "'num_steps'"]),
    ("grad_mode", "equilibrium_aggregation", lambda r: (ea_params(r), X, M), {"grad_mode": "x"},
     ValueError, ["equilibrium_aggregation", "'grad_mode'", "'implicit'"]),
    ("potential", "equilibrium_aggregation", lambda r: (ea_params(r), X, M), {"potential": "x"},
     ValueError, ["equilibrium_aggregation", "'potential'", "'residual'"]),
    ("missing param", "equilibrium_aggregation",
     lambda r: ({k: v for k, v in ea_params(r).items() if k != "step_size_raw"}, X, M), {},
     KeyError, ["equilibrium_aggregation", "step_size_raw"]),
    ("n > n0", "top_n_creation",
     lambda r: (r.init_top_n_creation(0, 4, 2, 5, dtype="float64"), np.ones((2, 4)), 6), {},
     ValueError, ["top_n_creation", "'n'", "n0", "5"]),
    ("negative n", "top_n_creation",
     lambda r: (r.init_top_n_creation(0, 4, 2, 5, dtype="float64"), np.ones((2, 4)),
                np.array([1, -1])), {}, ValueError, ["top_n_creation", "'n'"]),
    ("n count", "first_n_creation",
     lambda r: (r.init_first_n_creation(0, 4, 2, 5, dtype="float64"), np.ones((2, 4)),
                np.array([1, 2, 3])), {}, ValueError, ["first_n_creation", "'n'"]),
    ("z nan", "top_n_creation",
     lambda r: (r.init_top_n_creation(0, 4, 2, 5, dtype="float64"), np.full((2, 4), np.nan), 2),
     {}, ValueError, ["top_n_creation", "'z'", "NaN"]),
    ("loss shapes", "chamfer_loss", lambda r: (np.ones((2, 3, 2)), np.ones((3, 3, 2))), {},
     ValueError, ["chamfer_loss", "'y'"]),
    ("loss nan", "hungarian_loss", lambda r: (np.ones((2, 3, 2)), np.full((2, 3, 2), np.nan)), {},
     ValueError, ["hungarian_loss", "'y'", "NaN"]),
    # issue 12: widths against the parameters, the whole mapping, silent NaN
    ("ea x width", "equilibrium_aggregation",
     lambda r: (wide_ea(r), np.ones((2, 3, 2)), M), {"out_dim": 8}, ValueError,
     ["equilibrium_aggregation", "'x'", "dim 2", "3"]),
    ("ea x width 0", "equilibrium_aggregation",
     lambda r: (wide_ea(r), np.ones((2, 3, 0)), M), {"out_dim": 8}, ValueError,
     ["equilibrium_aggregation", "'x'", "dim 0"]),
    ("ea deep missing", "equilibrium_aggregation",
     lambda r: (drop(ea_params(r), "potential_1_b"), X, M), {}, KeyError,
     ["equilibrium_aggregation", "params['potential_1_b']", "missing"]),
    ("ea deep shape", "equilibrium_aggregation",
     lambda r: ({**ea_params(r), "potential_1_w": np.ones((3, 3))}, X, M), {}, ValueError,
     ["equilibrium_aggregation", "params['potential_1_w']", "(3, 3)", "(4, 3)"]),
    ("ea scalar shape", "equilibrium_aggregation",
     lambda r: ({**ea_params(r), "momentum_raw": np.ones(2)}, X, M), {}, ValueError,
     ["equilibrium_aggregation", "params['momentum_raw']", "()"]),
    ("ea int param", "equilibrium_aggregation",
     lambda r: ({**ea_params(r), "potential_0_b": np.zeros(4, np.int64)}, X, M), {}, TypeError,
     ["equilibrium_aggregation", "params['potential_0_b']", "int64"]),
    ("ea params list", "equilibrium_aggregation", lambda r: ([1, 2], X, M), {}, TypeError,
     ["equilibrium_aggregation", "'params'", "mapping"]),
    ("ea nan step size", "equilibrium_aggregation",
     lambda r: ({**ea_params(r), "step_size_raw": np.array(np.nan)}, X, M), {}, ValueError,
     ["equilibrium_aggregation", "params['step_size_raw']", "NaN"]),
    ("attention x width", "attention_pool",
     lambda r: (r.init_attention_pool(0, 3, 4, num_heads=2, dtype="float64"), X, M), {},
     ValueError, ["attention_pool", "'x'", "dim 2", "3"]),
    ("attention key_b", "attention_pool",
     lambda r: (drop(r.init_attention_pool(0, 2, 4, num_heads=2, dtype="float64"), "key_b"), X,
                M), {}, KeyError, ["attention_pool", "params['key_b']"]),
    ("attention value_w", "attention_pool",
     lambda r: ({**r.init_attention_pool(0, 2, 4, num_heads=2, dtype="float64"),
                 "value_w": np.ones((2, 6))}, X, M), {}, ValueError,
     ["attention_pool", "params['value_w']", "(2, 6)", "(2, 4)"]),
    ("pna x width", "pna_pool", lambda r: (r.init_pna_pool(0, 3, 2, dtype="float64"), X, M), {},
     ValueError, ["pna_pool", "'x'", "dim 2", "3"]),
    ("top_n w1", "top_n_creation",
     lambda r: ({**top_n(r), "w1": np.ones((2, 2))}, np.ones((2, 4)), 2), {}, ValueError,
     ["top_n_creation", "params['w1']", "(1, 2)"]),
    ("top_n w4", "top_n_creation",
     lambda r: ({**top_n(r), "w4": np.ones((3, 2))}, np.ones((2, 4)), 2), {}, ValueError,
     ["top_n_creation", "params['w4']", "(4, 2)"]),
    ("top_n angles vs points", "top_n_creation",
     lambda r: ({**top_n(r), "angles": np.ones((7, 4))}, np.ones((2, 4)), 2), {}, ValueError,
     ["top_n_creation", "params['angles']", "(5, 4)"]),
    ("top_n z width", "top_n_creation", lambda r: (top_n(r), np.ones((2, 3)), 2), {}, ValueError,
     ["top_n_creation", "'z'", "latent_dim 3"]),
    ("top_n mlp layer", "top_n_creation",
     lambda r: (drop(top_n(r), "angle_mlp_1_b"), np.ones((2, 4)), 2), {}, KeyError,
     ["top_n_creation", "params['angle_mlp_1_b']"]),
    ("mlp creation out_b", "mlp_creation",
     lambda r: ({**r.init_mlp_creation(0, 4, 2, 5, hidden=(3,), dtype="float64"),
                 "mlp_out_b": np.ones((4, 2))}, np.ones((2, 4)), 2), {}, ValueError,
     ["mlp_creation", "params['mlp_out_b']", "(5, 2)"]),
    ("first_n z_w", "first_n_creation",
     lambda r: ({**r.init_first_n_creation(0, 4, 2, 5, dtype="float64"),
                 "z_w": np.ones((4, 3))}, np.ones((2, 4)), 2), {}, ValueError,
     ["first_n_creation", "params['z_w']", "(4, 2)"]),
    ("sinkhorn overflow", "sinkhorn_loss",
     lambda r: (np.full((1, 2, 2), 1e20, np.float32), np.zeros((1, 2, 2), np.float32)), {},
     ValueError, ["sinkhorn_loss", "overflow", "float32"]),
    ("chamfer overflow", "chamfer_loss",
     lambda r: (np.full((1, 2, 2), 1e20, np.float32), np.zeros((1, 2, 2), np.float32)), {},
     ValueError, ["chamfer_loss", "overflow"]),
    ("pna_delta empty", "pna_delta", lambda r: ([],), {}, ValueError, ["pna_delta", "empty"]),
    ("segment_sum index", "segment_sum", lambda r: (np.ones(3), np.array([0, 1, 5]), 2), {},
     ValueError, ["segment_sum", "'index'", "[0, 2)"]),
    ("segment_sum negative", "segment_sum", lambda r: (np.ones(3), np.array([0, -1, 1]), 2), {},
     ValueError, ["segment_sum", "'index'", "[-1, 1]"]),
    ("segment_max length", "segment_max", lambda r: (np.ones(3), np.array([0, 1]), 2), {},
     ValueError, ["segment_max", "'index'"]),
    ("to_dense index", "to_dense", lambda r: (np.ones((3, 1)), np.array([0, 2, 1]), 2), {},
     ValueError, ["to_dense", "'index'", "[0, 2)"]),
    ("to_dense max_size", "to_dense", lambda r: (np.ones((3, 1)), np.array([0, 0, 1]), 2),
     {"max_size": 1}, ValueError, ["to_dense", "'max_size'", "2"]),
    ("index_from_ptr order", "index_from_ptr", lambda r: (np.array([0, 3, 1]),), {}, ValueError,
     ["index_from_ptr", "'ptr'"]),
    ("num_sets float", "sum_pool", lambda r: (np.ones((3, 2)),),
     {"index": np.array([0, 1, 1]), "num_sets": 2.0}, ValueError, ["sum_pool", "'num_sets'"]),
]


def wide_ea(ref):
    """EA parameters for elements of size 3 and aggregates of size 8."""
    return ref.init_equilibrium_aggregation(0, 3, 8, hidden=(4, 3), dtype="float64")


def drop(params, name):
    return {k: v for k, v in params.items() if k != name}


def top_n(ref):
    return ref.init_top_n_creation(0, 4, 2, 5, hidden=(3,), dtype="float64")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(backend, ref, case):
    _, op, build, kwargs, exc, words = case
    with pytest.raises(exc) as err:
        call(backend, op, *build(ref), **kwargs)
    message = str(err.value)
    for word in words:
        assert word in message, f"{op}: message {message!r} lacks {word!r}"
