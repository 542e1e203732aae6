"""LOCO: refits without a column, fused or sequential, and its inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_regressor
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from skimportance import (
    ImportanceDisplay,
    ImportanceEstimator,
    ImportanceSelector,
    KerasClassifier,
    cross_validate_importance,
    from_keras,
    importance_scorer,
    loco_importance,
)


@pytest.fixture(scope="module")
def linear():
    """y = 3 x0 + x1 + noise; x2 and x3 are noise."""
    return linear_rows(150)


def linear_rows(n_rows: int):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 4))
    y = 3 * X[:, 0] + X[:, 1] + rng.normal(scale=0.5, size=n_rows)
    return X, y


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = 2 * X[:, 0] + rng.normal(scale=0.3, size=60)
    return X, y


def tiny_regressor(**params):
    return make_regressor(**{"model__hidden": (4,), "epochs": 3, **params})


# --- the estimand ---------------------------------------------------------------------


def test_loco_equals_a_hand_rolled_refit_loop_and_ranks_the_truth_first(linear):
    X, y = linear
    cv = KFold(5)
    result = loco_importance(LinearRegression(), X, y, cv=cv, scoring="r2")

    scorer = get_scorer("r2")
    expected, differences = [], []
    for train, test in cv.split(X):
        full = clone(LinearRegression()).fit(X[train], y[train])
        fold, rows = [], []
        for j in range(X.shape[1]):
            X_train, X_test = X[train].copy(), X[test].copy()
            X_train[:, j] = X_test[:, j] = X[train, j].mean()
            reduced = clone(LinearRegression()).fit(X_train, y[train])
            fold.append(
                scorer(full, X[test], y[test]) - scorer(reduced, X_test, y[test])
            )
            rows.append(
                (y[test] - reduced.predict(X_test)) ** 2
                - (y[test] - full.predict(X[test])) ** 2
            )
        expected.append(fold)
        differences.append(np.array(rows))

    np.testing.assert_allclose(result.importances, np.array(expected).T, atol=1e-12)
    np.testing.assert_allclose(
        result.loss_differences, np.concatenate(differences, axis=1), atol=1e-12
    )
    assert result.ranking().tolist()[:2] == ["x0", "x1"]
    pvalues = result.pvalues()
    assert pvalues["x0"] < 0.01 and pvalues["x2"] > 0.05 and pvalues["x3"] > 0.05
    assert result.fdr(0.05)["selected"].tolist() == [True, True, False, False]
    ci = result.ci(corrected=True)
    assert (ci["lower"] <= result.importances_mean).all()
    assert result.details["refit"] == "sequential"
    assert "not a skimportance KerasRegressor" in result.details["refit_reason"]


def test_constants_are_the_training_mean_or_mode_and_pipelines_keep_working():
    rng = np.random.default_rng(0)
    n = 90
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "city": rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(n) > 0.5,
        }
    )
    y = X["size"] * 2 + (X["city"] == "b") * 3 + rng.normal(scale=0.1, size=n)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["city", "flag"]),
            remainder="passthrough",
        ),
        Ridge(alpha=1e-3),
    )
    X_before = X.copy()
    result = loco_importance(pipeline, X, y, cv=3)
    pd.testing.assert_frame_equal(X, X_before)
    assert set(result.ranking()[:2]) == {"size", "city"}

    from skimportance._engines.refit_data import masked, refit_constants

    rows = np.arange(60)
    constants = refit_constants(X, rows, 3)
    assert constants[0] == pytest.approx(X["size"].iloc[:60].mean())
    assert constants[1] == X["city"].iloc[:60].mode()[0]
    assert constants[2] == X["flag"].iloc[:60].mode()[0]
    moved = masked(X, [1, 2], constants)
    assert (moved["city"] == constants[1]).all() and moved["flag"].dtype == bool
    assert moved["size"].equals(X["size"])


def test_random_state_makes_refits_reproducible(linear):
    X, y = linear
    tree = DecisionTreeRegressor(max_features=2)  # random splits without a seed
    first = loco_importance(tree, X, y, cv=2, random_state=3)
    again = loco_importance(tree, X, y, cv=2, random_state=3)
    np.testing.assert_array_equal(first.importances, again.importances)


def test_feature_groups_and_auto_groups(linear):
    X, y = linear
    X = np.column_stack([X, X[:, 0] + 0.01 * X[:, 2]])  # x4 copies x0
    named = loco_importance(
        LinearRegression(), X, y, cv=2, feature_groups={"signal": [0, 4], "x1": [1]}
    )
    assert named.feature_names.tolist() == ["signal", "x1"]
    auto = loco_importance(LinearRegression(), X, y, cv=2, feature_groups="auto")
    assert "x0+x4" in auto.feature_names.tolist()
    assert auto.ranking()[0] == "x0+x4"
    assert "clustering" in auto.details
    # alone, each copy of x0 is not needed: the other stands in for it
    alone = loco_importance(LinearRegression(), X, y, cv=2)
    assert alone.importances_mean[0] < 0.01 < auto.importances_mean.max()


# --- fused refits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pipeline",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # the same path, preprocessed
    ids=["bare", "pipeline"],
)
def test_fused_refits_equal_sequential_refits(small, pipeline):
    X, y = small
    X = X[:, :2]  # 2 folds x 3 refits each way
    estimator = tiny_regressor()
    if pipeline:
        estimator = make_pipeline(StandardScaler(), estimator)
    fused = loco_importance(estimator, X, y, cv=2, random_state=0)  # auto fuses
    sequential = loco_importance(
        estimator, X, y, cv=2, refit="sequential", random_state=0
    )
    assert fused.details["refit"] == "fused" and fused.details["refit_reason"] is None
    assert sequential.details["refit"] == "sequential"
    np.testing.assert_allclose(fused.importances, sequential.importances, atol=1e-4)
    np.testing.assert_allclose(
        fused.loss_differences, sequential.loss_differences, atol=1e-4
    )
    np.testing.assert_allclose(fused.test_scores, sequential.test_scores, atol=1e-4)


def _cross_entropy(y_true, y_pred):
    """A loss Keras does not know: the copies' losses are summed one by one."""
    import keras

    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))


