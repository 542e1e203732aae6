"""conditional_importance: the engines' guarantees, and what it measures.

Equalities, not magic numbers: the Keras engine against the generic engine on
the same plan, a marginal imputer against permutation importance (and so
scikit-learn), n_jobs against sequential runs, the training fold against a
direct call. The statistical claim (a correlated null stays a null) is
checked on a model whose truth is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sklearn
from conftest import make_regressor
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.dummy import DummyRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import (
    ImportanceEstimator,
    conditional_importance,
    cross_validate_importance,
    from_keras,
    permutation_importance,
)
from skimportance._methods import REGISTRY
from skimportance._model import LocatedModel

ATOL = 1e-5  # float32 rounding of the network


class Opaque(BaseEstimator):
    """Any fitted estimator, hiding the Keras model inside: forces the generic
    engine onto the very same predictions."""

    def __init__(self, inner):
        self.inner = inner

    def fit(self, X, y):  # pragma: no cover - never refitted
        return self

    def predict(self, X):
        return self.inner.predict(X)

    def __sklearn_is_fitted__(self):
        return True


class OpaqueRegressor(RegressorMixin, Opaque):
    pass


class OpaqueClassifier(ClassifierMixin, Opaque):
    def predict_proba(self, X):
        return self.inner.predict_proba(X)

    @property
    def classes_(self):
        return self.inner.classes_


def correlated_frame(n=160, seed=0):
    """A float, a correlated float32, a categorical and an integer column."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "a": a,
            "b": (a + 0.5 * rng.normal(size=n)).astype(np.float32),
            "c": pd.Categorical(np.where(a > 0.3, "u", rng.choice(["v", "w"], n))),
            "d": rng.integers(0, 5, n),
        }
    )
    y = a + (X["c"] == "u") + 0.2 * X["d"] + 0.1 * rng.normal(size=n)
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def mixed_pipeline():
    X, y = correlated_frame()
    encode = make_column_transformer(
        (StandardScaler(), ["a", "b", "d"]), (OneHotEncoder(), ["c"])
    )
    return make_pipeline(encode, make_regressor(epochs=3)).fit(X, y), X, y


@pytest.fixture(scope="module")
def tiny():
    """A fixed 4-input tanh network on correlated inputs (no training)."""
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    z = rng.normal(size=(150, 3))
    X = np.column_stack([z[:, 0], z[:, 0] + 0.4 * z[:, 1], z[:, 1], z[:, 2]])
    reg = from_keras(model, task="regression")
    y = reg.predict(X) + 0.3 * rng.normal(size=len(X))
    return reg, X, y


def assert_same(a, b, atol=ATOL):
    np.testing.assert_allclose(a.importances, b.importances, rtol=0, atol=atol)
    np.testing.assert_allclose(
        a.loss_differences, b.loss_differences, rtol=0, atol=atol
    )
    assert a.feature_names.tolist() == b.feature_names.tolist()


# --- one plan, two engines ------------------------------------------------------------


@pytest.mark.parametrize("max_samples", [1.0, 0.7])
def test_keras_engine_equals_generic_engine_on_mixed_columns(
    mixed_pipeline, max_samples
):
    model, X, y = mixed_pipeline
    kwargs = dict(n_repeats=3, random_state=0, max_samples=max_samples)
    keras_run = conditional_importance(model, X, y, **kwargs)
    generic_run = conditional_importance(OpaqueRegressor(model), X, y, **kwargs)
    assert keras_run.details["engine"] == "keras"
    assert generic_run.details["engine"] == "generic"
    assert_same(keras_run, generic_run)
    assert keras_run.feature_names.tolist() == ["a", "b", "c", "d"]
    assert keras_run.loss_differences.shape == (4, int(max_samples * len(X)))


def test_keras_engine_equals_generic_engine_for_a_classifier(
    binary_classifier, breast_cancer
):
    X, y = breast_cancer
    kwargs = dict(n_repeats=2, random_state=1, feature_groups=[[0, 2], [1], [3, 4]])
    keras_run = conditional_importance(binary_classifier, X, y, **kwargs)
    generic_run = conditional_importance(
        OpaqueClassifier(binary_classifier), X, y, **kwargs
    )
    assert keras_run.details["engine"] == "keras"
    assert keras_run.details["loss"] == "log_loss"
    assert_same(keras_run, generic_run)


