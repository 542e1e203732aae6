"""Importance read from the connection weights of a Dense network.

Three classic recipes, from the naive to the best of the family:

* ``"first_layer"`` sums the absolute first-layer weights of each input;
* ``"garson"`` is Garson's algorithm as Goh (1995) states it and R's
  ``NeuralNetTools::garson`` computes it;
* ``"olden"`` is Olden's connection-weights method, the product of all Dense
  kernels (``NeuralNetTools::olden``), which kept the signs and did best of the
  weight methods in Olden, Joy & Death (2004).

All three look only at the kernels, not at data, so they are instant; and all
three are only as meaningful as the inputs are comparable in scale, which is
why this module warns when it cannot see that the inputs were standardised.
Perturbation and gradient methods do not share that weakness.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import reduce

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from ._model import locate_keras_model
from ._result import ImportanceResult
from ._validation import check_choice, check_model_input, resolve_outputs

__all__ = ["weight_importance"]

METHODS = ("olden", "garson", "first_layer")

#: Column standard deviations further apart than this factor make connection
#: weights incomparable between inputs, so we warn.
SCALE_RATIO_LIMIT = 10.0

# Steps whose output columns are on comparable scales.
_SCALING_STEPS = (
    StandardScaler,
    RobustScaler,
    MinMaxScaler,
    MaxAbsScaler,
    QuantileTransformer,
    PowerTransformer,
    OneHotEncoder,
)


def weight_importance(
    estimator, *, method: str = "olden", output=None, X=None
) -> ImportanceResult:
    """Variable importance from the connection weights of a Dense network.

    Parameters
    ----------
    estimator : estimator or keras.Model
        A fitted Keras wrapper, ``from_keras`` estimator, bare ``keras.Model``,
        or Pipeline ending in one. The network must be a chain of ``Dense``
        layers, optionally with ``Input``, ``Activation`` (and ``ReLU``,
        ``LeakyReLU``, ``PReLU``, ``ELU``, ``Softmax``), ``Dropout`` (and other
        layers that are the identity at inference) and ``BatchNormalization``
        layers; Sequential, functional and nested models all work. Any other
        layer raises a ValueError naming it.
    method : {"olden", "garson", "first_layer"}, default="olden"
        ``"olden"``: the signed connection weights ``W1 @ W2 @ ... @ WL``
        (biases dropped), unnormalised, one value per input and output, as
        ``NeuralNetTools::olden``. Positive means the input pushes the output
        up through the network's weights.

        ``"garson"``: Garson's algorithm (Goh 1995, ``NeuralNetTools::garson``)
        for one hidden layer with input weights ``w`` and output weights ``v``:
        ``c_ij = |w_ij| |v_j|``, ``r_ij = c_ij / sum_i c_ij``,
        ``S_i = sum_j r_ij``, importance ``S_i / sum_i S_i`` (sums to one).
        Note that ``|v_j|`` cancels in ``r_ij``: the output weights never
        matter. Our extension keeps that reading for deeper networks: every
        unit of the last hidden layer carries one unit of relevance and each
        unit shares its relevance among the units feeding it in proportion to
        the absolute weights (Garson's ``r``), layer by layer down to the
        inputs. With one hidden layer this is exactly the formula above; it
        is the same for every output. A network without hidden layer gets
        ``|w_ik| / sum_i |w_ik|``.

        ``"first_layer"``: ``sum_j |W1[i, j]|``, the popular first guess. It
        misleads: a large weight into a hidden unit that the next layer
        ignores (or that is dead or saturated) counts fully; weights of
        opposite sign on two paths do not cancel; correlated inputs share
        weight arbitrarily; and the sum follows the input's scale, not its
        effect. It is here to be compared, not trusted.
    output : int, label or None, default=None
        Which response column to explain: for a classifier the probability of
        each class (a single sigmoid unit ``p`` counts as ``[1 - p, p]``, so
        Olden's sign flips for the negative class), else each unit of the
        output layer. ``None``: the single column, or for a binary classifier
        the positive class ``classes_[1]``; with several columns (multiclass,
        multi-output) the mean absolute importance over all of them, the
        signed per-column values being in ``details["per_output"]``.
    X : array-like of shape (n_samples, n_features), default=None
        Optional data, only used to check that the inputs reaching the model
        are on comparable scales and to name the features.

    Returns
    -------
    ImportanceResult
        One column of importances (the method is deterministic), in the space
        the Keras model sees: one row per model input, named through the
        Pipeline's ``get_feature_names_out``. ``details`` holds
        ``"per_output"`` (n_features, n_outputs), ``"output_names"``,
        ``"explained_outputs"``, ``"dense_layers"`` (names of the kernels
        used) and ``"folded"`` (BatchNormalization layers folded into them).

    Warns
    -----
    UserWarning
        When the inputs reaching the model may not be standardised: with X,
        when column standard deviations differ by more than a factor of 10;
        without X, when no scaling step (StandardScaler, MinMaxScaler, ...)
        precedes the model in a Pipeline and the model does not start with a
        ``Normalization`` or ``BatchNormalization`` layer.

    Notes
    -----
    ``BatchNormalization`` is an affine map per unit at inference, so it is
    folded into the adjacent kernel: into the next Dense layer's rows, or when
    a nonlinearity follows it, into the previous Dense layer's columns if that
    layer is linear; otherwise a ValueError explains it. A ``Normalization``
    or ``BatchNormalization`` layer *before* the first Dense layer is the
    model standardising its own inputs: its division by the standard
    deviation is not folded (weights are read on the standardised scale), a
    BatchNormalization's learned ``gamma`` is.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import weight_importance
    >>> model = keras.Sequential([keras.Input((2,)),
    ...                           keras.layers.Dense(2, activation="sigmoid"),
    ...                           keras.layers.Dense(1)])
    >>> model.set_weights([np.array([[1.0, -2.0], [0.5, 1.0]]), np.zeros(2),
    ...                    np.array([[1.0], [3.0]]), np.zeros(1)])
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> weight_importance(model, method="olden", X=X).importances_mean
    array([-5. ,  3.5])
    >>> weight_importance(model, method="garson", X=X).importances_mean.round(3)
    array([0.667, 0.333])
    """
    method = check_choice("method", method, METHODS)
    located = locate_keras_model(estimator)
    outputs = resolve_outputs(located, output)
    chain = dense_chain(located.model)
    names = located.model_feature_names(X)  # distinct, checked before X is read

    X_model = None
    if X is not None:
        X_model = check_model_input(located, X, caller="weight_importance")
    if chain.standardised_by is None:  # else the model standardises its inputs
        if X_model is not None:
            problem = _scale_problem(X_model, names)
        else:
            problem = _unscaled_pipeline_problem(located)
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=2)

    if method == "olden":
        per_unit = reduce(np.matmul, chain.kernels)
    elif method == "garson":
        per_unit = _garson(chain.kernels)
    else:
        first = np.abs(chain.kernels[0]).sum(axis=1)
        per_unit = np.repeat(first[:, np.newaxis], chain.kernels[-1].shape[1], axis=1)

    if outputs.expand_binary:
        # p0 = 1 - p1: every signed effect on the negative class is reversed.
        negative = -per_unit if method == "olden" else per_unit
        per_output = np.concatenate([negative, per_unit], axis=1)
    else:
        per_output = per_unit

    return ImportanceResult(
        outputs.combine(per_output)[:, np.newaxis],
        names,
        method=method,
        details={
            "per_output": per_output,
            "output_names": list(outputs.names),
            "explained_outputs": outputs.explained,
            "dense_layers": chain.layer_names,
            "folded": chain.folded,
        },
    )


# --- reading the network ----------------------------------------------------


@dataclass
class DenseChain:
    """The Dense kernels of a network, input to output, with BatchNorm folded."""

    kernels: list[np.ndarray]
    layer_names: list[str]
    folded: list[str] = field(default_factory=list)
    standardised_by: str | None = None


@dataclass
class _PendingScale:
    """A (Batch)Normalization scale waiting for a kernel to fold into."""

    scale: np.ndarray
    layer: str  # the first layer of the run, for messages
    folded: list[str]  # the layers whose scale this is
    can_fold_back: bool


def dense_chain(model) -> DenseChain:
    """Extract the kernels of a plain chain of Dense layers.

    Raises
    ------
    ValueError
        A layer that is not Dense/Activation/Dropout-like/BatchNormalization,
        a layer with several inputs, or a BatchNormalization that cannot be
        folded; the message names the layer.
    """
    import keras

    layers = keras.layers
    identity = (
        layers.Dropout,
        layers.GaussianNoise,
        layers.GaussianDropout,
        layers.AlphaDropout,
        layers.ActivityRegularization,
        layers.Identity,
    )
    nonlinear = (
        layers.Activation,
        layers.ReLU,
        layers.LeakyReLU,
        layers.PReLU,
        layers.ELU,
        layers.Softmax,
    )

    chain = DenseChain(kernels=[], layer_names=[])
    pending: _PendingScale | None = None
    last_dense_linear = False

    def fold_back(pending: _PendingScale) -> None:
        if not pending.can_fold_back:
            raise ValueError(
                f"Cannot fold normalisation layer {pending.layer!r} into "
                "a Dense kernel: it sits between two nonlinearities. Weight "
                "importance needs it directly before a Dense layer or directly "
                "after a Dense layer without activation."
            )
        chain.kernels[-1] = chain.kernels[-1] * pending.scale[np.newaxis, :]
        chain.folded.extend(pending.folded)

    for layer in _layers_in_order(model):
        if isinstance(layer, layers.Dense):
            kernel = _to_numpy(layer.kernel)
            if pending is not None:
                kernel = pending.scale[:, np.newaxis] * kernel
                chain.folded.extend(pending.folded)
                pending = None
            chain.kernels.append(kernel)
            chain.layer_names.append(layer.name)
            last_dense_linear = _is_linear(layer.activation)
        elif isinstance(layer, nonlinear):
            if pending is not None:
                fold_back(pending)
                pending = None
            last_dense_linear = False
        elif isinstance(layer, identity):
            continue
        elif isinstance(layer, (layers.BatchNormalization, layers.Normalization)):
            leading = not chain.kernels and pending is None
            scale = _standardising_scale(layer, leading)
            # A Normalization layer only standardises: nothing of it is folded.
            folded = [] if isinstance(layer, layers.Normalization) else [layer.name]
            if leading:
                chain.standardised_by = layer.name
                pending = _PendingScale(scale, layer.name, folded, False)
            elif pending is not None:
                pending.scale = pending.scale * scale
                pending.folded.extend(folded)
            else:
                can_back = bool(chain.kernels) and last_dense_linear
                pending = _PendingScale(scale, layer.name, folded, can_back)
        else:
            raise ValueError(
                f"Weight importance supports chains of Dense layers (with "
                f"Activation, Dropout and BatchNormalization); layer "
                f"{layer.name!r} is a {type(layer).__name__}. Use "
                "permutation_importance or gradient_importance for this model."
            )
    if pending is not None:
        fold_back(pending)
    if not chain.kernels:
        raise ValueError("The Keras model has no Dense layer to read weights from.")
    return chain


def _layers_in_order(model) -> list:
    """The layers from input to output, nested models flattened.

    Walks back from the output tensor, so that any branching shows up as a
    layer with several inputs.
    """
    import keras

    found = []
    tensor, target = model.outputs[0], model.inputs[0]
    while tensor is not target:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError(
                "Cannot read the layers of this Keras model (a subclassed "
                "model?); weight importance needs a Sequential or functional model."
            )
        layer = history.operation
        if isinstance(layer, keras.layers.InputLayer):
            break
        node = layer._inbound_nodes[history.node_index]
        inputs = list(node.input_tensors)
        if len(inputs) != 1:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) takes "
                f"{len(inputs)} inputs; weight importance needs a plain chain "
                "of Dense layers."
            )
        if isinstance(layer, keras.Model):
            found.extend(reversed(_layers_in_order(layer)))
        else:
            found.append(layer)
        tensor = inputs[0]
    return found[::-1]


def _to_numpy(variable) -> np.ndarray:
    # .numpy() rather than np.asarray: TF tensors' __array__ raises a NumPy 2
    # copy-keyword DeprecationWarning.
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return np.asarray(value, dtype=np.float64)


def _is_linear(activation) -> bool:
    return activation is None or getattr(activation, "__name__", "") == "linear"


def _standardising_scale(layer, leading: bool) -> np.ndarray:
    """Per-unit factor of a (Batch)Normalization layer at inference."""
    import keras

    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if list(axis) not in ([-1], [1]):
        raise ValueError(
            f"Layer {layer.name!r} normalises along axis {layer.axis}; weight "
            "importance supports normalisation of the last axis only."
        )
    if isinstance(layer, keras.layers.Normalization):
        if not leading or layer.invert:
            raise ValueError(
                f"Normalization layer {layer.name!r} is supported only as the "
                "first layer of the model, standardising its inputs."
            )
        return np.ones(int(layer.input.shape[-1]))
    gamma = _to_numpy(layer.gamma) if layer.scale else None
    if leading:
        # The model standardises its own inputs: read the weights on that
        # scale, keeping only the learned per-input factor.
        return gamma if gamma is not None else np.ones(int(layer.input.shape[-1]))
    variance = _to_numpy(layer.moving_variance)
    scale = 1.0 / np.sqrt(variance + layer.epsilon)
    return scale * gamma if gamma is not None else scale


# --- the methods ----------------------------------------------------------


def _garson(kernels: list[np.ndarray]) -> np.ndarray:
    """Garson importance per output unit, shape (n_inputs, n_outputs)."""
    magnitudes = [np.abs(kernel) for kernel in kernels]
    hidden, last = magnitudes[:-1], magnitudes[-1]
    if not hidden:
        return _shares(last)
    relevance = np.ones(hidden[-1].shape[1])
    for kernel in reversed(hidden):
        relevance = _shares(kernel) @ relevance
    total = relevance.sum()
    importance = relevance / total if total > 0 else relevance
    return np.repeat(importance[:, np.newaxis], last.shape[1], axis=1)


def _shares(magnitudes: np.ndarray) -> np.ndarray:
    """Each column divided by its sum (Garson's r); an all-zero column stays 0."""
    totals = magnitudes.sum(axis=0, keepdims=True)
    return np.divide(
        magnitudes, totals, out=np.zeros_like(magnitudes), where=totals > 0
    )


# --- is the input standardised? --------------------------------------------


def _scale_problem(X_model: np.ndarray, names) -> str | None:
    spread = X_model.std(axis=0)
    varying = np.flatnonzero(spread > 0)
    if len(varying) < 2:
        return None
    low = varying[np.argmin(spread[varying])]
    high = varying[np.argmax(spread[varying])]
    if spread[high] <= SCALE_RATIO_LIMIT * spread[low]:
        return None
    return (
        "The inputs reaching the Keras model are on different scales: column "
        f"standard deviations range from {spread[low]:.3g} ({names[low]}) to "
        f"{spread[high]:.3g} ({names[high]}). Connection weights are only "
        "comparable between inputs on the same scale; standardise the inputs "
        "(e.g. a StandardScaler before the model in a Pipeline) or use "
        "permutation or gradient importance."
    )


def _unscaled_pipeline_problem(located) -> str | None:
    if located.preprocessor is not None and _scales(located.preprocessor):
        return None
    return (
        "No scaling step precedes the Keras model, so its inputs may not be "
        "standardised and connection weights may not be comparable between "
        "them. Put a StandardScaler before the model in a Pipeline, or pass X "
        "to check the column scales."
    )


def _scales(step) -> bool:
    """Does this (fitted) preprocessing step put its outputs on common scales?"""
    if isinstance(step, _SCALING_STEPS):
        return True
    if isinstance(step, Pipeline):
        return any(_scales(inner) for _, inner in step.steps)
    if isinstance(step, ColumnTransformer):
        branches = [
            inner
            for _, inner, columns in step.transformers_
            if not (isinstance(inner, str) and inner == "drop")
            and not _selects_nothing(columns)
        ]
        return bool(branches) and all(_scales(inner) for inner in branches)
    if isinstance(step, FeatureUnion):
        return all(_scales(inner) for _, inner in step.transformer_list)
    return False


def _selects_nothing(columns) -> bool:
    try:
        return len(columns) == 0
    except TypeError:  # a slice or a callable selector
        return False
