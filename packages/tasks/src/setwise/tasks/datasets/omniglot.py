"""Omniglot class counting (paper 1, section 5.2; after Lee et al. 2019).

Each example is a set of 16 images; between 1 and 10 character classes are drawn uniformly,
then images of those classes fill the set (every drawn class appears at least once); the label
is the number of distinct classes. Images are downsized from 105x105 to 32x32. Training sets
come from the background characters, test sets from the evaluation characters.

Two layouts are read, both under ``<data_dir>/omniglot/``:

- ``images_background.npz`` / ``images_evaluation.npz`` (key ``images``: bool
  ``[characters, 20, 105, 105]``, True = white background; key ``labels``);
- the original folders ``images_background/<alphabet>/<character>/*.png`` (what
  brendenlake/omniglot's ``images_background.zip`` unpacks to).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import CorruptDataError, MissingDataError

FOLDER = "omniglot"
PARTS = {"train": "images_background", "valid": "images_background", "test": "images_evaluation"}
URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{}.zip"
COUNTS = {"images_background": (964, 19_280), "images_evaluation": (659, 13_180)}
SET_SIZE, MAX_CLASSES, IMAGE_SIZE, ORIGINAL_SIZE = 16, 10, 32, 105
VALID_FRACTION = 0.05
_VERSION = "omniglot-1"


class CountingBatch(NamedTuple):
    """A batch of class-counting sets.

    Attributes:
        x: ``[batch, 16, 32, 32]`` float32 ink in ``[0, 1]`` (1 = pen stroke).
        mask: ``[batch, 16]`` bool, all True (every set has 16 images).
        label: ``[batch]`` int64 number of distinct classes, in ``1..10`` (class index
            ``label - 1`` for a 10-way softmax).
        classes: ``[batch, 16]`` int64 character id of each image.
    """

    x: np.ndarray
    mask: np.ndarray
    label: np.ndarray
    classes: np.ndarray


@dataclass(frozen=True)
class OmniglotCounting:
    """Images of one split, grouped by character, and the set sampler.

    Attributes:
        images: ``[num_images, 32, 32]`` uint8 ink (255 = stroke), sorted by character.
        classes: ``[num_images]`` int64 character id, ``0..num_classes-1``, non-decreasing.
        set_size: images per set (16).
        max_classes: the number of classes is drawn uniformly from ``1..max_classes`` (10).
    """

    images: np.ndarray
    classes: np.ndarray
    set_size: int = SET_SIZE
    max_classes: int = MAX_CLASSES

    def __post_init__(self):
        if self.num_classes < self.max_classes:
            raise ValueError(f"OmniglotCounting: {self.num_classes} characters, fewer than "
                             f"max_classes={self.max_classes}")

    def __len__(self) -> int:
        """Number of images (sets are sampled, not stored)."""
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return int(self.classes.max(initial=-1)) + 1

    @property
    def class_ptr(self) -> np.ndarray:
        """``[num_classes + 1]`` offsets of each character's images."""
        return np.concatenate([[0], np.cumsum(np.bincount(self.classes))]).astype(np.int64)

    def sample(self, num_sets: int, rng: np.random.Generator) -> CountingBatch:
        """Draw ``num_sets`` sets.

        For each set: ``k ~ U{1..max_classes}``; ``k`` distinct characters; one image of
        each, the other ``set_size - k`` slots filled from those ``k`` characters uniformly;
        images of a character drawn without replacement (with replacement only where a
        character has fewer images than slots); the set's order shuffled.
        """
        ptr = self.class_ptr
        chosen_images = np.empty((num_sets, self.set_size), np.int64)
        labels = rng.integers(1, self.max_classes + 1, size=num_sets)
        for row, k in enumerate(labels):
            chars = rng.choice(self.num_classes, size=k, replace=False)
            slots = np.concatenate([np.arange(k), rng.integers(0, k, self.set_size - k)])
            picked = []
            for slot_char, count in zip(chars, np.bincount(slots, minlength=k)):
                available = ptr[slot_char + 1] - ptr[slot_char]
                picked.append(ptr[slot_char] + rng.choice(available, size=count,
                                                          replace=count > available))
            chosen_images[row] = rng.permutation(np.concatenate(picked))
        x = self.images[chosen_images].astype(np.float32) / np.float32(255)
        return CountingBatch(x, np.ones((num_sets, self.set_size), bool), labels.astype(np.int64),
                             self.classes[chosen_images])

    def batches(self, batch_size: int, num_batches: int | None = None,
                seed: int = 0) -> Iterator[CountingBatch]:
        """Yield freshly sampled batches (forever when ``num_batches`` is None)."""
        rng = np.random.default_rng(seed)
        count = 0
        while num_batches is None or count < num_batches:
            yield self.sample(batch_size, rng)
            count += 1


