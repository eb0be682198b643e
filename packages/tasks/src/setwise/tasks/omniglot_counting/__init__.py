"""Omniglot class counting (paper 1, section 5.2, Fig. 4b): how many distinct characters are
in a set of 16 images? :mod:`.task` (the task), :mod:`.data` (sets as a pure function of
``(seed, step)``), :mod:`.model` (the model described and initialised once, NumPy forward),
:mod:`.torch_model`, :mod:`.jax_model`, :mod:`.metrics` (accuracy and cross-entropy)."""
