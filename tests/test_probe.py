"""probe_importance: the one-hot probe, baselines, Lek's profile, occlusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimportance import from_keras, probe_importance


def mlp(n_features=4, n_outputs=1, output_activation=None, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(n_outputs, activation=output_activation),
        ]
    )


def linear(weights, bias=0.0):
    import keras

    model = keras.Sequential([keras.Input((len(weights),)), keras.layers.Dense(1)])
    model.set_weights([np.asarray(weights, dtype=float)[:, None], np.array([bias])])
    return model


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.normal(
        loc=[0.0, 1.0, -2.0, 0.5], scale=[1.0, 2.0, 0.5, 3.0], size=(150, 4)
    )


# --- the classic probe is exactly model.predict(one_hot) - model.predict(zeros)


@pytest.mark.parametrize(
    "n_outputs, activation", [(1, None), (3, "softmax"), (1, "sigmoid")]
)
def test_default_probe_is_one_hot_minus_zeros(n_outputs, activation):
    model = mlp(n_outputs=n_outputs, output_activation=activation)
    zeros = model.predict(np.zeros((1, 4)), verbose=0)
    one_hot = np.vstack(
        [model.predict(np.eye(4)[i : i + 1], verbose=0) for i in range(4)]
    )
    expected = one_hot - zeros

    result = probe_importance(model)
    np.testing.assert_array_equal(result.details["per_output"], expected)
    if n_outputs == 1:
        np.testing.assert_array_equal(result.importances_mean, expected[:, 0])
    else:  # several outputs: mean absolute change over outputs
        np.testing.assert_allclose(
            result.importances_mean, np.abs(expected).mean(axis=1)
        )
    assert result.method == "probe"
    assert result.importances.shape == (4, 1)


def test_classifier_reports_each_class_probability():
    model = mlp(output_activation="sigmoid")
    clf = from_keras(model, task="classification", classes=["neg", "pos"])
    zeros = model.predict(np.zeros((1, 4)), verbose=0)[0, 0]
    one_hot = np.array(
        [model.predict(np.eye(4)[i : i + 1], verbose=0)[0, 0] for i in range(4)]
    )

    result = probe_importance(clf)
    assert result.details["output_names"] == ["neg", "pos"]
    np.testing.assert_array_equal(result.importances_mean, one_hot - zeros)
    # the negative class moves the other way
    np.testing.assert_allclose(
        result.details["per_output"][:, 0], -(one_hot - zeros), atol=1e-7
    )
    negative = probe_importance(clf, output="neg")
    np.testing.assert_allclose(negative.importances_mean, -(one_hot - zeros), atol=1e-7)


# --- baselines and probes ---------------------------------------------------


def test_baselines_and_probes_from_X(X):
    model = mlp()

    def f(rows):
        return model.predict(np.asarray(rows), verbose=0)[:, 0].astype(float)

    mean, std = X.mean(axis=0), X.std(axis=0)
    result = probe_importance(model, X, baseline="mean", probe="std")
    shifted = np.tile(mean, (4, 1)) + np.diag(std)
    np.testing.assert_allclose(
        result.importances_mean, f(shifted) - f(mean[None]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(result.details["baseline"], mean)
    np.testing.assert_allclose(result.details["probe"], mean + std)

    median = np.median(X, axis=0)
    result = probe_importance(model, X, baseline="median", probe=[1, 2, 3, 4])
    probed = np.tile(median, (4, 1))
    probed[np.arange(4), np.arange(4)] = [1, 2, 3, 4]
    np.testing.assert_allclose(
        result.importances_mean, f(probed) - f(median[None]), rtol=1e-5, atol=1e-6
    )


def test_probe_works_in_the_model_input_space(X):
    model = mlp()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    pipe = make_pipeline(StandardScaler(), from_keras(model, task="regression"))
    pipe[0].fit(frame)
    by_mean = probe_importance(pipe, frame)  # the default: the data's centre
    by_zeros = probe_importance(pipe, frame, baseline="zeros", probe=1.0)
    np.testing.assert_allclose(
        by_mean.importances_mean, by_zeros.importances_mean, atol=1e-5
    )
    np.testing.assert_array_equal(
        by_zeros.importances_mean, probe_importance(model).importances_mean
    )
    assert list(by_zeros.feature_names) == ["a", "b", "c", "d"]


# --- profile and occlusion on a linear model ---------------------------------


def test_profile_of_a_linear_model(X):
    w = np.array([2.0, -1.0, 0.5, 0.0])
    result = probe_importance(
        linear(w, bias=1.0), X, kind="profile", grid_resolution=7, baseline="zeros"
    )
    expected = np.abs(w) * (X.max(axis=0) - X.min(axis=0))
    np.testing.assert_allclose(result.importances_mean, expected, rtol=1e-5, atol=1e-5)
    assert result.method == "profile"
    assert result.details["curves"].shape == (4, 7, 1)
    np.testing.assert_allclose(result.details["grid"][:, 0], X.min(axis=0))
    np.testing.assert_allclose(result.details["grid"][:, -1], X.max(axis=0))
    # the curve of x0 climbs along its grid, the others at the baseline 0
    curve = result.details["curves"][0, :, 0]
    np.testing.assert_allclose(curve, 1.0 + 2.0 * result.details["grid"][0], rtol=1e-5)


def test_occlusion_of_a_linear_model(X):
    w = np.array([2.0, -1.0, 0.5, 0.0])
    result = probe_importance(
        linear(w), X, kind="occlusion", baseline="mean", background=X
    )
    expected = w * (X - X.mean(axis=0))  # f(x) - f(x with x_i := mean_i)
    np.testing.assert_allclose(
        result.details["attributions"][:, :, 0], expected, rtol=1e-4, atol=1e-5
    )
    assert result.importances.shape == (4, len(X))
    np.testing.assert_allclose(
        result.importances_mean, np.abs(expected).mean(axis=0), rtol=1e-4, atol=1e-5
    )


def test_blocked_and_batched_forward_passes_agree(X):
    model = mlp()
    whole = probe_importance(model, X, kind="profile")
    # The least budget the profile accepts: the grid, the curves and one
    # block of swept rows, 8 bytes * 21 points * 4 inputs * (2 + 1 output).
    # Blocks then hold 3 of the 4 inputs.
    with sklearn.config_context(working_memory=8 * 21 * 4 * 3 / 2**20):
        blocked = probe_importance(model, X, kind="profile", batch_size=9)
    np.testing.assert_allclose(blocked.importances, whole.importances, rtol=1e-6)


def test_multiclass_pipeline(multiclass_classifier, wine):
    X, _ = wine
    result = probe_importance(multiclass_classifier, X, baseline="mean", probe="std")
    assert result.details["per_output"].shape == (X.shape[1], 3)
    assert result.details["output_names"] == ["0", "1", "2"]
    # class probabilities sum to one, so their changes sum to zero
    np.testing.assert_allclose(result.details["per_output"].sum(axis=1), 0, atol=1e-5)
    assert list(result.feature_names) == list(X.columns)


# --- bad arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(baseline=[0.0, 1.0]), "baseline must have one value per input"),
        (dict(probe=np.ones(5)), "probe must have one value per input"),
        (dict(baseline="mean"), "pass X"),
        (dict(probe="std"), "pass X"),
        (dict(kind="profile"), "needs X"),
        (dict(kind="lek"), "kind must be one of"),
        (dict(baseline="average"), "baseline must be one of"),
        (dict(baseline=[0.0, np.nan, 0.0, 0.0]), "NaN"),
        (dict(grid_resolution=0), "grid_resolution == 0, must be >= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        probe_importance(mlp(), **kwargs)


def test_bad_X():
    model = mlp()
    bad = np.ones((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        probe_importance(model, bad, kind="occlusion")
    with pytest.raises(ValueError, match="4"):
        probe_importance(model, np.ones((3, 5)), kind="occlusion")
    with pytest.raises(ValueError, match="could not convert|numbers"):
        probe_importance(model, np.array([["a", "b", "c", "d"]]), kind="occlusion")
    with pytest.raises(TypeError, match="probe must be a number"):
        probe_importance(model, probe=True)


def test_not_a_keras_model():
    with pytest.raises(TypeError, match="found LinearRegression"):
        probe_importance(LinearRegression().fit(np.eye(2), [0.0, 1.0]))
