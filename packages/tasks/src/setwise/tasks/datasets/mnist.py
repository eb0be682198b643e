"""MNIST idx files and SetMNIST (DSPN, Zhang et al. 2019), used in paper 2 section 5.1.

SetMNIST turns each image into the set of its "on" pixels, exactly as DSPN's ``MNISTSet``:
the image is normalised as torchvision does (``(p / 255 - 0.1307) / 0.3081``), a pixel is in
the set when that value is above DSPN's threshold ``0.0`` (so raw pixels ``p >= 34``), its
``(row, col)`` indices are divided by 27 into ``[0, 1]``, and the set is padded with a mask to
342 points (the largest set in MNIST at this threshold).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import CorruptDataError, MissingDataError
from setwise.tasks.datasets.sets import DenseBatch, RaggedSets, SegmentBatch, batch_indices

FOLDER = "mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
COUNTS = {"train": 60_000, "test": 10_000}
#: The standard MD5 of each decompressed idx file (PROVENANCE.md lists their prefixes).
MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

DSPN_MEAN, DSPN_STD = 0.1307, 0.3081
DSPN_THRESHOLD = 0.0
DSPN_MAX_POINTS = 342
DSPN_SCALE = 27.0

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an idx file (gzip-compressed or not) into an array of its declared shape.

    Raises:
        MissingDataError: the file does not exist.
        CorruptDataError: bad magic number, unknown type, or a size that does not match.
    """
    path = files.require(path, "an MNIST idx file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise CorruptDataError(path, "a readable idx file", str(error)) from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise CorruptDataError(path, "idx magic 00 00 <type> <ndim>", raw[:4].hex() or "empty")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise CorruptDataError(path, f"{int(np.prod(shape)) * dtype.itemsize} data bytes for "
                               f"shape {shape}", f"{len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def paths(data_dir=None) -> list[Path]:
    """The four idx files looked for, under ``<data_dir>/mnist/``."""
    root = files.data_dir(data_dir) / FOLDER
    return [root / name for pair in FILES.values() for name in pair]


def fetch_missing(data_dir=None) -> None:
    """Fetch the four idx files into ``<data_dir>/mnist/`` and check their MD5."""
    for path in paths(data_dir):
        if not path.exists():
            files.fetch(URL + path.name, path, MD5[path.name], decompressed_md5=True)


def load_mnist(split: str = "train", data_dir=None, download: bool = False):
    """MNIST images and labels of one split.

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        data_dir: the data directory (see :mod:`setwise.tasks.datasets.files`).
        download: fetch missing files first (needs a network).

    Returns:
        ``(images [N, 28, 28] uint8, labels [N] uint8)``.
    """
    if split not in FILES:
        raise ValueError(f"load_mnist: split must be one of {sorted(FILES)}, got {split!r}")
    if download:
        fetch_missing(data_dir)
    root = files.data_dir(data_dir) / FOLDER
    image_file, label_file = (root / name for name in FILES[split])
    for path in (image_file, label_file):
        if not path.exists():
            raise MissingDataError(path, f"the MNIST {split} idx file",
                                   f"pass download=True (or run 'setwise data prepare setmnist "
                                   f"--download') to fetch {URL}{path.name}")
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise CorruptDataError(image_file, f"[N, 28, 28] images matching {len(labels)} labels",
                               f"shape {images.shape}")
    return images, labels


def dspn_pixel_mask(images: np.ndarray, threshold: float = DSPN_THRESHOLD) -> np.ndarray:
    """Which pixels DSPN keeps: ``(p / 255 - 0.1307) / 0.3081 > threshold`` in float32."""
    x = images.astype(np.float32) / np.float32(255)
    return (x - np.float32(DSPN_MEAN)) / np.float32(DSPN_STD) > np.float32(threshold)


def image_to_points(images: np.ndarray, threshold: float = DSPN_THRESHOLD) -> RaggedSets:
    """``images [N, H, W]`` -> point sets of ``(row, col) / 27`` (float32), row-major order."""
    keep = dspn_pixel_mask(images, threshold)
    image_id, rows, cols = np.nonzero(keep)
    coords = np.stack([rows, cols], axis=1).astype(np.float32) / np.float32(DSPN_SCALE)
    sizes = np.bincount(image_id, minlength=len(images))
    return RaggedSets(coords, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))


@dataclass(frozen=True)
class SetMNIST:
    """SetMNIST point sets of one split.

    Attributes:
        points: :class:`RaggedSets` with ``x [num_points, 2]`` float32 ``(row, col) / 27``.
        labels: ``[num_sets]`` int64 digit labels.
        max_size: padding size of the dense form (342, DSPN's ``self.max``).
    """

    points: RaggedSets
    labels: np.ndarray
    max_size: int = DSPN_MAX_POINTS

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                form: str = "dense", drop_last: bool = False,
                noise_std: float = 0.0) -> Iterator[tuple[DenseBatch | SegmentBatch, np.ndarray]]:
        """Yield ``(batch, labels [batch])``; deterministic given (seed, epoch).

        Args:
            form: ``"dense"`` (``x [batch, 342, 2]`` + mask) or ``"segments"``.
            noise_std: std of Gaussian noise added to the normalised coordinates (0 = DSPN).

        Like DSPN's ``__getitem__``, the order of the points inside each set is shuffled.
        """
        rng = np.random.default_rng([seed, epoch, 1])
        for indices in batch_indices(len(self), batch_size, seed, epoch, shuffle, drop_last):
            sub = self.points.take(indices)
            order = np.lexsort((rng.random(len(sub.x)), sub.index))
            x = sub.x[order]
            if noise_std:
                x = x + rng.normal(0.0, noise_std, x.shape).astype(np.float32)
            sub = RaggedSets(x, sub.ptr)
            batch = (sub.dense(max_size=self.max_size) if form == "dense" else sub.segments())
            yield batch._replace(indices=indices), self.labels[indices]


def load_setmnist(split: str = "train", data_dir=None, threshold: float = DSPN_THRESHOLD,
                  download: bool = False) -> SetMNIST:
    """SetMNIST from the MNIST idx files (see the module docstring for the preprocessing).

    Notes:
        DSPN evaluates on the first tenth of the test set unless ``--full-eval``; this
        returns all 10,000 test sets. Paper 2 mentions noise on the locations; DSPN's code
        adds none, so ``noise_std`` in :meth:`SetMNIST.batches` defaults to 0.
    """
    images, labels = load_mnist(split, data_dir, download)
    points = image_to_points(images, threshold)
    largest = int(points.sizes.max(initial=0))
    max_size = max(DSPN_MAX_POINTS, largest)
    return SetMNIST(points, labels.astype(np.int64), max_size)


def stats(data_dir=None, **_) -> list[tuple[str, str]]:
    """Statistics printed by ``setwise data stats setmnist``."""
    rows = []
    for split in FILES:
        data = load_setmnist(split, data_dir)
        sizes = data.points.sizes
        rows += [(f"{split} sets", f"{len(data):,}"),
                 (f"{split} points per set (min / mean / max)",
                  f"{sizes.min()} / {sizes.mean():.2f} / {sizes.max()}"),
                 (f"{split} dense shape", f"[{len(data)}, {data.max_size}, 2]")]
    rows.append(("threshold", "(p/255 - 0.1307)/0.3081 > 0, i.e. raw pixel >= 34"))
    return rows
