"""Keras estimators that are correct on scikit-learn >= 1.6, and ``from_keras``.

``KerasClassifier`` and ``KerasRegressor`` are scikeras's wrappers with the same
constructor and parameters; they only add what scikeras 0.13 gets wrong on
today's scikit-learn (see ``_compat.py`` for each defect):

* estimator tags and mixin order, so ``is_classifier``/``is_regressor`` are
  true, integer ``cv`` is stratified and ``roc_auc``/``neg_log_loss`` scoring,
  stacking, calibration and partial dependence work;
* ``feature_names_in_`` from DataFrames, and a clear error when the number or
  names of columns change between ``fit`` and ``predict``;
* any real dtype at ``predict`` (float64 X into a model fitted on float32 X),
  with values checked after the cast to the dtype the network computes in
  (1e39 is finite in float64 but infinity in float32);
* targets that leave nothing to learn (one class, a constant) refused by ``fit``;
* ``sample_weight`` taken as relative weights: only their ratios matter, as for
  scikit-learn's estimators, not their scale, which Keras would otherwise
  treat as a learning-rate factor (AdaBoost's weights sum to 1);
* parameters given as keyword arguments (``model__hidden``) are kept out of
  the instance's attributes, as scikit-learn's estimator checks require;
* a regressor's predictions are float64 and shaped like ``y``; a model whose
  output does not match ``y``'s columns is refused before training;
* a seeded fit no longer leaves TensorFlow op determinism switched on, and
  fits in threads of one process no longer race over its global seeds;
* ``predict_proba`` always returns ``(n_samples, n_classes)``, and a passed
  ``sample_weight`` is never modified in place.
"""

from __future__ import annotations

from ._compat import import_tensorflow_quietly

import_tensorflow_quietly()  # before scikeras imports it, with its start-up noise

import inspect  # noqa: E402

import numpy as np  # noqa: E402
from scikeras.wrappers import KerasClassifier as _ScikerasClassifier  # noqa: E402
from scikeras.wrappers import KerasRegressor as _ScikerasRegressor  # noqa: E402
from sklearn.utils.validation import _num_samples  # noqa: E402

from ._compat import MixinsBeforeBaseEstimator  # noqa: E402
from ._inputs import HeadJoiner, check_inputs_mapping, nd_feature_blocks  # noqa: E402
from ._layout import ModelLayout  # noqa: E402
from ._wrapper_checks import (  # noqa: E402
    ShapedRegressorTarget,
    check_classification_target,
    check_emits_probabilities,
    check_output_units,
    check_regression_target,
)
from ._wrapper_fixes import SklearnFixes  # noqa: E402

__all__ = ["KerasClassifier", "KerasRegressor", "from_keras"]

TASKS = ("regression", "classification")


