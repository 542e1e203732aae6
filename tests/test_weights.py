"""weight_importance: hand-checked numbers, output handling, layers, warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skimportance import from_keras, weight_importance

# NeuralNetTools' own 2-2-1 example (?garson, ?olden):
# wts_in <- c(13.12, 1.49, 0.16, -0.11, -0.19, -0.16, 0.56, -0.52, 0.81),
# i.e. per hidden unit (bias, from X1, from X2), then (bias, from H1, from H2).
W = [[1.49, -0.19], [0.16, -0.16]]  # W[i][j]: input i -> hidden unit j
B = [13.12, -0.11]
V = [-0.52, 0.81]  # hidden unit j -> output
C = 0.56


def sigmoid_221():
    import keras

    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(2, activation="sigmoid"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.set_weights([np.array(W), np.array(B), np.array(V)[:, None], np.array([C])])
    return model


def dense_net(sizes, activation="tanh", seed=0, output_activation=None):
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((sizes[0],))]
    layers += [keras.layers.Dense(n, activation=activation) for n in sizes[1:-1]]
    layers.append(keras.layers.Dense(sizes[-1], activation=output_activation))
    return keras.Sequential(layers)


def kernels(model):
    import keras

    return [
        np.asarray(layer.kernel.numpy(), dtype=float)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


@pytest.fixture
def standard_X():
    return np.random.default_rng(0).normal(size=(200, 2))


# --- exact values on the 2-2-1 sigmoid network -----------------------------


def test_first_layer_by_hand(standard_X):
    result = weight_importance(sigmoid_221(), method="first_layer", X=standard_X)
    expected = [abs(W[0][0]) + abs(W[0][1]), abs(W[1][0]) + abs(W[1][1])]
    np.testing.assert_allclose(result.importances_mean, expected, rtol=1e-6)
    assert result.importances.shape == (2, 1)
    assert result.method == "first_layer"


def test_olden_by_hand(standard_X):
    result = weight_importance(sigmoid_221(), method="olden", X=standard_X)
    expected = [sum(W[i][j] * V[j] for j in range(2)) for i in range(2)]
    np.testing.assert_allclose(result.importances_mean, expected, rtol=1e-6)
    assert (result.importances_mean < 0).all()  # signed, not normalised


def test_garson_by_hand(standard_X):
    # Goh (1995), as NeuralNetTools::garson: c_ij = |w_ij||v_j|,
    # r_ij = c_ij / sum_i c_ij, S_i = sum_j r_ij, RI_i = S_i / sum_i S_i.
    c = [[abs(W[i][j]) * abs(V[j]) for j in range(2)] for i in range(2)]
    r = [[c[i][j] / (c[0][j] + c[1][j]) for j in range(2)] for i in range(2)]
    s = [r[i][0] + r[i][1] for i in range(2)]
    expected = [s[i] / (s[0] + s[1]) for i in range(2)]

    result = weight_importance(sigmoid_221(), method="garson", X=standard_X)
    np.testing.assert_allclose(result.importances_mean, expected, rtol=1e-6)
    assert result.importances_mean.sum() == pytest.approx(1.0)


def test_olden_multilayer_is_kernel_product(standard_X):
    model = dense_net([2, 5, 4, 3])
    W1, W2, W3 = kernels(model)
    result = weight_importance(model, method="olden", X=standard_X)
    np.testing.assert_allclose(result.details["per_output"], W1 @ W2 @ W3, rtol=1e-5)
    # several outputs, output=None: mean absolute value over outputs
    np.testing.assert_allclose(
        result.importances_mean, np.abs(W1 @ W2 @ W3).mean(axis=1), rtol=1e-5
    )
    np.testing.assert_allclose(
        weight_importance(
            model, method="olden", output=2, X=standard_X
        ).importances_mean,
        (W1 @ W2 @ W3)[:, 2],
        rtol=1e-5,
    )


def test_garson_deeper_networks(standard_X):
    model = dense_net([2, 5, 4, 3])
    W1, W2, W3 = (np.abs(k) for k in kernels(model))
    # documented extension: each last-hidden unit carries one unit of relevance,
    # shared among the units feeding it in proportion to |w|, layer by layer
    relevance = np.ones(4)
    relevance = (W2 / W2.sum(axis=0)) @ relevance
    relevance = (W1 / W1.sum(axis=0)) @ relevance
    result = weight_importance(model, method="garson", X=standard_X)
    np.testing.assert_allclose(result.importances_mean, relevance / 4, rtol=1e-6)
    # output weights cancel, as in Garson's one-layer formula
    model.layers[-1].kernel.assign(np.random.default_rng(1).normal(size=(4, 3)))
    again = weight_importance(model, method="garson", X=standard_X)
    np.testing.assert_allclose(again.importances_mean, result.importances_mean)


def test_garson_without_hidden_layer(standard_X):
    model = dense_net([2, 1])
    (w,) = kernels(model)
    result = weight_importance(model, method="garson", X=standard_X)
    np.testing.assert_allclose(
        result.importances_mean, np.abs(w[:, 0]) / np.abs(w).sum()
    )


# --- outputs ----------------------------------------------------------------


def test_binary_classifier_outputs(standard_X):
    clf = from_keras(sigmoid_221(), task="classification", classes=["no", "yes"])
    olden = [sum(W[i][j] * V[j] for j in range(2)) for i in range(2)]
    positive = weight_importance(clf, method="olden", X=standard_X)
    np.testing.assert_allclose(positive.importances_mean, olden, rtol=1e-6)
    assert positive.details["output_names"] == ["no", "yes"]
    assert positive.details["explained_outputs"] == ["yes"]
    # p(no) = 1 - p(yes): the signs flip
    for output in (0, "no"):
        negative = weight_importance(clf, method="olden", output=output, X=standard_X)
        np.testing.assert_allclose(
            negative.importances_mean, -np.array(olden), rtol=1e-6
        )


def test_output_out_of_range(standard_X):
    with pytest.raises(ValueError, match="out of range"):
        weight_importance(sigmoid_221(), output=3, X=standard_X)
    with pytest.raises(ValueError, match="response columns"):
        weight_importance(sigmoid_221(), output="cat", X=standard_X)


# --- estimator kinds and names ---------------------------------------------


def every_kind(model, X):
    """The same network as each estimator kind skimportance accepts."""
    from keras.wrappers import SKLearnRegressor

    y = np.zeros(len(X))
    keras_wrapper = SKLearnRegressor(
        model=model, fit_kwargs={"epochs": 0, "verbose": 0}
    ).fit(X, y)
    keras_wrapper.model_.set_weights(model.get_weights())  # it fits a clone
    identity = FunctionTransformer().fit(X)
    return {
        "keras.Model": model,
        "from_keras": from_keras(model, task="regression"),
        "Pipeline": make_pipeline(identity, from_keras(model, task="regression")),
        "keras.wrappers": keras_wrapper,
    }


@pytest.mark.parametrize("method", ["olden", "garson", "first_layer"])
def test_every_estimator_kind_agrees(method, standard_X):
    model = dense_net([2, 3, 1])
    model.compile(loss="mse")
    results = {
        kind: weight_importance(estimator, method=method, X=standard_X).importances
        for kind, estimator in every_kind(model, standard_X).items()
    }
    for kind, importances in results.items():
        np.testing.assert_allclose(importances, results["keras.Model"], err_msg=kind)


def test_pipeline_feature_names_and_no_warning(diabetes_pipeline, diabetes):
    X, _ = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a StandardScaler precedes the model
        result = weight_importance(diabetes_pipeline, method="garson")
    assert list(result.feature_names) == list(X.columns)
    assert result.importances_mean.sum() == pytest.approx(1.0)


# --- the standardisation warning -------------------------------------------


def test_warns_without_scaler_or_X():
    with pytest.warns(UserWarning, match="No scaling step precedes"):
        weight_importance(sigmoid_221())


def test_warns_on_unequal_scales(standard_X):
    with pytest.warns(UserWarning, match=r"different scales.*x1"):
        weight_importance(sigmoid_221(), X=standard_X * [1.0, 50.0])


def test_no_warning_with_equal_scales_or_own_normalization(standard_X):
    import keras

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weight_importance(sigmoid_221(), X=standard_X)
        norm = keras.layers.Normalization()
        norm.adapt(standard_X * [1.0, 50.0])
        model = keras.Sequential([keras.Input((2,)), norm, keras.layers.Dense(1)])
        result = weight_importance(model)  # the model standardises its inputs
        weight_importance(model, X=standard_X * [1.0, 50.0])
    # read on the standardised scale: the Normalization is not folded
    np.testing.assert_allclose(result.importances_mean, kernels(model)[0][:, 0])


# --- layers -----------------------------------------------------------------


def linear_jacobian(model, n_features):
    rows = np.vstack([np.zeros(n_features), np.eye(n_features)])
    out = model.predict(rows, verbose=0).astype(float)
    return out[1:] - out[0]


def test_batchnorm_folds_into_neighbouring_kernels():
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((3,))
    h = keras.layers.Dense(4)(inp)
    h = keras.layers.BatchNormalization()(h)  # folds forward into the next Dense
    h = keras.layers.Dense(5)(h)
    h = keras.layers.BatchNormalization()(h)  # folds back: an Activation follows
    h = keras.layers.Activation("linear")(h)
    h = keras.layers.Dropout(0.5)(h)
    out = keras.layers.Dense(2)(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # gamma, beta, moving mean and variance all away from 0/1 defaults
            layer.set_weights(
                [rng.uniform(0.5, 2, size=w.shape) for w in layer.get_weights()]
            )
    # all maps are linear, so Olden's product must equal the exact Jacobian
    result = weight_importance(model, method="olden", X=rng.normal(size=(50, 3)))
    np.testing.assert_allclose(
        result.details["per_output"], linear_jacobian(model, 3), rtol=1e-4, atol=1e-6
    )
    assert len(result.details["folded"]) == 2


def test_nested_model_is_flattened(standard_X):
    import keras

    inner = dense_net([3, 4, 2])
    inp = keras.Input((2,))
    h = keras.layers.Dense(3, activation="relu")(inp)
    model = keras.Model(inp, inner(h))
    (W0,) = kernels(model)  # the outer Dense; the inner ones follow
    W1, W2 = kernels(inner)
    result = weight_importance(model, method="olden", X=standard_X)
    np.testing.assert_allclose(result.details["per_output"], W0 @ W1 @ W2, rtol=1e-5)


def test_unfoldable_batchnorm_is_rejected(standard_X):
    import keras

    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.BatchNormalization(name="bn_between"),
            keras.layers.Activation("tanh"),
            keras.layers.Dense(1),
        ]
    )
    with pytest.raises(ValueError, match="bn_between.*two nonlinearities"):
        weight_importance(model, X=standard_X)


def test_unsupported_layer_is_named(standard_X):
    import keras

    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(3),
            keras.layers.UnitNormalization(name="unit_norm"),
            keras.layers.Dense(1),
        ]
    )
    with pytest.raises(ValueError, match="'unit_norm' is a UnitNormalization"):
        weight_importance(model, X=standard_X)


def test_branching_model_is_rejected(standard_X):
    import keras

    inp = keras.Input((2,))
    added = keras.layers.Add(name="merge")(
        [keras.layers.Dense(3)(inp), keras.layers.Dense(3)(inp)]
    )
    model = keras.Model(inp, keras.layers.Dense(1)(added))
    with pytest.raises(ValueError, match="'merge' \\(Add\\) takes 2 inputs"):
        weight_importance(model, X=standard_X)


# --- bad arguments ------------------------------------------------------------


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        weight_importance(sigmoid_221(), method="lek")


def test_not_a_keras_model():
    linear = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="found LinearRegression"):
        weight_importance(linear)


def test_unfitted_wrapper(standard_X):
    from skimportance import KerasRegressor

    with pytest.raises(NotFittedError):
        weight_importance(make_pipeline(StandardScaler(), KerasRegressor(model=None)))


def test_bad_X(standard_X):
    with pytest.raises(ValueError, match="NaN"):
        weight_importance(sigmoid_221(), X=np.array([[np.nan, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="3"):
        weight_importance(sigmoid_221(), X=np.ones((4, 3)))