@pytest.mark.parametrize("batch_size", [60, 400])
def test_chunking_does_not_change_the_numbers(tiny, batch_size):
    reg, X, y = tiny
    reference = conditional_importance(reg, X, y, n_repeats=3, random_state=0)
    forward = LocatedModel.forward
    rows_per_pass = []

    def counting_forward(self, X_model, batch_size=None):
        rows_per_pass.append(len(X_model))
        return forward(self, X_model, batch_size=batch_size)

    # A budget of about two perturbed copies of X: several chunks of whole slices.
    budget_mib = 2 * 2 * 8 * (4 + 4) * len(X) / 2**20
    with (
        pytest.MonkeyPatch.context() as patch,
        sklearn.config_context(working_memory=budget_mib),
    ):
        patch.setattr(LocatedModel, "forward", counting_forward)
        chunked = conditional_importance(
            reg, X, y, n_repeats=3, random_state=0, batch_size=batch_size
        )
    assert_same(chunked, reference)
    baseline_pass, *perturbed_passes = rows_per_pass
    assert len(perturbed_passes) > 1
    assert max(perturbed_passes) <= 2 * len(X)  # bounded, whole slices
    assert sum(perturbed_passes) == 4 * 3 * len(X)


def test_a_marginal_imputer_gives_permutation_importance(tiny, diabetes):
    # A model that predicts nothing (the mean) leaves mean + permuted
    # (x - mean): a plain shuffle, on permutation importance's very plan.
    reg, X, y = tiny
    for estimator, data, target in [(reg, X, y), (Ridge().fit(*diabetes), *diabetes)]:
        conditional = conditional_importance(
            estimator,
            data,
            target,
            imputer=DummyRegressor(),
            n_repeats=3,
            random_state=4,
        )
        marginal = permutation_importance(
            estimator, data, target, n_repeats=3, random_state=4
        )
        reference = sklearn_permutation(
            estimator, data, target, n_repeats=3, random_state=4
        )
        assert_same(conditional, marginal)
        np.testing.assert_allclose(
            conditional.importances, reference.importances, rtol=0, atol=ATOL
        )


def test_mean_loss_difference_is_the_importance_for_the_same_loss(tiny):
    reg, X, y = tiny
    for function in (conditional_importance, permutation_importance):
        result = function(
            reg, X, y, scoring="neg_mean_squared_error", n_repeats=3, random_state=0
        )
        assert result.details["loss"] == "squared_error"
        np.testing.assert_allclose(
            result.loss_differences.mean(axis=1),
            result.importances_mean,
            rtol=1e-6,
            atol=1e-9,
        )


def test_n_jobs_and_random_state_objects_give_the_same_numbers(mixed_pipeline):
    model, X, y = mixed_pipeline
    ridge = make_pipeline(clone(model[0]), Ridge()).fit(X, y)  # generic engine
    kwargs = dict(n_repeats=2, feature_groups={"ab": ["a", "b"], "c": ["c"]})
    for estimator in (model, ridge):
        serial = conditional_importance(estimator, X, y, random_state=3, **kwargs)
        parallel = conditional_importance(
            estimator, X, y, random_state=np.random.RandomState(3), n_jobs=2, **kwargs
        )
        np.testing.assert_array_equal(parallel.importances, serial.importances)
        np.testing.assert_array_equal(
            parallel.loss_differences, serial.loss_differences
        )
    other_seed = conditional_importance(ridge, X, y, random_state=4, **kwargs)
    assert not np.array_equal(other_seed.importances, serial.importances)


# --- what it measures -----------------------------------------------------------------


def echo_problem(seed, n=300):
    """y depends on x0 only; x1 echoes x0 (rho ~0.96); x2 is independent noise.

    The model ``0.5 x0 + 0.5 x1`` leans on the echo as much as on the signal,
    yet x1 carries nothing about y beyond x0: a correlated null, exactly.
    """
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=2 * n)
    X = np.column_stack([x0, x0 + 0.3 * rng.normal(size=2 * n), rng.normal(size=2 * n)])
    y = 2 * x0 + rng.normal(size=2 * n)
    model = LinearRegression().fit(X[:10], y[:10])  # shapes only; weights set below
    model.coef_, model.intercept_ = np.array([1.0, 1.0, 0.0]), 0.0
    return model, X[n:], y[n:], X[:n]


