"""KerasClassifier / KerasRegressor behave like scikit-learn estimators."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_classifier, make_regressor
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.inspection import partial_dependence
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    check_cv,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from skimportance import KerasClassifier, KerasRegressor


@pytest.fixture(scope="module")
def cancer_split(breast_cancer):
    X, y = breast_cancer
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def scaled(estimator):
    return make_pipeline(StandardScaler(), estimator)


def test_estimator_types_and_tags():
    clf, reg = make_classifier(), make_regressor()
    assert is_classifier(clf) and not is_regressor(clf)
    assert is_regressor(reg) and not is_classifier(reg)
    assert is_classifier(scaled(clf)) and is_regressor(scaled(reg))
    assert get_tags(clf).classifier_tags is not None
    assert get_tags(reg).regressor_tags is not None
    assert get_tags(clf).target_tags.required


def test_integer_cv_is_stratified_for_classifiers(breast_cancer):
    X, y = breast_cancer
    cv = check_cv(5, y, classifier=is_classifier(make_classifier()))
    assert isinstance(cv, StratifiedKFold)


def test_probability_scorers_give_finite_scores(breast_cancer):
    X, y = breast_cancer
    clf = scaled(make_classifier(loss="binary_crossentropy", epochs=5))
    search = GridSearchCV(
        clf, {"kerasclassifier__epochs": [3]}, cv=2, scoring="roc_auc"
    )
    search.fit(X, y)
    assert 0.8 < search.best_score_ <= 1.0
    log_loss = cross_val_score(clf, X, y, cv=2, scoring="neg_log_loss")
    assert np.all(np.isfinite(log_loss)) and np.all(log_loss < 0)


@pytest.mark.slow  # trains a dozen classifiers
def test_calibration_stacking_and_soft_voting(cancer_split):
    X_train, X_test, y_train, y_test = cancer_split
    base = scaled(make_classifier(loss="binary_crossentropy", epochs=8))
    calibrated = CalibratedClassifierCV(base, cv=2).fit(X_train, y_train)
    proba = calibrated.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert calibrated.score(X_test, y_test) > 0.85

    # scikeras alone trains StackingClassifier to near chance on sklearn >= 1.6.
    stack = StackingClassifier(
        [("mlp", base)], final_estimator=LogisticRegression(), cv=2
    ).fit(X_train, y_train)
    assert stack.score(X_test, y_test) > 0.85

    lr = scaled(LogisticRegression())
    vote = VotingClassifier([("mlp", base), ("lr", lr)], voting="soft")
    assert vote.fit(X_train, y_train).score(X_test, y_test) > 0.85


def test_partial_dependence_follows_the_true_effect(friedman, friedman_regressor):
    # Friedman #1 has the additive term 10 * x3: the curve must rise.
    X, _ = friedman
    result = partial_dependence(friedman_regressor, X, [3], grid_resolution=10)
    curve = result["average"][0]
    assert curve[-1] - curve[0] > 4.0

    # classifiers too (scikeras alone raises here on sklearn >= 1.6)
    Xc = np.random.default_rng(0).normal(size=(120, 3))
    yc = (Xc[:, 0] > 0).astype(int)
    clf = make_classifier(
        loss="binary_crossentropy", epochs=40, optimizer__learning_rate=0.05
    ).fit(Xc, yc)
    pd_result = partial_dependence(clf, Xc, [0], grid_resolution=5)
    assert pd_result["average"][0][-1] > pd_result["average"][0][0]


def test_clone_keeps_every_parameter():
    clf = make_classifier(
        model__hidden=(7, 3),
        optimizer__learning_rate=0.02,
        fit__shuffle=False,
        class_weight="balanced",
        epochs=3,
    )
    cloned = clone(clf)
    assert cloned is not clf
    params, cloned_params = clf.get_params(), cloned.get_params()
    assert params.keys() == cloned_params.keys()
    for name, value in params.items():
        assert cloned_params[name] == value, name


def test_pickle_round_trip_predicts_identically(diabetes, diabetes_pipeline):
    X, _ = diabetes
    restored = pickle.loads(pickle.dumps(diabetes_pipeline))
    np.testing.assert_array_equal(restored.predict(X), diabetes_pipeline.predict(X))


def test_seeded_fits_are_reproducible(wine):
    X, y = wine
    first = scaled(make_classifier(epochs=3, random_state=7)).fit(X, y)
    second = scaled(make_classifier(epochs=3, random_state=7)).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def model_after_draws_elsewhere(draws_elsewhere, meta):
    """A small network, built after ``draws_elsewhere`` draws from Python's
    global random module: what another thread (a dask worker's event loop)
    may do while a seeded fold is being built."""
    import random

    import keras

    for _ in range(draws_elsewhere):
        random.random()
    return keras.Sequential(
        [
            keras.Input((meta["n_features_in_"],)),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )


@pytest.mark.parametrize("seed_kind", ["int", "RandomState"])
def test_seeded_weights_ignore_other_draws_from_the_global_random(seed_kind):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = X[:, 0]

    def initial_weights(draws_elsewhere):
        network = KerasRegressor(
            model_after_draws_elsewhere,
            model__draws_elsewhere=draws_elsewhere,
            loss="mse",
            random_state=0 if seed_kind == "int" else np.random.RandomState(3),
        )
        return network.initialize(X, y).model_.get_weights()

    quiet, busy = initial_weights(0), initial_weights(5)
    for before, after in zip(quiet, busy):
        np.testing.assert_array_equal(before, after)


@pytest.mark.slow  # fits under every seeding path
def test_seeded_fit_leaves_no_tensorflow_state_behind():
    # A fresh process: TensorFlow latches TF_DETERMINISTIC_OPS on first read,
    # which is exactly how scikeras leaks determinism.
    script = textwrap.dedent(
        """
        import os
        import numpy as np, keras
        from skimportance import KerasRegressor
        from tensorflow.python.framework import config

        def build(meta):
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

        X = np.random.rand(20, 3); y = X.sum(axis=1)
        KerasRegressor(build, loss="mse", epochs=1, verbose=0, random_state=0).fit(X, y)
        assert not config.is_op_determinism_enabled(), "op determinism leaked"
        assert "TF_DETERMINISTIC_OPS" not in os.environ
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5),
                                  keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(X, y, epochs=1, verbose=0)  # unseeded random op
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "clean" in result.stdout


