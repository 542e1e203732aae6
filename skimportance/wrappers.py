"""Keras estimators that are correct on scikit-learn >= 1.6, and ``from_keras``.

``KerasClassifier`` and ``KerasRegressor`` are scikeras's wrappers with the same
constructor and parameters; they only add what scikeras 0.13 gets wrong on
today's scikit-learn (see ``_compat.py`` for each defect):

* estimator tags, so ``is_classifier``/``is_regressor`` are true, integer ``cv``
  is stratified and ``roc_auc``/``neg_log_loss`` scoring, stacking, calibration
  and partial dependence work;
* ``feature_names_in_`` from DataFrames, and a clear error when the number or
  names of columns change between ``fit`` and ``predict``;
* a seeded fit no longer leaves TensorFlow op determinism switched on, and
  fits in threads of one process no longer race over its global seeds;
* ``predict_proba`` always returns ``(n_samples, n_classes)``, and a passed
  ``sample_weight`` is no longer modified in place when ``class_weight`` is set.
"""

from __future__ import annotations

from ._compat import import_tensorflow_quietly

import_tensorflow_quietly()  # before scikeras imports it, with its start-up noise

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scikeras.wrappers import KerasClassifier as _ScikerasClassifier  # noqa: E402
from scikeras.wrappers import KerasRegressor as _ScikerasRegressor  # noqa: E402
from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.utils.validation import _num_samples, validate_data  # noqa: E402

from ._compat import fix_estimator_tags, no_leaked_tf_state  # noqa: E402

__all__ = ["KerasClassifier", "KerasRegressor", "from_keras"]

TASKS = ("regression", "classification")


class _SklearnFixes:
    """Fixes shared by both wrappers. Must stay LEFT of the scikeras class."""

    _estimator_type_name: str

    def __sklearn_tags__(self):
        return fix_estimator_tags(
            super().__sklearn_tags__(),
            self._estimator_type_name,
            seeded=getattr(self, "random_state", None) is not None,
        )

    # scikeras prints every parameter, one per line; scikit-learn's repr shows
    # only the changed ones and keeps test ids and error messages readable.
    __repr__ = BaseEstimator.__repr__

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _validate_data(self, X=None, y=None, reset=False, y_numeric=False):
        if X is not None:
            _check_dense_2d(X)
            # Records/checks n_features_in_ and feature_names_in_ the sklearn
            # way; scikeras then converts and checks values (NaN, strings).
            validate_data(self, X, reset=reset, skip_check_array=True)
        return super()._validate_data(X=X, y=y, reset=reset, y_numeric=y_numeric)

    def fit(self, X, y, sample_weight=None, **kwargs):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        with no_leaked_tf_state():
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def partial_fit(self, X, y, *args, **kwargs):
        with no_leaked_tf_state():
            return super().partial_fit(X, y, *args, **kwargs)

    def initialize(self, X, y=None):
        with no_leaked_tf_state():
            return super().initialize(X, y)


