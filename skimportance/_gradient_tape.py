"""The gradients behind ``gradient_importance``: one compiled TensorFlow
function per model and explained outputs, run in batches of flat rows, plus
the Gauss-Legendre path integral of integrated gradients and the search for
what blocks a gradient (integer casts, Embedding lookups).

TensorFlow is imported only when a gradient is computed.
"""

from __future__ import annotations

import weakref

import numpy as np

from ._forward import concat_heads, input_signature

__all__ = ["GradientRunner", "integrate_gradients", "non_differentiable_layers"]


def non_differentiable_layers(model) -> str:
    """Name the casts to integers and Embedding lookups inside ``model``."""
    import keras

    found = []
    for operation in _operations(model):
        if isinstance(operation, keras.layers.Embedding):
            found.append(f"layer {operation.name!r} (Embedding)")
            continue
        try:
            dtype = str(operation.output.dtype)
        except (AttributeError, ValueError):
            continue
        if "int" in dtype or "bool" in dtype:
            found.append(
                f"operation {operation.name!r} ({type(operation).__name__} to {dtype})"
            )
    return ", ".join(found)


def _operations(model) -> list:
    """The operations (layers and ops) of ``model``, nested models flattened."""
    import keras

    found = []
    for operation in getattr(model, "operations", model.layers):
        if isinstance(operation, keras.Model):
            found.extend(_operations(operation))
        elif not isinstance(operation, keras.layers.InputLayer):
            found.append(operation)
    return found


def integrate_gradients(gradients, X_model, base, n_steps: int) -> np.ndarray:
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


class GradientRunner:
    """Gradients of the chosen response columns, in batches of flat rows."""

    def __init__(self, located, outputs, batch_size: int):
        self.batch_size = batch_size
        self._layout = located.layout
        self._fn = _gradient_function(
            located.model, self._layout, outputs.expand_binary, outputs.columns
        )

    def __call__(self, rows: np.ndarray, chunked: bool = True) -> np.ndarray:
        """Gradients, shape (n_rows, n_features, n_columns), float64."""
        step = self.batch_size if chunked else len(rows)
        parts = [
            self._fn(self._layout.to_network(rows[start : start + step])).numpy()
            for start in range(0, len(rows), step)
        ]
        return np.concatenate(parts, axis=0).astype(np.float64)


# One compiled gradient function per (model, outputs), dropped with the model.
_GRADIENT_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _gradient_function(model, layout, expand_binary: bool, columns: tuple[int, ...]):
    key = (expand_binary, columns)
    cache = _GRADIENT_FUNCTIONS.setdefault(model, {})
    if key not in cache:
        cache[key] = _build_gradient_function(model, layout, expand_binary, columns)
    return cache[key]


def _build_gradient_function(model, layout, expand_binary, columns):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "gradient_importance needs the TensorFlow backend of Keras; this "
            f"session runs {keras.backend.backend()!r}."
        )
    import tensorflow as tf

    # A callable object, not a closure, for the reason ModelCall gives.
    gradients = _ColumnGradients(weakref.ref(model), expand_binary, columns)
    return tf.function(
        gradients, input_signature=[input_signature(layout)], reduce_retracing=True
    )


class _ColumnGradients:
    """Gradient of each chosen response column with respect to the inputs,
    flattened and side by side like the flat model space.

    Holds the model weakly: the cache of compiled functions must not keep it
    alive.
    """

    def __init__(self, model_ref, expand_binary: bool, columns: tuple[int, ...]):
        self.model_ref = model_ref
        self.expand_binary = expand_binary
        self.columns = columns

    def __call__(self, x):
        import tensorflow as tf

        inputs = list(x.values()) if isinstance(x, dict) else [x]
        # Rows do not interact at inference, so the gradient of the column's
        # sum over the batch is every row's own gradient.
        with tf.GradientTape(persistent=True) as tape:
            for tensor in inputs:
                tape.watch(tensor)
            raw = concat_heads(self.model_ref()(x, training=False))
            raw = tf.reshape(raw, (tf.shape(raw)[0], -1))
            if self.expand_binary:
                raw = tf.concat([1 - raw, raw], axis=1)
            totals = [tf.reduce_sum(raw[:, k]) for k in self.columns]
        per_column = []
        for total in totals:
            flat = [
                tf.reshape(tape.gradient(total, tensor), (tf.shape(tensor)[0], -1))
                for tensor in inputs
            ]
            per_column.append(flat[0] if len(flat) == 1 else tf.concat(flat, axis=1))
        return tf.stack(per_column, axis=-1)
