"""CLEVR object sets for DSPN's two tasks (paper 2, section 5.2, as in Zhang et al. 2019).

Reads the official CLEVR v1.0 layout::

    <data_dir>/CLEVR_v1.0/images/{train,val}/CLEVR_{split}_NNNNNN.png
    <data_dir>/CLEVR_v1.0/scenes/CLEVR_{train,val}_scenes.json

and builds DSPN's targets, up to 10 objects per image with a mask:

- state: 18 numbers per object: 3-D coordinates / 3, then one-hots of material (2),
  colour (8), shape (3) and size (2), in DSPN's ``CLASSES`` order;
- box: 4 numbers ``(xmin, ymin, xmax, ymax)`` in ``[0, 1]`` image units, from DSPN's
  ``extract_bounding_boxes`` (larchen/clevr-vqa's heuristic, its quirks kept).

Images are converted to RGB and resized to 128x128 (bilinear, as DSPN's
``preprocess-images.py``), and cached as a uint8 ``.npy`` (memory-mapped) under
``<cache_dir>/clevr/``.
A folder written by :mod:`setwise.tasks.datasets.clevr_render` has the same layout and is
marked ``"synthetic": true`` in its scenes' ``info``; results on it are labelled synthetic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import CorruptDataError, MissingDataError
from setwise.tasks.datasets.sets import DenseBatch, batch_indices

ROOT = "CLEVR_v1.0"
SPLITS = ("train", "val")
URL = "https://dl.fbaipublicfiles.com/clevr/CLEVR_v1.0.zip"
CLASSES = {
    "material": ["rubber", "metal"],
    "color": ["cyan", "blue", "yellow", "purple", "red", "green", "gray", "brown"],
    "shape": ["sphere", "cube", "cylinder"],
    "size": ["large", "small"],
}
MAX_OBJECTS, IMAGE_SIZE, STATE_DIM, BOX_DIM = 10, 128, 18, 4
ORIGINAL_WIDTH, ORIGINAL_HEIGHT = 480, 320
_VERSION = "clevr-1"


def scenes_path(root, split: str) -> Path:
    return Path(root) / "scenes" / f"CLEVR_{split}_scenes.json"


def images_dir(root, split: str) -> Path:
    return Path(root) / "images" / split


def object_state(obj: dict, where: str = "") -> list[float]:
    """DSPN's ``object_to_fv``: ``3d_coords / 3`` then the four one-hots (18 numbers)."""
    features = [float(p) / 3 for p in obj["3d_coords"]]
    for key, values in CLASSES.items():
        if obj[key] not in values:
            raise CorruptDataError(where, f"{key} in {values}", repr(obj[key]))
        features += [float(obj[key] == v) for v in values]
    return features


def object_box(obj: dict, right) -> list[float]:
    """DSPN's ``extract_bounding_boxes`` for one object: ``[xmin, ymin, xmax, ymax]``.

    Notes:
        Kept as DSPN has it, including the rotation that reuses the already rotated
        ``x1`` when rotating ``y1``.
    """
    x, y, _ = obj["pixel_coords"]
    x1, y1, z1 = obj["3d_coords"]
    cos_theta, sin_theta, _ = right
    x1 = x1 * cos_theta + y1 * sin_theta
    y1 = x1 * -sin_theta + y1 * cos_theta
    height_d = 6.9 * z1 * (15 - y1) / 2.0
    height_u = width_l = width_r = height_d
    if obj["shape"] == "cylinder":
        d, h, s = 9.4 + y1, 6.4, z1
        height_u *= (s * (h / d + 1)) / ((s * (h / d + 1)) - (s * (h - s) / d))
        height_d = height_u * (h - s + d) / (h + s + d)
        width_l *= 11 / (10 + y1)
        width_r = width_l
    if obj["shape"] == "cube":
        height_u *= 1.3 * 10 / (10 + y1)
        height_d = width_l = width_r = height_u
    return [(x - width_l) / ORIGINAL_WIDTH, (y - height_d) / ORIGINAL_HEIGHT,
            (x + width_r) / ORIGINAL_WIDTH, (y + height_u) / ORIGINAL_HEIGHT]


def scene_targets(scene: dict, max_objects: int = MAX_OBJECTS, where: str = ""):
    """``(state [max_objects, 18], boxes [max_objects, 4], mask [max_objects])`` of a scene."""
    objects = scene["objects"]
    if len(objects) > max_objects:
        raise CorruptDataError(where, f"at most {max_objects} objects per scene",
                               f"{len(objects)} in image {scene.get('image_index')}")
    state = np.zeros((max_objects, STATE_DIM), np.float32)
    boxes = np.zeros((max_objects, BOX_DIM), np.float32)
    for k, obj in enumerate(objects):
        state[k] = object_state(obj, where)
        boxes[k] = object_box(obj, scene["directions"]["right"])
    return state, boxes, np.arange(max_objects) < len(objects)


def read_scenes(root, split: str) -> tuple[list[dict], dict]:
    """The ``scenes`` list and the ``info`` dict of a split's scenes JSON."""
    path = scenes_path(root, split)
    if not path.exists():
        raise MissingDataError(path, f"CLEVR's {split} scenes JSON ({ROOT} layout)",
                               f"pass download=True to fetch {URL} (18 GB) into "
                               f"{Path(root).parent}, or use the synthetic stand-in "
                               "'clevr-synthetic'")
    try:
        payload = json.loads(path.read_text())
        return payload["scenes"], payload.get("info", {})
    except (OSError, ValueError, KeyError) as error:
        raise CorruptDataError(path, "a JSON object with a 'scenes' list", str(error)) from error


