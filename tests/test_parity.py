"""The compiled backend and the NumPy reference expose one interface."""
import inspect

import pytest

import fastnn
from fastnn import compiled, reference


def test_same_kernels():
    assert set(compiled.KERNELS) == set(reference.KERNELS)
    assert len(reference.KERNELS) >= 2 + 16 + 10 + 4


@pytest.mark.parametrize("name", reference.KERNELS)
def test_same_signature(name):
    ours, twin = inspect.signature(getattr(compiled, name)), inspect.signature(getattr(reference, name))
    assert list(ours.parameters) == list(twin.parameters)
    for p in twin.parameters.values():  # defaults agree (Cython may show them as text)
        if p.default is not inspect.Parameter.empty:
            assert str(ours.parameters[p.name].default) == str(p.default), p.name


@pytest.mark.parametrize("name", reference.KERNELS)
def test_every_kernel_documented(name):
    assert getattr(compiled, name).__doc__ and getattr(reference, name).__doc__


def test_backend_lookup():
    assert fastnn.get_backend("numpy").raw is reference
    with pytest.raises(ValueError, match="unknown backend"):
        fastnn.get_backend("cuda")
