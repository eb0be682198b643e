"""Implicit-mode gradients agree between PyTorch and JAX where the Hessian at ``y_T`` is
indefinite (the inner loop has not reached a minimum): both return the implicit-function-theorem
gradient ``-H^{-1}`` at ``y_T`` (issue 12)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

from setwise import jax_backend as J  # noqa: E402
from setwise import reference as R  # noqa: E402
from setwise import torch_backend as T  # noqa: E402


def _case(seed):
    rng = np.random.default_rng(seed)
    params = R.init_equilibrium_aggregation(seed, 2, 3, hidden=(16, 8, 4), dtype="float64")
    params["step_size_raw"] = np.array(-3.0)  # tiny steps: y_T is far from any minimum
    params["reg_weight_raw"] = np.array(-10.0)  # almost no convex regulariser
    for name in params:
        if name.endswith("_w"):
            params[name] = 2 * params[name]  # a more curved (non-convex) potential
    x = 3 * rng.normal(size=(6, 5, 2))
    weights = rng.normal(size=(6, 3))
    return params, x, weights


def _hessian_eigenvalues(params, x, y):
    tp = {k: torch.tensor(v) for k, v in params.items()}
    xt = torch.tensor(x)
    cols = []
    for k in range(y.shape[1]):
        def grad_k(yy, k=k):
            return T.energy_grad_y(tp, xt, yy)[:, k].sum()
        cols.append(torch.func.grad(grad_k)(torch.tensor(y)))
    hess = torch.stack(cols, 1)  # [num_sets, k, out_dim]
    return torch.linalg.eigvalsh(0.5 * (hess + hess.transpose(1, 2))).numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_implicit_gradients_agree_where_the_hessian_is_indefinite(seed):
    params, x, weights = _case(seed)
    y_t = R.equilibrium_aggregation(params, x, num_steps=2)
    eig = _hessian_eigenvalues(params, x, y_t)
    assert (eig.min(1) < 0).any(), "the case must have an indefinite Hessian at y_T"

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    loss = (T.equilibrium_aggregation(tp, torch.tensor(x), num_steps=2, grad_mode="implicit")
            * torch.tensor(weights)).sum()
    loss.backward()

    def jax_loss(p):
        y = J.equilibrium_aggregation(p, x, num_steps=2, grad_mode="implicit")
        return (y * weights).sum()

    jg = jax.grad(jax_loss)(J.convert_params(params))
    for name, value in tp.items():
        if name in ("step_size_raw", "momentum_raw"):
            continue  # no gradient in implicit mode (documented)
        np.testing.assert_allclose(np.asarray(jg[name]), value.grad.numpy(), rtol=1e-7,
                                   atol=1e-9, err_msg=name)
