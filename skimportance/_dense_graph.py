"""Reading the Dense kernels of a Keras network, for weight importance.

A plain chain of Dense layers (with activations, dropout and BatchNormalization
folded into the kernels), or, for a model with several inputs, a plain chain
per input into one Concatenate followed by a plain chain to the output.
Anything else is refused with a ValueError naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._compat import layer_inputs

__all__ = ["DenseChain", "DenseTree", "dense_chain", "dense_tree"]


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


def dense_chain(model, head: int = 0) -> DenseChain:
    """Extract the kernels of a plain chain of Dense layers.

    Raises
    ------
    ValueError
        A layer that is not Dense/Activation/Dropout-like/BatchNormalization,
        a layer with several inputs, or a BatchNormalization that cannot be
        folded; the message names the layer.
    """
    layers, _, merge = _walk_back(model.outputs[head])
    if merge is not None:
        _, inputs = layer_inputs(merge.output)
        raise ValueError(
            f"Layer {merge.name!r} ({type(merge).__name__}) takes {len(inputs)} "
            "inputs; weight importance needs a plain chain of Dense layers."
        )
    chain = _fold_chain(layers)
    if not chain.kernels:
        raise ValueError("The Keras model has no Dense layer to read weights from.")
    return chain


def _fold_chain(chain_layers) -> DenseChain:
    """Kernels of consecutive layers, BatchNormalization folded in; an empty
    chain (an input going straight into a Concatenate) has no kernel."""
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

    for layer in chain_layers:
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
    if pending is not None and not chain.kernels:
        # A chain without a Dense layer (an input straight into a Concatenate)
        # after a layer standardising that input: a Normalization only
        # standardises, nothing to fold; a BatchNormalization's learned scale
        # has no kernel here to go into.
        if pending.folded:
            raise ValueError(
                f"Cannot fold normalisation layer {pending.layer!r} into a Dense "
                "kernel: no Dense layer follows it on its input's own path. Weight "
                "importance needs a Dense layer after it before the Concatenate."
            )
    elif pending is not None:
        fold_back(pending)
    return chain


def _walk_back(tensor):
    """(layers input to output, the source tensor, the merging layer or None).

    Walks back from ``tensor`` through layers with one input, nested models
    flattened, and stops at an input of the model or at the first layer with
    several inputs (a Concatenate), which it returns.
    """
    import keras

    found = []
    while True:
        producer = layer_inputs(tensor)
        if producer is None:
            raise ValueError(
                "Cannot read the layers of this Keras model (a subclassed "
                "model?); weight importance needs a Sequential or functional model."
            )
        layer, inputs = producer
        if isinstance(layer, keras.layers.InputLayer) or not inputs:
            return found[::-1], tensor, None
        if len(inputs) != 1:
            return found[::-1], tensor, layer
        if isinstance(layer, keras.Model):
            nested, _, merge = _walk_back(layer.outputs[0])
            if merge is not None:
                raise ValueError(
                    f"Nested model {layer.name!r} merges several inputs; weight "
                    "importance needs plain chains of Dense layers."
                )
            found.extend(reversed(nested))
        else:
            found.append(layer)
        tensor = inputs[0]


@dataclass
class DenseTree:
    """A plain Dense chain per model input, concatenated, then one trunk.

    ``branches[k]`` is the chain of model input ``k`` (in the model's input
    order; possibly without a kernel), ``slots[k]`` the rows of the trunk's
    first kernel fed by it, ``trunk`` the chain from the concatenation to the
    output.
    """

    branches: list[DenseChain]
    slots: list[np.ndarray]
    trunk: DenseChain

    @property
    def layer_names(self) -> list[str]:
        names = [n for branch in self.branches for n in branch.layer_names]
        return names + self.trunk.layer_names

    @property
    def folded(self) -> list[str]:
        return [n for c in [*self.branches, self.trunk] for n in c.folded]

    @property
    def standardised_by(self) -> str | None:
        """Every branch standardises its own input (named: the first layer)."""
        names = [branch.standardised_by for branch in self.branches]
        return names[0] if all(names) else None


def dense_tree(model, head: int = 0) -> DenseTree:
    """Read a model whose inputs each pass through a plain Dense chain into one
    Concatenate, followed by a plain Dense chain to output ``head``.

    Raises
    ------
    ValueError
        Any other topology, naming the layer where it departs.
    """
    import keras

    trunk_layers, _, merge = _walk_back(model.outputs[head])
    if not isinstance(merge, keras.layers.Concatenate) or merge.axis not in (-1, 1):
        what = "no merging layer" if merge is None else f"{type(merge).__name__}"
        raise ValueError(
            f"Weight importance reads models with several inputs only when each "
            "input passes through a plain Dense chain into one Concatenate, "
            f"followed by a Dense chain; this model has {what} "
            f"{'' if merge is None else repr(merge.name)} there. Use "
            "permutation_importance or probe_importance."
        )
    trunk = _fold_chain(trunk_layers)
    if not trunk.kernels:
        raise ValueError("The Keras model has no Dense layer after its Concatenate.")
    _, concat_inputs = layer_inputs(merge.output)
    branches: dict[int, DenseChain] = {}
    slots: dict[int, np.ndarray] = {}
    offset = 0
    for tensor in concat_inputs:
        chain_layers, source, inner = _walk_back(tensor)
        k = next((i for i, t in enumerate(model.inputs) if t is source), None)
        if inner is not None or k is None or k in branches:
            raise ValueError(
                f"Weight importance needs each model input to reach the Concatenate "
                f"{merge.name!r} through its own plain Dense chain; one of its "
                "inputs does not. Use permutation_importance or probe_importance."
            )
        branches[k] = _fold_chain(chain_layers)
        width = int(tensor.shape[-1])
        slots[k] = np.arange(offset, offset + width)
        offset += width
    if len(branches) != len(model.inputs):
        raise ValueError(
            "Weight importance needs every model input to reach the Concatenate."
        )
    order = range(len(model.inputs))
    return DenseTree([branches[k] for k in order], [slots[k] for k in order], trunk)


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