def test_a_correlated_null_stays_a_null_where_marginal_permutation_rejects_it():
    conditional_p, marginal_p = [], []
    for seed in range(40):
        model, X, y, X_train = echo_problem(seed)
        kwargs = dict(n_repeats=5, random_state=seed)
        conditional = conditional_importance(model, X, y, X_fit=X_train, **kwargs)
        marginal = permutation_importance(model, X, y, **kwargs)
        conditional_p.append(conditional.pvalues().to_numpy())
        marginal_p.append(marginal.pvalues().to_numpy())
    conditional_p, marginal_p = np.array(conditional_p), np.array(marginal_p)
    # The echo x1: conditional keeps the 5% level, marginal rejects it always.
    assert np.mean(conditional_p[:, 1] < 0.05) <= 0.15
    assert np.mean(marginal_p[:, 1] < 0.05) >= 0.9
    # The signal is found by both; the ignored column is never rejected (p = 1).
    assert np.all(conditional_p[:, 0] < 0.05) and np.all(marginal_p[:, 0] < 0.05)
    assert np.all(conditional_p[:, 2] == 1.0) and np.all(marginal_p[:, 2] == 1.0)


def test_conditional_pvalues_of_a_null_are_uniform():
    from scipy import stats

    pvalues = []
    for seed in range(60):
        model, X, y, X_train = echo_problem(100 + seed, n=200)
        result = conditional_importance(
            model, X, y, X_fit=X_train, n_repeats=5, random_state=seed
        )
        pvalues.append(result.pvalues().iloc[1])
    # Kolmogorov-Smirnov against the uniform; rejected if the test were
    # across repeats (p ~ 0) or if the residuals were not permuted.
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_a_categorical_column_is_drawn_from_its_conditional_distribution():
    # c is a deterministic function of a: conditionally, nothing is left to
    # draw, so c's importance is 0 although the model relies on it.
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    X = pd.DataFrame(
        {
            "a": a,
            "c": pd.Categorical(np.where(a > 0, "hi", "lo")),
            "z": rng.normal(size=400),
        }
    )
    y = 3.0 * (X["c"] == "hi") + X["z"]
    encode = make_column_transformer((OneHotEncoder(), ["c"]), remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(X, y)
    sharp = LogisticRegression(C=1e4, max_iter=1000)  # c given a is near certain
    conditional = conditional_importance(
        model, X, y, categorical_imputer=sharp, n_repeats=3, random_state=0
    )
    marginal = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    assert conditional.importances_mean[1] < 0.05 * marginal.importances_mean[1]
    assert conditional.importances_mean[2] > 0.1  # the independent signal stays
    assert conditional.details["categorical_imputer"].startswith("LogisticRegression")


# --- adapters: the conditional models learn from training rows ------------------------


def test_cross_validation_fits_conditional_models_on_the_training_fold(diabetes):
    X, y = diabetes
    X = X.iloc[:120, :5]
    y = y[:120]
    cv = KFold(3, shuffle=True, random_state=0)
    result = cross_validate_importance(
        Ridge(),
        X,
        y,
        cv=cv,
        method="conditional",
        return_estimator=True,
        method_params={"random_state": 0, "n_repeats": 2},
    )
    for (train, test), fold, estimator in zip(
        cv.split(X), result.fold_results, result.estimators
    ):
        assert fold.details["n_fit"] == len(train)
        direct = conditional_importance(
            estimator,
            X.iloc[test],
            y.iloc[test],
            X_fit=X.iloc[train],
            n_repeats=2,
            random_state=0,
        )
        assert_same(fold, direct, atol=1e-12)
    assert result.pvalues().index.tolist() == list(X.columns)


def test_importance_estimator_fits_conditional_models_on_its_training_part(diabetes):
    X, y = diabetes
    measured = ImportanceEstimator(
        Ridge(),
        method="conditional",
        validation_fraction=0.25,
        n_repeats=2,
        random_state=0,
    ).fit(X, y)
    n_held_out = math.ceil(0.25 * len(X))  # as train_test_split rounds
    assert measured.importances_.details["n_fit"] == len(X) - n_held_out
    assert measured.importances_.loss_differences.shape[1] == n_held_out


def test_the_registry_declares_its_training_rows():
    spec = REGISTRY["conditional"]
    assert spec.fit_data == "X_fit" and spec.tested and spec.needs_y
    assert not spec.keras_only and spec.columns == ("raw",)


# --- inputs ---------------------------------------------------------------------------


@pytest.fixture
def no_forward(monkeypatch):
    def forward(self, X_model, batch_size=None):
        raise AssertionError("data reached the Keras model")

    monkeypatch.setattr(LocatedModel, "forward", forward)


def test_bad_arguments_fail_before_any_forward_pass(mixed_pipeline, no_forward):
    model, X, y = mixed_pipeline
    with_nan = X.copy()
    with_nan.loc[3, "a"] = np.nan
    missing_category = X.copy()
    missing_category.loc[5, "c"] = np.nan
    cases = [
        (dict(X_fit=X.iloc[:, :3]), ValueError, "X_fit must have the columns of X"),
        (dict(X_fit=X.to_numpy()), ValueError, "X_fit must have the columns of X"),
        (dict(X_fit=with_nan), ValueError, r"X_fit contains NaN.*column 'a'"),
        (dict(feature_groups=[["a", "c"]]), ValueError, "categorical column 'c'"),
        (dict(imputer=StandardScaler()), TypeError, "imputer must be .*predict"),
        (dict(categorical_imputer=Ridge()), TypeError, "has no predict_proba"),
        (dict(loss="hinge"), ValueError, "loss must be one of"),
        (dict(loss=3), TypeError, "loss must be a name"),
        (dict(loss="log_loss"), ValueError, "needs a classifier"),
        (dict(cluster_threshold=1.5, feature_groups="auto"), ValueError, r"\(0, 1\]"),
        (dict(feature_groups="nope"), TypeError, "feature_groups must be"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            conditional_importance(model, X, y, n_repeats=2, **kwargs)
    for bad in (with_nan, missing_category):
        with pytest.raises(ValueError, match="NaN or infinity"):
            conditional_importance(model, bad, y)


def test_nothing_is_mutated(mixed_pipeline):
    model, X, y = mixed_pipeline
    X_fit = X.iloc[::2].copy()
    before = X.copy(deep=True), X_fit.copy(deep=True)
    conditional_importance(model, X, y, X_fit=X_fit, n_repeats=2, random_state=0)
    pd.testing.assert_frame_equal(X, before[0])
    pd.testing.assert_frame_equal(X_fit, before[1])

    array = np.random.default_rng(0).normal(size=(50, 3))
    array.setflags(write=False)
    ridge = Ridge().fit(array, array[:, 0])
    estimator = clone(ridge).fit(array, array[:, 0])
    conditional_importance(estimator, array, array[:, 0], X_fit=array, n_repeats=2)
    assert not array.flags.writeable


def test_integer_and_single_columns():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 10, size=(80, 2))
    y = X[:, 0] + rng.normal(size=80)
    model = LinearRegression().fit(X, y)
    result = conditional_importance(model, X, y, n_repeats=2, random_state=0)
    assert result.ranking()[0] == "x0"
    # One column: nothing to condition on, so a plain shuffle.
    alone = LinearRegression().fit(X[:, :1], y)
    single = conditional_importance(alone, X[:, :1], y, n_repeats=2, random_state=0)
    marginal = permutation_importance(alone, X[:, :1], y, n_repeats=2, random_state=0)
    np.testing.assert_allclose(single.importances, marginal.importances, atol=1e-12)


# --- values the network cannot take are refused, as for any rows ----------------------


def integer_input_model(n_inputs=3):
    import keras

    inputs = keras.Input((n_inputs,), dtype="int32")
    hidden = keras.layers.Dense(4, activation="tanh")(keras.ops.cast(inputs, "float32"))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return from_keras(model, task="regression")


@pytest.mark.parametrize("algorithm", ["exact", "auto"])
def test_conditional_draws_of_an_integer_input_stay_integers(algorithm):
    # A drawn value is a prediction plus a residual; for columns of integers
    # it is rounded and clipped to their range, so the model's int32 input
    # takes it unchanged (a value changed by the cast would be refused).
    reg = integer_input_model()
    X = np.random.default_rng(1).integers(0, 5, size=(60, 3))
    y = reg.predict(X)
    result = conditional_importance(
        reg, X, y, n_repeats=2, random_state=0, algorithm=algorithm
    )
    assert np.isfinite(result.importances).all()


def test_a_global_assume_finite_does_not_skip_the_cast_check():
    # assume_finite promises no NaN or infinity; 1e39 is finite in float64
    # and still becomes infinity in the network's float32.
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    reg = from_keras(model, task="regression")
    X = np.ones((20, 2))
    X[3, 1] = 1e39
    with (
        sklearn.config_context(assume_finite=True),
        pytest.raises(ValueError, match="become infinity in float32"),
    ):
        permutation_importance(reg, X, np.ones(20), n_repeats=2, random_state=0)
