"""gradient_importance: exact on linear networks, complete, ranks Friedman #1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skimportance import from_keras, gradient_importance

METHODS = ["saliency", "input_x_gradient", "integrated_gradients"]


def reference(method, X) -> dict:
    """Integrated gradients start from the background's centre."""
    return {"background": X} if method == "integrated_gradients" else {}


def linear_net(seed=0):
    """Two Dense layers without activation: f(x) = x @ W1 @ W2 + c."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)]
    )


def smooth_net(n_outputs=1, output_activation=None, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(8, activation="softplus"),
            keras.layers.Dense(n_outputs, activation=output_activation),
        ]
    )


def effective_weights(model):
    W1, _, W2, _ = (np.asarray(w, dtype=float) for w in model.get_weights())
    return (W1 @ W2)[:, 0]


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(scale=[1.0, 2.0, 0.5], size=(64, 3))


# --- exact on a linear network ---------------------------------------------


def test_saliency_of_linear_network_is_abs_weight(X):
    model = linear_net()
    w = effective_weights(model)
    result = gradient_importance(model, X)
    np.testing.assert_allclose(result.importances_mean, np.abs(w), rtol=1e-5)
    np.testing.assert_allclose(
        result.details["attributions"], np.tile(w, (64, 1)), rtol=1e-5
    )
    assert result.importances.shape == (3, 64)  # one draw per row
    assert result.method == "saliency"


def test_input_x_gradient_of_linear_network(X):
    model = linear_net()
    w = effective_weights(model)
    result = gradient_importance(model, X, method="input_x_gradient")
    np.testing.assert_allclose(
        result.details["attributions"], X * w, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        result.importances_mean, np.abs(X * w).mean(axis=0), rtol=1e-5
    )


@pytest.mark.parametrize(
    "baseline, expected_base",
    [
        (None, lambda X: X.mean(axis=0)),  # the default: the data's centre
        ("zeros", lambda X: np.zeros(3)),
        ([1.0, -1.0, 0.5], lambda X: np.array([1.0, -1.0, 0.5])),
    ],
)
def test_integrated_gradients_exact_and_complete_on_linear_network(
    X, baseline, expected_base
):
    model = linear_net()
    w = effective_weights(model)
    result = gradient_importance(
        model,
        X,
        method="integrated_gradients",
        baseline=baseline,
        background=X,
        n_steps=3,
    )
    base = result.details["baseline"]
    np.testing.assert_allclose(base, expected_base(X))
    np.testing.assert_allclose(
        result.details["attributions"], (X - base) * w, rtol=1e-4, atol=1e-6
    )
    f = model.predict(np.vstack([base, X]), verbose=0)[:, 0].astype(float)
    np.testing.assert_allclose(
        result.details["delta"], f[1:] - f[0], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        result.details["attributions"].sum(axis=1), f[1:] - f[0], rtol=1e-4, atol=1e-5
    )


# --- completeness on a nonlinear network ---------------------------------------


def test_integrated_gradients_complete_on_smooth_network(X):
    model = smooth_net()
    result = gradient_importance(
        model, X, method="integrated_gradients", background=X, n_steps=50
    )
    delta = result.details["delta"]
    assert np.abs(delta).max() > 0.05  # the check below is not vacuous
    np.testing.assert_allclose(
        result.details["attributions"].sum(axis=1), delta, rtol=1e-3, atol=1e-4
    )
    assert np.abs(result.details["convergence_delta"]).max() < 1e-3
    # too few steps is measurably incomplete: quadrature matters
    coarse = gradient_importance(
        model, X, method="integrated_gradients", background=X, n_steps=1
    )
    assert np.abs(coarse.details["convergence_delta"]).max() > 1e-3


def test_batching_does_not_change_results(X):
    model = smooth_net()
    for method in METHODS:
        kwargs = dict(method=method, n_steps=4, **reference(method, X))
        whole = gradient_importance(model, X, **kwargs)
        pieces = gradient_importance(model, X, batch_size=7, **kwargs)
        np.testing.assert_allclose(
            pieces.importances, whole.importances, rtol=1e-5, atol=1e-7
        )


# --- outputs ------------------------------------------------------------------


def test_multiclass_output_selection(X):
    model = smooth_net(n_outputs=3, output_activation="softmax")
    clf = from_keras(model, task="classification", classes=["a", "b", "c"])
    every = gradient_importance(clf, X)
    assert every.details["attributions"].shape == (64, 3, 3)
    assert every.details["explained_outputs"] == ["a", "b", "c"]
    # softmax probabilities sum to one: their gradients sum to zero
    np.testing.assert_allclose(every.details["attributions"].sum(axis=2), 0, atol=1e-6)
    for k, label in enumerate("abc"):
        one = gradient_importance(clf, X, output=label)
        assert one.details["attributions"].shape == (64, 3)
        np.testing.assert_allclose(
            one.details["attributions"],
            every.details["attributions"][:, :, k],
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        every.importances_mean,
        np.abs(every.details["attributions"]).mean(axis=(0, 2)),
        rtol=1e-6,
    )


def test_binary_classifier_classes_are_mirror_images(X):
    clf = from_keras(smooth_net(output_activation="sigmoid"), task="classification")
    positive = gradient_importance(
        clf, X, method="integrated_gradients", background=X, n_steps=8
    )
    negative = gradient_importance(
        clf, X, method="integrated_gradients", background=X, n_steps=8, output=0
    )
    np.testing.assert_allclose(
        negative.details["attributions"], -positive.details["attributions"], atol=1e-6
    )
    centre = X.mean(axis=0, keepdims=True)  # the default baseline
    proba = clf.predict_proba(X)[:, 1] - clf.predict_proba(centre)[0, 1]
    np.testing.assert_allclose(positive.details["delta"], proba, atol=1e-6)


def every_kind(model, X):
    identity = FunctionTransformer().fit(X)
    return {
        "keras.Model": model,
        "from_keras": from_keras(model, task="regression"),
        "Pipeline": make_pipeline(identity, from_keras(model, task="regression")),
    }


@pytest.mark.parametrize("method", METHODS)
def test_every_estimator_kind_agrees(X, method):
    model = smooth_net()
    results = {
        kind: gradient_importance(
            estimator, X, method=method, n_steps=4, **reference(method, X)
        ).importances
        for kind, estimator in every_kind(model, X).items()
    }
    for kind, importances in results.items():
        np.testing.assert_allclose(importances, results["keras.Model"], err_msg=kind)


# --- a trained model on Friedman #1 ----------------------------------------------


def test_friedman_informative_features_rank_first(friedman_regressor, friedman):
    X, y = friedman
    informative = {f"x{i}" for i in range(5)}
    saliency = gradient_importance(friedman_regressor, X)
    assert set(saliency.ranking()[:5]) == informative
    # the fixture's ranking agrees with permutation importance
    permutation = permutation_importance(
        friedman_regressor, X, y, n_repeats=3, random_state=0
    )
    top = np.argsort(-permutation.importances_mean)[:5]
    assert {f"x{i}" for i in top} == informative


# --- bad arguments ------------------------------------------------------------


def test_not_a_keras_model(X):
    linear = LinearRegression().fit(X, X.sum(axis=1))
    with pytest.raises(TypeError, match="gradient_importance needs a Keras model"):
        gradient_importance(linear, X)
    with pytest.raises(TypeError, match="needs a Keras model.*found LinearRegression"):
        gradient_importance(
            make_pipeline(FunctionTransformer(), linear).fit(X, X[:, 0]), X
        )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(method="gradcam"), ValueError, "method must be one of"),
        (dict(n_steps=0), ValueError, "n_steps == 0, must be >= 1"),
        (dict(n_steps=2.5), TypeError, "n_steps must be an instance of int"),
        (
            dict(baseline="mean"),
            ValueError,
            "only used by method='integrated_gradients'",
        ),
        (
            dict(method="integrated_gradients", baseline=[0.0, 0.0]),
            ValueError,
            "baseline must have one value per input",
        ),
        (dict(output=7), ValueError, "out of range"),
    ],
)
def test_bad_arguments(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        gradient_importance(smooth_net(), X, **kwargs)


@pytest.mark.parametrize(
    "bad, match",
    [
        (None, "needs X"),
        (np.ones(3), "2D|2-D"),
        (np.ones((4, 2)), "2"),
        (np.array([[1.0, np.inf, 0.0]]), "NaN or infinity|infinity"),
        (np.array([["a", "b", "c"]]), "could not convert|numbers"),
        (np.ones((0, 3)), "0 sample|no rows"),
    ],
)
def test_bad_X(bad, match):
    with pytest.raises(ValueError, match=match):
        gradient_importance(smooth_net(), bad)
