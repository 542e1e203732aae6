"""Stacked copies of a Dense network: k networks as one, weights side by side.

Fused refits of a plain Dense network (``build_mlp`` and the like: an Input,
then Dense layers only) do not need k copies of the network in one graph:
one network whose every kernel has a leading copy axis, ``(k, in, out)``,
computes all k at once (``einsum("bki,kio->bko")``). Tracing it costs what
tracing one copy costs, and each step is a few batched operations instead of
k times as many small ones; that is where the speed of fused refits comes
from when the network is small.

It equals the k lone fits because nothing mixes the copies: the copy axis is
never reduced, so copy k's gradient is that of its own loss; Adam, RMSprop,
SGD with momentum and weight decay work element by element, so each copy's
slice of a stacked weight takes the step its own weight would (per-variable
norms, ``clipnorm``, would not: such optimizers are not stacked). Batched
matrix products may round differently from single ones, so the copies equal
their lone fits to float32 rounding, not bit for bit.

Imports Keras at import time: only ``fused_refits`` imports it, when fusing.
"""

from __future__ import annotations

from functools import partial

import keras
import numpy as np

__all__ = [
    "StackedDense",
    "stackable",
    "stacked_network",
    "stacked_targets",
    "summed_loss",
    "write_back",
]


def _dense_layers(model) -> list | None:
    """The Dense layers of an Input -> Dense -> ... -> Dense Sequential model."""
    if not isinstance(model, keras.Sequential):
        return None
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    plain = all(
        type(layer) is keras.layers.Dense
        and layer.kernel_regularizer is None
        and layer.bias_regularizer is None
        and layer.activity_regularizer is None
        and layer.kernel_constraint is None
        and layer.bias_constraint is None
        and layer.lora_rank is None
        for layer in layers
    )
    return layers if layers and plain else None


def stackable(model) -> bool:
    """The model is a plain Dense chain on a flat input and its optimizer
    updates each weight element by element."""
    optimizer = model.optimizer
    elementwise = not (
        getattr(optimizer, "clipnorm", None)
        or getattr(optimizer, "global_clipnorm", None)
    )
    return (
        _dense_layers(model) is not None
        and len(model.inputs[0].shape) == 2
        and elementwise
        and not optimizer.use_ema
    )


class StackedDense(keras.layers.Layer):
    """k Dense layers side by side: (batch, k, in) -> (batch, k, out)."""

    def __init__(self, kernels, biases, activation, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(
            shape=kernels.shape, initializer=keras.initializers.Constant(kernels)
        )
        self.bias = (
            None
            if biases is None
            else self.add_weight(
                shape=biases.shape, initializer=keras.initializers.Constant(biases)
            )
        )
        self.activation = activation

    def call(self, inputs):
        outputs = keras.ops.einsum("bki,kio->bko", inputs, self.kernel)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)


def stacked_network(models) -> keras.Model:
    """One model computing every copy: input (batch, k, n_in), output
    (batch, k, n_out). One output, not k: Keras compiles, traces and runs
    one loss and one tracker instead of k of each (see :func:`summed_loss`),
    which cost a third of a fused fit at 21 copies."""
    per_copy = [_dense_layers(model) for model in models]
    k = len(models)
    entry = keras.Input((k, models[0].inputs[0].shape[1]))
    x = entry
    for depth, layer in enumerate(per_copy[0]):
        kernels = np.stack([np.asarray(layers[depth].kernel) for layers in per_copy])
        biases = (
            np.stack([np.asarray(layers[depth].bias) for layers in per_copy])
            if layer.use_bias
            else None
        )
        x = StackedDense(kernels, biases, layer.activation)(x)
    return keras.Model(entry, x)


def stacked_targets(targets) -> np.ndarray:
    """The copies' targets, (n,) or (n, t) each, as one (n, k, t) array."""
    return np.stack([np.reshape(t, (len(t), -1)) for t in targets], axis=1)


def summed_loss(loss, k: int):
    """The sum over the k copies of each copy's own loss, as one Keras loss
    on (batch, k, ...) tensors: what Keras computes for k outputs with a loss
    each, where every loss is reduced to its mean over the batch.

    Keras's built-in loss functions reduce the last axis only, so they take
    all copies in one call, (batch, k) per-copy values summed over k; any
    other loss is called copy by copy.
    """
    function = keras.losses.get(loss)
    wrapped = getattr(function, "fn", None)  # keras.losses.MeanSquaredError() & co
    if wrapped is not None and function.reduction == "sum_over_batch_size":
        function = partial(wrapped, **function._fn_kwargs)
    base = getattr(function, "func", function)
    if getattr(base, "__module__", "") == "keras.src.losses.losses":

        def total(y_true, y_pred):
            return keras.ops.sum(function(y_true, y_pred), axis=-1)

    else:

        def total(y_true, y_pred):
            return sum(function(y_true[:, c], y_pred[:, c]) for c in range(k))

    return total


def write_back(stacked: keras.Model, models) -> None:
    """Copy each copy's trained slice into its own model's Dense layers."""
    trained = [layer for layer in stacked.layers if isinstance(layer, StackedDense)]
    for copy, model in enumerate(models):
        for source, target in zip(trained, _dense_layers(model)):
            target.kernel.assign(np.asarray(source.kernel)[copy])
            if target.use_bias:
                target.bias.assign(np.asarray(source.bias)[copy])