def _check_dense_2d(X) -> None:
    """Reject what scikeras would pass on to TensorFlow's cryptic errors."""
    if sp.issparse(X):
        raise TypeError(
            "Sparse input is not supported: TensorFlow fails on several sparse "
            "formats. Convert it with X.toarray()."
        )
    ndim = getattr(X, "ndim", None)
    if ndim is None:  # lists and other array-likes
        ndim = np.asarray(X, dtype=object).ndim
    if ndim == 1:
        raise ValueError(
            "Expected a 2-dimensional X, got a 1-dimensional one. Reshape your data "
            "with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )


class KerasClassifier(_SklearnFixes, _ScikerasClassifier):
    """scikeras's ``KerasClassifier``, correct on scikit-learn >= 1.6.

    Same constructor and parameters as :class:`scikeras.wrappers.KerasClassifier`.

    Examples
    --------
    >>> import keras
    >>> from sklearn.base import is_classifier
    >>> from skimportance import KerasClassifier
    >>> def build(meta):
    ...     return keras.Sequential([
    ...         keras.Input((meta["n_features_in_"],)),
    ...         keras.layers.Dense(meta["n_classes_"], activation="softmax"),
    ...     ])
    >>> clf = KerasClassifier(build, loss="sparse_categorical_crossentropy",
    ...                       epochs=2, verbose=0, random_state=0)
    >>> is_classifier(clf)
    True
    """

    _estimator_type_name = "classifier"

    def fit(self, X, y, sample_weight=None, **kwargs):
        if sample_weight is not None and self.class_weight is not None:
            # scikeras multiplies the class weights into the caller's array.
            sample_weight = np.array(sample_weight, dtype=float, copy=True)
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def predict_proba(self, X, **kwargs):
        proba = super().predict_proba(X, **kwargs)
        # scikeras squeezes, so a single row comes back 1-D.
        return np.reshape(proba, (_num_samples(X), -1))


class KerasRegressor(_SklearnFixes, _ScikerasRegressor):
    """scikeras's ``KerasRegressor``, correct on scikit-learn >= 1.6.

    Same constructor and parameters as :class:`scikeras.wrappers.KerasRegressor`.

    Examples
    --------
    >>> import keras
    >>> from sklearn.base import is_regressor
    >>> from skimportance import KerasRegressor
    >>> def build(meta):
    ...     return keras.Sequential([
    ...         keras.Input((meta["n_features_in_"],)),
    ...         keras.layers.Dense(1),
    ...     ])
    >>> reg = KerasRegressor(build, loss="mse", epochs=2, verbose=0)
    >>> is_regressor(reg)
    True
    """

    _estimator_type_name = "regressor"


def from_keras(model, *, task: str, classes=None, feature_names=None):
    """Wrap an already-trained Keras model as a fitted scikit-learn estimator.

    Nothing is retrained: the returned estimator predicts with ``model`` as it is.
    Calling ``fit`` on it later trains ``model`` further (as scikeras does for a
    pre-built model), which needs the model compiled or a ``loss`` set.

    Parameters
    ----------
    model : keras.Model
        A built Keras model with one input of shape ``(batch, n_features)`` and
        one output.
    task : {"regression", "classification"}
        What the model predicts.
    classes : array-like, default=None
        Classification only: the labels of the model's outputs, in order. With a
        single sigmoid unit the two classes are ``classes[0]`` (output near 0)
        and ``classes[1]``; by default ``[0, 1]`` for one unit and
        ``0..n_units-1`` for a softmax layer.
    feature_names : array-like of str, default=None
        Names of the input columns, stored as ``feature_names_in_``.

    Returns
    -------
    KerasClassifier or KerasRegressor
        A fitted estimator with ``predict`` (and ``predict_proba``/``classes_``
        for classification) and ``n_features_in_``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import from_keras
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, activation="sigmoid")])
    >>> clf = from_keras(model, task="classification", classes=["no", "yes"])
    >>> clf.predict_proba(np.zeros((2, 3))).shape
    (2, 2)
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    n_features, n_outputs = _check_plain_keras_model(model)

    if task == "regression":
        if classes is not None:
            raise ValueError("classes is only used with task='classification'.")
        estimator = KerasRegressor(model=model, verbose=0)
        y_init = np.zeros((2, n_outputs)) if n_outputs > 1 else np.zeros(2)
    else:
        classes = _resolve_classes(classes, n_outputs)
        estimator = KerasClassifier(model=model, verbose=0)
        y_init = classes
    # scikeras learns its metadata (classes_, encoders, n_features_in_) from
    # data; one dummy row per class teaches it without touching the weights.
    # float64 so that any numeric X can be cast safely later on.
    X_init = np.zeros((len(y_init), n_features), dtype=np.float64)
    if feature_names is not None:
        X_init = _named_frame(X_init, feature_names, n_features)
    estimator.initialize(X_init, y_init)
    return estimator


def _check_plain_keras_model(model) -> tuple[int, int]:
    """Return (n_features, n_outputs) of a single-input, single-output model."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"from_keras expects a keras.Model, got {type(model).__name__}."
        )
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            "The Keras model is not built: give it an Input layer or call it on "
            "data once before wrapping it."
        )
    if len(model.inputs) != 1:
        raise ValueError(
            f"Keras models with several inputs ({len(model.inputs)}) are not "
            "supported yet; concatenate the inputs into one tensor."
        )
    if len(model.outputs) != 1:
        raise ValueError(
            f"Keras models with several outputs ({len(model.outputs)}) are not "
            "supported yet."
        )
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 2 or input_shape[1] is None:
        raise ValueError(
            "Only models taking a 2-D input (batch, n_features) are supported; "
            f"this one takes {input_shape}."
        )
    output_shape = tuple(model.outputs[0].shape)
    n_outputs = 1 if len(output_shape) == 1 else int(np.prod(output_shape[1:]))
    return int(input_shape[1]), n_outputs


def _resolve_classes(classes, n_outputs: int) -> np.ndarray:
    expected = 2 if n_outputs == 1 else n_outputs
    if classes is None:
        return np.arange(expected)
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(classes) != expected:
        raise ValueError(
            f"classes must list {expected} labels for a model with {n_outputs} "
            f"output unit(s), got {classes.tolist()!r}."
        )
    if len(np.unique(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes.tolist()!r}.")
    if not np.array_equal(np.sort(classes), classes):
        # scikit-learn's classes_ are sorted and output unit k means classes_[k].
        raise ValueError(
            f"classes must be given in sorted order, got {classes.tolist()!r}: "
            "output unit k stands for the k-th smallest label."
        )
    return classes


def _named_frame(X: np.ndarray, feature_names, n_features: int):
    import pandas as pd

    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise ValueError(
            f"feature_names has {len(names)} names but the model takes "
            f"{n_features} features."
        )
    return pd.DataFrame(X, columns=names)