def read_png_folder(folder) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``<folder>/<alphabet>/<character>/*.png`` in sorted order.

    Returns:
        ``(images [num_images, 105, 105] bool (True = white), classes [num_images] int64,
        names ["alphabet/character", ...])``.
    """
    from PIL import Image

    folder = files.require(folder, "Omniglot folders <alphabet>/<character>/*.png")
    characters = sorted(p for p in folder.glob("*/*") if p.is_dir())
    if not characters:
        raise MissingDataError(folder / "<alphabet>" / "<character>",
                               "character folders holding *.png files")
    images, classes, names = [], [], []
    for class_id, char_dir in enumerate(characters):
        pngs = sorted(char_dir.glob("*.png"))
        if not pngs:
            raise MissingDataError(char_dir / "*.png", "at least one image of this character")
        for png in pngs:
            try:
                with Image.open(png) as image:
                    array = np.asarray(image.convert("L")) > 127
            except OSError as error:
                raise CorruptDataError(png, "a PNG image", str(error)) from error
            if array.shape != (ORIGINAL_SIZE, ORIGINAL_SIZE):
                raise CorruptDataError(png, "a 105x105 image", f"shape {array.shape}")
            images.append(array)
            classes.append(class_id)
        names.append(f"{char_dir.parent.name}/{char_dir.name}")
    return np.stack(images), np.asarray(classes, np.int64), names


def _expected_shape(part: str | None) -> str:
    if part in COUNTS:
        chars, images = COUNTS[part]
        return f"images [{chars}, {images // chars}, 105, 105] ({images:,} images)"
    return "images [characters, drawers, 105, 105]"


def _shape_problem(shape: tuple, part: str | None) -> str | None:
    """Why ``shape`` is not that of ``part``'s images (``None`` if it is)."""
    if len(shape) != 4 or tuple(shape[2:]) != (ORIGINAL_SIZE, ORIGINAL_SIZE):
        return f"shape {tuple(shape)}"
    if part in COUNTS and (shape[0], shape[0] * shape[1]) != COUNTS[part]:
        return f"{shape[0]} characters, {shape[0] * shape[1]:,} images"
    return None


def npz_problem(path, part: str | None = None) -> str | None:
    """A fast check of ``images_*.npz`` (zip directory and the array header only): ``None``
    if it holds ``part``'s expected images, else what is wrong. A file cut short fails here;
    the full read (:func:`read_npz`) also verifies the zip's CRC of every byte."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("images.npy") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)
            shape = read_header(handle)[0]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        return f"not a readable npz with 'images' ({error}); expected {_expected_shape(part)}"
    problem = _shape_problem(shape, part)
    return None if problem is None else f"{problem}; expected {_expected_shape(part)}"


def read_npz(path, part: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``images_*.npz`` -> ``(images [num_images, 105, 105] bool, classes [num_images])``.

    With ``part`` (``"images_background"``, ``"images_evaluation"``), the counts of the
    official release are required (:data:`COUNTS`); a different file raises
    :class:`CorruptDataError` naming it.
    """
    path = files.require(path, "an Omniglot npz with 'images' [characters, 20, 105, 105]")
    try:
        with np.load(path) as stored:
            images = stored["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptDataError(path, f"an npz with {_expected_shape(part)}",
                               str(error)) from error
    problem = _shape_problem(images.shape, part)
    if problem is not None:
        raise CorruptDataError(path, _expected_shape(part), problem)
    chars, drawers = images.shape[:2]
    return images.reshape(-1, ORIGINAL_SIZE, ORIGINAL_SIZE), np.repeat(np.arange(chars), drawers)


def downsize(white: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """``[N, 105, 105]`` bool (True = white) -> ``[N, size, size]`` uint8 ink (area average)."""
    from PIL import Image

    out = np.empty((len(white), size, size), np.uint8)
    for i, image in enumerate(white):
        ink = Image.fromarray((~image).astype(np.float32), mode="F")
        small = np.asarray(ink.resize((size, size), Image.Resampling.BOX))
        out[i] = np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)
    return out


def source(part: str, data_dir=None, download: bool = False) -> Path:
    """The file or folder read for ``part`` (npz first, then the PNG folder).

    With ``download``, a missing part is fetched from brendenlake/omniglot and unzipped.
    """
    root = files.data_dir(data_dir) / FOLDER
    npz, folder = root / f"{part}.npz", root / part
    if npz.exists():
        return npz
    if not folder.exists() and download:
        archive = files.fetch(URL.format(part), root / f"{part}.zip")
        files.extract_zip(archive, root)
        archive.unlink()
    if folder.exists():
        return folder
    raise MissingDataError(npz, f"Omniglot '{part}' as {npz.name} or as the folder {folder}",
                           f"pass download=True (or run 'setwise data prepare "
                           f"omniglot-counting --download') to fetch {URL.format(part)}")


