"""A run directory: ``config.json``, ``metrics.jsonl``, the checkpoint, ``summary.json``.

``metrics.jsonl`` holds one JSON object per line: ``{"step", "split": "train" | "eval",
<metric>: value, ..., "time": seconds}``. A resumed run first drops the lines written after
its checkpoint, so the file of a run killed and resumed equals that of an uninterrupted run
(apart from ``time``). A run killed while appending leaves a partial last line (no newline,
not JSON): readers drop it, and a resumed run rewrites the file without it.

Nothing is written before the start is known to be possible: :meth:`RunDir.check` reads and
validates (the directory, the saved configuration, what ``--resume`` / ``--overwrite`` ask
for) and writes nothing; :meth:`RunDir.create` writes ``config.json`` once the run is about to
start. A file that cannot be read raises :class:`RunFileError`, one line naming the file and
what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
#: Options that may change when a run is resumed (training longer).
RESUMABLE_CHANGES = ("steps",)
#: Files of a run besides its checkpoints (removed by ``--overwrite``).
RUN_FILES = (CONFIG, METRICS, SUMMARY, "curve.png")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (a run already there, another config)."""


class RunFileError(RunDirError):
    """A file of a run that cannot be read (not JSON, a corrupt line); the message names it."""


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path, what: str) -> dict:
    """The JSON object in ``path``; :class:`RunFileError` naming the file if it is not one.

    Args:
        path: the file (it must exist).
        what: what the file is, for the message (``"the run's configuration"``).
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFileError(f"{path}: cannot read {what} ({error}); restore the file, or start "
                           "the run again with --overwrite") from None
    if not isinstance(obj, dict):
        raise RunFileError(f"{path}: {what} is a JSON {type(obj).__name__}, expected an "
                           "object; restore the file, or start the run again with --overwrite")
    return obj


def read_config(run_dir) -> dict | None:
    """The run's saved ``config.json`` (``None`` if there is none)."""
    path = Path(run_dir) / CONFIG
    return read_json(path, "the run's configuration") if path.exists() else None


def read_metrics(run_dir) -> list[dict]:
    """The lines of ``metrics.jsonl`` as dicts (``[]`` if there is none).

    A last line without its newline that is not JSON (a write cut short by a kill) is dropped.
    Any other line that is not a metrics record raises :class:`RunFileError` naming the file
    and the line.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunFileError(f"{path}: cannot read the metrics ({error}); delete the file's bad "
                           "bytes, or start the run again with --overwrite") from None
    lines = text.split("\n")
    complete, last = lines[:-1], lines[-1]  # ``last`` is "" when the file ends with a newline
    records = [_record(path, number, line) for number, line in enumerate(complete, 1)
               if line.strip()]
    if last.strip():
        try:
            records.append(_record(path, len(lines), last))
        except RunFileError:
            pass  # a partial last write
    return records


def _record(path: Path, number: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        record, reason = None, str(error)
    else:
        reason = "not an object with 'step' and 'split'"
    if isinstance(record, dict) and isinstance(record.get("step"), int) and "split" in record:
        return record
    raise RunFileError(f"{path}: line {number} is not a metrics record ({reason}): "
                       f"{line[:60]!r}; delete that line, or start the run again with "
                       "--overwrite")


class RunDir:
    """The files of one training run."""

    def __init__(self, path, checkpoint_name: str):
        self.path = Path(path)
        self.checkpoint = self.path / checkpoint_name

    def check(self, config: Mapping, *, resume: bool, overwrite: bool) -> bool:
        """Validate the start of a run, writing nothing; True if it resumes from a checkpoint.

        Raises :class:`RunDirError` if the path is not a directory, if the directory holds a
        run and neither ``resume`` nor ``overwrite`` is set, if ``resume`` meets a different
        configuration, or (:class:`RunFileError`) if its files cannot be read. ``resume`` with
        no checkpoint starts from step 0: :meth:`start_message` says so.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--run-dir {self.path} is a file, not a directory; pass a "
                              "directory (it is created if needed)")
        if resume and overwrite:
            raise RunDirError("--resume and --overwrite contradict each other; pass one")
        has_run = (self.path / CONFIG).exists() or self.checkpoint.exists()
        if overwrite or not has_run:
            return False
        if not resume:
            raise RunDirError(f"{self.path} already holds a run: pass --resume to continue it, "
                              "--overwrite to start again, or another --run-dir")
        old = read_config(self.path)
        if old is not None:
            # options added to (or removed from) the task since the run started are not a
            # change of this run's configuration
            diff = sorted(k for k in set(old) & set(config)
                          if old[k] != config[k] and k not in RESUMABLE_CHANGES)
            if diff:
                changes = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff)
                raise RunDirError(f"--resume: {self.path} was trained with a different "
                                  f"configuration ({changes}); resume with the same options, "
                                  "or pass another --run-dir")
        read_metrics(self.path)  # a corrupt metrics file is refused before anything is written
        return self.checkpoint.exists()

    def start_message(self, *, resume: bool, resuming: bool) -> str:
        """One line saying what the start does (printed before the first step)."""
        if resuming:
            return f"resuming {self.path} from {self.checkpoint.name}"
        if resume and (self.path / CONFIG).exists():
            return (f"--resume: {self.path} has no checkpoint yet (the run stopped before its "
                    "first evaluation); starting it from step 0")
        if resume:
            return f"--resume: nothing to resume in {self.path}; starting a new run there"
        return f"run directory: {self.path}"

    @staticmethod
    def check_resume_step(checkpoint, step: int, steps: int) -> None:
        """Refuse to resume a checkpoint at ``step`` with fewer total ``steps``."""
        if step > steps:
            raise RunDirError(f"--resume: {checkpoint} is at step {step}, beyond --steps "
                              f"{steps}; pass --steps {step} or more to continue it (or "
                              "--overwrite to start again)")

    def create(self, config: Mapping, *, overwrite: bool) -> None:
        """Create the directory and write ``config.json`` (removing an old run if
        ``overwrite``). Call once the run is known to start."""
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            for old in self.path.glob(self.checkpoint.stem + "*"):
                if old.is_file():
                    old.unlink()
        write_json(self.path / CONFIG, dict(config))

    def prepare(self, config: Mapping, *, resume: bool, overwrite: bool) -> bool:
        """:meth:`check`, then :meth:`create`; return True if training resumes."""
        resuming = self.check(config, resume=resume, overwrite=overwrite)
        self.create(config, overwrite=overwrite)
        return resuming

    def truncate_metrics(self, step: int) -> None:
        """Drop the metric lines after ``step`` (written after the checkpoint being resumed)
        and a partial last line."""
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