@pytest.mark.slow  # two classifiers fitted fused and not
@pytest.mark.parametrize(
    "layers, loss",
    [
        ("dropout", "sparse_categorical_crossentropy"),  # nested copies
        ("dense", "sparse_categorical_crossentropy"),  # stacked: one loss call
        ("dense", "custom"),  # stacked: the loss called copy by copy
    ],
)
def test_fused_refits_equal_sequential_for_a_classifier(layers, loss):
    import keras

    def build(meta):
        middle = (
            [keras.layers.Dropout(0.3), keras.layers.BatchNormalization()]
            if layers == "dropout"
            else []
        )
        return keras.Sequential(
            [
                keras.Input((meta["n_features_in_"],)),
                keras.layers.Dense(6, activation="relu"),
                *middle,
                keras.layers.Dense(meta["n_classes_"], activation="softmax"),
            ]
        )

    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=80) > 0, "yes", "no")
    estimator = KerasClassifier(
        build,
        loss=_cross_entropy if loss == "custom" else loss,
        optimizer="adam",
        epochs=3,
        batch_size=16,
        verbose=0,
        random_state=0,
    )
    fused = loco_importance(estimator, X, y, cv=2, refit="fused", random_state=0)
    sequential = loco_importance(
        estimator, X, y, cv=2, refit="sequential", random_state=0
    )
    np.testing.assert_allclose(fused.importances, sequential.importances, atol=1e-4)
    np.testing.assert_allclose(
        fused.loss_differences, sequential.loss_differences, atol=1e-4
    )


@pytest.mark.parametrize(
    "loss", ["mse", "mean_absolute_error", "loss_object", "custom"]
)
def test_the_summed_loss_of_stacked_copies_is_the_sum_of_their_losses(loss):
    import keras

    from skimportance._engines.stacked_dense import stacked_targets, summed_loss

    rng = np.random.default_rng(0)
    k, n = 3, 8
    targets = [rng.normal(size=n) for _ in range(k)]  # (n,) each, as scikeras's
    y_pred = rng.normal(size=(n, k, 1)).astype("float32")
    given = {
        "loss_object": keras.losses.MeanSquaredError(),
        "custom": lambda t, p: keras.ops.mean(keras.ops.abs(t - p) ** 3),
    }.get(loss, loss)
    per_copy = keras.losses.get(given)
    expected = sum(
        float(keras.ops.mean(per_copy(targets[c].reshape(-1, 1), y_pred[:, c])))
        for c in range(k)
    )
    total = summed_loss(given, k)(stacked_targets(targets).astype("float32"), y_pred)
    assert float(keras.ops.mean(total)) == pytest.approx(expected, rel=1e-6)


def test_auto_falls_back_to_sequential_refits_with_early_stopping(small):
    import keras

    X, y = small
    estimator = tiny_regressor(
        callbacks=keras.callbacks.EarlyStopping, callbacks__monitor="loss", epochs=2
    )
    with pytest.raises(ValueError, match="refit='fused' is not exact here: .*callb"):
        loco_importance(estimator, X[:, :1], y, cv=2, refit="fused")
    result = loco_importance(estimator, X[:, :1], y, cv=2, random_state=0)
    assert result.details["refit"] == "sequential"
    assert "early stopping" in result.details["refit_reason"]


