"""PyTorch versions of :mod:`setwise.tasks.layers`' families (same names, tensors)."""
