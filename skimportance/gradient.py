"""Gradient importance: saliency, input x gradient and integrated gradients.

Gradients of the model's response with respect to the inputs the Keras model
sees (after the Pipeline's preprocessing), taken with ``tf.GradientTape`` on
large batches of rows: one compiled function per model and set of outputs, no
Python loop over rows. Each method gives one signed attribution per row and
input; the importance of an input is the mean absolute attribution over the
rows of X, and the per-row values are kept on the result.

On the user's raw columns (the default), the attributions of a column's
model inputs (a one-hot block) are summed for input x gradient and integrated
gradients, which keeps completeness, and combined by their Euclidean norm for
saliency. A gradient cannot see through a cast to integers, an Embedding
lookup or an integer input: rather than report such an input's importance as
0.0, the method checks (with a forward pass) whether the output moves with
it, and refuses, naming the input and the layer.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._background import check_background
from ._budget import MAX_ROWS_PER_CALL, check_within_budget, rows_within_budget
from ._columns import check_columns, column_map
from ._gradient_tape import (
    GradientRunner,
    integrate_gradients,
    non_differentiable_layers,
)
from ._model import locate_keras_model
from ._outputs import one_result_per_head, resolve_outputs
from ._rawspace import RawSpace
from ._result import ImportanceResult
from ._validation import (
    check_batch_size,
    check_choice,
    check_model_input,
    check_positive_int,
    resolve_point,
    scale_problem,
    zero_baseline_problem,
)

__all__ = ["gradient_importance"]

METHODS = ("saliency", "input_x_gradient", "integrated_gradients")


@one_result_per_head
def gradient_importance(
    estimator,
    X,
    *,
    method: str = "saliency",
    baseline=None,
    background=None,
    n_steps: int = 50,
    output=None,
    batch_size: int | None = None,
    columns: str = "raw",
) -> ImportanceResult:
    """Importance from the gradients of the network with respect to its inputs.

    Parameters
    ----------
    estimator : estimator or keras.Model
        A fitted Keras wrapper, ``from_keras`` estimator, bare ``keras.Model``
        or Pipeline ending in one (TensorFlow backend).
    X : array-like of shape (n_samples, n_features)
        Rows to explain, in the estimator's input space. Gradients are taken
        with respect to the inputs of the Keras model, i.e. after the
        Pipeline's preprocessing (per standardised unit behind a
        StandardScaler).
    method : {"saliency", "input_x_gradient", "integrated_gradients"}, \
default="saliency"
        Attribution of row x to input i, for the explained response f:

        - ``"saliency"``: ``df/dx_i`` at x; the importance is the mean of
          ``|df/dx_i|``;
        - ``"input_x_gradient"``: ``x_i * df/dx_i``;
        - ``"integrated_gradients"``: ``(x_i - b_i)`` times the average of
          ``df/dx_i`` along the straight line from the baseline b to x
          (Sundararajan et al. 2017), by ``n_steps``-point Gauss-Legendre
          quadrature. The attributions of a row add up to ``f(x) - f(b)``
          (completeness), up to the quadrature error.

        The importance of input i is the mean over rows of the absolute
        attribution.
    baseline : {"mean", "median", "zeros"}, float, array-like or None, \
