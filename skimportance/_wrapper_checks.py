"""What the Keras wrappers check and fix in the data they are given.

Kept apart from ``wrappers.py`` so that the classes there read as the list of
fixes they make, each a call to one of these functions:

* dtypes: ``dtype_of`` tells which dtype X converts to, without converting it;
* targets: ``check_classification_target`` and ``check_regression_target``
  refuse targets that leave nothing to learn; ``ShapedRegressorTarget`` and
  ``check_output_units`` keep a regressor's predictions shaped like ``y``;
* weights: ``relative_weights``;
* ``from_keras``: ``check_emits_probabilities`` for classification models.
"""

from __future__ import annotations

import numpy as np
from scikeras.utils.transformers import RegressorTargetEncoder

from ._compat import layer_inputs

__all__ = [
    "ShapedRegressorTarget",
    "check_classification_target",
    "check_emits_probabilities",
    "check_output_units",
    "check_regression_target",
    "dtype_of",
    "relative_weights",
]


def dtype_of(X) -> np.dtype | None:
    """The dtype X converts to, without converting a DataFrame; None if mixed."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and not hasattr(X, "dtype"):
        try:
            return np.result_type(*dtypes)
        except (TypeError, ValueError):  # extension dtypes (categorical), no columns
            return None
    dtype = getattr(X, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype
    # No dtype, or a pandas extension dtype (pandas 3's strings): what it becomes.
    return np.asarray(X).dtype


def relative_weights(sample_weight) -> np.ndarray:
    """A copy of ``sample_weight`` scaled to mean 1 over the weighted rows.

    Keras weighs each row's loss by its weight and divides by the batch size,
    not by the sum of the weights: weights summing to 1 (AdaBoost's) shrink
    every gradient by the number of rows, and a plain-SGD network then does
    not move. Scaled like this, weighted rows train as repeated rows would,
    and only the weights' ratios matter, as for scikit-learn's estimators.
    The caller's array is never modified (scikeras multiplies class weights
    into it).
    """
    weights = np.array(sample_weight, dtype=np.float64, copy=True)
    used = weights[weights != 0]
    scale = used.mean() if used.size else 0.0
    if np.isfinite(scale) and scale > 0:
        weights /= scale
    return weights


def check_classification_target(y, sample_weight=None, *, who: str) -> None:
    """Refuse a single target with fewer than two classes among the rows with
    a non-zero weight: a classifier trained on one class predicts it
    everywhere, with a perfect score. Multilabel and multi-output targets are
    left to scikeras."""
    labels = _as_1d_labels(y)
    if labels is None:  # multilabel or multi-output: scikeras checks those
        return
    weights = None if sample_weight is None else np.asarray(sample_weight)
    if weights is not None and weights.shape == labels.shape:
        labels = labels[weights != 0]  # scikeras drops zero-weight rows
        if not len(labels):  # scikeras names all-zero weights itself
            return
    try:
        classes = np.unique(labels)
    except TypeError:  # mixed label types: scikeras names the problem
        return
    if len(classes) < 2:
        found = f"1 class ({classes[0]!r})" if len(classes) else "no class"
        raise ValueError(
            f"{who} needs at least 2 classes to learn from, but y has {found}. "
            "A classifier trained on one class predicts it everywhere, with a "
            "perfect score whatever X is."
        )


def check_regression_target(y, *, who: str) -> None:
    """Refuse a numeric target, or target column, with zero variance."""
    values = np.asarray(y)
    # Strings, complex numbers, NaN, infinity: scikeras names the problem.
    if values.dtype.kind not in "biuf" or values.ndim not in (1, 2):
        return
    if values.size == 0 or not np.isfinite(values).all():
        return
    columns = values.reshape(len(values), -1)
    constant = np.flatnonzero(np.ptp(columns, axis=0) == 0)
    if constant.size:
        where = "y" if values.ndim == 1 else f"column {constant[0]} of y"
        raise ValueError(
            f"{who} needs a target that varies, but {where} is constant "
            f"({columns[0, constant[0]]:g} in all {len(values)} sample(s)): zero "
            "variance leaves nothing to learn, and its r2 score is undefined."
        )


class ShapedRegressorTarget(RegressorTargetEncoder):
    """scikeras's regressor target encoder, with predictions shaped like y.

    scikeras reshapes the network's output to y's trailing shape with
    ``reshape(-1, ...)``, which silently turns (n, 2) predictions for a 1-D y
    into 2n rows. Here a mismatch is an error, and predictions are float64
    like every scikit-learn regressor's, whatever y's dtype.
    """

    def inverse_transform(self, y):
        y = np.asarray(y)
        check_output_units(int(np.prod(y.shape[1:])), self.n_outputs_)
        return super().inverse_transform(y).astype(np.float64, copy=False)


def check_output_units(units: int, n_targets: int) -> None:
    if units != n_targets:
        raise ValueError(
            f"The Keras model outputs {units} value(s) per row, but y has "
            f"{n_targets} column(s): give the output layer one unit per target "
            "column (scikeras passes meta['n_outputs_'] to the model builder)."
        )


def _as_1d_labels(y) -> np.ndarray | None:
    """y as a 1-D array of labels, or None when it is not a single target."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return labels if labels.ndim == 1 else None


#: Output activations that make a classifier's outputs probabilities.
_PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")


def check_emits_probabilities(model, layout) -> None:
    """Refuse a classification model whose outputs are not probabilities.

    ``layout``: the model's ``ModelLayout`` (its inputs, flattened)."""
    layer, activation = _output_activation(model)
    if activation in _PROBABILITY_ACTIVATIONS:
        return
    # Another activation (or an unknown layer) may still emit probabilities,
    # e.g. a custom normalisation: look at what it gives on a probe batch.
    import keras

    n_features = layout.n_features
    rows = np.random.RandomState(0).normal(size=(64, n_features))
    probe = np.vstack([np.zeros((1, n_features)), rows])
    for k, spec in enumerate(layout.inputs):
        if not spec.is_float:  # integer codes: 0 is one the model knows
            probe[:, layout.input_columns(k)] = 0
    network_input = layout.to_network(probe)
    outputs = keras.ops.convert_to_numpy(model(network_input, training=False))
    outputs = np.reshape(outputs, (len(probe), -1)).astype(np.float64)
    in_range = bool(np.all((outputs >= -1e-6) & (outputs <= 1 + 1e-6)))
    sums_to_one = outputs.shape[1] == 1 or bool(
        np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4)
    )
    if in_range and sums_to_one:
        return
    shown = "no activation" if activation is None else f"activation {activation!r}"
    units = outputs.shape[1]
    needed = "sigmoid" if units == 1 else "softmax"
    raise ValueError(
        "from_keras(task='classification') needs a model that outputs class "
        f"probabilities, but its output layer {layer!r} has {shown} and emits "
        f"values in [{outputs.min():.3g}, {outputs.max():.3g}]"
        + ("" if sums_to_one else " whose rows do not sum to 1")
        + " on a probe batch. If the model predicts numbers, use "
        "task='regression'; if it is a classifier, add the activation to its "
        f"output layer (e.g. Dense({units}, activation={needed!r}))."
    )


def _output_activation(model) -> tuple[str, str | None]:
    """(name of the output layer, name of its activation or None)."""
    import keras

    found = layer_inputs(model.outputs[0])
    layer = found[0] if found is not None else model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return layer.name, "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return layer.name, name if isinstance(name, str) else None
