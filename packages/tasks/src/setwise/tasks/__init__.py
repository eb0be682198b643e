"""setwise.tasks: the paper tasks, their models and training loops, and the ``setwise`` command.

The layer, from the bottom:

- :mod:`~setwise.tasks.protocol`: a model is a pure function of a flat parameter mapping,
  ``loss(params, state, batch, rng, train) -> (loss, logs, new_state)`` and
  ``predict(params, state, batch, rng) -> {name: array}``, written once per backend; it holds
  only static configuration. Parameters have the same names and shapes in NumPy, PyTorch and
  JAX (weights ``[in, out]``), so gradients compare by name and checkpoints move between
  backends. Randomness (:mod:`~setwise.tasks.rng`) and state (batch norm) are explicit.
- :mod:`~setwise.tasks.layers`: the shared building blocks, one family per module
  (``mlp``, ``batch_norm``, ``readout``: every set aggregator behind one table, ``resnet``,
  ``gnn``, ...), each with its NumPy layout, initialiser and forward in
  ``layers/<family>.py`` and the same functions on ``(params, prefix, ...)`` in
  ``layers/torch/`` and ``layers/jax/``.
- One subpackage per task (``setwise/tasks/<task>/``, e.g. :mod:`~setwise.tasks.median`):
  ``task.py`` (the :class:`~setwise.tasks.registry.Task`: options with CPU-sized defaults,
  presets ``cpu``, ``tiny`` and ``paper``, data as a pure function of ``(seed, step)``, the
  paper's metric, the sweep of its figure), ``model.py`` (the model described and initialised
  once in NumPy), ``torch_model.py``, ``jax_model.py``, and its metrics and report page.
- The trainers (:mod:`~setwise.tasks.loops.torch_loop`: parameters as leaf tensors;
  :mod:`~setwise.tasks.loops.jax_loop`: a dict pytree, one jitted step) run Adam with the
  same update; :func:`setwise.tasks.train.fit` owns the schedule (logging, evaluation,
  checkpoints, resume, ``init_from``). A checkpoint (:mod:`~setwise.tasks.checkpoint`) is one
  ``.npz`` of parameters, state and Adam's moments by flat name, the same for both backends.
- :mod:`~setwise.tasks.check` (``setwise check <task>|all``): the PyTorch and JAX models of a
  task give the same float64 loss and gradients by name; :mod:`~setwise.tasks.sweep`
  (``setwise sweep <task>``): a figure's grid as ordinary runs, its page written by the
  task's ``report`` with the helpers of :mod:`~setwise.tasks.report`.

Adding a task: a subpackage as above (the median task is the worked example), and one line
``"<name>": "setwise.tasks.<task>.task:<Class>"`` in :data:`setwise.tasks.registry.TASKS`.
``setwise train/sweep/check/tasks`` pick it up, and ``tests/test_every_task.py`` then trains
its ``tiny`` preset on both backends, checks the two models against each other, resumes it
after SIGKILL and evaluates torch-trained parameters on JAX, with nothing more to write.
Import torch and JAX only inside ``build_model`` (the command imports every task).
"""

from setwise.tasks.registry import TASKS, Option, SweepSpec, Task, get_task, task_names

__all__ = ["TASKS", "Option", "SweepSpec", "Task", "get_task", "task_names"]
