"""Every public method through the same checks.

``ROWS`` lists every public way to compute an importance: one row per entry of
the method registry (calling its public function with its fixed arguments;
methods that work with any estimator get a second, ``[generic]`` row on a
Ridge), plus the scikit-learn adapters. Each row goes through the same checks:

* the bad-input battery ``BAD_INPUTS``: each bad input must raise a
  ValueError, TypeError or NotFittedError whose message names the problem,
  before any data reaches TensorFlow (the ``no_tensorflow`` fixture turns
  every way into the network into a ``ReachedTensorFlow`` error, and
  ``test_the_guard_sees_every_method_reach_the_network`` shows that it does);
* inputs are never modified: read-only arrays, DataFrames (values and dtypes)
  and read-only memmaps;
* no process-wide state is left changed: TensorFlow op determinism, the
  ``TF_DETERMINISTIC_OPS`` variable, TensorFlow's global seed and generator,
  Python's and NumPy's global random states.

Where a check does not apply to a method row, the reason is derived from
what its registry entry declares (as scikit-learn derives its checks from
tags): a method without ``n_repeats`` skips the ``n_repeats`` check, one that
does not read weights skips the unsupported-layer check, and so on. Only the
adapters' reasons are listed by hand, in ``NOT_APPLICABLE``. Skips carry the
reason.
"""

from __future__ import annotations

import copy
import os
import random
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import make_regressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge

from skimportance import (
    ImportanceDisplay,
    ImportanceEstimator,
    ImportanceSelector,
    cross_validate_importance,
    from_keras,
    gradient_importance,
    importance_scorer,
    permutation_importance,
    probe_importance,
)
from skimportance._gradient_tape import GradientRunner
from skimportance._methods import REGISTRY, RUN_PARAMETERS, MethodSpec
from skimportance._model import LocatedModel

N_ROWS, N_FEATURES = 40, 4
COLUMNS = ["a", "b", "c", "d"]


# --- the rows: every public way to compute an importance ------------------------------

#: Small, fast, seeded values for the parameters a method takes.
SMALL = {"n_repeats": 2, "random_state": 0, "n_steps": 4}


def method_row_params(spec: MethodSpec) -> dict:
    return {key: value for key, value in SMALL.items() if key in spec.parameters}


def calling(spec: MethodSpec) -> Callable:
    """Call the method's public function as a user would, with its fixed args."""

    def run(estimator, X, y, **params):
        data = {"X": X, "y": y} if spec.needs_y else {"X": X}
        if spec.fit_data == "background" and "background" not in params:
            data["background"] = X  # a reference needs rows that stand for the data
        return spec.function(estimator, **data, **{**spec.fixed, **params})

    return run


def run_importance_estimator(estimator, X, y, method="permutation", **params):
    return ImportanceEstimator(
        estimator, method=method, **adapter_kwargs(method, params)
    ).fit(X, y)


def run_importance_selector(estimator, X, y, method="permutation", **params):
    selector = ImportanceSelector(
        estimator, method=method, prefit=True, **adapter_kwargs(method, params)
    )
    return selector.fit(X, y)


def run_cross_validate(estimator, X, y, method="permutation", **params):
    return cross_validate_importance(
        estimator, X, y, cv=2, method=method, **adapter_kwargs(method, params)
    )


def run_importance_scorer(estimator, X, y, method="permutation", **params):
    scorer = importance_scorer(method, **adapter_kwargs(method, params))
    return scorer(estimator, X, y)


def run_display(estimator, X, y, method="permutation", **params):
    return ImportanceDisplay.from_estimator(
        estimator, X, y, method=method, **adapter_kwargs(method, params)
    )


def adapter_kwargs(method: str, params: dict) -> dict:
    """An adapter's keywords: run parameters by name (small and seeded by
    default), the rest in method_params."""
    spec = REGISTRY.get(method)
    run = {"random_state": 0}
    if spec is not None and "n_repeats" in spec.parameters:
        run["n_repeats"] = 2
    run.update({k: v for k, v in params.items() if k in RUN_PARAMETERS})
    rest = {k: v for k, v in params.items() if k not in RUN_PARAMETERS}
    return {**run, "method_params": rest or None}


