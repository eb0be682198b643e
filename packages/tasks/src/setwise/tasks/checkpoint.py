"""Checkpoints: one ``.npz`` of named NumPy arrays, the same file for every backend.

A checkpoint holds (flat names, ``/`` separating the groups):

- ``params/<name>``: the model's parameters (the task's flat mapping, same names as
  :meth:`~setwise.tasks.registry.Task.init_params`);
- ``state/<name>``: the model's state (batch-norm running statistics), often none;
- ``adam_mu/<name>``, ``adam_nu/<name>``: Adam's first and second moment of each parameter,
  ``adam_count``: the number of Adam updates made (the bias-correction exponent ``t``);
- ``schedule/<name>``: the learning-rate schedule's state (:mod:`setwise.tasks.schedule`:
  ``lr``, ``best``, ``bad``, ``total``, ``count``); absent from checkpoints written before
  schedules existed, which resume at the configured rate;
- ``step`` (int64) and ``time`` (float64, seconds of training so far).

``torch.optim.Adam`` and ``optax.adam`` make the same update from the same moments and count
(``m_t / (1 - b1^t) / (sqrt(v_t / (1 - b2^t)) + eps)``, defaults ``b1 = 0.9, b2 = 0.999,
eps = 1e-8``: torch's ``exp_avg``, ``exp_avg_sq``, ``step`` are optax's ``mu``, ``nu``,
``count``), so a run trained on one backend continues, or is evaluated, on the other.

All checkpoint file I/O goes through :func:`save` and :func:`load`. Every file carries the
SHA-256 of its arrays (``__sha256__``: names, dtypes, shapes and bytes), verified on load;
saving keeps the checkpoint it replaces as ``checkpoint.prev.npz``. A file that is cut short,
garbage, or altered by a single byte raises :class:`CheckpointError`: one line naming it and
saying what the user can do (resume from the previous checkpoint where it is good).
NumPy reads it with ``allow_pickle=False``: loading a checkpoint runs no code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from setwise.tasks.runs import RunDirError

#: The file name of a run's checkpoint (both backends).
CHECKPOINT = "checkpoint.npz"
GROUPS = ("params", "state", "adam_mu", "adam_nu", "schedule")
DIGEST = "__sha256__"


class CheckpointError(RunDirError):
    """A checkpoint that cannot be used (unreadable, checksum mismatch, wrong contents)."""


def previous(path) -> Path:
    """Where the checkpoint that ``path`` replaced is kept: ``checkpoint.prev.npz``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of ``arrays``: every name, dtype, shape and the bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{value.dtype.str}|{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def save(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` and their :func:`digest` to ``path`` atomically: a temporary file
    beside it, flushed to disk, then renamed over ``path`` (a reader sees the old checkpoint
    or the new one, never half). The old one is kept as :func:`previous` first (a hard link,
    so ``path`` exists at every moment)."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays, **{DIGEST: np.asarray(digest(arrays))})
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        prev_tmp = previous(path).with_name(previous(path).name + ".tmp")
        prev_tmp.unlink(missing_ok=True)
        try:
            os.link(path, prev_tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, prev_tmp)
        os.replace(prev_tmp, previous(path))
    os.replace(tmp, path)


def _problem(path: Path) -> tuple[dict | None, str | None]:
    """``(arrays, None)`` if the checkpoint at ``path`` is good, else ``(None, problem)``."""
    if not path.is_file():
        return None, "missing"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        return None, f"not a readable checkpoint ({type(error).__name__}: {error})"
    stored = arrays.pop(DIGEST, None)
    if stored is None:
        return None, f"no checksum ({DIGEST}) in it"
    if str(stored) != digest(arrays):
        return None, "its contents do not match their SHA-256 checksum"
    return arrays, None


def load(path) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at ``path``, by name, checksum verified.

    Raises :class:`CheckpointError` naming the file and what to do.
    """
    path = Path(path)
    arrays, problem = _problem(path)
    if problem is None:
        return arrays
    prev = previous(path)
    if _problem(prev)[1] is None:
        advice = (f"the previous checkpoint {prev.name} is good: resume from it with "
                  f"'mv {prev} {path}' and --resume (its later steps are trained again)")
    else:
        advice = "no good previous checkpoint is there: start again with --overwrite"
    raise CheckpointError(f"{path}: {problem}; {advice}")


@dataclass
class Checkpoint:
    """The contents of a checkpoint as NumPy mappings (see the module docstring)."""

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    adam_mu: dict[str, np.ndarray] = field(default_factory=dict)
    adam_nu: dict[str, np.ndarray] = field(default_factory=dict)
    adam_count: int = 0
    step: int = 0
    time: float = 0.0
    schedule: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat ``group/name -> array`` mapping that :func:`save` writes."""
        out = {f"{group}/{name}": np.asarray(value) for group in GROUPS
               for name, value in getattr(self, group).items()}
        out["adam_count"] = np.asarray(self.adam_count, np.int64)
        out["step"] = np.asarray(self.step, np.int64)
        out["time"] = np.asarray(self.time, np.float64)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Checkpoint:
        groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in GROUPS}
        for key, value in arrays.items():
            group, _, name = key.partition("/")
            if name:
                if group not in groups:
                    raise ValueError(f"checkpoint: unknown array group {group!r} in {key!r}; "
                                     f"expected one of {', '.join(GROUPS)}")
                groups[group][name] = value
        missing = [k for k in ("adam_count", "step", "time") if k not in arrays]
        if missing:
            raise ValueError(f"checkpoint: missing {', '.join(missing)}")
        return cls(**groups, adam_count=int(arrays["adam_count"]), step=int(arrays["step"]),
                   time=float(arrays["time"]))


def save_checkpoint(path, checkpoint: Checkpoint) -> None:
    save(path, checkpoint.arrays())


def load_checkpoint(path) -> Checkpoint:
    arrays = load(path)
    try:
        return Checkpoint.from_arrays(arrays)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}; start again with --overwrite") from None


def check_names(what: str, got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]):
    """Raise ``ValueError`` unless ``got`` has exactly ``want``'s names and shapes."""
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise ValueError(f"{what}: names differ from the model's (missing {missing or 'none'}, "
                         f"unexpected {extra or 'none'})")
    bad = [f"{k} {np.shape(got[k])} (expected {np.shape(want[k])})" for k in want
           if np.shape(got[k]) != np.shape(want[k])]
    if bad:
        raise ValueError(f"{what}: shapes differ from the model's: {', '.join(bad)}")


def check_init_from(task, config, run_dir) -> None:
    """Refuse ``--init-from run_dir`` before a run starts: no checkpoint there, or parameters
    (state) whose names or shapes differ from ``task``'s model for ``config``.

    Raises :class:`setwise.tasks.runs.RunDirError` (one line naming the directory).
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise RunDirError(f"--init-from {run_dir}: no {CHECKPOINT} there (a run writes it at "
                          "its first evaluation); pass the directory of a run that has one")
    ckpt = load_checkpoint(path)
    try:
        check_names(f"--init-from {run_dir}: parameters", ckpt.params, task.init_params(config))
        check_names(f"--init-from {run_dir}: state", ckpt.state, task.init_state(config))
    except ValueError as err:
        raise RunDirError(f"{err}; pass a run of task {task.name!r} with the same model "
                          "options") from None
