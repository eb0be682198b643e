"""Same names everywhere: every backend exposes the reference's public API, signature for
signature (argument names, order, kinds and defaults)."""

import inspect

import pytest

from setwise.reference import PUBLIC_API


@pytest.mark.parametrize("name", PUBLIC_API)
def test_same_signature_as_reference(backend, ref, name):
    assert hasattr(backend, name), f"{backend.__name__} lacks {name}"
    want = inspect.signature(getattr(ref, name))
    got = inspect.signature(getattr(backend, name))
    simplify = lambda sig: [(p.name, p.kind, p.default) for p in sig.parameters.values()]  # noqa: E731
    assert simplify(got) == simplify(want), f"{backend.__name__}.{name}{got} != reference{want}"