@dataclass(frozen=True)
class Row:
    """One public way to compute an importance, callable as ``(est, X, y, **kw)``.

    ``estimator`` names the estimator the row takes: ``"keras"`` (a fitted
    ``from_keras`` network), ``"ridge"`` (a fitted non-Keras estimator) or
    ``"trainable"`` (an unfitted Keras regressor, for adapters that fit).
    ``choice`` is the keyword that names the method or kind, if any. ``spec``
    is the registry entry of a method row, None for an adapter.
    """

    name: str
    run: Callable
    params: dict = field(default_factory=dict)
    estimator: str = "keras"
    choice: str | None = "method"
    spec: MethodSpec | None = None

    def __call__(self, estimator, X, y, **params):
        return self.run(estimator, X, y, **{**self.params, **params})


def _method_rows():
    for spec in REGISTRY.values():
        common = dict(
            run=calling(spec),
            params=method_row_params(spec),
            choice=next(iter(spec.fixed), None),
            spec=spec,
        )
        yield Row(spec.name, **common)
        if not spec.keras_only:
            yield Row(f"{spec.name}[generic]", estimator="ridge", **common)


METHOD_ROWS = list(_method_rows())
ADAPTER_ROWS = [
    Row("ImportanceEstimator", run_importance_estimator, estimator="trainable"),
    Row("ImportanceSelector", run_importance_selector),
    Row("cross_validate_importance", run_cross_validate, estimator="trainable"),
    Row("importance_scorer", run_importance_scorer),
    Row("ImportanceDisplay", run_display),
]
ROWS = METHOD_ROWS + ADAPTER_ROWS
ROW_NAMES = [row.name for row in ROWS]
FITTING_ROWS = {"ImportanceEstimator", "cross_validate_importance"}
ADAPTER_NAMES = {row.name for row in ADAPTER_ROWS}


# --- fixtures -------------------------------------------------------------------------