def load_images(part: str, data_dir=None, cache_dir=None, size: int = IMAGE_SIZE,
                download: bool = False, check_counts: bool = True):
    """Downsized images and character ids of ``images_background`` or ``images_evaluation``.

    Cached under ``<cache_dir>/omniglot/`` keyed by the source file's identity.

    Args:
        check_counts: require the official release's characters and images
            (:data:`COUNTS`; a truncated or partial copy raises :class:`CorruptDataError`
            naming it). False reads any number (small test fixtures).

    Returns:
        ``(images [num_images, size, size] uint8 ink, classes [num_images] int64)``.
    """
    src = source(part, data_dir, download)
    expected = part if check_counts else None

    def build():
        if src.suffix == ".npz":
            white, classes = read_npz(src, expected)
        else:
            white, classes = read_png_folder(src)[:2]
        return {"images": downsize(white, size), "classes": classes}

    key = files.cache_key(_VERSION, src, files.fingerprint(src), size)
    name = f"{part}_{'npz' if src.suffix == '.npz' else 'png'}_{size}.npz"
    arrays = files.cached_arrays(files.cache_dir(cache_dir) / FOLDER / name, key, build)
    found = (int(arrays["classes"].max(initial=-1)) + 1, len(arrays["images"]))
    if check_counts and found != COUNTS[part]:
        raise CorruptDataError(src, f"{COUNTS[part][0]} characters and {COUNTS[part][1]:,} "
                               "images (the official release)",
                               f"{found[0]} characters and {found[1]:,} images")
    return arrays["images"], arrays["classes"]


def split_characters(num_classes: int, split: str, valid_fraction: float) -> np.ndarray:
    """Background character ids of ``train`` or ``valid`` (a fixed permutation, seed 0)."""
    order = np.random.default_rng(0).permutation(num_classes)
    num_valid = int(round(valid_fraction * num_classes))
    return np.sort(order[:num_valid] if split == "valid" else order[num_valid:])


def load_omniglot(split: str = "train", data_dir=None, cache_dir=None,
                  valid_fraction: float = VALID_FRACTION, image_size: int = IMAGE_SIZE,
                  set_size: int = SET_SIZE, max_classes: int = MAX_CLASSES,
                  download: bool = False, check_counts: bool = True) -> OmniglotCounting:
    """The class-counting sampler of one split.

    Args:
        split: ``"train"`` (background characters minus the held-out ones), ``"valid"``
            (``valid_fraction`` of the background characters, fixed) or ``"test"``
            (evaluation characters).
        check_counts: require the official release's counts (see :func:`load_images`).

    Notes:
        The paper reserves "a small subset of the training set" for validation without
        saying which; here it is 5% of the background characters (48 of 964), held out.
    """
    if split not in PARTS:
        raise ValueError(f"load_omniglot: split must be one of {sorted(PARTS)}, got {split!r}")
    images, classes = load_images(PARTS[split], data_dir, cache_dir, image_size, download,
                                  check_counts)
    if split != "test":
        keep_chars = split_characters(int(classes.max()) + 1, split, valid_fraction)
        keep = np.isin(classes, keep_chars)
        images, classes = images[keep], np.searchsorted(keep_chars, classes[keep])
    return OmniglotCounting(images, classes.astype(np.int64), set_size, max_classes)


def stats(data_dir=None, cache_dir=None, seed: int = 0, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats omniglot-counting``."""
    rows = []
    for part in ("images_background", "images_evaluation"):
        images, classes = load_images(part, data_dir, cache_dir)
        rows += [(f"{part} source", str(source(part, data_dir))),
                 (f"{part} characters / images", f"{classes.max() + 1:,} / {len(images):,}"),
                 (f"{part} mean ink (32x32)", f"{images.mean() / 255:.4f}")]
    for split in PARTS:
        data = load_omniglot(split, data_dir, cache_dir)
        batch = data.sample(10_000, np.random.default_rng(seed))
        hist = np.bincount(batch.label, minlength=MAX_CLASSES + 1)[1:]
        rows += [(f"{split} characters / images", f"{data.num_classes:,} / {len(data.images):,}"),
                 (f"{split} labels of 10,000 sampled sets (1..10)", " ".join(map(str, hist)))]
    rows.append(("set shape", f"[{SET_SIZE}, {IMAGE_SIZE}, {IMAGE_SIZE}] float32, label 1..10"))
    return rows
