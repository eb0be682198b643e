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
    ("num_steps", "equilibrium_aggregation", lambda r: (ea_params(r), X, M), {"num_steps": 0},
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
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(backend, ref, case):
    _, op, build, kwargs, exc, words = case
    with pytest.raises(exc) as err:
        call(backend, op, *build(ref), **kwargs)
    message = str(err.value)
    for word in words:
        assert word in message, f"{op}: message {message!r} lacks {word!r}"