default=None
        ``"integrated_gradients"`` only: the reference point b. None means
        ``"mean"``: the centre of the ``background`` (each numeric raw
        column's mean, each categorical one's most frequent value, encoded by
        the estimator's own preprocessing). ``"zeros"``, a number or an array:
        a point in the model's input space; a zero baseline in front of a
        model that scales its own inputs (``Normalization``, ``Rescaling``)
        warns, naming the layer.
    background : array-like of shape (n_background, n_features), default=None
        ``"integrated_gradients"`` with a data-driven baseline (``"mean"``,
        ``"median"``): the rows that stand for the data, typically the
        training rows, with X's columns. Required there: the baseline is
        never computed from the rows being explained (for one row it would be
        the row itself, and every attribution 0.0), so a row's attributions
        are the same alone as in any batch. Unused with an explicit baseline.
    n_steps : int, default=50
        ``"integrated_gradients"`` only: quadrature points per row. Checked
        against the memory budget before any work.
    output : int, label or None, default=None
        Which response column to explain: class probabilities for a
        classifier (a single sigmoid unit ``p`` counts as ``[1 - p, p]``),
        else the units of the output layer. ``None``: the single column, the
        positive class of a binary classifier, or with several columns all of
        them, the importance being the mean absolute attribution over
        columns.
    batch_size : int, default=None
        The most rows fed to the network in one gradient computation
        (integrated gradients count each quadrature point as a row). By
        default the memory budget, scikit-learn's ``working_memory``, decides;
        a given value whose batches would not fit it is refused.
    columns : {"raw", "model"}, default="raw"
        Report on the estimator's input columns (a one-hot block summed, or
        normed for saliency) or on the columns the Keras model sees.

    Returns
    -------
    ImportanceResult
        ``importances`` of shape (n_features, n_samples): the absolute
        attribution of every row (averaged over columns when several are
        explained), so ``importances_mean`` is the method's number.
        ``details["attributions"]`` holds the signed attributions, shape
        (n_samples, n_features) for one explained column, else (n_samples,
        n_features, n_outputs). Integrated gradients add ``"baseline"``,
        ``"delta"`` (``f(x) - f(b)``) and ``"convergence_delta"`` (sum of the
        attributions minus delta, zero when complete).

    Raises
    ------
    TypeError
        The estimator holds no Keras model: gradients need one.
    ValueError
        An input the output depends on has no gradient (an integer input, a
        cast to integers, an Embedding lookup); the message names the input
        and the layer, and points to permutation or probe importance. Or
        saliency on inputs whose scales differ more than tenfold (a gradient
        is per unit of its input, so it would rank units, not effects); the
        message names the columns.

    Warns
    -----
    UserWarning
        A zero baseline in front of in-model scaling.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import gradient_importance
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.set_weights([np.array([[3.0], [-0.5]]), np.zeros(1)])
    >>> X = np.random.default_rng(0).normal(size=(20, 2))
    >>> gradient_importance(model, X).importances_mean
    array([3. , 0.5])
    >>> ig = gradient_importance(
    ...     model, X, method="integrated_gradients", background=X)
    >>> bool(np.allclose(ig.details["convergence_delta"], 0, atol=1e-5))
    True
    """
    method = check_choice("method", method, METHODS)
    n_steps = check_positive_int("n_steps", n_steps)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    for name, value in (("baseline", baseline), ("background", background)):
        if value is not None and method != "integrated_gradients":
            raise ValueError(
                f"{name} is only used by method='integrated_gradients', not {method!r}."
            )
    columns = check_columns(columns)
    try:
        located = locate_keras_model(estimator)
    except TypeError as exc:
        raise TypeError(
            "gradient_importance needs a Keras model: gradients are taken "
            f"through the network with TensorFlow. {exc}"
        ) from exc
    outputs = resolve_outputs(located, output)
    _check_float_inputs(located)
    if method == "integrated_gradients":
        _check_n_steps(located, outputs, n_steps)
    model_names = located.model_feature_names(X)  # distinct, before X is read
    X_model = check_model_input(located, X, caller="gradient_importance")
    data_driven = baseline is None or (
        isinstance(baseline, str) and baseline in ("mean", "median")
    )
    if method == "integrated_gradients" and data_driven:
        check_background(
            background,
            X,
            caller="gradient_importance(method='integrated_gradients')",
            what="with a data-driven baseline ('mean', 'median')",
            missing=True,
        )
    else:
        background = None
    batch_size = check_batch_size(located, batch_size, passes=2)
    mapping = column_map(located, X, X_model) if columns == "raw" else None
    if mapping is not None:
        mapping.check_separable("gradient_importance")
    if batch_size is None:
        # Backpropagation keeps every activation and its gradient, and the
        # result holds one gradient per input and explained column.
        row_bytes = 2 * located.bytes_per_row + 8 * X_model.shape[1] * len(
            outputs.columns
        )
        batch_size = rows_within_budget(row_bytes, max_rows=MAX_ROWS_PER_CALL)
    gradients = GradientRunner(located, outputs, batch_size)
    if method == "saliency":
        # A gradient is per unit of its input: on inputs of different scales
        # (dollars beside rates, behind in-model scaling) its ranking is the
        # units', not the model's. Refuse rather than mislead.
        problem = scale_problem(X_model, model_names, "Saliency (a gradient)")
        if problem:
            raise ValueError(f"gradient_importance(method='saliency'): {problem}")

    details: dict = {
        "output_names": list(outputs.names),
        "explained_outputs": outputs.explained,
    }
    if method == "integrated_gradients":  # checked before any gradient is taken
        base = _baseline(located, baseline, background, mapping)
    at_rows = gradients(X_model)
    if method == "integrated_gradients":
        attributions = integrate_gradients(gradients, X_model, base, n_steps)
        # Completeness: what the attributions of each row should add up to.
        response = outputs.response(located.forward(np.vstack([base, X_model])))
        delta = (response[1:] - response[0])[:, list(outputs.columns)]
        delta = delta.astype(np.float64)
        details.update(
            baseline=base,
            delta=_squeeze(delta, outputs),
            convergence_delta=_squeeze(attributions.sum(axis=1) - delta, outputs),
        )
    elif method == "input_x_gradient":
        attributions = at_rows * X_model[:, :, np.newaxis]
    else:
        attributions = at_rows
    _check_no_silent_zeros(located, outputs, X_model, at_rows, model_names)

    names = model_names
    if mapping is not None:
        # A one-column block keeps its signed gradient; a wider block's
        # gradient is a vector, summarised by its length.
        wide = not mapping.one_to_one
        how = "norm" if method == "saliency" and wide else "sum"
        attributions = mapping.aggregate(attributions, how, axis=1)
        names = mapping.raw_names
    importances = np.abs(attributions).mean(axis=2).T
    details["attributions"] = _squeeze(attributions, outputs)
    return ImportanceResult(importances, names, method=method, details=details)


def _baseline(located, baseline, background, mapping) -> np.ndarray:
    """The integrated-gradients reference point, in the model's input space:
    explicit, or a statistic of the background (never of the rows X)."""
    if baseline is None:
        baseline = "mean"
    if isinstance(baseline, str) and baseline == "zeros":
        problem = zero_baseline_problem(located, "gradient_importance")
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=4)
    data_driven = isinstance(baseline, str) and baseline in ("mean", "median")
    raw_encoded = mapping is not None and not mapping.one_to_one and not mapping.nd
    if data_driven and raw_encoded:
        # The centre of the raw columns (a category for a one-hot block),
        # encoded by the estimator's own preprocessing.
        row = RawSpace(background, mapping).baseline(baseline)
        point = located.to_model_input(row)
        point = point.toarray() if hasattr(point, "toarray") else point
        return np.asarray(point, dtype=np.float64)[0]
    reference = None
    if data_driven:
        reference = check_model_input(located, background, caller="background")
    return resolve_point(
        "baseline",
        baseline,
        reference,
        located.n_model_features,
        statistics=("zeros", "mean", "median"),
    )


def _check_n_steps(located, outputs, n_steps: int) -> None:
    """Refuse an ``n_steps`` whose work would not fit the memory budget.

    Gauss-Legendre nodes come from the eigenvalues of an n_steps x n_steps
    matrix, and one row's path holds n_steps points, each with its
    activations, gradients and inputs; all of it exists before any result.
    """
    per_point = 2 * located.bytes_per_row + 8 * located.n_model_features * (
        2 + len(outputs.columns)
    )
    nbytes = max(8 * n_steps**2, n_steps * per_point)
    check_within_budget("n_steps", n_steps, nbytes)


def _check_float_inputs(located) -> None:
    """Gradients need floating-point input tensors."""
    integer = [spec for spec in located.layout.inputs if not spec.is_float]
    if integer:
        named = ", ".join(f"{spec.name!r} ({spec.dtype})" for spec in integer)
        raise ValueError(
            f"gradient_importance needs inputs a gradient can flow to, but the "
            f"Keras model's input {named} takes integer codes (e.g. for an "
            "Embedding): a gradient method would report 0.0 for them. Use "
            "permutation_importance or probe_importance, which only need the "
            "model's outputs."
        )


def _check_no_silent_zeros(located, outputs, X_model, at_rows, names) -> None:
    """Refuse inputs whose gradient is exactly zero on every row although the
    output moves with them: the path to the output is not differentiable."""
    silent = np.flatnonzero(np.all(at_rows == 0, axis=(0, 2)))
    if len(silent) == 0:
        return
    explained = list(outputs.columns)
    original = outputs.response(located.forward(X_model))[:, explained]
    shift = np.roll(np.arange(len(X_model)), 1)
    moving = []
    for k in silent:
        # Values moved between rows stay valid inputs (an integer code stays
        # a code the Embedding knows).
        moved_rows = np.array(X_model, copy=True)
        moved_rows[:, k] = X_model[shift, k]
        moved = outputs.response(located.forward(moved_rows))[:, explained]
        if not np.allclose(moved, original, rtol=1e-6, atol=1e-7):
            moving.append(str(names[k]))
    if moving:
        blockers = non_differentiable_layers(located.model)
        where = f" (through {blockers})" if blockers else ""
        raise ValueError(
            f"gradient_importance: the output depends on input(s) {moving}, but "
            f"their gradient is zero on every row: the path from them to the "
            f"output is not differentiable{where}. A gradient method would report "
            "0.0 for them. Use permutation_importance or probe_importance, which "
            "only need the model's outputs."
        )


def _squeeze(values: np.ndarray, outputs) -> np.ndarray:
    """Drop the trailing outputs axis when a single column is explained."""
    return values if outputs.aggregate else values[..., 0]