def read_image(path, size: int = IMAGE_SIZE) -> np.ndarray:
    """One image -> ``[size, size, 3]`` uint8 RGB (PIL bilinear resize)."""
    from PIL import Image

    if not Path(path).exists():
        raise MissingDataError(path, "the CLEVR image named by the scenes JSON")
    try:
        with Image.open(path) as image:
            small = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except OSError as error:
        raise CorruptDataError(path, "a PNG image", str(error)) from error
    return np.asarray(small, dtype=np.uint8)


@dataclass(frozen=True)
class ClevrScenes:
    """Images and object sets of one split.

    Attributes:
        images: ``[N, 128, 128, 3]`` uint8 RGB (channels last), memory-mapped from the cache.
        state: ``[N, 10, 18]`` float32 state targets.
        boxes: ``[N, 10, 4]`` float32 box targets.
        mask: ``[N, 10]`` bool, True for real objects.
        image_index: ``[N]`` int64 CLEVR image index.
        synthetic: True when the folder was written by the synthetic renderer.
    """

    images: np.ndarray
    state: np.ndarray
    boxes: np.ndarray
    mask: np.ndarray
    image_index: np.ndarray
    synthetic: bool

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, batch_size: int, target: str = "state", seed: int = 0, epoch: int = 0,
                shuffle: bool = True,
                drop_last: bool = False) -> Iterator[tuple[np.ndarray, DenseBatch]]:
        """Yield ``(images [B, 128, 128, 3] float32 in [0, 1], DenseBatch(targets, mask))``.

        Args:
            target: ``"state"`` (18 numbers per object) or ``"box"`` (4 numbers).
        """
        if target not in ("state", "box"):
            raise ValueError(f"ClevrScenes.batches: target must be 'state' or 'box', "
                             f"got {target!r}")
        targets = self.state if target == "state" else self.boxes
        for idx in batch_indices(len(self), batch_size, seed, epoch, shuffle, drop_last):
            images = self.images[idx].astype(np.float32) / np.float32(255)
            yield images, DenseBatch(targets[idx], self.mask[idx], idx)


def clevr_root(data_dir=None, root=None) -> Path:
    """``root`` if given, else ``<data_dir>/CLEVR_v1.0``."""
    return Path(root) if root is not None else files.data_dir(data_dir) / ROOT


def load_clevr(split: str = "train", data_dir=None, cache_dir=None, root=None,
               progress: bool = True, download: bool = False) -> ClevrScenes:
    """CLEVR (or a synthetic folder in its layout) with DSPN's targets.

    Args:
        split: ``"train"`` or ``"val"`` (DSPN tests on ``val``; CLEVR's test split has no
            scenes).
        root: the ``CLEVR_v1.0`` folder; default ``<data_dir>/CLEVR_v1.0``.
        download: fetch and unzip CLEVR v1.0 (18 GB) when its scenes are missing.

    Notes:
        DSPN evaluates on the first tenth of ``val`` unless ``--full-eval``; this returns
        all of it.
    """
    if split not in SPLITS:
        raise ValueError(f"load_clevr: split must be one of {SPLITS}, got {split!r}")
    root = clevr_root(data_dir, root)
    if download and not scenes_path(root, split).exists():
        archive = files.fetch(URL, root.parent / "CLEVR_v1.0.zip")
        files.extract_zip(archive, root.parent)
        archive.unlink()
    scenes, info = read_scenes(root, split)
    where = str(scenes_path(root, split))
    state = np.zeros((len(scenes), MAX_OBJECTS, STATE_DIM), np.float32)
    boxes = np.zeros((len(scenes), MAX_OBJECTS, BOX_DIM), np.float32)
    mask = np.zeros((len(scenes), MAX_OBJECTS), bool)
    for i, scene in enumerate(scenes):
        state[i], boxes[i], mask[i] = scene_targets(scene, where=where)
    folder = images_dir(root, split)
    files.require(folder, f"the CLEVR {split} images folder")

    def fill(images):
        paths = [folder / scene["image_filename"] for scene in scenes]
        for i, path in enumerate(files.progress(paths, len(paths), f"CLEVR {split} images",
                                                progress)):
            images[i] = read_image(path)

    resolved = str(root.resolve())
    key = files.cache_key(_VERSION, resolved, files.fingerprint(scenes_path(root, split), folder))
    name = f"{hashlib.sha1(resolved.encode()).hexdigest()[:12]}_{split}_{IMAGE_SIZE}.npy"
    images = files.cached_memmap(files.cache_dir(cache_dir) / "clevr" / name, key,
                                 (len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8, fill)
    return ClevrScenes(images, state, boxes, mask,
                       np.array([s["image_index"] for s in scenes], np.int64),
                       bool(info.get("synthetic", False)))


def stats(data_dir=None, cache_dir=None, root=None, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats clevr`` (and ``clevr-synthetic``)."""
    rows = []
    for split in SPLITS:
        data = load_clevr(split, data_dir, cache_dir, root)
        counts = data.mask.sum(1)
        present = data.state[data.mask]
        inside = ((data.boxes >= 0) & (data.boxes <= 1)).all(-1)[data.mask]
        rows += [(f"{split} images{' (SYNTHETIC)' if data.synthetic else ''}", f"{len(data):,}"),
                 (f"{split} objects per image (min / mean / max)",
                  f"{counts.min()} / {counts.mean():.2f} / {counts.max()}"),
                 (f"{split} shapes sphere / cube / cylinder",
                  " / ".join(str(int(c)) for c in present[:, 13:16].sum(0))),
                 (f"{split} boxes inside [0, 1]", f"{inside.mean():.3f}")]
    return rows
