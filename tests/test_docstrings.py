"""The Examples sections of the docstrings run and print what they show.

Modules are discovered, not listed: a new module's examples run without anyone
remembering to add it here, and every public name must show an example.
"""

import doctest
import importlib
import pkgutil

import pytest

import skimportance


def _discover_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(skimportance.__path__, "skimportance.")
    )


def _modules_with_examples() -> list[str]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _discover_modules():
        module = importlib.import_module(name)
        if any(test.examples for test in finder.find(module)):
            found.append(name)
    return found


MODULES = _modules_with_examples()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    pytest.importorskip("matplotlib").use("Agg")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_discovery_finds_the_method_modules_and_the_engines():
    # A positive control: discovery reaches the subpackage and the modules whose
    # examples an old hand-written list forgot.
    discovered = _discover_modules()
    assert "skimportance._engines.plan" in discovered
    assert {"skimportance._compare", "skimportance._mlp"} <= set(MODULES)


@pytest.mark.parametrize("name", skimportance.__all__)
def test_every_public_name_shows_an_example(name):
    obj = getattr(skimportance, name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert any(test.examples for test in tests), f"{name}'s docstring has no example"
