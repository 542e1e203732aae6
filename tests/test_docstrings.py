"""The Examples sections of the public docstrings run and print what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "skimportance._result",
    "skimportance.wrappers",
    "skimportance.permutation",
    "skimportance.conditional",
    "skimportance.weights",
    "skimportance.probe",
    "skimportance.gradient",
    "skimportance.interactions",
    "skimportance.selection",
    "skimportance.model_selection",
    "skimportance.plotting",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    pytest.importorskip("matplotlib").use("Agg")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
    assert result.attempted > 0, f"{name} has no examples"
