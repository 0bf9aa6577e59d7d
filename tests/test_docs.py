"""The Examples in graphssl's docstrings run as written (those needing data or a run folder are marked SKIP)."""

import doctest
import importlib
import pkgutil

import pytest

import graphssl

MODULES = sorted(name for _, name, _ in pkgutil.iter_modules(graphssl.__path__, "graphssl.")
                 if name != "graphssl.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see the output above)"
