"""Building blocks shared by the paper tasks, one family per module, in every backend.

``layers/<family>.py`` holds the NumPy side of a family: the parameter layout (documented in
its ``init_*`` function, which draws the values once for every backend) and a NumPy forward
that is the reference for the backends. ``layers/torch/<family>.py`` and
``layers/jax/<family>.py`` define the same functions under the same names on tensors / JAX
arrays. Every function takes ``(params, prefix, ...)``: a layer's parameters are the entries
``{prefix}_...`` of the model's flat mapping, so names survive into gradients and
checkpoints.

Families: :mod:`.mlp` (linear, layer norm, Listing 1's residual MLP), :mod:`.batch_norm`,
:mod:`.readout` (every set aggregator behind one table), and those the tasks add.
"""
