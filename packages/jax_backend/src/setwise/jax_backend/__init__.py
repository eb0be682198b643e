"""setwise.jax_backend: the JAX backend (built in issue 4)."""

raise ImportError("setwise.jax_backend is not built yet")
