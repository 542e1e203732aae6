"""Gradient importance: saliency, input x gradient and integrated gradients.

Gradients of the model's response with respect to the inputs the Keras model
sees (after the Pipeline's preprocessing), taken with ``tf.GradientTape`` on
large batches of rows: one compiled function per model and set of outputs, no
Python loop over rows. Each method gives one signed attribution per row and
input; the importance of an input is the mean absolute attribution over the
rows of X, and the per-row values are kept on the result.
"""

from __future__ import annotations

import weakref

import numpy as np

from ._budget import MAX_ROWS_PER_CALL, check_within_budget, rows_within_budget
from ._model import locate_keras_model, model_input_dtype
from ._result import ImportanceResult
from ._validation import (
    check_batch_size,
    check_choice,
    check_model_input,
    check_positive_int,
    resolve_outputs,
    resolve_point,
)

__all__ = ["gradient_importance"]

METHODS = ("saliency", "input_x_gradient", "integrated_gradients")


def gradient_importance(
    estimator,
    X,
    *,
    method: str = "saliency",
    baseline=None,
    n_steps: int = 50,
    output=None,
    batch_size: int | None = None,
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
    baseline : {"zeros", "mean", "median"}, float, array-like or None, \
default=None
        ``"integrated_gradients"`` only: the reference point b in the model's
        input space; None means zeros.
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

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import gradient_importance
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.set_weights([np.array([[3.0], [-0.5]]), np.zeros(1)])
    >>> X = np.random.default_rng(0).normal(size=(20, 2))
    >>> gradient_importance(model, X).importances_mean
    array([3. , 0.5])
    >>> ig = gradient_importance(model, X, method="integrated_gradients")
    >>> bool(np.allclose(ig.details["convergence_delta"], 0, atol=1e-5))
    True
    """
    method = check_choice("method", method, METHODS)
    n_steps = check_positive_int("n_steps", n_steps)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if baseline is not None and method != "integrated_gradients":
        raise ValueError(
            f"baseline is only used by method='integrated_gradients', not {method!r}."
        )
    try:
        located = locate_keras_model(estimator)
    except TypeError as exc:
        raise TypeError(
            "gradient_importance needs a Keras model: gradients are taken "
            f"through the network with TensorFlow. {exc}"
        ) from exc
    outputs = resolve_outputs(located, output)
    if method == "integrated_gradients":
        _check_n_steps(located, outputs, n_steps)
    names = located.model_feature_names(X)  # distinct, checked before X is read
    X_model = check_model_input(located, X, caller="gradient_importance")
    batch_size = check_batch_size(located, batch_size, passes=2)
    if batch_size is None:
        # Backpropagation keeps every activation and its gradient, and the
        # result holds one gradient per input and explained column.
        row_bytes = 2 * located.bytes_per_row + 8 * X_model.shape[1] * len(
            outputs.columns
        )
        batch_size = rows_within_budget(row_bytes, max_rows=MAX_ROWS_PER_CALL)
    gradients = _GradientRunner(located.model, outputs, batch_size)

    details: dict = {
        "output_names": list(outputs.names),
        "explained_outputs": outputs.explained,
    }
    if method == "integrated_gradients":
        base = resolve_point(
            "baseline",
            "zeros" if baseline is None else baseline,
            X_model,
            located.n_model_features,
            statistics=("zeros", "mean", "median"),
        )
        attributions = _integrated_gradients(gradients, X_model, base, n_steps)
        # Completeness: what the attributions of each row should add up to.
        response = outputs.response(located.forward(np.vstack([base, X_model])))
        delta = (response[1:] - response[0])[:, list(outputs.columns)]
        delta = delta.astype(np.float64)
        details.update(
            baseline=base,
            delta=_squeeze(delta, outputs),
            convergence_delta=_squeeze(attributions.sum(axis=1) - delta, outputs),
        )
    else:
        attributions = gradients(X_model)
        if method == "input_x_gradient":
            attributions = attributions * X_model[:, :, np.newaxis]

    importances = np.abs(attributions).mean(axis=2).T
    details["attributions"] = _squeeze(attributions, outputs)
    return ImportanceResult(importances, names, method=method, details=details)


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


def _squeeze(values: np.ndarray, outputs) -> np.ndarray:
    """Drop the trailing outputs axis when a single column is explained."""
    return values if outputs.aggregate else values[..., 0]


def _integrated_gradients(gradients, X_model, base, n_steps: int) -> np.ndarray:
    """Attributions (n_samples, n_features, n_outputs) by Gauss-Legendre IG."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas, weights = (nodes + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
    n_samples, n_features = X_model.shape
    diff = X_model - base
    rows_per_call = max(1, gradients.batch_size // n_steps)
    chunks = []
    for start in range(0, n_samples, rows_per_call):
        part = diff[start : start + rows_per_call]
        # All quadrature points of these rows in one gradient call.
        path = base + alphas[:, np.newaxis, np.newaxis] * part[np.newaxis]
        grads = gradients(path.reshape(-1, n_features), chunked=False)
        grads = grads.reshape(n_steps, len(part), n_features, -1)
        average = np.tensordot(weights, grads, axes=(0, 0))
        chunks.append(part[:, :, np.newaxis] * average)
    return np.concatenate(chunks, axis=0)


class _GradientRunner:
    """Gradients of the chosen response columns, in batches of rows."""

    def __init__(self, model, outputs, batch_size: int):
        self.batch_size = batch_size
        self._fn = _gradient_function(model, outputs.expand_binary, outputs.columns)
        self._dtype = model_input_dtype(model)

    def __call__(self, rows: np.ndarray, chunked: bool = True) -> np.ndarray:
        """Gradients, shape (n_rows, n_features, n_columns), float64."""
        step = self.batch_size if chunked else len(rows)
        parts = [
            self._fn(np.asarray(rows[start : start + step], dtype=self._dtype)).numpy()
            for start in range(0, len(rows), step)
        ]
        return np.concatenate(parts, axis=0).astype(np.float64)


# One compiled gradient function per (model, outputs), dropped with the model.
_GRADIENT_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _gradient_function(model, expand_binary: bool, columns: tuple[int, ...]):
    key = (expand_binary, columns)
    cache = _GRADIENT_FUNCTIONS.setdefault(model, {})
    if key not in cache:
        cache[key] = _build_gradient_function(model, expand_binary, columns)
    return cache[key]


def _build_gradient_function(model, expand_binary: bool, columns: tuple[int, ...]):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "gradient_importance needs the TensorFlow backend of Keras; this "
            f"session runs {keras.backend.backend()!r}."
        )
    import tensorflow as tf

    model_ref = weakref.ref(model)  # the cache must not keep the model alive
    dtype = tf.as_dtype(model_input_dtype(model))
    spec = tf.TensorSpec(shape=(None, *model.inputs[0].shape[1:]), dtype=dtype)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def gradients(x):
        # Rows do not interact at inference, so the gradient of the column's
        # sum over the batch is every row's own gradient.
        with tf.GradientTape(persistent=len(columns) > 1) as tape:
            tape.watch(x)
            raw = model_ref()(x, training=False)
            raw = tf.reshape(raw, (tf.shape(raw)[0], -1))
            if expand_binary:
                raw = tf.concat([1 - raw, raw], axis=1)
            totals = [tf.reduce_sum(raw[:, k]) for k in columns]
        return tf.stack([tape.gradient(total, x) for total in totals], axis=-1)

    return gradients
