"""Where data and caches live, file checks, on-disk caches, and the download helper.

Data directory (read-only is fine): the ``data_dir`` argument, else ``$SETWISE_DATA``, else
``~/setwise-data``. Cache directory (written): the ``cache_dir`` argument, else
``$SETWISE_CACHE``, else ``~/.cache/setwise``. Nothing is ever written into the data directory
except by an explicit download.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from setwise.tasks.datasets.errors import CorruptDataError, MissingDataError

DATA_ENV = "SETWISE_DATA"
CACHE_ENV = "SETWISE_CACHE"
DEFAULT_DATA_DIR = Path("~/setwise-data")
DEFAULT_CACHE_DIR = Path("~/.cache/setwise")


#: ``<checkout>/../shared/data``: the data directory beside a source checkout (an editable
#: install), as the project's tests and CI lay it out.
SIBLING_DATA_DIR = Path(__file__).resolve().parents[7] / "shared" / "data"


def data_dir(path=None) -> Path:
    """The data directory: ``path``, else ``$SETWISE_DATA``, else ``../shared/data`` beside
    the checkout where it exists, else ``~/setwise-data``."""
    if path is None:
        path = os.environ.get(DATA_ENV) or (
            SIBLING_DATA_DIR if SIBLING_DATA_DIR.is_dir() else DEFAULT_DATA_DIR)
    return Path(path).expanduser()


def data_dir_origin(path=None) -> str:
    """Where :func:`data_dir` took its value from (for ``setwise data``)."""
    if path is not None:
        return "argument"
    if os.environ.get(DATA_ENV):
        return f"${DATA_ENV}"
    return "beside the checkout" if SIBLING_DATA_DIR.is_dir() else "default"


def cache_dir(path=None) -> Path:
    """The cache directory: ``path``, else ``$SETWISE_CACHE``, else ``~/.cache/setwise``."""
    if path is None:
        path = os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(path).expanduser()


def require(path, expected: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`MissingDataError` naming it."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(path, expected, hint)
    return path


def md5(path, decompress: bool = False) -> str:
    """MD5 hex digest of a file, or of its gzip-decompressed content."""
    opener = gzip.open if decompress else open
    digest = hashlib.md5()
    try:
        with opener(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError) as error:
        raise CorruptDataError(path, "a readable gzip file" if decompress else "a readable file",
                               str(error)) from error
    return digest.hexdigest()


def fingerprint(*paths) -> str:
    """A cheap identity of files or folders: names, sizes and modification times."""
    digest = hashlib.sha1()
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for item in files:
            stat = item.stat()
            digest.update(f"{item}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; move it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cached_arrays(path, key: str, build: Callable[[], dict]) -> dict:
    """Load the arrays cached at ``path`` if they were built for ``key``; else build and save.

    Args:
        path: the ``.npz`` cache file.
        key: identifies the inputs and the code version; a different key rebuilds.
        build: returns ``{name: np.ndarray}``.

    Returns:
        ``{name: np.ndarray}``.
    """
    path = Path(path)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["__key__"]) == key:
                    return {name: stored[name] for name in stored.files if name != "__key__"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass
    arrays = build()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, __key__=np.array(key), **arrays)
    return arrays


def cached_memmap(path, key: str, shape: tuple, dtype, fill: Callable[[np.ndarray], None]):
    """A large cached array kept on disk (``.npy``, memory-mapped read-only).

    Built by ``fill(array)`` writing into a fresh memory map when missing or when ``key``
    changed (the key is stored next to it as ``<path>.key``).
    """
    path = Path(path)
    key_path = path.with_name(path.name + ".key")
    if path.exists() and key_path.exists() and key_path.read_text() == key:
        try:
            array = np.load(path, mmap_mode="r")
            if array.shape == tuple(shape) and array.dtype == np.dtype(dtype):
                return array
        except (OSError, ValueError):
            pass
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
        fill(array)
        array.flush()
        del array
    key_path.write_text(key)
    return np.load(path, mmap_mode="r")


def cache_key(*parts) -> str:
    """Join the parts of a cache key (version, fingerprints, parameters) into one string."""
    return json.dumps([str(part) for part in parts])


def progress(iterable: Iterable, total: int | None = None, desc: str = "", enabled: bool = True):
    """A tqdm progress bar on stderr (pass-through when ``enabled`` is False)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="it", mininterval=0.5)


def fetch(url: str, dest, md5sum: str | None = None, decompressed_md5: bool = False) -> Path:
    """Download ``url`` to ``dest`` (atomically) and check its MD5 when one is given.

    ``file://`` URLs work too, which is how this is tested offline.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as error:
            raise MissingDataError(dest, f"a download from {url}",
                                   f"download failed: {error}") from error
        if md5sum is not None:
            found = md5(tmp, decompress=decompressed_md5)
            if found != md5sum:
                raise CorruptDataError(url, f"md5 {md5sum}", f"md5 {found}")
    return dest


def extract_zip(archive, into) -> Path:
    """Extract a zip archive into a folder and return the folder."""
    into = Path(into)
    try:
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(into)
    except zipfile.BadZipFile as error:
        raise CorruptDataError(archive, "a zip archive", str(error)) from error
    return into
