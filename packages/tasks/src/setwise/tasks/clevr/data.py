"""CLEVR batches for DSPN's two tasks, each a pure function of ``(seed, step)``.

A batch is ``{"image": [B, S, S, 3] float32 in [0, 1], "x": [B, 10, C] float32, "mask":
[B, 10] bool}``: the image at ``S x S`` pixels, its objects' targets (``C = 4`` box numbers
or ``C = 18`` state numbers, :mod:`setwise.tasks.datasets.clevr`) in the scene's order,
padded with zeros to 10, and which rows are objects.

Sources (``--source``):

- ``synthetic`` (the CPU default): scenes the NumPy renderer
  (:mod:`setwise.tasks.datasets.clevr_render`) writes in CLEVR v1.0's layout into the cache
  (``<cache>/clevr_synthetic/``), rendered on first use, then read by the same loader as
  CLEVR. Every result on it is labelled "synthetic CLEVR-like".
- ``clevr``: CLEVR v1.0 under ``<data_dir>/CLEVR_v1.0`` (the ``paper`` preset).

Notes:
    DSPN iterates over shuffled epochs of CLEVR's training split; here training step ``s``
    draws ``batch_size`` distinct images of the first ``train_size`` with
    ``default_rng([seed, s])``, so a resumed run sees the same batches without replaying
    epochs. Evaluation uses the first ``eval_size`` images of ``val`` (DSPN: the first tenth
    of ``val``, 1500 images, unless ``--full-eval``). The loader keeps 128 x 128 images
    (DSPN's size); a smaller ``image_size`` (a divisor of 128) averages ``f x f`` pixel blocks.
"""

from __future__ import annotations

import functools

import numpy as np

from setwise.tasks.datasets import clevr as clevr_data
from setwise.tasks.datasets import clevr_render

SOURCES = ("synthetic", "clevr")
TARGETS = ("boxes", "state")
#: Channels of one object's target.
TARGET_DIMS = {"boxes": clevr_data.BOX_DIM, "state": clevr_data.STATE_DIM}


def check_image_size(size: int) -> int:
    """``size`` if it divides CLEVR's 128 (16, 32, 64, 128), else ValueError."""
    if size < 1 or clevr_data.IMAGE_SIZE % size:
        raise ValueError(f"clevr: image_size is {size!r}; expected a divisor of "
                         f"{clevr_data.IMAGE_SIZE} (16, 32, 64 or 128)")
    return size


@functools.lru_cache(maxsize=8)
def load(split: str, source: str, data_dir: str | None = None, num_train: int = 1000,
         num_val: int = 200, render_seed: int = 0) -> clevr_data.ClevrScenes:
    """The scenes of ``split`` (``"train"`` / ``"val"``), read once per process.

    ``source="synthetic"``: :func:`setwise.tasks.datasets.clevr_render.synthetic_root` of
    ``num_train`` / ``num_val`` scenes drawn from ``render_seed`` (rendered on first use).
    """
    if source == "synthetic":
        root = clevr_render.synthetic_root(None, int(num_train), int(num_val),
                                           int(render_seed), progress=False)
    elif source == "clevr":
        root = clevr_data.clevr_root(data_dir or None)
    else:
        raise ValueError(f"clevr: source is {source!r}; expected one of {SOURCES}")
    return clevr_data.load_clevr(split, root=root, progress=False)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """``[B, 128, 128, 3]`` uint8 -> ``[B, size, size, 3]`` float32 in ``[0, 1]``: the mean
    of each ``f x f`` block, ``f = 128 / size``."""
    f = clevr_data.IMAGE_SIZE // check_image_size(size)
    x = np.asarray(images, np.float32) / np.float32(255)
    if f == 1:
        return x
    b = x.shape[0]
    return x.reshape(b, size, f, size, f, 3).mean((2, 4), dtype=np.float32)


def make_batch(scenes: clevr_data.ClevrScenes, indices, target: str,
               image_size: int) -> dict[str, np.ndarray]:
    """The scenes ``indices``: image, target set and mask (module docstring)."""
    if target not in TARGETS:
        raise ValueError(f"clevr: target is {target!r}; expected one of {TARGETS}")
    indices = np.asarray(indices, np.int64)
    x = scenes.boxes if target == "boxes" else scenes.state
    return {"image": resize(scenes.images[indices], image_size),
            "x": np.ascontiguousarray(x[indices], np.float32),
            "mask": np.ascontiguousarray(scenes.mask[indices])}


def train_batch(config, step: int) -> dict[str, np.ndarray]:
    """Training batch of ``step``: ``batch_size`` distinct scenes of the first
    ``train_size`` training scenes, drawn with ``default_rng([seed, step])``."""
    scenes = load("train", *source_args(config))
    size = min(int(config["train_size"]), len(scenes))
    batch_size = int(config["batch_size"])
    if batch_size > size:
        raise ValueError(f"clevr: batch_size={batch_size} is larger than the {size} training "
                         "scenes (train_size / num_train)")
    rng = np.random.default_rng([int(config["seed"]), int(step)])
    return make_batch(scenes, rng.choice(size, batch_size, replace=False), config["target"],
                      int(config["image_size"]))


def eval_batches(config) -> list[dict[str, np.ndarray]]:
    """The first ``eval_size`` ``val`` scenes in batches of ``eval_batch_size``."""
    scenes = load("val", *source_args(config))
    size = min(int(config["eval_size"]), len(scenes))
    step = int(config["eval_batch_size"])
    return [make_batch(scenes, np.arange(start, min(start + step, size)), config["target"],
                       int(config["image_size"])) for start in range(0, size, step)]


def source_args(config) -> tuple:
    """``load``'s ``(source, data_dir, num_train, num_val, render_seed)`` of a configuration."""
    return (config["source"], config["data_dir"] or None, int(config["num_train"]),
            int(config["num_val"]), int(config["render_seed"]))
