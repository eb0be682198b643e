"""setwise.torch_backend: the PyTorch backend (built in issue 3)."""

raise ImportError("setwise.torch_backend is not built yet")
