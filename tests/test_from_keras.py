"""from_keras: an already-trained keras.Model as a fitted scikit-learn estimator."""

import keras
import numpy as np
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.inspection import permutation_importance
from sklearn.utils.validation import check_is_fitted

from skimportance import from_keras


def dense_model(n_features, units, activation=None, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(units, activation=activation),
        ]
    )


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(50, 4))


def test_regression_predicts_with_the_model_unchanged(X):
    model = dense_model(4, 1)
    weights_before = [w.copy() for w in model.get_weights()]
    reg = from_keras(model, task="regression")
    check_is_fitted(reg)
    assert is_regressor(reg) and reg.n_features_in_ == 4
    np.testing.assert_allclose(reg.predict(X), model.predict(X, verbose=0)[:, 0])
    for before, after in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_single_sigmoid_unit_classifier(X):
    model = dense_model(4, 1, activation="sigmoid")
    clf = from_keras(model, task="classification", classes=["no", "yes"])
    assert is_classifier(clf)
    assert list(clf.classes_) == ["no", "yes"]
    p_yes = model.predict(X, verbose=0)[:, 0]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], p_yes, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), np.where(p_yes > 0.5, "yes", "no"))


def test_softmax_classifier_with_default_classes(X):
    model = dense_model(4, 3, activation="softmax")
    clf = from_keras(model, task="classification")
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    expected = model.predict(X, verbose=0)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), expected.argmax(axis=1))


def test_sklearn_permutation_importance_works_on_it(X):
    model = dense_model(4, 1)
    reg = from_keras(model, task="regression")
    y = reg.predict(X)
    result = permutation_importance(reg, X, y, n_repeats=2, random_state=0)
    assert result.importances.shape == (4, 2)
    assert np.all(np.isfinite(result.importances_mean))


def test_feature_names(X):
    reg = from_keras(dense_model(4, 1), task="regression", feature_names=list("abcd"))
    assert list(reg.feature_names_in_) == list("abcd")
    with pytest.raises(ValueError, match="feature_names has 3 names"):
        from_keras(dense_model(4, 1), task="regression", feature_names=list("abc"))


def test_bad_task_names_the_allowed_values():
    with pytest.raises(ValueError, match="'regression', 'classification'"):
        from_keras(dense_model(4, 1), task="clustering")


@pytest.mark.parametrize(
    "units, classes, match",
    [
        (3, ["a", "b"], "must list 3 labels"),
        (1, [0, 1, 2], "must list 2 labels"),
        (2, [1, 1], "distinct"),
        (2, ["yes", "no"], "sorted order"),
    ],
)
def test_bad_classes(units, classes, match):
    with pytest.raises(ValueError, match=match):
        from_keras(dense_model(4, units), task="classification", classes=classes)


def test_classes_only_for_classification():
    with pytest.raises(ValueError, match="classes is only used"):
        from_keras(dense_model(4, 1), task="regression", classes=[0, 1])


def test_not_a_keras_model():
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="expects a keras.Model, got Ridge"):
        from_keras(Ridge(), task="regression")


def test_several_inputs_need_the_inputs_mapping():
    a, b = keras.Input((2,)), keras.Input((3,))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([a, b]))
    with pytest.raises(ValueError, match=r"several inputs .*pass inputs=\{"):
        from_keras(keras.Model([a, b], out), task="regression")


def test_unbuilt_model_is_a_clear_error():
    with pytest.raises(ValueError, match="not built"):
        from_keras(keras.Sequential([keras.layers.Dense(1)]), task="regression")
