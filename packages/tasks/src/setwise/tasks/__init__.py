"""setwise.tasks: the paper tasks, their models and training loops, and the ``setwise`` command.

A task (:class:`~setwise.tasks.registry.Task`) is data + one model per backend + the paper's
metric. Its models are described once (:mod:`setwise.tasks.models.spec`: encoder, setwise
aggregator, head) and built in PyTorch (:mod:`~setwise.tasks.models.torch_models`) and JAX
(:mod:`~setwise.tasks.models.jax_models`) from the same NumPy-initialised parameters. One
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
