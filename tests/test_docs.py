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


def test_imports_run_the_way_the_package_docstring_says():
    """graphssl/__init__.py lists the modules in layers; each may import only modules listed before it."""
    import ast
    import re
    from pathlib import Path

    bullets = [line for line in graphssl.__doc__.split("\n* ")[1:]]
    order = [name for bullet in bullets for name in re.findall(r"``(\w+)``", bullet.split(":")[0])]
    package = Path(graphssl.__file__).parent
    assert sorted(order) == sorted(p.stem for p in package.glob("*.py") if not p.stem.startswith("__"))
    for position, name in enumerate(order):
        tree = ast.parse((package / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:   # from .x import y
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 1:                  # from . import x
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("graphssl."):
                imported.add(node.module.split(".")[1])                                 # from graphssl.x import y
            elif isinstance(node, ast.Import):                                         # import graphssl.x
                imported.update(alias.name.split(".")[1] for alias in node.names
                                if alias.name.startswith("graphssl."))
        later = sorted((imported & set(order)) - set(order[:position]))  # (``from . import __version__``: no module)
        assert not later, f"graphssl.{name} imports {later}, listed after it in graphssl/__init__.py"
