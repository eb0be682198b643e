"""Training configurations: a task's defaults, then a preset, then explicit overrides.

A configuration is a plain JSON-serialisable ``dict``; it is saved as ``config.json`` in the
run directory, and ``--resume`` refuses a configuration that differs from the saved one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from setwise.tasks.registry import Option, Task

BACKENDS = ("torch", "jax")


class ConfigError(ValueError):
    """An unknown preset or option, a value outside its choices, an impossible schedule."""


def training_options(*, aggregators, aggregator, steps, batch_size, lr, eval_every,
                     log_every) -> tuple[Option, ...]:
    """The options every task has, with the task's defaults."""
    return (
        Option("backend", "torch", "array framework the model runs in", str, BACKENDS),
        Option("aggregator", aggregator, "set aggregation", str, tuple(aggregators)),
        Option("seed", 0, "seed of the parameters and of the training data", int),
        Option("steps", steps, "number of Adam steps", int),
        Option("batch_size", batch_size, "sets per training step", int),
        Option("lr", lr, "Adam learning rate (the papers sweep 1e-4, 3e-4, 1e-3)", float),
        Option("eval_every", eval_every, "steps between evaluations and checkpoints", int),
        Option("log_every", log_every, "steps between training-loss lines", int),
    )


def defaults(task: Task) -> dict[str, Any]:
    return {o.name: (list(o.default) if o.sequence else o.default) for o in task.options}


def resolve(task: Task, preset: str | None = None, overrides: Mapping | None = None) -> dict:
    """``task``'s configuration: defaults, updated by ``preset``, then by ``overrides``.

    ``None`` values in ``overrides`` mean "not given". Raises :class:`ConfigError` for an
    unknown preset or option, or a value out of range.
    """
    config = defaults(task)
    if preset is not None:
        if preset not in task.presets:
            raise ConfigError(f"task {task.name!r}: unknown preset {preset!r}; expected one of "
                             f"{', '.join(map(repr, task.presets))}")
        config.update(task.presets[preset])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in config:
            raise ConfigError(f"task {task.name!r} has no option {key!r}; expected one of "
                             f"{', '.join(sorted(config))}")
        config[key] = list(value) if isinstance(value, tuple) else value
    check(task, config)
    return config


def check(task: Task, config: Mapping):
    """Raise :class:`ConfigError` for a configuration the training loop cannot run."""
    by_name = {o.name: o for o in task.options}
    for key, value in config.items():
        choices = by_name[key].choices
        if choices is not None and value not in choices:
            raise ConfigError(f"task {task.name!r}: option {key!r} is {value!r}; expected one of "
                             f"{', '.join(map(repr, choices))}")
    for key in ("steps", "batch_size", "eval_every", "log_every"):
        if int(config[key]) < 1:
            raise ConfigError(f"task {task.name!r}: option {key!r} is {config[key]!r}; expected "
                             "a positive int")