@pytest.mark.parametrize(
    "params, words",
    [
        ({"validation_split": 0.2}, "validation_split=0.2"),
        ({"class_weight": {0: 1.0, 1: 2.0}}, "class_weight"),
    ],
)
def test_fused_refits_are_refused_where_they_are_not_exact(small, params, words):
    X, y = small
    with pytest.raises(ValueError, match=f"not exact here: {words}"):
        loco_importance(tiny_regressor(**params), X, y, cv=2, refit="fused")


# --- bad input, refused before any fit ------------------------------------------------


@pytest.fixture
def no_fit(monkeypatch):
    """Every fit and every way into a network raises."""
    import keras

    def refuse(*args, **kwargs):
        raise AssertionError("work started")

    for name in ("__call__", "fit", "predict"):
        monkeypatch.setattr(keras.Model, name, refuse)
    monkeypatch.setattr(LinearRegression, "fit", refuse)


class Unclonable(RegressorMixin, BaseEstimator):
    def __init__(self, alpha=1.0):
        self.alpha = alpha * 2  # changes its parameter: clone refuses


def test_bad_input_is_refused_before_any_fit(small, no_fit):
    import keras

    X, y = small
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="LOCO has nothing to refit"):
        loco_importance(from_keras(network, task="regression"), X, y)
    with pytest.raises(TypeError, match="got a bare keras Model"):
        loco_importance(network, X, y)
    with pytest.raises(TypeError, match="scikit-learn cannot clone this Unclonable"):
        loco_importance(Unclonable(), X, y)
    with pytest.raises(ValueError, match="cv=1: LOCO .* needs at least 2 folds"):
        loco_importance(LinearRegression(), X, y, cv=1)
    with pytest.raises(ValueError, match="group 'g' refers to unknown column 'nope'"):
        loco_importance(LinearRegression(), X, y, feature_groups={"g": ["nope"]})
    with pytest.raises(ValueError, match="loco_importance needs y"):
        loco_importance(LinearRegression(), X, None)
    with pytest.raises(ValueError, match="refit must be one of"):
        loco_importance(LinearRegression(), X, y, refit="parallel")
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        loco_importance(tiny_regressor(), X_nan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        loco_importance(LinearRegression(), X, y[:-1])


def test_nan_reaches_a_pipeline_that_can_impute(small):
    from sklearn.impute import SimpleImputer

    X, y = small
    X = X.copy()
    X[::7, 2] = np.nan
    result = loco_importance(make_pipeline(SimpleImputer(), Ridge()), X, y, cv=2)
    assert result.ranking()[0] == "x0"
    assert np.isfinite(result.importances).all()


# --- the adapters reach it through the registry ---------------------------------------


def test_every_adapter_runs_loco(linear):
    X, y = linear
    params = {"cv": 5}
    direct = loco_importance(LinearRegression(), X, y, cv=5)
    estimator = ImportanceEstimator(
        LinearRegression(), method="loco", method_params=params
    ).fit(X, y)
    np.testing.assert_allclose(
        estimator.importances_.importances_mean, direct.importances_mean, atol=1e-12
    )
    # p-values come from refits on the held-out quarter of the rows, a test
    # across 5 folds: 150 rows leave it too few to find even x0 every time.
    X_more, y_more = linear_rows(600)
    selector = ImportanceSelector(
        LinearRegression(),
        method="loco",
        threshold="fdr:0.05",
        method_params=params,
        random_state=0,
    ).fit(X_more, y_more)
    support = selector.get_support()
    assert support[0] and not support[2:].any()  # x0 kept, the noise dropped
    scores = importance_scorer("loco", method_params=params)(
        LinearRegression().fit(X, y), X, y
    )
    assert scores["importance_x0"] == pytest.approx(direct.importances_mean[0])
    crossed = cross_validate_importance(
        LinearRegression(), X, y, cv=2, method="loco", method_params=params
    )
    assert crossed.ranking()[0] == "x0" and crossed.importances.shape == (4, 2)
    display = ImportanceDisplay.from_estimator(
        LinearRegression().fit(X, y), X, y, method="loco", method_params=params
    )
    (shown,) = display.results.values()
    np.testing.assert_allclose(shown.importances, direct.importances, atol=1e-12)
    assert display.plot().features_[0] == "x0"  # drawn, most important first


def test_parallel_refits_equal_serial_ones(linear):
    X, y = linear
    tree = DecisionTreeRegressor(max_features=2)
    serial = loco_importance(tree, X, y, cv=3, random_state=0)
    parallel = loco_importance(tree, X, y, cv=3, random_state=0, n_jobs=2)
    np.testing.assert_array_equal(parallel.importances, serial.importances)
    np.testing.assert_array_equal(parallel.loss_differences, serial.loss_differences)
