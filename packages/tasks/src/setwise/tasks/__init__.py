"""setwise.tasks: the paper tasks, their models and training loops, and the ``setwise`` command.

A task (:class:`~setwise.tasks.registry.Task`) is data + one model per backend + the paper's
metric, in its own subpackage (``setwise/tasks/<task>/``): its model is described and
initialised once in NumPy (``model.py``) and written per backend (``torch_model.py``,
``jax_model.py``) as pure functions of the same flat parameter mapping
(:mod:`setwise.tasks.protocol`), from the shared layer families of
:mod:`setwise.tasks.layers`. One
schedule (:func:`setwise.tasks.train.fit`) drives a backend trainer
(:mod:`~setwise.tasks.loops.torch_loop`, :mod:`~setwise.tasks.loops.jax_loop`): Adam, seeded
batches, periodic evaluation, metrics as JSON lines, checkpoints and ``--resume``.

Adding a task: subclass :class:`~setwise.tasks.registry.Task` (options with CPU-sized
defaults, a ``paper`` preset, ``train_batch``, ``eval_batches``, ``init_params``,
``build_model``, ``evaluate``, optionally a ``sweep``) and add one line to
:data:`setwise.tasks.registry.TASKS`; ``setwise train/sweep/tasks`` pick it up.
"""

from setwise.tasks.registry import TASKS, Option, SweepSpec, Task, get_task, task_names

__all__ = ["TASKS", "Option", "SweepSpec", "Task", "get_task", "task_names"]