class KerasClassifier(
    SklearnFixes, _ScikerasClassifier, metaclass=MixinsBeforeBaseEstimator
):
    """scikeras's ``KerasClassifier``, correct on scikit-learn >= 1.6.

    Same constructor and parameters as :class:`scikeras.wrappers.KerasClassifier`,
    plus ``inputs``: for a model with several inputs, a dict {model input
    name: X's columns (names or positions)}, so the estimator still takes one
    table; it clones, pickles and tunes like any parameter. ``fit`` refuses a
    target with fewer than two classes (among the rows with a non-zero
    weight).

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    # scikit-learn reads the parameters and their defaults from this signature.
    __init__.__signature__ = inspect.signature(_ScikerasClassifier.__init__)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **kwargs):
        if not self.initialized_ or classes is not None:
            # The first call (or classes=) fixes the classes for good.
            self._check_target(y if classes is None else classes)
        return super().partial_fit(
            X, y, classes=classes, sample_weight=sample_weight, **kwargs
        )

    def predict_proba(self, X, **kwargs):
        proba = super().predict_proba(X, **kwargs)
        # scikeras squeezes, so a single row comes back 1-D.
        return np.reshape(proba, (_num_samples(X), -1))

    def _check_target(self, y, sample_weight=None) -> None:
        check_classification_target(y, sample_weight, who=type(self).__name__)


class KerasRegressor(
    SklearnFixes, _ScikerasRegressor, metaclass=MixinsBeforeBaseEstimator
):
    """scikeras's ``KerasRegressor``, correct on scikit-learn >= 1.6.

    Same constructor and parameters as :class:`scikeras.wrappers.KerasRegressor`,
    plus ``inputs``: for a model with several inputs, a dict {model input
    name: X's columns (names or positions)}, so the estimator still takes one
    table; it clones, pickles and tunes like any parameter. ``fit`` refuses a
    constant target (zero variance); predictions are float64, shaped like the
    ``y`` it was fit on. A prebuilt model with several output heads predicts
    their units side by side.

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    # scikit-learn reads the parameters and their defaults from this signature.
    __init__.__signature__ = inspect.signature(_ScikerasRegressor.__init__)

    @property
    def target_encoder(self):
        """Float64 predictions shaped like y; several output heads (a prebuilt
        model): y's columns split per head for training, the heads'
        predictions side by side."""
        widths = _head_widths(self.model)
        if widths is not None:
            return HeadJoiner(widths)
        return ShapedRegressorTarget()

    def _check_model_compatibility(self, y) -> None:
        super()._check_model_compatibility(y)
        # Before training: a model with the wrong number of output units
        # would train on broadcast targets and predict a reshuffled array.
        outputs = self.model_.outputs
        if len(outputs) == 1:
            units = int(np.prod(tuple(outputs[0].shape)[1:] or (1,)))
            check_output_units(units, self.n_outputs_)

    def _check_target(self, y, sample_weight=None) -> None:
        check_regression_target(y, who=type(self).__name__)


def _head_widths(model) -> tuple[int, ...] | None:
    """The units of each head of a built model with several outputs."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) < 2:
        return None
    return tuple(head.width for head in ModelLayout.from_model(model).outputs)


def from_keras(
    model,
    *,
    task: str,
    classes=None,
    feature_names=None,
    inputs=None,
    feature_axis=None,
):
    """Wrap an already-trained Keras model as a fitted scikit-learn estimator.

    Nothing is retrained: the returned estimator predicts with ``model`` as it is.
    Calling ``fit`` on it later trains ``model`` further (as scikeras does for a
    pre-built model), which needs the model compiled or a ``loss`` set.

    Parameters
    ----------
    model : keras.Model
        A built Keras model: one input of shape ``(batch, n_features)``,
        several named inputs (with ``inputs``), or one N-D input such as
        ``(batch, timesteps, channels)``; one output, or several output heads
        (regression).
    task : {"regression", "classification"}
        What the model predicts. For ``"classification"`` the model must emit
        class probabilities: its output layer has a sigmoid or softmax
        activation, or else its outputs on a probe batch (zeros and standard
        normal rows) lie in [0, 1] and, for several units, sum to 1 in each
        row. Anything else is refused (a linear output scored as
        "probabilities" would give wrong numbers without a warning).
    classes : array-like, default=None
        Classification only: the labels of the model's outputs, in order. With a
        single sigmoid unit the two classes are ``classes[0]`` (output near 0)
        and ``classes[1]``; by default ``[0, 1]`` for one unit and
        ``0..n_units-1`` for a softmax layer.
    feature_names : array-like of str, default=None
        Names of X's columns, stored as ``feature_names_in_``. For an N-D
        input, the names of its features (see ``feature_axis``).
    inputs : dict, default=None
        Needed for a model with several inputs: model input name -> X's
        columns (names or positions) feeding it, so that the estimator takes
        one 2-D table, e.g. ``{"numeric": ["age", "income"], "city":
        ["city_code"]}``. Every column feeds exactly one input. With names
        and no ``feature_names``, X's columns are the named ones, in the
        mapping's order.
    feature_axis : "channel", "timestep", int or array-like, default=None
        For an N-D input, what one feature is: ``"channel"`` (the default:
        one channel across all timesteps), ``"timestep"`` (one timestep
        across all channels), an axis of the per-row shape, or a mask of the
        per-row shape labelling each position with its feature. The
        importance methods report one importance per feature.

    Returns
    -------
    KerasClassifier or KerasRegressor
        A fitted estimator with ``predict`` (and ``predict_proba``/``classes_``
        for classification) and ``n_features_in_``. Several output heads
        predict their units side by side, one column each.

    Raises
    ------
    ValueError
        A model that is not built, has several inputs or outputs, or (for
        ``task="classification"``) does not emit probabilities; the message
        suggests ``task="regression"`` or the missing activation.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import from_keras
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, activation="sigmoid")])
    >>> clf = from_keras(model, task="classification", classes=["no", "yes"])
    >>> clf.predict_proba(np.zeros((2, 3))).shape
    (2, 2)
    >>> numbers = keras.Input((2,), name="numbers")
    >>> code = keras.Input((1,), name="code")
    >>> joined = keras.layers.Concatenate()([numbers, code])
    >>> two = keras.Model([numbers, code], keras.layers.Dense(1)(joined))
    >>> reg = from_keras(two, task="regression",
    ...                  inputs={"numbers": ["a", "b"], "code": ["c"]})
    >>> reg.feature_names_in_.tolist()
    ['a', 'b', 'c']
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    layout = _check_keras_model(model)
    n_outputs = layout.n_outputs
    params = {}
    if len(layout.inputs) > 1 or inputs is not None:
        feature_names = _check_inputs(layout, inputs, feature_names)
        params["inputs"] = inputs
        row_shape: tuple[int, ...] = (layout.n_features,)
    elif len(layout.inputs[0].shape) > 1:  # one N-D input: a sequence, an image
        row_shape = layout.inputs[0].shape
        axis = "channel" if feature_axis is None else feature_axis
        nd_feature_blocks(row_shape, axis, feature_names)  # checked now
        params.update(feature_axis=axis, nd_feature_names=feature_names)
        feature_names = None
    else:
        row_shape = (layout.n_features,)
    if feature_axis is not None and "feature_axis" not in params:
        raise ValueError(
            "feature_axis is for models with one N-D input (a sequence, an "
            f"image); this model takes {[s.shape for s in layout.inputs]}."
        )

    if task == "regression":
        if classes is not None:
            raise ValueError("classes is only used with task='classification'.")
        estimator = KerasRegressor(model=model, verbose=0, **params)
        y_init = np.zeros((2, n_outputs)) if n_outputs > 1 else np.zeros(2)
    else:
        if len(layout.outputs) > 1:
            raise ValueError(
                f"This model has {len(layout.outputs)} output heads "
                f"{[h.name for h in layout.outputs]}; several heads are supported "
                "with task='regression' only."
            )
        classes = _resolve_classes(classes, n_outputs)
        check_emits_probabilities(model, layout)
        estimator = KerasClassifier(model=model, verbose=0, **params)
        y_init = classes
    # scikeras learns its metadata (classes_, encoders, n_features_in_) from
    # data; one dummy row per class teaches it without touching the weights.
    # float64 so that any numeric X can be cast safely later on.
    X_init = np.zeros((len(y_init), *row_shape), dtype=np.float64)
    if feature_names is not None:
        X_init = _named_frame(X_init, feature_names, row_shape[0])
    estimator.initialize(X_init, y_init)
    return estimator


