"""The task registry: every paper task setwise can train, looked up by name.

A task is data + one model per backend + the paper's metric (:class:`Task`). Tasks are
registered by import path, so listing them (``setwise tasks``) imports neither PyTorch nor
JAX, and a new task plugs in with one line in :data:`TASKS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: name -> "module:Class" of every registered task. Add later tasks (Omniglot counting,
#: MOLPCBA readout, SetMNIST, CLEVR, synthetic molecules, QM9) here.
TASKS: dict[str, str] = {
    "clevr": "setwise.tasks.clevr.task:ClevrTask",
    "median": "setwise.tasks.median.task:MedianTask",
    "molecules": "setwise.tasks.molecules.task:MoleculesTask",
    "omniglot-counting": "setwise.tasks.omniglot_counting.task:OmniglotCountingTask",
    "qm9": "setwise.tasks.qm9.task:QM9Task",
    "setmnist": "setwise.tasks.setmnist.task:SetMNISTTask",
    "synthetic": "setwise.tasks.synthetic.task:SyntheticTask",
}


@dataclass(frozen=True)
class Option:
    """One hyperparameter of a task: a ``--name`` flag of ``setwise train <task>``.

    ``type`` is ``int``, ``float``, ``str`` or ``bool``; ``sequence=True`` takes several
    values (``--encoder-hidden 256 256``). ``allow_none``: ``None`` is a value of this option
    (say in ``help`` what it means); the configuration converts every other value to
    ``type`` (:func:`setwise.tasks.config.resolve`). ``bound`` is the range of a number (of every
    element of a sequence): ``"> 0"``, ``">= 0"``, ``">= 1"`` or ``"in (0, 1)"``; float
    values must be finite.
    """

    name: str
    default: Any
    help: str
    type: type = str
    choices: tuple | None = None
    sequence: bool = False
    allow_none: bool = False
    bound: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    """The grid of a paper figure or table: every combination of ``grid``'s values x seeds.

    Attributes:
        grid: option name -> the values it takes (``{"dim": (1, 2, 4), "aggregator":
            ("sum", "ea")}``); any of the task's options.
        seeds: the seeds of every grid point.
        overrides: the sweep's CPU budget, applied unless a preset is given.
        figure: the paper's figure or table (``"Fig. 3"``).
        notes: for the results page: how this grid departs from the paper's.
    """

    grid: Mapping[str, tuple]
    seeds: tuple
    overrides: Mapping[str, Any] = field(default_factory=dict)
    figure: str = ""
    notes: str = ""


class Task:
    """Base class of a paper task. Subclasses set the attributes and implement the methods.

    A task is data (:meth:`train_batch`, :meth:`eval_batches`), parameters drawn once in NumPy
    (:meth:`init_params`, :meth:`init_state`), one model per backend (:meth:`build_model`,
    following :class:`setwise.tasks.protocol.Model`) and the paper's metric
    (:meth:`evaluate`). Every method is a function of the resolved configuration (a dict, see
    :mod:`setwise.tasks.config`), so the trainers, ``setwise check`` and the tests drive
    every task alike.

    Attributes:
        name: the name used on the command line.
        reproduces: the paper figure or table (``"paper 1, Fig. 3"``).
        description: one line.
        aggregators: the ``--aggregator`` choices.
        metric: the key of :meth:`evaluate`'s result that the paper reports.
        metric_mode: ``"min"`` or ``"max"``: which way is better.
        options: the task's hyperparameters (CPU-sized defaults).
        presets: named overrides of the defaults: ``"cpu"`` (the defaults), ``"tiny"`` (a run
            of seconds, for tests and ``setwise check``), ``"paper"`` (the paper's setting).
        sweep: the grid of ``setwise sweep <task>`` (CPU budget), or None.
        ablations: further grids by name, each with its own results page: ``setwise sweep
            <task>:<name>`` (an appendix's ablation, ``{"inner-steps": SweepSpec(...)}``).
        labels: display names of option values on results pages (``{"ea": "EA"}``).
    """

    name: str = ""
    reproduces: str = ""
    description: str = ""
    aggregators: tuple = ()
    metric: str = ""
    metric_mode: str = "min"
    options: tuple[Option, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = {}
    sweep: SweepSpec | None = None
    ablations: Mapping[str, SweepSpec] = {}
    labels: Mapping[str, str] = {}

    def train_batch(self, config: Mapping, step: int) -> dict[str, np.ndarray]:
        """The training batch of ``step``: a pure function of (config seed, step), so a resumed
        run sees exactly the batches an uninterrupted one would."""
        raise NotImplementedError

    def eval_batches(self, config: Mapping) -> Iterable[dict[str, np.ndarray]]:
        """The fixed held-out sample, in batches."""
        raise NotImplementedError

    def init_params(self, config: Mapping, dtype="float32") -> dict[str, np.ndarray]:
        """Initial parameters as a flat ``name -> numpy array`` mapping of ``dtype``, a pure
        function of the configuration (its seed): the same values for every backend."""
        raise NotImplementedError

    def init_state(self, config: Mapping, dtype="float32") -> dict[str, np.ndarray]:
        """Initial model state (batch-norm running statistics) by name; none by default."""
        return {}

    def build_model(self, backend: str, config: Mapping):
        """The model of ``backend`` (``"torch"`` or ``"jax"``) for ``config``: an object with
        :class:`setwise.tasks.protocol.Model`'s ``loss`` and ``predict``, holding only static
        configuration. Import the backend's module here, not at module level.

        The default builds ``<task package>.<backend>_model.build(self.spec(config))``, the
        layout every task subpackage follows, the package being the one that defines
        ``spec`` (so a subclass elsewhere keeps its task's models); a task without ``spec``
        overrides this."""
        if backend not in ("torch", "jax"):
            raise ValueError(f"{self.name}: backend is {backend!r}; expected 'torch' or 'jax'")
        package = type(self).spec.__module__.rpartition(".")[0]
        module = importlib.import_module(f"{package}.{backend}_model")
        return module.build(self.spec(config))

    def evaluate(self, predictions: list[Mapping[str, np.ndarray]], batches: list[dict]
                 ) -> dict[str, float]:
        """The paper's metric(s) from the model's predictions (one mapping per batch of
        :meth:`eval_batches`, as NumPy arrays)."""
        raise NotImplementedError

    def check_variants(self, config: Mapping) -> list[dict[str, Any]]:
        """Overrides of ``config`` that ``setwise check`` and the every-task test cover
        (e.g. every aggregator); ``[{}]``: the configuration itself."""
        return [{}]

    def symmetries(self, config: Mapping):
        """The batch layout and which predictions are set functions
        (:class:`setwise.tasks.symmetries.Symmetries`), read by the conformance suite
        (``conformance/test_task_models.py``). Every task must declare it: there is no
        default, so a task registered without one fails the suite instead of being skipped."""
        raise NotImplementedError(
            f"task {self.name!r} declares no symmetries: implement "
            f"{type(self).__name__}.symmetries(config) -> setwise.tasks.symmetries.Symmetries "
            "(which batch arrays hold sets, which predictions are invariant or set-valued)")

    def sweep_spec(self, which: str | None = None) -> SweepSpec:
        """The grid of :attr:`sweep` (``which=None``) or of the ablation ``which``."""
        spec = self.sweep if which is None else self.ablations.get(which)
        if spec is None:
            named = f"ablation {which!r}" if which else "sweep"
            raise ValueError(f"sweep: task {self.name!r} has no {named}; its ablations: "
                             f"{', '.join(self.ablations) or 'none'}")
        return spec

    def label(self, value) -> str:
        """The display name of an option value (:attr:`labels`, else ``str(value)``)."""
        return self.labels.get(value, str(value)) if isinstance(value, str) else str(value)

    def report(self, runs: list, out, *, command: str = "", name: str | None = None):
        """Write the results page of a sweep's ``runs`` (:class:`setwise.tasks.sweep.Run`:
        ``.config``, ``.summary``, ``.metrics``, ``.run_dir``) into the folder ``out``; return
        the paths written (markdown, figure or None). The default is a table of the metric
        over the grid (:func:`setwise.tasks.report.generic_page`); a task overrides it to draw
        its paper figure."""
        from setwise.tasks.report import generic_page

        return generic_page(self, runs, out, command=command, name=name)

    def report_ablation(self, which: str, runs: list, out, *, command: str = "",
                        name: str | None = None):
        """The results page of the ablation ``which`` (:attr:`ablations`), as :meth:`report`.
        The default is a table over its grid and a plot of the metric against its first
        option (:func:`setwise.tasks.report.ablation_page`)."""
        from setwise.tasks.report import ablation_page

        return ablation_page(self, which, runs, out, command=command, name=name)

    def run_name(self, config: Mapping) -> str:
        """Default run directory name for ``config``."""
        return f"{config['backend']}-{config['aggregator']}-s{config['seed']}"


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    if name not in TASKS:
        raise ValueError(f"get_task: argument 'name' is {name!r}; expected one of "
                         f"{', '.join(map(repr, TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
