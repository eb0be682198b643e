"""Training loops, one per backend, driven by :func:`setwise.tasks.train.fit`.

Both trainers hold the task's flat parameters (torch: leaf tensors; JAX: a dict pytree),
its state, and Adam's state, and expose the same methods: ``step(batch, step)``,
``predict(batch, index)``, ``checkpoint(step, elapsed)``, ``restore(checkpoint)``,
``set_weights(params, state)``.
"""

#: Evaluation batch ``i`` draws its randomness as step ``EVAL_STEP - i`` would: a fixed draw
#: per batch, apart from every training step (steps stay far below 2**31).
EVAL_STEP = 2**31 - 1


def eval_step(index: int) -> int:
    """The randomness step of evaluation batch ``index``."""
    return EVAL_STEP - index
