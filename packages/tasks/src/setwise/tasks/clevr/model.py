"""DSPN on CLEVR (Zhang et al. 2019, as paper 2 section 5.2 uses it) with a swappable set
creator: ``DSPN(creator(enc_img(image)))``, one model for both targets.

- **Image encoder** (DSPN's ``ConvEncoder``): a ResNet34 feature extractor (torchvision's
  ``resnet34`` without ``avgpool``/``fc``; :func:`setwise.tasks.layers.resnet.resnet34`), then
  DSPN's head: a ``3x3`` stride-2 convolution with batch norm (``128 -> 4 -> 2`` pixels), and
  a linear map of the flattened ``2 x 2`` map to the latent ``z`` (DSPN's ``2x2`` valid
  convolution). ``z`` is DSPN's target representation.
- **Set encoder** (DSPN's ``RNFSEncoder``): every ordered pair of slots ``(i, j)`` of
  ``[x, m]`` (the presence is a feature) goes through a ReLU MLP ``[hidden, latent]``,
  divided by ``N^2``, then FSPool (:mod:`setwise.tasks.layers.dspn`, 20 pieces) over the
  ``N^2`` pairs.
- **Creator**: the initial set ``X^0 [B, 10, C + 1]`` (the object's ``C`` numbers and its
  presence) from ``z`` by Top-n, First-n, i.i.d. or MLP (the backends' ``create_set``), plus
  0.5 (DSPN's ``U[0, 1]`` start and presence 0.5).
- **DSPN**: ``dspn_steps`` inner steps (10) of size ``dspn_step_size`` on the representation
  loss ``||enc_set(X, m) - z||`` (:func:`~setwise.tasks.layers.torch.dspn.dspn_refine`),
  ``dspn_eval_steps`` (30) at evaluation.
- **Loss** (DSPN's ``train.py`` for CLEVR: ``--loss hungarian --huber-repr 0.1
  --mask-feature``): the Hungarian loss between the last inner step's ``[X, m]`` and the
  target ``[x, mask]`` (padding rows are zeros with presence 0), the cost of a pair being
  ``mean_c smooth_l1``, matched by ``scipy.optimize.linear_sum_assignment`` on that cost,
  averaged over the 10 pairs and the batch; plus ``repr_weight * mean smooth_l1(enc_set(x,
  mask) - z)`` (0.1), which trains the image encoder towards the set encoder of the target
  and back.

Layout of the flat parameters: ``enc_stem_*``, ``enc_{stage}_{block}_*`` (the ResNet34,
:mod:`setwise.tasks.layers.resnet`), ``enc_end_*`` (head convolution + batch norm),
``enc_out_w/b`` (head linear), ``set_mlp_{0,1}_w/b`` and ``set_pool_w`` (the RN set
encoder), ``create_*`` (the creator's own names). State: the batch-norm running statistics of
``enc_*``.

Notes:
    - DSPN initialises every linear and convolution with Xavier-uniform; here the layer
      families' truncated normal ``1 / sqrt(fan_in)`` (or torchvision's weights with
      ``--encoder-weights``). DSPN's head convolution has a bias before its batch norm
      (redundant); here it has none. DSPN's ``RNFSEncoder`` builds an unused linear layer
      (``self.lin``); it is left out.
    - The creator is the Top-n authors' change to DSPN; their code creates ``C`` channels and
      keeps DSPN's learnt presence 0.5 apart from it, here the creator makes the presence too
      (as in the SetMNIST task), so Top-n selects a presence with each object; Top-n's
      reference set has ``2 N = 20`` points (appendix D.1). i.i.d.: normal noise mapped by
      ``E W_e + z W_z`` (the backends' ``iid_creation``), drawn from the step's ``rng``
      (the Top-n code: ``U[0, 1]`` noise, no ``z``).
    - DSPN's inner loss is a mean over the batch; here a sum over sets and a mean over the
      latent, so a set's refinement does not depend on its companions: DSPN's inner step 800
      at batch 32 is ``800 / 32 = 25`` here (:mod:`setwise.tasks.layers.dspn`).
    - The image side is ``image_size`` (CLEVR: 128) and the ResNet's width and blocks are
      options, for a CPU budget; ``stem="small"`` replaces the ImageNet stem by one ``3x3``
      stride-1 convolution for small images.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from setwise.reference import init_creation
from setwise.tasks.clevr.data import TARGET_DIMS, check_image_size
from setwise.tasks.datasets.clevr import MAX_OBJECTS
from setwise.tasks.layers import mlp as mlp_layers
from setwise.tasks.layers import resnet as resnet_layers
from setwise.tasks.layers.resnet import ImageResNetSpec, conv_norm

CREATORS = ("top_n", "first_n", "iid", "mlp")


@dataclass(frozen=True)
class ClevrSpec:
    """Sizes of the CLEVR model (see the module docstring).

    Attributes:
        target: ``"boxes"`` (4 numbers per object) or ``"state"`` (18).
        creator: one of :data:`CREATORS`.
        encoder: the image ResNet (paper: ResNet34, width 64, blocks ``(3, 4, 6, 3)``).
        image_size: input images are ``image_size`` squared (128).
        latent: ``z``'s size (DSPN: 512).
        set_hidden: the RN set encoder's hidden width (DSPN: 512).
        n_pieces: FSPool pieces (20).
        creator_hidden: hidden width of Top-n's angle MLP and the MLP creator.
        dspn_steps / dspn_eval_steps / dspn_step_size: DSPN's inner loop.
        repr_weight: weight of the representation loss (DSPN's ``--huber-repr 0.1``).
        max_objects: slots of the predicted set (10).
    """

    target: str
    creator: str
    encoder: ImageResNetSpec
    image_size: int
    latent: int
    set_hidden: int
    n_pieces: int = 20
    creator_hidden: int = 64
    dspn_steps: int = 10
    dspn_eval_steps: int = 30
    dspn_step_size: float = 25.0
    repr_weight: float = 0.1
    max_objects: int = MAX_OBJECTS

    def __post_init__(self):
        if self.target not in TARGET_DIMS:
            raise ValueError(f"clevr model: target is {self.target!r}; expected one of "
                             f"{tuple(TARGET_DIMS)}")
        if self.creator not in CREATORS:
            raise ValueError(f"clevr model: creator is {self.creator!r}; expected one of "
                             f"{CREATORS}")
        check_image_size(self.image_size)

    @property
    def set_dim(self) -> int:
        """``C``: numbers per object (4 or 18)."""
        return TARGET_DIMS[self.target]

    @property
    def num_points(self) -> int:
        """The creator's reference size: ``n0 = 2 N`` for Top-n, ``N`` otherwise."""
        return 2 * self.max_objects if self.creator == "top_n" else self.max_objects

    @property
    def head_size(self) -> int:
        """Spatial side after the head convolution (``128 -> 2`` for ResNet34)."""
        return resnet_layers.conv_out_size(self.encoder.out_size(self.image_size), 3, 2)

    @property
    def set_mlp(self) -> mlp_layers.MLPSpec:
        return mlp_layers.MLPSpec((self.set_hidden, self.latent), "relu")


def init_params_and_state(spec: ClevrSpec, seed: int, dtype="float32", encoder_weights=""):
    """``(params, state)`` drawn from ``default_rng(seed)`` in the order ``enc`` (ResNet),
    ``enc_end``, ``enc_out``, ``set``, ``create``; ``encoder_weights`` (a torchvision
    ResNet34 ``state_dict`` file) then replaces the ResNet's parameters and statistics."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    enc = spec.encoder
    resnet_layers.init_image_resnet(rng, params, state, "enc", 3, enc, dtype)
    resnet_layers.init_conv_norm(rng, params, state, "enc_end", enc.channels, enc.channels, 3,
                                 enc.body.norm, dtype)
    mlp_layers.init_linear(rng, params, "enc_out", spec.head_size ** 2 * enc.channels,
                           spec.latent, dtype)
    mlp_layers.init_mlp(rng, params, "set_mlp", 2 * (spec.set_dim + 1), spec.set_mlp, dtype)
    params["set_pool_w"] = rng.standard_normal((spec.latent, spec.n_pieces + 1)).astype(dtype)
    kwargs = {"hidden": (spec.creator_hidden,)} if spec.creator in ("top_n", "mlp") else {}
    creator = init_creation(spec.creator, rng, spec.latent, spec.set_dim + 1, spec.num_points,
                            dtype=dtype, **kwargs)
    params.update({f"create_{k}": np.asarray(v) for k, v in creator.items()})
    if encoder_weights:
        resnet_layers.from_torchvision(torchvision_state_dict(encoder_weights), "enc", enc,
                                       params, state)
    return params, state


@functools.lru_cache(maxsize=2)
def torchvision_state_dict(path: str) -> dict[str, np.ndarray]:
    """A torchvision ResNet ``state_dict`` file as NumPy arrays (``torch.load(path,
    map_location="cpu", weights_only=True)``; torch is imported here only)."""
    import torch

    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(loaded, Mapping):
        raise ValueError(f"clevr --encoder-weights: {path} holds a {type(loaded).__name__}; "
                         "expected a state_dict (a dict of tensors by torchvision's names)")
    return {k: v.detach().cpu().numpy() for k, v in loaded.items()}


@dataclass(frozen=True)
class Backend:
    """What :class:`ClevrModel` needs of a backend: its layer families, ``create_set`` and a
    few array functions (torch and JAX spell them differently)."""

    mlp: SimpleNamespace        # layers.<backend>.mlp
    dspn: SimpleNamespace       # layers.<backend>.dspn
    resnet: SimpleNamespace     # layers.<backend>.resnet
    create_set: Callable
    concat: Callable            # (arrays, axis)
    broadcast_to: Callable      # (array, shape)
    smooth_l1: Callable         # elementwise Huber, threshold 1
    assign: Callable            # cost [B, N, N] -> [B, N] column of each row (no gradient)
    gather: Callable            # (a [B, N, N], index [B, N]) -> a[b, i, index[b, i]]
    cast: Callable              # (array, like) -> array of like's dtype


class ClevrModel:
    """DSPN with a creator on CLEVR images (the protocol's ``Model``; holds no parameters)."""

    def __init__(self, spec: ClevrSpec, backend: Backend):
        self.spec = spec
        self.b = backend

    def encode_image(self, params, state, image, train):
        """``(z [B, latent], new_state)`` of ``image [B, S, S, 3]``."""
        b, enc = self.b, self.spec.encoder
        h, new_state = b.resnet.image_resnet(params, state, "enc", enc, image, train)
        h = conv_norm(b.resnet, params, state, "enc_end", h, 2, train, new_state)
        return b.mlp.linear(params, "enc_out", h.reshape(h.shape[0], -1)), new_state

    def encode_set(self, params, x, m):
        """DSPN's ``RNFSEncoder`` of ``x [B, N, C]`` with presence ``m [B, N]``: ``[B,
        latent]``."""
        b = self.b
        h = b.concat([x, m[..., None]], -1)
        num_sets, n, c = h.shape
        pairs = b.concat([b.broadcast_to(h[:, :, None, :], (num_sets, n, n, c)),
                          b.broadcast_to(h[:, None, :, :], (num_sets, n, n, c))], -1)
        y = b.mlp.mlp(params, "set_mlp", self.spec.set_mlp, pairs.reshape(num_sets, n * n, 2 * c))
        return b.dspn.fspool(params, "set", y / (n * n))

    def create(self, params, z, rng):
        """The initial set ``X^0 [B, N, C + 1]`` (object numbers and presence), ``+ 0.5``."""
        spec, b = self.spec, self.b
        p = {k[len("create_"):]: v for k, v in params.items() if k.startswith("create_")}
        n = spec.max_objects
        if spec.creator == "iid":
            noise = b.cast(rng.normal((z.shape[0], n, p["noise_w"].shape[0])), z)
            x0 = noise @ p["noise_w"] + (z @ p["z_w"])[:, None]
        else:
            x0, _ = b.create_set(spec.creator, p, z, n, max_n=n)
        return x0 + 0.5

    def forward(self, params, state, image, rng, train):
        """``(sets, masks, info, z, new_state)``: DSPN's ``T + 1`` sets and presences."""
        spec = self.spec
        z, new_state = self.encode_image(params, state, image, train)
        x0 = self.create(params, z, rng)
        steps = spec.dspn_steps if train else spec.dspn_eval_steps
        sets, masks, info = self.b.dspn.dspn_refine(
            lambda s, m: self.encode_set(params, s, m), z, x0[..., :spec.set_dim],
            x0[..., spec.set_dim], num_steps=steps, step_size=spec.dspn_step_size,
            differentiable=train)
        return sets, masks, info, z, new_state

    def hungarian(self, pred, target):
        """DSPN's Hungarian loss per set: ``mean_i cost[i, pi(i)]`` with ``cost[i, j] =
        mean_c smooth_l1(pred_i - target_j)`` and ``pi`` its optimal assignment."""
        b = self.b
        cost = b.smooth_l1(pred[:, :, None, :] - target[:, None, :, :]).mean(-1)
        return b.gather(cost, b.assign(cost)).mean(-1)

    def loss(self, params, state, batch, rng, train):
        b = self.b
        x, mask = batch["x"], batch["mask"]
        m = b.cast(mask, x)
        sets, masks, info, z, new_state = self.forward(params, state, batch["image"], rng, train)
        target = b.concat([x, m[..., None]], -1)
        pred = b.concat([sets[-1], masks[-1][..., None]], -1)
        set_loss = self.hungarian(pred, target).mean()
        repr_loss = b.smooth_l1(self.encode_set(params, x, m) - z).mean()
        logs = {"set_loss": set_loss, "repr_loss": repr_loss}
        if info["repr_loss"].shape[0]:
            logs.update(inner_loss_first=info["repr_loss"][0],
                        inner_loss_last=info["repr_loss"][-1])
        total = set_loss + self.spec.repr_weight * repr_loss
        return total, logs, (new_state if train else state)

    def predict(self, params, state, batch, rng):
        """``objects [B, 10, C]`` and ``presence [B, 10]`` after ``dspn_eval_steps`` steps."""
        sets, masks, _, _, _ = self.forward(params, state, batch["image"], rng, False)
        return {"objects": sets[-1], "presence": masks[-1]}


def spec_from_config(config: Mapping) -> ClevrSpec:
    """The model of a resolved ``clevr`` configuration."""
    encoder = resnet_layers.resnet34(int(config["width"]),
                                     tuple(int(k) for k in config["blocks"]), config["stem"])
    return ClevrSpec(
        target=config["target"], creator=config["creator"], encoder=encoder,
        image_size=int(config["image_size"]), latent=int(config["latent"]),
        set_hidden=int(config["set_hidden"]), n_pieces=int(config["n_pieces"]),
        creator_hidden=int(config["creator_hidden"]), dspn_steps=int(config["dspn_steps"]),
        dspn_eval_steps=int(config["dspn_eval_steps"]),
        dspn_step_size=float(config["dspn_step_size"]),
        repr_weight=float(config["repr_weight"]))
