"""The median model, described and initialised once: ``head(readout(encoder(x)))``.

Paper 1 section 5.1: Sum / MHA / PNA pooling encode each number with a residual MLP of layer
sizes ``[width, width, D]`` (LayerNorm on hidden layers, ReLU), pool, and predict with a head
``[D, head_width, 1]``; Equilibrium Aggregation encodes and aggregates at once (its potential
``[width, width, 1]`` sees the raw numbers), so it has no encoder. Square loss, plus EA's
auxiliary loss (eq. 5) times ``ea_aux_weight``.

Parameter layout (flat names; see :mod:`setwise.tasks.layers`): MLP ``encoder`` (not for
EA), readout ``agg`` (the operator's own names behind ``agg_``), MLP ``head``. They are drawn
in that order from ``default_rng(seed)``.

:class:`MedianModel` is the model of :class:`setwise.tasks.protocol.Model`, written once over
a backend's layer functions; :mod:`.torch_model` and :mod:`.jax_model` build it with theirs,
and :func:`reference_forward` runs it in NumPy with the reference operators (the ground truth
of the backends' models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from setwise.reference import pna_delta
from setwise.tasks.layers import mlp as np_mlp
from setwise.tasks.layers import readout as np_readout
from setwise.tasks.layers.mlp import MLPSpec, init_mlp
from setwise.tasks.layers.readout import ReadoutSpec, init_readout

AGGREGATORS = ("ea", "sum", "mha", "pna")


@dataclass(frozen=True)
class MedianSpec:
    """Sizes of the median model.

    Attributes:
        encoder: element encoder ``1 -> D`` (unused by EA).
        readout: the aggregator ``[num_sets, set_size, in] -> [num_sets, D]``.
        head: output network ``D -> 1``.
        ea_aux_weight: weight of EA's auxiliary loss in the training loss.
    """

    encoder: MLPSpec
    readout: ReadoutSpec
    head: MLPSpec
    ea_aux_weight: float = 0.0

    @property
    def has_encoder(self) -> bool:
        return self.readout.kind != "ea"


def spec(config: Mapping) -> MedianSpec:
    """The model of a resolved median configuration."""
    width, dim, agg = int(config["width"]), int(config["dim"]), config["aggregator"]
    if agg not in AGGREGATORS:
        raise ValueError(f"median model: aggregator is {agg!r}; expected one of "
                         f"{', '.join(map(repr, AGGREGATORS))}")
    clip = config["ea_clip"]
    readout = ReadoutSpec(
        agg, in_dim=1 if agg == "ea" else dim, out_dim=dim,
        num_heads=min(int(config["num_heads"]), dim),
        pna_delta=float(pna_delta((int(config["set_size"]),))),
        ea_hidden=(width, width, 1), ea_steps=int(config["ea_steps"]),
        ea_step_size=float(config["ea_step_size"]),
        ea_clip=float(clip) if clip else None, ea_grad_mode=config["ea_grad_mode"],
        ea_truncate_steps=(min(int(config["ea_truncate_steps"]), int(config["ea_steps"]))
                           if config["ea_grad_mode"] == "truncated" else None))
    return MedianSpec(
        encoder=MLPSpec((width, width, dim), "relu", normalize=True, residual=True),
        readout=readout, head=MLPSpec((dim, int(config["head_width"]), 1), "relu"),
        ea_aux_weight=float(config["ea_aux_weight"]))


def init_params(model: MedianSpec, seed: int, dtype="float32") -> dict[str, np.ndarray]:
    """All parameters: ``encoder_*`` (not for EA), ``agg_*``, ``head_*``. Truncated-normal
    ``1/sqrt(fan_in)`` weights, zero biases (:func:`setwise.reference.nn.init_linear`)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    if model.has_encoder:
        init_mlp(rng, params, "encoder", 1, model.encoder, dtype)
    init_readout(rng, params, "agg", model.readout, dtype)
    init_mlp(rng, params, "head", model.readout.width, model.head, dtype)
    return params


class MedianModel:
    """The median regressor on one backend's layer functions.

    Args:
        model: the sizes.
        mlp: the backend's MLP family module (``layers.mlp``, ``layers.torch.mlp``,
            ``layers.jax.mlp``): its ``mlp(params, prefix, spec, x)`` is called.
        readout: the backend's ``readout(params, prefix, spec, x, mask)``.
    """

    def __init__(self, model: MedianSpec, mlp: ModuleType, readout: Callable):
        self.spec = model
        self._mlp = mlp.mlp
        self._readout = readout

    def forward(self, params, x, mask):
        """``(prediction [num_sets], readout logs)`` of ``x [num_sets, set_size, 1]``."""
        h = self._mlp(params, "encoder", self.spec.encoder, x) if self.spec.has_encoder else x
        y, logs = self._readout(params, "agg", self.spec.readout, h, mask)
        return self._mlp(params, "head", self.spec.head, y)[:, 0], logs

    def loss(self, params, state, batch, rng, train):
        """Square loss ``mse`` plus ``ea_aux_weight * ea_aux`` (EA); logs EA's diagnostics."""
        pred, logs = self.forward(params, batch["x"], batch["mask"])
        mse = ((pred - batch["y"]) ** 2).mean()
        total = mse
        if "ea_aux" in logs:
            aux = self.spec.ea_aux_weight * logs["ea_aux"]
            total = total + aux
            logs = {**logs, "ea_aux_share": aux / total}
        return total, {"mse": mse, **logs}, state

    def predict(self, params, state, batch, rng):
        return {"y": self.forward(params, batch["x"], batch["mask"])[0]}


def numpy_model(model: MedianSpec) -> MedianModel:
    """The model in NumPy with :mod:`setwise.reference`'s operators."""
    import setwise.reference as ref

    def readout(params, prefix, spec, x, mask):
        return np_readout.readout(ref, params, prefix, spec, x, mask)

    return MedianModel(model, np_mlp, readout)


def reference_forward(model: MedianSpec, params: Mapping, x, mask) -> np.ndarray:
    """The predictions ``[num_sets]`` in NumPy (float64 in, float64 out)."""
    return numpy_model(model).forward(params, x, mask)[0]