def test_feature_names_are_recorded_and_checked(diabetes):
    X, y = diabetes
    model = make_regressor(epochs=1).fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns)
    with pytest.raises(ValueError, match="Feature names"):
        model.predict(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="missing"):
        model.predict(X.iloc[:, :5])
    with (
        pytest.warns(UserWarning, match="does not have valid feature names"),
        pytest.raises(ValueError, match="X has 5 features"),
    ):
        model.predict(X.iloc[:, :5].to_numpy())


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.array([[np.nan, 1.0, 2.0]]), ValueError, "NaN"),
        (np.array([["a", "b", "c"]]), ValueError, "could not convert"),
        (np.ones(3), ValueError, "2-dimensional"),
    ],
)
def test_bad_input_fails_before_tensorflow(bad, error, match):
    X = np.random.default_rng(0).normal(size=(30, 3))
    reg = make_regressor(epochs=1).fit(X, X[:, 0])
    with pytest.raises(error, match=match):
        reg.predict(bad)


def test_sparse_input_is_made_dense():
    X = np.random.default_rng(0).normal(size=(30, 3))
    reg = make_regressor(epochs=1).fit(sp.csr_matrix(X), X[:, 0])
    dense = reg.predict(X)
    atol = 1e-6 * np.abs(dense).max()  # float32 rounding of other batches
    np.testing.assert_allclose(reg.predict(sp.csr_matrix(X)), dense, rtol=0, atol=atol)


def test_fit_without_y_is_a_clear_error():
    with pytest.raises(ValueError, match="requires y"):
        make_regressor().fit(np.ones((5, 2)), None)


def test_predict_proba_of_one_row_is_two_dimensional(multiclass_classifier, wine):
    X, _ = wine
    assert multiclass_classifier.predict_proba(X.iloc[:1]).shape == (1, 3)


def test_class_weight_does_not_modify_sample_weight(wine):
    X, y = wine
    weights = np.ones(len(y))
    make_classifier(epochs=1, class_weight="balanced").fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, np.ones(len(y)))


def test_repr_shows_only_changed_parameters():
    text = repr(KerasRegressor(loss="mse", epochs=3))
    assert text == "KerasRegressor(epochs=3, loss='mse')"
    assert repr(KerasClassifier()) == "KerasClassifier()"


def test_dataframe_and_array_give_the_same_predictions(diabetes, diabetes_pipeline):
    X, _ = diabetes
    prediction = diabetes_pipeline.predict(X)
    assert isinstance(prediction, np.ndarray) and prediction.shape == (len(X),)
    with pytest.warns(UserWarning, match="feature names"):
        from_array = diabetes_pipeline.predict(X.to_numpy())
    np.testing.assert_array_equal(from_array, prediction)


# --- issue #14: what a subclass can fix of scikeras -----------------------------------


def test_any_real_dtype_is_accepted_at_predict():
    # scikeras refused float64 X for a model fit on float32 X ("casting ... is
    # not safe"), so libraries building float64 copies (hidimstat) failed.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    reg = make_regressor(epochs=1).fit(X.astype(np.float32), X[:, 0])
    expected = reg.predict(X.astype(np.float32))
    for dtype in (np.float64, np.float16, np.int64, np.uint8, bool):
        np.testing.assert_array_equal(
            reg.predict(X.astype(dtype)),
            reg.predict(X.astype(dtype).astype(np.float32)),
        )
    np.testing.assert_array_equal(reg.predict(X), expected)
    # fit on integers: whole numbers in any dtype are the same values; others
    # would be truncated, and are refused
    codes = rng.integers(0, 4, size=(40, 3))
    clf = make_classifier(epochs=1).fit(codes, codes[:, 0])
    np.testing.assert_array_equal(
        clf.predict_proba(codes.astype(np.float64)), clf.predict_proba(codes)
    )
    with pytest.raises(ValueError, match=r"change when cast to int64.*2\.5"):
        clf.predict(np.full((2, 3), 2.5))


