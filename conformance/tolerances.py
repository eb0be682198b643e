"""The one tolerance table of setwise: every numerical comparison in the suite reads it.

Keys are ``(quantity, dtype)``, optionally refined by op: ``(op, quantity, dtype)`` wins over
``(quantity, dtype)``. Values are ``(rtol, atol)`` for ``|a - b| <= atol + rtol * |b|``, with
``b`` the float64 reference. README.md reproduces this table; keep the two in step.
"""

TOLERANCES = {
    # backend values against the float64 reference
    ("value", "float64"): (1e-9, 1e-10),
    ("value", "float32"): (2e-4, 2e-5),
    # EA runs T dependent steps: float32 rounding is amplified by the solver's Jacobian
    ("equilibrium_aggregation", "value", "float32"): (2e-3, 2e-4),
    ("sinkhorn_loss", "value", "float32"): (2e-3, 2e-4),
    # gradients: backends against each other and against finite differences of the reference
    ("grad", "float64"): (1e-6, 1e-8),
    ("grad", "float32"): (5e-3, 5e-4),
    # analytic grad_y against central finite differences (h = 1e-6), float64
    ("finite_difference", "float64"): (1e-5, 1e-6),
    # invariances (element order, padding, batch companions): only summation order differs
    ("invariance", "float64"): (1e-10, 1e-11),
    ("invariance", "float32"): (1e-4, 1e-5),
    # whole task models (conformance/test_task_models.py), float64: permuted / padded / split
    # batches through unrolled EA and DSPN loops; measured <= 6e-15 scaled on every task,
    # a broken model >= 1e-3
    ("task_model", "float64"): (1e-9, 1e-10),
}

# EA with a closed-form potential against the closed form (float64), after enough steps with a
# suitable step size (conformance/test_closed_forms.py gives both). Absolute tolerances.
CLOSED_FORM_ATOL = {
    "quadratic": 1e-9,   # mean: a strongly convex quadratic, converges to round-off
    "linear": 1e-9,      # sum (with regulariser y^2/2)
    "power_sum": 1e-7,   # power sums: convex quadratic, slow for the largest sets
    "attention": 1e-7,   # attention pooling: convex quadratic in [y_r, y_s]
    "absolute": 2e-2,    # median: subgradient steps oscillate around the kink (step 1e-3)
    "hinge": 2e-2,       # max: stops one (small) step above the max once the gradient is 0
}


def tolerance(quantity: str, dtype: str, op: str | None = None) -> tuple[float, float]:
    """``(rtol, atol)`` for ``quantity`` at ``dtype`` (``op`` picks an override if any)."""
    if op is not None and (op, quantity, dtype) in TOLERANCES:
        return TOLERANCES[(op, quantity, dtype)]
    return TOLERANCES[(quantity, dtype)]
