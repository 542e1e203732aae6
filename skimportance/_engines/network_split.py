"""The network cut in two: its first Dense layer, and the compiled rest.

The incremental engine (``incremental``) computes the first Dense layer of
the unperturbed rows itself and hands the rest of the network (the *tail*)
pre-activations with a rank-k update per perturbed slice. This module finds
that first layer, checks that the network allows the cut, and compiles the
tail once per model.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from .._compat import layer_inputs

__all__ = ["IncrementalUnavailable", "NetworkSplit", "split_network"]


class IncrementalUnavailable(ValueError):
    """The incremental engine does not apply; the message says why."""


# --- the network: its first Dense layer and the tail -------------------------------


@dataclass(frozen=True)
class NetworkSplit:
    """A network cut after the matrix product of its first Dense layer.

    Attributes
    ----------
    kernel, bias : ndarray
        The first layer's weights, float64, shapes (F, H) and (H,).
    tail_flops : int
        Estimated operations per row of everything after that product.
    tail : callable
        ``tail(z, d, w)``: the network's raw output for the pre-activations
        ``z[None] + d @ w`` (shapes (n, H), (m, n, k), (m, k, H)), as
        (m * n, ...) rows: m slices of n rows, each with its own rank-k update.
        One compiled function per model, traced once.
    """

    kernel: np.ndarray
    bias: np.ndarray
    tail_flops: int
    tail: object

    @property
    def units(self) -> int:
        return self.kernel.shape[1]


def split_network(model) -> NetworkSplit:
    """Split ``model`` after its first Dense layer's product, or say why not.

    Raises
    ------
    IncrementalUnavailable
        The network does not start with a plain Dense layer fed by its only
        input, or is not a float32 TensorFlow network.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise IncrementalUnavailable("it needs Keras's TensorFlow backend")
    entry = _TAILS.get(model)
    if entry is None:
        entry = _build_tail(model)
        _TAILS[model] = entry
    dense, tail, tail_flops = entry
    kernel = np.asarray(dense.kernel.numpy(), dtype=np.float64)
    bias = (
        np.asarray(dense.bias.numpy(), dtype=np.float64)
        if dense.use_bias
        else np.zeros(kernel.shape[1])
    )
    return NetworkSplit(kernel, bias, tail_flops, tail)


# One compiled tail per model, dropped with the model.
_TAILS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _build_tail(model):
    import keras
    import tensorflow as tf

    dense = _first_dense(model)
    units = int(dense.units)

    def share_or_replace(layer):
        # Every later layer is shared (same weights); the first Dense gives way
        # to its activation alone, so the clone takes pre-activations.
        if layer is dense:
            return keras.layers.Activation(dense.activation)
        return layer

    try:
        rest = keras.models.clone_model(
            model,
            input_tensors=keras.Input((units,)),
            clone_function=share_or_replace,
        )
    except (ValueError, TypeError, NotImplementedError) as exc:  # e.g. subclassed
        raise IncrementalUnavailable(
            f"the layers after its first Dense layer cannot be rebuilt ({exc})"
        ) from exc
    spec_z = tf.TensorSpec((None, units), tf.float32)
    spec_d = tf.TensorSpec((None, None, None), tf.float32)
    spec_w = tf.TensorSpec((None, None, units), tf.float32)

    def compile_tail(xla: bool):
        # XLA fuses the update, the activations and the bias additions: about
        # half the time of the plain graph on the narrow layers of a tail. It
        # compiles once per input shape, which the chunks keep to one or two
        # per run (see IncrementalSlices.prepare).
        @tf.function(
            input_signature=[spec_z, spec_d, spec_w],
            reduce_retracing=True,
            jit_compile=xla,
        )
        def compiled(z, d, w):
            pre = tf.expand_dims(z, 0) + tf.linalg.matmul(d, w)
            return rest(tf.reshape(pre, (-1, units)), training=False)

        return compiled

    fused, plain = compile_tail(True), compile_tail(False)
    chosen = [fused]

    def tail(z, d, w):
        try:
            return chosen[0](z, d, w).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            if chosen[0] is plain:
                raise
            chosen[0] = plain  # a layer XLA cannot compile: the plain graph
            return plain(z, d, w).numpy()

    tail.compiled = fused  # lets tests count traces
    tail.rest = rest  # the layers after the product, for callers without updates
    return dense, tail, _flops_per_row(rest)


def _first_dense(model):
    """The network's only entry layer, checked to be a plain float32 Dense."""
    import keras

    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or len(inputs[0].shape) != 2:
        raise IncrementalUnavailable("the network must take one 2-D input")
    if isinstance(model, keras.Sequential):
        consumers = model.layers[:1]
    else:
        consumers = [
            layer
            for layer, layer_inputs in _graph(model)
            if any(tensor is inputs[0] for tensor in layer_inputs)
        ]
    if len(consumers) != 1:
        raise IncrementalUnavailable(
            "the network's input must feed exactly one layer, a Dense layer"
        )
    (dense,) = consumers
    if type(dense) is not keras.layers.Dense:
        raise IncrementalUnavailable(
            f"the network's first layer is {type(dense).__name__}, not Dense"
        )
    if getattr(dense, "lora_enabled", False) or getattr(
        dense, "quantization_mode", None
    ):
        raise IncrementalUnavailable("its first Dense layer is LoRA or quantized")
    if dense.compute_dtype != "float32":
        raise IncrementalUnavailable(
            f"its first Dense layer computes in {dense.compute_dtype}, not float32"
        )
    return dense


def _graph(model) -> list:
    """(layer, input tensors) of every call in the model's graph, walking back
    from its outputs (the model's own tensors, so unpickled models too)."""
    calls, seen, pending = [], set(), list(model.outputs)
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        produced = layer_inputs(tensor)
        if produced is None:
            continue
        calls.append(produced)
        pending.extend(produced[1])
    return calls


def _flops_per_row(model) -> int:
    """Operations per row: 2 per kernel weight, 1 per other layer's output."""
    total = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            total += 2 * math.prod(kernel.shape)
            continue
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            continue
        total += math.prod(d or 1 for d in shape)
    return int(total)
