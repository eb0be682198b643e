"""A run directory: ``config.json``, ``metrics.jsonl``, the checkpoint, ``summary.json``.

``metrics.jsonl`` holds one JSON object per line: ``{"step", "split": "train" | "eval",
<metric>: value, ..., "time": seconds}``. A resumed run first drops the lines written after
its checkpoint, so the file of a run killed and resumed equals that of an uninterrupted run
(apart from ``time``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
#: Options that may change when a run is resumed (training longer).
RESUMABLE_CHANGES = ("steps",)


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (a run already there, another config)."""


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_metrics(run_dir) -> list[dict]:
    """The lines of ``metrics.jsonl`` as dicts (``[]`` if there is none)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunDir:
    """The files of one training run."""

    def __init__(self, path, checkpoint_name: str):
        self.path = Path(path)
        self.checkpoint = self.path / checkpoint_name

    def prepare(self, config: Mapping, *, resume: bool, overwrite: bool) -> bool:
        """Create or check the directory; return True if training resumes from a checkpoint.

        Raises :class:`RunDirError` if the directory holds a run and neither ``resume`` nor
        ``overwrite`` is set, or if ``resume`` meets a different configuration.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        saved = self.path / CONFIG
        has_run = saved.exists() or self.checkpoint.exists()
        if has_run and overwrite:
            for name in (CONFIG, METRICS, SUMMARY, self.checkpoint.name):
                (self.path / name).unlink(missing_ok=True)
        elif has_run and not resume:
            raise RunDirError(f"{self.path} already holds a run: pass --resume to continue "
                                  "it, --overwrite to start again, or another --run-dir")
        elif saved.exists():
            old = json.loads(saved.read_text())
            diff = sorted(k for k in set(old) | set(config)
                          if old.get(k) != config.get(k) and k not in RESUMABLE_CHANGES)
            if diff:
                changes = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff)
                raise RunDirError(f"--resume: {self.path} was trained with a different "
                                 f"configuration ({changes})")
        write_json(saved, dict(config))
        return resume and self.checkpoint.exists()

    def truncate_metrics(self, step: int) -> None:
        """Drop the metric lines after ``step`` (written after the checkpoint being resumed)."""
        keep = [m for m in read_metrics(self.path) if m["step"] <= step]
        tmp = self.path / (METRICS + ".tmp")
        tmp.write_text("".join(json.dumps(m) + "\n" for m in keep))
        os.replace(tmp, self.path / METRICS)

    def log(self, record: Mapping) -> None:
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(dict(record)) + "\n")
            f.flush()

    def checkpoint_tmp(self) -> Path:
        """Write a checkpoint here, then :meth:`commit_checkpoint` (atomic replace)."""
        return self.checkpoint.with_name(self.checkpoint.name + ".tmp")

    def commit_checkpoint(self) -> None:
        os.replace(self.checkpoint_tmp(), self.checkpoint)

    def write_summary(self, summary: Mapping) -> None:
        write_json(self.path / SUMMARY, dict(summary))
