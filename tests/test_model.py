"""_model.py finds the Keras model in every supported estimator and runs it."""

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import make_classifier, make_regressor
from scikeras.wrappers import KerasClassifier as PlainScikerasClassifier
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import from_keras
from skimportance._model import has_keras_model, locate_keras_model


def softmax_build(meta):
    return keras.Sequential(
        [
            keras.Input((meta["n_features_in_"],)),
            keras.layers.Dense(meta["n_classes_"], activation="softmax"),
        ]
    )


def keras_wrapper_classifier(X, y):
    model = keras.Sequential(
        [keras.Input((X.shape[1],)), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile("adam", "categorical_crossentropy")
    wrapper = keras.wrappers.SKLearnClassifier(
        model, fit_kwargs={"epochs": 2, "verbose": 0}
    )
    return wrapper.fit(X, y)


def keras_wrapper_regressor(X, y):
    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    wrapper = keras.wrappers.SKLearnRegressor(
        model, fit_kwargs={"epochs": 2, "verbose": 0}
    )
    return wrapper.fit(X, y)


@pytest.fixture(scope="module")
def wine_arrays(wine):
    X, y = wine
    return StandardScaler().fit_transform(X), y.to_numpy()


ESTIMATORS = {
    "skimportance classifier": lambda X, y: make_classifier(epochs=2).fit(X, y),
    "skimportance regressor": lambda X, y: make_regressor(epochs=2).fit(X, y),
    "plain scikeras": lambda X, y: PlainScikerasClassifier(
        softmax_build, loss="sparse_categorical_crossentropy", epochs=2, verbose=0
    ).fit(X, y),
    "keras SKLearnClassifier": keras_wrapper_classifier,
    "keras SKLearnRegressor": keras_wrapper_regressor,
    "from_keras": lambda X, y: from_keras(
        keras.Sequential(
            [keras.Input((X.shape[1],)), keras.layers.Dense(3, "softmax")]
        ),
        task="classification",
    ),
    "pipeline": lambda X, y: make_pipeline(
        StandardScaler(), make_classifier(epochs=2)
    ).fit(X, y),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_decoded_forward_pass_equals_the_estimator(name, wine_arrays):
    X, y = wine_arrays
    estimator = ESTIMATORS[name](X, y)
    located = locate_keras_model(estimator)
    assert has_keras_model(estimator)
    raw = located.raw_predict(X)
    for method in located.response_methods:
        expected = getattr(estimator, method)(X)
        got = located.decode(raw, method)
        assert got.shape == np.shape(expected), method
        if method == "predict" and np.asarray(expected).dtype.kind not in "f":
            np.testing.assert_array_equal(got, expected)  # labels
        else:
            # Keras's predict runs other batches: float32 rounding, scaled.
            atol = 1e-6 * max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=atol)


def test_bare_keras_model(wine_arrays):
    X, _ = wine_arrays
    model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(1)])
    located = locate_keras_model(model)
    assert located.kind == "keras_model" and located.final is None
    np.testing.assert_allclose(
        located.decode(located.raw_predict(X)), model.predict(X, verbose=0)[:, 0]
    )
    with pytest.raises(ValueError, match="X has 3 features"):
        located.to_model_input(X[:, :3])


def test_forward_pass_is_batched_without_retracing_or_output(wine_arrays, capsys):
    X, _ = wine_arrays
    model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(2)])
    located = locate_keras_model(model)
    full = located.forward(X)
    for batch_size in (1, 7, 64):
        np.testing.assert_allclose(  # other batches: float32 rounding, scaled
            located.forward(X, batch_size=batch_size),
            full,
            rtol=1e-6,
            atol=1e-6 * float(np.abs(full).max()),
        )
    located.forward(X[:5])
    from skimportance._forward import forward_function as _forward_function

    assert _forward_function(model).compiled.experimental_get_tracing_count() == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_model_feature_names_come_from_the_preprocessing():
    X = pd.DataFrame({"age": [20.0, 30, 40, 50], "city": ["a", "b", "a", "c"]})
    y = np.array([1.0, 2, 3, 4])
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["age"]), ("cat", OneHotEncoder(), ["city"])]
    )
    pipe = make_pipeline(pre, make_regressor(epochs=1)).fit(X, y)
    names = locate_keras_model(pipe).model_feature_names()
    assert list(names) == ["num__age", "cat__city_a", "cat__city_b", "cat__city_c"]


def test_no_keras_model_names_what_was_found():
    X, y = np.ones((4, 2)), np.arange(4.0)
    assert not has_keras_model(Ridge())
    with pytest.raises(TypeError, match="found Ridge"):
        locate_keras_model(Ridge().fit(X, y))
    with pytest.raises(TypeError, match="found Ridge as the last step of the Pipeline"):
        locate_keras_model(make_pipeline(StandardScaler(), Ridge()).fit(X, y))


def test_unfitted_estimators_raise_not_fitted():
    with pytest.raises(NotFittedError):
        locate_keras_model(make_regressor())
    with pytest.raises(NotFittedError):
        locate_keras_model(make_pipeline(StandardScaler(), make_regressor()))


def test_a_bare_model_with_several_inputs_asks_for_from_keras():
    a, b = keras.Input((2,)), keras.Input((3,))
    model = keras.Model(
        [a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b]))
    )
    with pytest.raises(ValueError, match=r"several inputs .*from_keras\(model"):
        locate_keras_model(model)


@pytest.mark.slow  # traces every compiled function of several models
def test_our_compiled_functions_never_warn_of_retracing(caplog):
    # Many models (folds), each with its own one-trace forward and gradient
    # functions: TensorFlow counts traces per code object, so closures would
    # add up to a "triggered tf.function retracing" warning.
    import logging

    from conftest import make_friedman_pipeline
    from sklearn.datasets import make_friedman1

    from skimportance import cross_validate_importance

    X, y = make_friedman1(n_samples=120, n_features=5, random_state=0)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        cross_validate_importance(
            make_friedman_pipeline(epochs=1),
            X,
            y,
            cv=7,
            method=["permutation", "saliency", "integrated_gradients"],
            n_repeats=1,
            random_state=0,
        )
    retraced = [r.getMessage() for r in caplog.records if "retracing" in r.getMessage()]
    # Keras's own predict function (scikeras's predict) may warn; ours never.
    ours = [message for message in retraced if "TensorFlowTrainer" not in message]
    assert not ours
