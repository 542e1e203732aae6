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

from ._columns import check_columns, column_map
from ._dense_graph import DenseTree, dense_chain, dense_tree
from ._model import locate_keras_model
from ._outputs import one_result_per_head, resolve_outputs
from ._result import ImportanceResult
from ._validation import (
    check_choice,
    check_model_input,
    scale_problem,
)

__all__ = ["weight_importance"]

METHODS = ("olden", "garson", "first_layer")

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


@one_result_per_head
def weight_importance(
    estimator, *, method: str = "olden", output=None, X=None, columns: str = "raw"
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
        are on comparable scales, to name the features and to read how the
        preprocessing maps raw columns to model columns.
    columns : {"raw", "model"}, default="raw"
        Report on the estimator's input columns, or on the columns the Keras
        model sees. Weights belong to model columns, so ``"raw"`` needs each
        raw column to be exactly one model column (a scaler in front is fine).
        A one-hot encoded column is refused with a ValueError: the weights of
        its indicator columns have no sound sum (the sum grows with the number
        of categories, and their signs cancel arbitrarily). Use permutation or
        probe importance for such columns, or ``columns="model"`` to look at
        the indicators' weights themselves.

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
    columns = check_columns(columns)
    located = locate_keras_model(estimator)
    if located.nd_shape is not None:
        raise ValueError(
            f"weight_importance reads Dense layers on flat inputs; this model "
            f"takes rows of shape {located.nd_shape}. Use permutation_importance "
            "or probe_importance, which work on any model."
        )
    outputs = resolve_outputs(located, output)
    # One network reading per output head; several inputs: a Dense chain each.
    read = dense_tree if len(located.layout.inputs) > 1 else dense_chain
    chains = [read(located.model, head) for head in range(len(located.layout.outputs))]
    chain = chains[0]
    model_names = located.model_feature_names(X)  # distinct, before X is read

    X_model = None
    if X is not None:
        X_model = check_model_input(located, X, caller="weight_importance")
    names, mapping = model_names, None
    if columns == "raw":
        mapping = column_map(located, X, X_model)
        _check_one_to_one(mapping)
        names = mapping.raw_names
    if chain.standardised_by is None:  # else the model standardises its inputs
        if X_model is not None:
            problem = scale_problem(X_model, model_names, "Connection weights")
        else:
            problem = _unscaled_pipeline_problem(located)
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=3)

    # Several heads: each head's reading, their units side by side.
    per_unit = np.concatenate([_per_unit(method, c) for c in chains], axis=1)

    if outputs.expand_binary:
        # p0 = 1 - p1: every signed effect on the negative class is reversed.
        negative = -per_unit if method == "olden" else per_unit
        per_output = np.concatenate([negative, per_unit], axis=1)
    else:
        per_output = per_unit
    if mapping is not None:  # one model column per raw column (or none)
        per_output = mapping.aggregate(per_output, "sum", axis=0)

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


def _per_unit(method: str, network) -> np.ndarray:
    """Importance of each input for each output unit, (n_inputs, n_units)."""
    if isinstance(network, DenseTree):
        return _tree_per_unit(method, network)
    kernels = network.kernels
    if method == "olden":
        return reduce(np.matmul, kernels)
    if method == "garson":
        return _garson(kernels)
    first = np.abs(kernels[0]).sum(axis=1)
    return np.repeat(first[:, np.newaxis], kernels[-1].shape[1], axis=1)


def _tree_per_unit(method: str, tree: DenseTree) -> np.ndarray:
    """The three recipes on a Dense chain per input, concatenated, then a trunk.

    Each input's path is its own chain, its rows of the trunk's first kernel,
    then the rest of the trunk: Olden multiplies along it; the first-layer sum
    reads the input's first kernel (its branch's, or its rows of the trunk's);
    Garson shares relevance down the trunk to the concatenated units, then down
    each branch, exactly as along one chain.
    """
    trunk = tree.trunk.kernels
    n_units = trunk[-1].shape[1]
    rows = []
    if (
        method == "garson"
        and len(trunk) == 1
        and not any(b.kernels for b in tree.branches)
    ):  # no hidden layer at all: shares of the one kernel
        shares = _shares(np.abs(trunk[0]))
        return np.concatenate([shares[slot] for slot in tree.slots], axis=0)
    if method == "garson":
        relevance = np.ones(trunk[-1].shape[0])
        for kernel in reversed(trunk[:-1]):
            relevance = _shares(np.abs(kernel)) @ relevance
    for branch, slot in zip(tree.branches, tree.slots):
        if method == "olden":
            path = [*branch.kernels, trunk[0][slot], *trunk[1:]]
            rows.append(reduce(np.matmul, path))
        elif method == "garson":
            share = relevance[slot]
            for kernel in reversed(branch.kernels):
                share = _shares(np.abs(kernel)) @ share
            rows.append(np.repeat(share[:, np.newaxis], n_units, axis=1))
        else:
            first = branch.kernels[0] if branch.kernels else trunk[0][slot]
            total = np.abs(first).sum(axis=1)
            rows.append(np.repeat(total[:, np.newaxis], n_units, axis=1))
    per_unit = np.concatenate(rows, axis=0)
    if method == "garson":
        total = per_unit[:, 0].sum()
        per_unit = per_unit / total if total > 0 else per_unit
    return per_unit


def _check_one_to_one(mapping) -> None:
    mapping.check_separable("weight_importance")
    encoded = mapping.encoded()
    if encoded:
        listed = ", ".join(f"{name!r} ({width} model columns)" for name, width in
                           encoded.items())  # fmt: skip
        raise ValueError(
            f"weight_importance cannot report on the raw columns {listed}: they "
            "are encoded into several model columns (one-hot), and the weights of "
            "indicator columns have no sound sum (it grows with the number of "
            "categories, and signs cancel arbitrarily). Use permutation or probe "
            "importance, which act on the raw column, or columns='model' to see "
            "the weights of each indicator."
        )


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