def test_keyword_parameters_are_not_instance_attributes():
    # scikeras set model__hidden etc. as attributes in __init__, which
    # scikit-learn's check_no_attributes_set_in_init refuses.
    reg = make_regressor(model__hidden=(5,), optimizer__learning_rate=0.01)
    assert "model__hidden" not in vars(reg)
    assert reg.model__hidden == (5,)
    assert reg.get_params()["optimizer__learning_rate"] == 0.01
    reg.set_params(model__hidden=(7,), fit__shuffle=False)
    assert "fit__shuffle" not in vars(reg)
    assert clone(reg).get_params()["model__hidden"] == (7,)
    assert pickle.loads(pickle.dumps(reg)).get_params() == reg.get_params()
    X = np.random.default_rng(0).normal(size=(30, 3))
    fitted = reg.set_params(epochs=1).fit(X, X[:, 0])
    assert [layer.units for layer in fitted.model_.layers[:-1]] == [7]


def test_mixins_come_before_base_estimator():
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    for cls, mixin in (
        (KerasClassifier, ClassifierMixin),
        (KerasRegressor, RegressorMixin),
    ):
        mro = cls.__mro__
        assert mro.index(mixin) < mro.index(BaseEstimator)
    # ... and the scikeras methods still come first
    assert KerasRegressor.score is KerasRegressor.__mro__[2].score


def test_multi_output_predictions_are_float64_and_shaped_like_y():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    for y in (X[:, :2] @ [[1.0, 2.0], [0.5, 1.0]], X[:, :1], X[:, 0]):
        prediction = make_regressor(epochs=1).fit(X, y).predict(X)
        assert prediction.shape == y.shape and prediction.dtype == np.float64
    # a model with one unit for two target columns used to train on broadcast
    # targets and predict 2n rows; now refused before training
    import keras

    def one_unit(meta):
        return keras.Sequential(
            [keras.Input((meta["n_features_in_"],)), keras.layers.Dense(1)]
        )

    with pytest.raises(ValueError, match=r"outputs 1 value\(s\) per row, but y has 2"):
        KerasRegressor(one_unit, loss="mse", verbose=0).fit(X, X[:, :2])


def test_sample_weight_scale_does_not_act_as_a_learning_rate():
    # Keras divides weighted losses by the batch size, not the weights' sum:
    # AdaBoost's weights (summing to 1) froze a plain-SGD network at chance,
    # and AdaBoost then refused it as "worse than random".
    from sklearn.datasets import load_iris
    from sklearn.ensemble import AdaBoostClassifier

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = make_classifier(
        model__hidden=(),
        model__binary_sigmoid=False,
        optimizer="sgd",
        optimizer__learning_rate=0.1,
        epochs=5,
    )
    unweighted = clone(clf).fit(X, y).predict_proba(X)
    tiny = clone(clf).fit(X, y, sample_weight=np.full(len(y), 1 / len(y)))
    np.testing.assert_allclose(tiny.predict_proba(X), unweighted, rtol=1e-5)
    assert accuracy_score(y, unweighted.argmax(axis=1)) > 0.7  # chance: 1/3
    # the ensemble's first network, trained on AdaBoost's weights, learns alike
    boosted = AdaBoostClassifier(clf, n_estimators=2, random_state=0).fit(X, y)
    assert boosted.estimators_[0].score(X, y) > 0.7


def unregistered_mae(y_true, y_pred):
    import keras

    return keras.ops.mean(keras.ops.abs(y_true - y_pred))


def registered_mae(y_true, y_pred):
    return unregistered_mae(y_true, y_pred)


@pytest.mark.parametrize("registered", [True, False])
def test_custom_metrics_survive_pickling_when_registered(registered):
    # After any fit, scikeras pickles the compiled model through keras.saving,
    # which finds a custom metric only by its registered name: an unregistered
    # one "cannot be located" after partial_fit, as with plain scikeras.
    import keras

    metric = unregistered_mae
    if registered:
        metric = keras.saving.register_keras_serializable("test14")(registered_mae)
    X = np.random.default_rng(0).normal(size=(30, 3))
    reg = make_regressor(epochs=1, metrics=[metric]).partial_fit(X, X[:, 0])
    if not registered:
        with pytest.raises(TypeError, match="Could not locate function"):
            pickle.loads(pickle.dumps(reg))
        return
    restored = pickle.loads(pickle.dumps(reg)).partial_fit(X, X[:, 0])
    assert set(restored.history_) == {"loss", "registered_mae"}
