"""JAX versions of :mod:`setwise.tasks.layers`' families (same names, pure, jit-able)."""