def fixed_mlp(n_inputs=N_FEATURES, extra_layer=None, seed=0):
    """A small tanh network with seeded weights: no training needed."""
    import keras

    layers = [keras.Input((n_inputs,)), keras.layers.Dense(5, activation="tanh")]
    if extra_layer is not None:
        layers.append(extra_layer)
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def two_input_model():
    import keras

    left, right = keras.Input((2,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([left, right])
    return keras.Model([left, right], keras.layers.Dense(1)(joined))


@pytest.fixture(scope="module")
def ctx():
    """Data and estimators shared by every check; never modified by them."""
    import keras

    model = fixed_mlp()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    keras_estimator = from_keras(model, task="regression")
    y = keras_estimator.predict(X) + rng.normal(scale=0.1, size=N_ROWS)
    frame = pd.DataFrame(
        {
            "a": X[:, 0],
            "b": X[:, 1].astype(np.float32),
            "c": rng.integers(-2, 3, size=N_ROWS),
            "d": X[:, 3],
        }
    )
    ridge = Ridge().fit(X, y)
    return SimpleNamespace(
        X=X,
        y=y,
        frame=frame,
        fitted={
            ("keras", False): keras_estimator,
            ("keras", True): from_keras(
                model, task="regression", feature_names=COLUMNS
            ),
            ("ridge", False): ridge,
            ("ridge", True): Ridge().fit(frame, y),
        },
        unfitted={"keras": make_regressor(), "ridge": Ridge()},
        special={
            "ridge": ridge,
            "layer_norm": from_keras(
                fixed_mlp(extra_layer=keras.layers.LayerNormalization()),
                task="regression",
            ),
            "two_inputs": two_input_model(),
        },
    )


def estimator_for(row: Row, ctx, *, named: bool = False):
    """The estimator ``row`` takes; ``named`` for DataFrame input."""
    if row.estimator == "trainable":
        return make_regressor(model__hidden=(3,), epochs=1, batch_size=64)
    return ctx.fitted[row.estimator, named]


class ReachedTensorFlow(AssertionError):
    """Data reached the Keras model, which a bad input must never do."""


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Make every way into the network raise ReachedTensorFlow.

    The batched forward pass and the gradient runner (the only ways the
    method functions feed the network), plus Keras's own entry points (used
    by the wrappers' fit and predict).
    """
    import keras

    def refuse(*args, **kwargs):
        raise ReachedTensorFlow("data reached the Keras model")

    monkeypatch.setattr(LocatedModel, "forward", refuse)
    monkeypatch.setattr(GradientRunner, "__call__", refuse)
    for name in ("__call__", "fit", "predict", "predict_on_batch", "train_on_batch"):
        monkeypatch.setattr(keras.Model, name, refuse)


# --- the bad-input battery ------------------------------------------------------------


def _with_value(X, row, column, value):
    X = X.copy()
    X[row, column] = value
    return X


def _strings(X):
    """X with a column of category labels, as read from a CSV file."""
    X = X.astype(object)
    X[:, 1] = np.where(X[:, 1].astype(float) > 0, "high", "low")
    return X


@dataclass(frozen=True)
class BadInput:
    """One bad input; ``call(row, ctx)`` must raise ``error`` matching ``match``.

    ``X``/``y`` spoil the good data; ``estimator`` replaces the row's
    estimator: ``"unfitted"`` (an unfitted one of the same kind) or a name in
    ``ctx.special``; ``params`` go to the call; ``choice`` is passed as the
    row's method or kind name; ``method`` is the method the adapters run.
    """

    name: str
    error: type
    match: str
    X: Callable | None = None
    y: Callable | None = None
    estimator: str | None = None
    params: dict = field(default_factory=dict)
    choice: str | None = None
    method: str | None = None

    def call(self, row: Row, ctx):
        if self.estimator is None:
            estimator = estimator_for(row, ctx)
        elif self.estimator == "unfitted":
            estimator = ctx.unfitted[row.estimator]
        else:
            estimator = ctx.special[self.estimator]
        params = dict(self.params)
        if self.choice is not None:
            params[row.choice] = self.choice
        if self.method is not None and row.name in ADAPTER_NAMES:
            params["method"] = self.method
        X = ctx.X if self.X is None else self.X(ctx.X)
        y = ctx.y if self.y is None else self.y(ctx.y)
        return row(estimator, X, y, **params)


BAD_INPUTS = [
    BadInput("nan_in_X", ValueError, "NaN", X=lambda X: _with_value(X, 3, 1, np.nan)),
    BadInput(
        "inf_in_X", ValueError, "infinity", X=lambda X: _with_value(X, 5, 2, np.inf)
    ),
    BadInput(
        "too_few_columns", ValueError, "X has 3 features.*4", X=lambda X: X[:, :3]
    ),
    BadInput(
        "too_many_columns",
        ValueError,
        "X has 5 features.*4",
        X=lambda X: np.hstack([X, X[:, :1]]),
    ),
    BadInput("one_dimensional_X", ValueError, "1D|1-dimensional", X=lambda X: X[:, 0]),
    BadInput("strings_in_X", ValueError, "could not convert string", X=_strings),
    BadInput(
        "y_wrong_length",
        ValueError,
        "inconsistent numbers of samples",
        y=lambda y: y[:-1],
    ),
    BadInput("unfitted_estimator", NotFittedError, "not fitted", estimator="unfitted"),
    BadInput(
        "n_repeats_below_one",
        ValueError,
        # the adapters' words, or scikit-learn's for its drop-in
        r"n_repeats == 0, must be >= 1|'n_repeats' parameter of "
        r"(permutation|conditional)_importance must be an int in the range "
        r"\[1, inf\). Got 0",
        params={"n_repeats": 0},
    ),
    BadInput(
        "max_samples_zero",
        ValueError,
        r"'max_samples' parameter of (permutation|conditional)_importance must be an "
        r"int in the range \[1, inf\) or a float in the range \(0.0, 1.0\]. Got 0 "
        "instead",
        params={"max_samples": 0},
    ),
    BadInput(
        "max_samples_above_one",
        ValueError,
        r"'max_samples' parameter of (permutation|conditional)_importance .* Got 1.5 "
        "instead",
        params={"max_samples": 1.5},
    ),
    BadInput(
        "max_samples_above_n_samples",
        ValueError,
        "^max_samples must be <= n_samples$",
        params={"max_samples": N_ROWS + 1},
    ),
    BadInput(
        "no_feature_groups",
        ValueError,
        "feature_groups is empty",
        params={"feature_groups": []},
    ),
    BadInput(
        "empty_feature_group",
        ValueError,
        r"group #1 \[\] is empty",
        params={"feature_groups": [[0], []]},
    ),
    BadInput(
        "overlapping_feature_groups",
        ValueError,
        "column 'x1' is in group #0 .* and in group #1 .*must not overlap",
        params={"feature_groups": [[0, 1], [1, 2]]},
    ),
    BadInput(
        "feature_group_out_of_range",
        ValueError,
        "refers to column 4, out of range for X with 4 columns",
        params={"feature_groups": [[0, 4]]},
    ),
    BadInput(
        "unknown_feature_group_name",
        ValueError,
        "group 'g' refers to unknown column 'nope'",
        params={"feature_groups": {"g": ["nope"]}},
    ),
    BadInput(
        "unknown_method_name",
        ValueError,
        "Unknown importance method.*'nope'.*choose|must be one of .*; got 'nope'",
        choice="nope",
    ),
    BadInput(
        "unsupported_layer_for_weights",
        ValueError,
        "layer 'layer_normalization' is a LayerNormalization",
        estimator="layer_norm",
        method="olden",
    ),
    BadInput(
        "keras_only_method_on_ridge",
        TypeError,
        "Expected a Keras model.*found Ridge",
        estimator="ridge",
        method="saliency",
    ),
    BadInput(
        "baseline_wrong_length",
        ValueError,
        r"baseline must have one value per input .*\(4\); got shape \(3,\)",
        params={"baseline": [0.0, 0.0, 0.0]},
        method="probe",
    ),
    BadInput(
        "probe_wrong_length",
        ValueError,
        r"probe must have one value per input .*\(4\); got shape \(5,\)",
        params={"probe": np.ones(5)},
        method="probe",
    ),
    BadInput(
        "several_model_inputs",
        ValueError,
        r"several inputs \[.*\].*from_keras\(model, task=\.\.\., inputs=",
        estimator="two_inputs",
    ),
    # -- issue #14 ---------------------------------------------------------------
    BadInput(  # names: dict keys 1 and "1" both name a group "1"
        "group_names_collide",
        ValueError,
        "feature group name '1' is given twice, by key 1 and by key '1'",
        params={"feature_groups": {1: [0], "1": [1]}},
    ),
    BadInput(  # casting: finite in float64, infinity in the network's float32
        "infinite_after_cast_to_float32",
        ValueError,
        "finite in float64 but become infinity in float32",
        X=lambda X: _with_value(X, 5, 2, 1e39),
    ),
    BadInput(  # size checks against the memory budget, before any allocation
        "grid_resolution_over_budget",
        ValueError,
        r"grid_resolution=1000000000 needs about [\d,]+ MiB .* memory budget",
        params={"grid_resolution": 10**9},
        method="profile",
    ),
    BadInput(
        "n_steps_over_budget",
        ValueError,
        r"n_steps=1000000000 needs about [\d,]+ MiB .* memory budget",
        params={"n_steps": 10**9},
        method="integrated_gradients",
    ),
    BadInput(
        "batch_size_over_budget",
        ValueError,
        r"batch_size=1000000000 needs about [\d,]+ MiB .* memory budget",
        params={"batch_size": 10**9},
    ),
    BadInput(  # scorers: one metric where one result is made, before any fit
        "several_metrics_for_one_result",
        ValueError,
        r"needs a single metric, but scoring names 2 \('r2', 'neg_mean_squared",
        params={
            "scoring": {"r2": "r2", "neg_mean_squared_error": "neg_mean_squared_error"}
        },
    ),
]

# --- where a check does not apply -----------------------------------------------------

_FEATURE_GROUP_CHECKS = (
    "no_feature_groups",
    "empty_feature_group",
    "overlapping_feature_groups",
    "feature_group_out_of_range",
    "unknown_feature_group_name",
    "group_names_collide",
)
_MAX_SAMPLES_CHECKS = (
    "max_samples_zero",
    "max_samples_above_one",
    "max_samples_above_n_samples",
)
_SIZE_CHECKS = (
    "grid_resolution_over_budget",
    "n_steps_over_budget",
    "batch_size_over_budget",
)
_PARAMETER_CHECKS = {
    "n_repeats_below_one": "n_repeats",
    "baseline_wrong_length": "baseline",
    "probe_wrong_length": "probe",
    "grid_resolution_over_budget": "grid_resolution",
    "n_steps_over_budget": "n_steps",
    "batch_size_over_budget": "batch_size",
    "several_metrics_for_one_result": "scoring",
    **dict.fromkeys(_MAX_SAMPLES_CHECKS, "max_samples"),
    **dict.fromkeys(_FEATURE_GROUP_CHECKS, "feature_groups"),
}


def declared_not_applicable(check: str, row: Row) -> str | None:
    """Why ``check`` does not apply to a method row, from its registry entry."""
    spec = row.spec
    if check in _PARAMETER_CHECKS and _PARAMETER_CHECKS[check] not in spec.parameters:
        return f"method {spec.name!r} takes no {_PARAMETER_CHECKS[check]}"
    if check == "y_wrong_length" and not spec.needs_y:
        return f"method {spec.name!r} takes no y (needs_y=False)"
    if check == "unknown_method_name" and not spec.fixed:
        return f"{spec.function.__name__} has no method or kind argument"
    if check == "unsupported_layer_for_weights" and spec.reads != "weights":
        return f"method {spec.name!r} reads {spec.reads}, which any layer gives"
    if check == "keras_only_method_on_ridge" and not spec.keras_only:
        return f"method {spec.name!r} works with any fitted estimator"
    if check == "several_model_inputs" and row.estimator == "ridge":
        return "this row is about non-Keras estimators; its Keras row checks it"
    if check == "infinite_after_cast_to_float32" and row.estimator == "ridge":
        return "a Ridge computes in float64, where 1e39 is finite"
    if check == "batch_size_over_budget" and row.estimator == "ridge":
        return "batch_size sizes the Keras engine's batches; a Ridge has none"
    if check == "several_metrics_for_one_result":
        return (
            f"{spec.function.__name__} returns one result per metric (a dict); "
            "the adapters that make one result refuse several metrics"
        )
    return None


_CHECKED_AFTER_FIT = (
    "fits the estimator before measuring: method_params values are checked by "
    "the method function after that fit (its own row shows the check)"
)
# Adapters, by hand: (checks, rows, why).
NOT_APPLICABLE = [
    (
        ("unfitted_estimator", "too_few_columns", "too_many_columns"),
        FITTING_ROWS,
        "fits the estimator itself: X is training data, its width is learnt",
    ),
    (_MAX_SAMPLES_CHECKS + _FEATURE_GROUP_CHECKS, FITTING_ROWS, _CHECKED_AFTER_FIT),
    (
        (
            "unsupported_layer_for_weights",
            "baseline_wrong_length",
            "probe_wrong_length",
        ),
        FITTING_ROWS,
        "trains a network of its own building first; the weight/probe rows and "
        "the prefit adapters show the check",
    ),
    (_SIZE_CHECKS, FITTING_ROWS, _CHECKED_AFTER_FIT),
    (
        ("several_metrics_for_one_result",),
        {"ImportanceDisplay"},
        "draws one result per metric, so several metrics are welcome",
    ),
    (
        ("several_model_inputs",),
        FITTING_ROWS | {"ImportanceSelector"},
        "takes a scikit-learn estimator, which a bare keras.Model is not; "
        "from_keras asks for the inputs mapping "
        "(tests/test_inputs.py::test_from_keras_asks_for_the_inputs_mapping)",
    ),
]
# Where the error is raised as it should be, but only after TensorFlow trained
# on other data: (checks, rows, why). Run without the guard.
RAISED_AFTER_TRAINING = [
    (
        ("nan_in_X", "inf_in_X", "infinite_after_cast_to_float32"),
        {"cross_validate_importance"},
        "folds are fitted in turn and the estimator may well take NaN (a "
        "Pipeline with an imputer), so a bad cell surfaces when its fold is "
        "fitted, as in scikit-learn's cross_validate",
    ),
]
_BAD_INPUT_NAMES = {bad.name for bad in BAD_INPUTS}
for _checks, _rows, _ in NOT_APPLICABLE + RAISED_AFTER_TRAINING:
    assert set(_checks) <= _BAD_INPUT_NAMES and set(_rows) <= set(ROW_NAMES)
assert set(_PARAMETER_CHECKS) <= _BAD_INPUT_NAMES


def _reason(table, check: str, row: str) -> str | None:
    for checks, rows, reason in table:
        if check in checks and row in rows:
            return reason
    return None


def not_applicable(check: str, row: Row) -> str | None:
    if row.spec is not None:
        return declared_not_applicable(check, row)
    return _reason(NOT_APPLICABLE, check, row.name)


def _battery():
    for row in ROWS:
        for bad in BAD_INPUTS:
            reason = not_applicable(bad.name, row)
            marks = [pytest.mark.skip(reason=f"n/a: {reason}")] if reason else []
            yield pytest.param(row, bad, id=f"{row.name}-{bad.name}", marks=marks)


@pytest.mark.parametrize("row, bad", list(_battery()))
def test_bad_input_is_refused_before_tensorflow(row, bad, ctx, request):
    if _reason(RAISED_AFTER_TRAINING, bad.name, row.name) is None:
        request.getfixturevalue("no_tensorflow")
    with pytest.raises(bad.error, match=bad.match):
        bad.call(row, ctx)


@pytest.mark.parametrize("row", ROWS, ids=ROW_NAMES)
def test_the_guard_sees_every_method_reach_the_network(row, ctx, no_tensorflow):
    # The positive control of the battery: good input does reach the network,
    # so the battery's errors really were raised before it.
    if row.estimator == "ridge":
        pytest.skip("n/a: a Ridge has no network to reach")
    if row.spec is not None and row.spec.reads == "weights":
        pytest.skip("n/a: weight importance reads the kernels, never feeds data")
    with pytest.raises(ReachedTensorFlow):
        row(estimator_for(row, ctx), ctx.X, ctx.y)


# --- inputs are never modified --------------------------------------------------------


def _read_only(array):
    array = np.array(array)
    array.setflags(write=False)
    return array


def _memmap(array, path):
    writable = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
    writable[:] = array
    writable.flush()
    del writable
    return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)


@pytest.mark.parametrize("kind", ["ndarray", "dataframe", "memmap"])
@pytest.mark.parametrize("row", ROWS, ids=ROW_NAMES)
def test_inputs_are_not_modified(row, kind, ctx, tmp_path):
    if kind == "ndarray":
        X, y = _read_only(ctx.X), _read_only(ctx.y)
    elif kind == "dataframe":
        X, y = ctx.frame.copy(deep=True), pd.Series(ctx.y, name="target")
    else:
        X = _memmap(ctx.X, tmp_path / "X.dat")
        y = _memmap(ctx.y, tmp_path / "y.dat")
    X_before, y_before = copy.deepcopy(X), copy.deepcopy(y)

    row(estimator_for(row, ctx, named=kind == "dataframe"), X, y)

    if kind == "dataframe":
        pd.testing.assert_frame_equal(X, X_before, check_exact=True)
        assert X.dtypes.equals(ctx.frame.dtypes)
        pd.testing.assert_series_equal(y, y_before, check_exact=True)
    else:
        np.testing.assert_array_equal(X, X_before)
        np.testing.assert_array_equal(y, y_before)
        assert not X.flags.writeable and not y.flags.writeable


# --- no process-wide state is left changed --------------------------------------------


def process_state() -> dict:
    """Everything a call could leave changed for the rest of the process."""
    import tensorflow as tf
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config

    return {
        "op determinism": config.is_op_determinism_enabled(),
        "TF_DETERMINISTIC_OPS": os.environ.get("TF_DETERMINISTIC_OPS"),
        "TensorFlow global seed": context.global_seed(),
        "TensorFlow global generator": tf.random.get_global_generator()
        .state.numpy()
        .tolist(),
        "Python random": random.getstate(),
        "NumPy random": repr(np.random.get_state()),  # noqa: NPY002
    }


@pytest.mark.parametrize("row", ROWS, ids=ROW_NAMES)
def test_no_process_wide_state_is_changed(row, ctx):
    before = process_state()
    row(estimator_for(row, ctx), ctx.X, ctx.y)
    after = process_state()
    changed = [key for key in before if before[key] != after[key]]
    assert not changed, f"{row.name} changed {changed}"


# --- the classes of failure of issue #14, one test each -----------------------------
#
# Each asserts the error type and the words it must contain and, where the input
# allows, that it is raised before any fit or forward pass (the no_tensorflow
# guard). The battery above covers the same rules for every row where they apply
# (group_names_collide, infinite_after_cast_to_float32, *_over_budget,
# several_metrics_for_one_result).


def test_result_names_never_collide(ctx, no_tensorflow):
    keras_estimator = ctx.fitted["keras", False]
    frame = ctx.frame
    # a column named "score" with prefix="" would replace the base score that
    # GridSearchCV ranks by
    X = frame.rename(columns={"a": "score"})
    scorer = importance_scorer(prefix="", n_repeats=2, random_state=0)
    with pytest.raises(
        ValueError,
        match="importance_scorer key 'score' is given twice, by the base score "
        "and by feature 'score' with prefix ''",
    ):
        scorer(Ridge().fit(X, ctx.y), X, ctx.y)
    # two groups named "a+b": one after its columns, one after its member
    X = frame.rename(columns={"c": "a+b"})
    with pytest.raises(
        ValueError,
        match=r"feature group name 'a\+b' is given twice, by group #0 \['a', 'b'\] "
        r"and by group #1 \['a\+b'\]",
    ):
        permutation_importance(
            keras_estimator, X, ctx.y, feature_groups=[["a", "b"], ["a+b"]]
        )
    # DataFrame labels 1 and "1" both report as "1"
    X = frame.set_axis([1, "1", "c", "d"], axis=1)
    for call in (
        lambda: permutation_importance(keras_estimator, X, ctx.y),
        lambda: gradient_importance(keras_estimator, X),
    ):
        with pytest.raises(
            ValueError,
            match=r"feature name '1' is given twice, by column 0 \(1\) and by "
            r"column 1 \('1'\)",
        ):
            call()
    # results compared under names that collide
    with pytest.raises(
        ValueError, match="result name '1' is given twice, by key 1 and by key '1'"
    ):
        ImportanceDisplay.from_result({1: _result(["a"]), "1": _result(["a"])})


def _result(names):
    from skimportance import ImportanceResult

    return ImportanceResult(np.ones((len(names), 1)), names, method="olden")


def test_classification_from_keras_needs_probabilities(ctx):
    # A linear output read as "probabilities" in [-9, 10] was scored by accuracy.
    with pytest.raises(ValueError) as error:
        from_keras(fixed_mlp(), task="classification")
    message = str(error.value)
    for words in ("probabilities", "task='regression'", "activation='sigmoid'"):
        assert words in message
    # what the rule accepts: a sigmoid or softmax layer, or outputs that are
    # probabilities on the probe batch (a normalisation layer of its own)
    import keras

    softmax = keras.Sequential(
        [keras.Input((N_FEATURES,)), keras.layers.Dense(3), keras.layers.Softmax()]
    )
    normalised = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            keras.layers.Dense(3),
            keras.layers.Lambda(lambda z: keras.ops.softmax(z)),
        ]
    )
    for model in (softmax, normalised):
        proba = from_keras(model, task="classification").predict_proba(ctx.X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "estimator, y, match",
    [
        ("classifier", np.zeros(N_ROWS, dtype=int), r"at least 2 classes .* 1 class"),
        ("regressor", np.full(N_ROWS, 3.5), r"constant \(3.5 in all 40 sample"),
        (
            "regressor",
            np.column_stack([np.arange(N_ROWS), np.ones(N_ROWS)]),
            "column 1 of y is constant",
        ),
    ],
    ids=["one_class", "constant", "constant_column"],
)
def test_degenerate_targets_are_refused_before_training(
    estimator, y, match, ctx, no_tensorflow
):
    from conftest import make_classifier

    model = make_classifier() if estimator == "classifier" else make_regressor()
    with pytest.raises(ValueError, match=match):
        model.fit(ctx.X, y)


def test_values_are_checked_after_the_cast_to_the_models_dtype(ctx, no_tensorflow):
    # 1e39 is finite in float64 and infinity in float32: refused by the
    # wrappers themselves (fit and predict), as by every method (battery).
    X = _with_value(ctx.X, 5, 2, 1e39)
    with pytest.raises(ValueError, match="become infinity in float32"):
        make_regressor().fit(X, ctx.y)
    with pytest.raises(ValueError, match="become infinity in float32"):
        ctx.fitted["keras", False].predict(X)
    with pytest.raises(ValueError, match="y holds values .* infinity in float32"):
        make_regressor().fit(ctx.X, np.full(N_ROWS, 1e39) * np.arange(N_ROWS))


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda est, X: probe_importance(
                est, X, kind="profile", grid_resolution=10**9
            ),
            "grid_resolution",
        ),
        (
            lambda est, X: gradient_importance(
                est, X, method="integrated_gradients", n_steps=10**9
            ),
            "n_steps",
        ),
        (lambda est, X: gradient_importance(est, X, batch_size=10**9), "batch_size"),
        (lambda est, X: probe_importance(est, X, batch_size=10**9), "batch_size"),
    ],
    ids=["grid_resolution", "n_steps", "batch_size_gradient", "batch_size_probe"],
)
def test_size_parameters_are_checked_against_the_budget_first(
    call, name, ctx, no_tensorflow
):
    # Refused before anything sized by them exists: these sizes used to
    # allocate gigabytes first (the quadrature alone is n_steps x n_steps).
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"{name}=1000000000 needs about"):
            call(ctx.fitted["keras", False], ctx.X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_scorers_are_checked_before_any_fit(ctx, no_tensorflow):
    two_metrics = {"r2": "r2", "neg_mean_squared_error": "neg_mean_squared_error"}
    # when the scorer is built, not as NaN in every GridSearchCV candidate
    with pytest.raises(ValueError, match="importance_scorer needs a single metric"):
        importance_scorer(scoring=two_metrics)
    # before the first fold is fitted
    with pytest.raises(ValueError, match="cross_validate_importance needs a single"):
        cross_validate_importance(make_regressor(), ctx.X, ctx.y, scoring=two_metrics)
    # a name scikit-learn does not know, at build time too
    with pytest.raises(ValueError, match="'scoring' parameter"):
        importance_scorer(scoring="r3")


def test_a_scorer_returning_no_number_fails_at_the_baseline(ctx):
    calls = []

    def verdict(estimator, X, y):
        calls.append(len(X))
        return "good"

    for estimator in (ctx.fitted["keras", False], ctx.fitted["ridge", False]):
        calls.clear()
        with pytest.raises(
            ValueError,
            match=r"scoring must return a number, got 'good' \(str\) instead. "
            r"\(scorer=verdict\)",
        ):
            permutation_importance(estimator, ctx.X, ctx.y, scoring=verdict)
        assert calls == [N_ROWS]  # the baseline, and nothing after it


def test_cryptic_errors_are_clear(ctx, no_tensorflow):
    from skimportance import ImportanceResult

    empty = ImportanceResult(np.empty((0, 3)), [], method="permutation")
    with pytest.raises(ValueError, match="'permutation' is empty: .* shape \\(0, 3\\)"):
        ImportanceDisplay.from_result(empty)
    # True is no count (it was taken as 1)
    with pytest.raises(
        TypeError, match="max_features must be an instance of int, not bool"
    ):
        ImportanceSelector(Ridge(), max_features=True).fit(ctx.X, ctx.y)
