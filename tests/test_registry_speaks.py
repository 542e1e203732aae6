"""The registry speaks for the methods.

What the command line, the Display and the selectors say or decide about a
method comes from its ``MethodSpec``, and no method name is written as a string
anywhere in the package but the registry and the method's own module. So adding
a method stays one module, one ``MethodSpec`` and its tests.
"""

import ast
import dataclasses
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import skimportance
from skimportance import (
    ImportanceDisplay,
    ImportanceEstimator,
    ImportanceResult,
    ImportanceSelector,
    cli,
    cross_validate_importance,
    importance_scorer,
)
from skimportance._methods import (
    DEFAULT_METHOD,
    DEMO_METHODS,
    EXPLAIN_METHODS,
    REGISTRY,
    MethodSpec,
    resolve_methods,
)

PACKAGE = Path(skimportance.__file__).parent
# The registry and the modules of the registered functions may name methods.
OWNERS = {PACKAGE / "_methods.py"} | {
    Path(sys.modules[spec.function.__module__].__file__) for spec in REGISTRY.values()
}
# local_importance's own per-row methods (not global importances, so not in
# the registry) include an "occlusion" of its own.
OWNERS |= {PACKAGE / "local.py"}


def method_literals(source: str, names) -> list[tuple[int, str]]:
    """(line, name) of every string constant equal to one of ``names``,
    docstrings excepted."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        )
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and id(node) not in docstrings
    ]


def flipped(monkeypatch, name, **changes):
    """Replace the registry entry ``name`` with changed fields for one test."""
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], **changes))


# -- no method name outside the registry ------------------------------------------
def test_no_method_name_is_written_outside_the_registry_and_its_module():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30  # the scan sees the whole package, subpackages too
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {name!r}"
        for path in modules
        if path not in OWNERS
        for line, name in method_literals(path.read_text(encoding="utf-8"), REGISTRY)
    ]
    assert found == [], "method names outside the registry: " + "; ".join(found)


def test_the_scan_finds_a_planted_method_name():
    name = next(iter(REGISTRY))
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert method_literals(source, REGISTRY) == []
    plant = f"\n\ndef planted(method={name!r}):\n    return {{{name!r}: 1}}\n"
    planted = source + plant
    n_lines = len(planted.splitlines())
    assert method_literals(planted, REGISTRY) == [
        (n_lines - 1, name),
        (n_lines, name),
    ]
    documented = f'def f():\n    """Runs {name!r}."""\n    """{name}"""\n'
    assert method_literals(documented, REGISTRY) == [(3, name)]  # not a docstring


# -- defaults ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "adapter",
    [
        ImportanceEstimator,
        ImportanceSelector,
        cross_validate_importance,
        importance_scorer,
        ImportanceDisplay.from_estimator,
    ],
)
def test_adapters_default_to_the_registry_default(adapter):
    assert DEFAULT_METHOD in REGISTRY
    assert inspect.signature(adapter).parameters["method"].default == DEFAULT_METHOD


def test_cli_default_methods_are_the_registry_lists():
    assert set(DEMO_METHODS) | set(EXPLAIN_METHODS) <= set(REGISTRY)
    parser = cli._build_parser()
    assert parser.parse_args(["demo"]).methods.split(",") == list(DEMO_METHODS)
    explain = parser.parse_args(["explain", "x.csv", "--target", "y"])
    assert explain.methods.split(",") == list(EXPLAIN_METHODS)


# -- what the command line says ------------------------------------------------------
def signed_in_help() -> set[str]:
    lines = cli._methods_help().splitlines()[1:]
    return {line.split()[0] for line in lines if line.endswith("(signed)")}


def test_cli_says_which_methods_are_signed_from_their_specs(monkeypatch):
    calls = resolve_methods(list(REGISTRY))
    signed = {name for name, spec in REGISTRY.items() if spec.signed}
    unsigned = [name for name in REGISTRY if name not in signed]
    assert signed and unsigned
    note = cli._signed_note(calls)
    assert set(note.replace(",", " ").split()) - {"and", "is", "are", "signed."} == (
        signed
    )
    assert signed_in_help() == signed

    flipped(monkeypatch, unsigned[0], signed=True)
    for name in signed:
        flipped(monkeypatch, name, signed=False)
    calls = resolve_methods(list(REGISTRY))
    assert cli._signed_note(calls) == f" {unsigned[0]} is signed."
    assert signed_in_help() == {unsigned[0]}
    for name in signed:
        flipped(monkeypatch, name, signed=True)
    assert cli._signed_note(resolve_methods(unsigned[1:])) == ""


def test_cli_help_lists_every_method_with_its_summary(monkeypatch):
    new = dataclasses.replace(
        next(iter(REGISTRY.values())), name="planted", summary="a planted summary"
    )
    monkeypatch.setitem(REGISTRY, "planted", new)
    text = cli._methods_help()
    for name, spec in REGISTRY.items():
        assert any(
            line.split()[0] == name and spec.summary in line
            for line in text.splitlines()[1:]
        ), name
    assert [call.name for call in cli._parse_methods("planted")] == ["planted"]


# -- what the adapters decide ------------------------------------------------------
def test_display_orders_signed_results_by_magnitude(monkeypatch):
    name = next(name for name, spec in REGISTRY.items() if spec.signed)
    result = ImportanceResult([-3.0, 1.0, 2.0], ["a", "b", "c"], method=name)
    assert ImportanceDisplay.from_result(result).plot().features_.tolist() == [
        "a",
        "c",
        "b",
    ]
    flipped(monkeypatch, name, signed=False)
    assert ImportanceDisplay.from_result(result).plot().features_.tolist() == [
        "c",
        "b",
        "a",
    ]


class NeverFitted(Ridge):
    """A Ridge whose fit must not be reached."""

    def fit(self, X, y, **params):
        raise AssertionError("fitted although the method cannot read this model")


@pytest.mark.parametrize("adapter", ["estimator", "selector", "cross_validate"])
def test_keras_only_methods_are_refused_before_training(adapter, monkeypatch):
    name = next(name for name, spec in REGISTRY.items() if spec.keras_only)
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0)

    def run():
        if adapter == "estimator":
            ImportanceEstimator(NeverFitted(), method=name).fit(X, y)
        elif adapter == "selector":
            ImportanceSelector(NeverFitted(), method=name).fit(X, y)
        else:
            cross_validate_importance(NeverFitted(), X, y, cv=2, method=name)

    with pytest.raises(TypeError, match="Expected a Keras model.*found NeverFitted"):
        run()
    flipped(monkeypatch, name, keras_only=False)  # the spec decides, not the name
    with pytest.raises(AssertionError, match="fitted although"):
        run()


def test_columns_a_method_reports_come_from_its_spec(monkeypatch):
    name = next(name for name, spec in REGISTRY.items() if "columns" in spec.parameters)
    assert REGISTRY[name].columns == ("raw", "model")
    (call,) = resolve_methods(name, {"columns": "model"})
    assert call.params == {"columns": "model"}
    flipped(monkeypatch, name, columns=("raw",))
    with pytest.raises(ValueError, match=f"{name!r} reports on columns raw; got"):
        resolve_methods(name, {"columns": "model"})


def test_a_new_method_is_one_registry_entry(monkeypatch):
    """A method the adapters have never seen runs through them unchanged."""

    def doubled_coefficients(estimator, X=None, *, scale: float = 2.0):
        names = [f"x{k}" for k in range(len(estimator.coef_))]
        return ImportanceResult(scale * estimator.coef_, names, method="doubled")

    spec = MethodSpec(
        "doubled",
        doubled_coefficients,
        signed=True,
        keras_only=False,
        summary="twice the coefficients",
    )
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([-3.0, 1.0, 0.0])
    meta = ImportanceEstimator(Ridge(alpha=1e-6), method="doubled").fit(X, y)
    np.testing.assert_allclose(meta.feature_importances_, [6.0, 2.0, 0.0], atol=1e-4)
    assert "doubled" in cli._methods_help()
    assert cli._signed_note(cli._parse_methods("doubled")) == " doubled is signed."
