"""Training configurations: a task's defaults, then a preset, then explicit overrides.

A configuration is a plain JSON-serialisable ``dict``; it is saved as ``config.json`` in the
run directory, and ``--resume`` refuses a configuration that differs from the saved one.

Typed: :func:`resolve` converts every value to its :class:`~setwise.tasks.registry.Option`'s
type (``int``, ``float``, ``str``, ``bool``; a list of them for a sequence), so no consumer
casts: ``3.0`` from JSON is the int ``3``, ``1`` is the float ``1.0``, ``"2"`` is refused
for an int, and ``True`` is no number. ``None`` is a value only for an option with
``allow_none`` (its meaning is the option's, e.g. "no clipping"), never encoded as 0; in
``overrides`` it means "not given". Anything else is a :class:`ConfigError` naming the
option and what was expected.
"""

from __future__ import annotations

import math
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
        Option("seed", 0, "seed of the parameters and of the training data", int, bound=">= 0"),
        Option("steps", steps, "number of Adam steps", int, bound=">= 1"),
        Option("batch_size", batch_size, "sets per training step", int, bound=">= 1"),
        Option("lr", lr, "Adam learning rate (the papers sweep 1e-4, 3e-4, 1e-3)", float,
               bound="> 0"),
        Option("lr_patience", None, "halve the learning rate (times --lr-factor) after this "
               "many evaluation intervals without a lower mean training loss (paper 2's plateau "
               "scheduler); None: a constant rate", int, allow_none=True, bound=">= 0"),
        Option("lr_factor", 0.5, "the plateau scheduler's cut of the learning rate", float,
               bound="in (0, 1)"),
        Option("eval_every", eval_every, "steps between evaluations and checkpoints", int,
               bound=">= 1"),
        Option("log_every", log_every, "steps between training-loss lines", int, bound=">= 1"),
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
        config[key] = value
    by_name = {o.name: o for o in task.options}
    config = {k: convert(task, by_name[k], v) for k, v in config.items()}
    check(task, config)
    return config


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def convert(task: Task, option: Option, value):
    """``value`` as ``option``'s type (a list of them for a sequence option).

    Raises :class:`ConfigError` for ``None`` unless ``option.allow_none``, a float with a
    fractional part (or a string) for an int, a bool for a number, a non-string for a str.
    """
    if value is None:
        if option.allow_none:
            return None
        raise ConfigError(f"task {task.name!r}: option {option.name!r} is None; expected "
                          f"{_TYPE_NAMES.get(option.type, option.type.__name__)}")
    if option.sequence:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"task {task.name!r}: option {option.name!r} is {value!r}; "
                              "expected a list of values")
        return [_convert_one(task, option, v) for v in value]
    return _convert_one(task, option, value)


def _convert_one(task: Task, option: Option, value):
    kind = option.type
    got = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    ok = None
    if kind is bool and isinstance(got, bool):
        ok = got
    elif kind is int and isinstance(got, int) and not isinstance(got, bool):
        ok = got
    elif kind is int and isinstance(got, float) and got.is_integer():
        ok = int(got)
    elif kind is float and isinstance(got, (int, float)) and not isinstance(got, bool):
        ok = float(got)
    elif kind is str and isinstance(got, str):
        ok = got
    elif kind not in _TYPE_NAMES:
        ok = kind(got)
    if ok is None:
        raise ConfigError(f"task {task.name!r}: option {option.name!r} is {value!r}; expected "
                          f"{_TYPE_NAMES[kind]}")
    return ok


def check(task: Task, config: Mapping):
    """Raise :class:`ConfigError` for a configuration the training loop cannot run."""
    by_name = {o.name: o for o in task.options}
    for key, value in config.items():
        choices = by_name[key].choices
        if choices is not None and value not in choices and value is not None:
            raise ConfigError(f"task {task.name!r}: option {key!r} is {value!r}; expected one of "
                             f"{', '.join(map(repr, choices))}")
    for key in ("steps", "batch_size", "eval_every", "log_every"):
        if int(config[key]) < 1:
            raise ConfigError(f"task {task.name!r}: option {key!r} is {config[key]!r}; expected "
                             "a positive int")
    for key, value in config.items():
        problem = bound_problem(by_name[key], value)
        if problem is not None:
            raise ConfigError(f"task {task.name!r}: option {key!r} (--{key.replace('_', '-')}) "
                              f"is {value!r}; expected {problem}")


_BOUNDS = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, ">= 1": lambda v: v >= 1,
           "in (0, 1)": lambda v: 0 < v < 1}


def bound_problem(option: Option, value) -> str | None:
    """``None`` if ``value`` is within ``option``'s range, else what was expected."""
    if option.type not in (int, float) or value is None:
        return None
    values = value if option.sequence else [value]
    if option.type is float and not all(math.isfinite(float(v)) for v in values):
        return "a finite number"
    if option.bound is not None and option.bound not in _BOUNDS:
        raise ValueError(f"Option {option.name!r}: bound is {option.bound!r}; expected one of "
                         f"{', '.join(map(repr, _BOUNDS))}")
    if option.bound is not None and not all(_BOUNDS[option.bound](v) for v in values):
        return f"a number {option.bound}"
    return None
