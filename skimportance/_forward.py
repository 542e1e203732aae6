"""The model's compiled forward pass: one trace per input shape, cached per model.

``LocatedModel.forward`` runs it; the gradient machinery shares its input
signature and its way of joining several output heads.
"""

from __future__ import annotations

import weakref

import numpy as np

from ._layout import ModelLayout

__all__ = ["ModelCall", "concat_heads", "forward_function", "input_signature"]


class ModelCall:
    """``model(x, training=False)`` for a weakly referenced model.

    A callable object rather than a closure: TensorFlow counts the traces of
    every ``tf.function`` sharing one code object together, so the one-trace
    functions of many models (the folds of a cross-validation, the candidates
    of a grid search) would add up to a false "triggered tf.function
    retracing" warning. An object without ``__code__`` is counted on its own.
    """

    def __init__(self, model_ref):
        self.model_ref = model_ref

    def __call__(self, x):
        return concat_heads(self.model_ref()(x, training=False))


def concat_heads(outputs):
    """Inside a ``tf.function``: several output heads side by side, each
    flattened per row; a single output as it is."""
    import tensorflow as tf

    if not isinstance(outputs, (list, tuple, dict)):
        return outputs
    heads = list(outputs.values()) if isinstance(outputs, dict) else list(outputs)
    return tf.concat(
        [tf.reshape(head, (tf.shape(head)[0], -1)) for head in heads], axis=1
    )


# One compiled forward function per model, dropped with the model.
_FORWARD_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_function(model, layout=None):
    fn = _FORWARD_FUNCTIONS.get(model)
    if fn is None:
        fn = _build_forward_function(model, layout or ModelLayout.from_model(model))
        _FORWARD_FUNCTIONS[model] = fn
    return fn


def input_signature(layout):
    """The ``tf.function`` signature of the model's inputs, as ``to_network``
    shapes them: one spec, or a dict of specs by input name."""
    import tensorflow as tf

    specs = {
        spec.name: tf.TensorSpec(
            shape=(None, *spec.shape), dtype=tf.as_dtype(spec.dtype)
        )
        for spec in layout.inputs
    }
    return specs if len(specs) > 1 else next(iter(specs.values()))


def _build_forward_function(model, layout):
    import keras

    model_ref = weakref.ref(model)  # the cache must not keep the model alive
    if keras.backend.backend() != "tensorflow":

        def forward(batch):
            return _flat_outputs(model_ref().predict_on_batch(batch))

        return forward

    import tensorflow as tf

    compiled = tf.function(
        ModelCall(model_ref),
        input_signature=[input_signature(layout)],
        reduce_retracing=True,
    )

    def forward(batch):
        # The polymorphic call, not its concrete function: a concrete function
        # called on a dask worker during a cross-validation answered None (the
        # fault-injection test), so the faster call waits for that cause.
        return compiled(batch).numpy()

    forward.compiled = compiled  # lets tests count traces
    return forward


def _flat_outputs(outputs):
    """Several output heads side by side, each flattened per row."""
    if not isinstance(outputs, (list, tuple, dict)):
        return outputs
    heads = list(outputs.values()) if isinstance(outputs, dict) else list(outputs)
    return np.concatenate(
        [np.reshape(np.asarray(head), (len(head), -1)) for head in heads], axis=1
    )