def _check_keras_model(model) -> ModelLayout:
    """The layout of a built Keras model (TypeError/ValueError otherwise)."""
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
    return ModelLayout.from_model(model)


def _check_inputs(layout: ModelLayout, inputs, feature_names):
    """Check ``inputs`` against the model's inputs; return X's column names."""
    expected = [spec.name for spec in layout.inputs]
    if inputs is None:
        raise ValueError(
            f"This Keras model has several inputs {expected}: pass inputs={{model "
            "input name: X's columns}} to say which columns of X feed each."
        )
    given = [str(name) for name in getattr(inputs, "keys", lambda: [])()]
    if sorted(given) != sorted(expected):
        raise ValueError(
            f"inputs must name every input of the model exactly once: the model "
            f"has {expected}, inputs names {given}."
        )
    nd = [spec for spec in layout.inputs if len(spec.shape) > 1]
    if nd:
        raise ValueError(
            f"Input {nd[0].name!r} takes rows of shape {nd[0].shape}; with several "
            "inputs, each must take a flat vector of X's columns."
        )
    listed = [
        column
        for columns in inputs.values()
        for column in ([columns] if isinstance(columns, (str, int)) else columns)
    ]
    if feature_names is None and all(isinstance(c, str) for c in listed):
        feature_names = listed
    positions = check_inputs_mapping(inputs, feature_names, layout.n_features)
    for spec in layout.inputs:
        if len(positions[spec.name]) != spec.width:
            raise ValueError(
                f"Input {spec.name!r} takes {spec.width} value(s) per row; inputs "
                f"maps {len(positions[spec.name])} column(s) to it."
            )
    return feature_names


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
