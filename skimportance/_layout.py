"""The shape of a Keras model's inputs and outputs, and one flat view of them.

Every method works on a flat 2-D "model space": one row per sample, one
column per number the network takes in. A model with one ``(batch, n)``
input needs no translation; a model with several named inputs (a numeric
block and an integer code for an Embedding) or one N-D input (a sequence of
``(timesteps, channels)``) is fed by splitting and reshaping the flat rows,
so the batched engines, the memory budget and the column maps work unchanged.
Outputs are flattened the same way: several heads side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["InputSpec", "ModelLayout", "OutputHead"]


@dataclass(frozen=True)
class InputSpec:
    """One input of the model: its name, per-row shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def width(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return "float" in self.dtype


@dataclass(frozen=True)
class OutputHead:
    """One output of the model: its name and how many numbers it gives a row."""

    name: str
    width: int


@dataclass(frozen=True)
class ModelLayout:
    """The model's inputs and outputs, in the model's own order."""

    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputHead, ...]

    @classmethod
    def from_model(cls, model) -> ModelLayout:
        """Read the layout off a built Keras model.

        Raises
        ------
        ValueError
            An input with an unknown size besides the batch (variable-length
            sequences): the flat view needs fixed shapes.
        """
        inputs = []
        for tensor in model.inputs:
            shape = tuple(tensor.shape)[1:]
            if any(size is None for size in shape):
                raise ValueError(
                    f"The Keras model's input {tensor.name!r} has shape "
                    f"{tuple(tensor.shape)}; importance needs every size but the "
                    "batch known (pad variable-length sequences to one length)."
                )
            inputs.append(
                InputSpec(
                    str(tensor.name), tuple(int(s) for s in shape), str(tensor.dtype)
                )
            )
        names = list(getattr(model, "output_names", None) or [])
        outputs = []
        for k, tensor in enumerate(model.outputs):
            name = names[k] if k < len(names) else f"output_{k}"
            width = math.prod(d or 1 for d in tuple(tensor.shape)[1:])
            outputs.append(OutputHead(str(name), int(width)))
        return cls(tuple(inputs), tuple(outputs))

    # -- inputs ---------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """Columns of the flat model space."""
        return sum(spec.width for spec in self.inputs)

    @property
    def flat(self) -> bool:
        """One input of shape (batch, n): the flat view is the input itself."""
        return len(self.inputs) == 1 and len(self.inputs[0].shape) == 1

    @property
    def offsets(self) -> np.ndarray:
        """Where each input starts in the flat model space."""
        return np.concatenate([[0], np.cumsum([s.width for s in self.inputs])])

    def input_columns(self, k: int) -> np.ndarray:
        """The flat columns of input ``k``."""
        return np.arange(self.offsets[k], self.offsets[k + 1])

    def to_network(self, flat: np.ndarray):
        """Flat rows as the model takes them: one array, or a dict by input
        name, each reshaped and cast to its input's dtype."""
        if self.flat:
            return np.asarray(flat, dtype=self.inputs[0].dtype)
        parts = {
            spec.name: np.asarray(
                flat[:, self.offsets[k] : self.offsets[k + 1]], dtype=spec.dtype
            ).reshape(len(flat), *spec.shape)
            for k, spec in enumerate(self.inputs)
        }
        if len(self.inputs) == 1:
            return parts[self.inputs[0].name]
        return parts

    def flatten(self, structured) -> np.ndarray:
        """The flat view of what the model takes: an array (n, *shape), or a
        dict / list of arrays, one per input."""
        if isinstance(structured, dict):
            missing = [s.name for s in self.inputs if s.name not in structured]
            if missing:
                raise ValueError(
                    f"No values for the model's input(s) {missing}; got "
                    f"{sorted(structured)}."
                )
            parts = [structured[spec.name] for spec in self.inputs]
        elif isinstance(structured, (list, tuple)):
            parts = list(structured)
        else:
            parts = [structured]
        if len(parts) != len(self.inputs):
            raise ValueError(
                f"The Keras model takes {len(self.inputs)} inputs, got {len(parts)}."
            )
        flat = []
        for spec, part in zip(self.inputs, parts):
            part = np.asarray(part)
            if part.ndim == 1:
                part = part[:, np.newaxis]
            if math.prod(part.shape[1:]) != spec.width:
                raise ValueError(
                    f"The model's input {spec.name!r} takes rows of shape "
                    f"{spec.shape}; got rows of shape {part.shape[1:]}."
                )
            flat.append(part.reshape(len(part), spec.width))
        return flat[0] if len(flat) == 1 else np.concatenate(flat, axis=1)

    def default_names(self) -> np.ndarray:
        """Names of the flat columns: ``x0..`` for one flat input, else
        ``input[k]`` (or the input's name when it holds one number)."""
        if self.flat:
            return np.asarray([f"x{k}" for k in range(self.n_features)], dtype=object)
        names = []
        for spec in self.inputs:
            if spec.width == 1:
                names.append(spec.name)
            else:
                names += [
                    f"{spec.name}[{','.join(map(str, index))}]"
                    for index in np.ndindex(*spec.shape)
                ]
        return np.asarray(names, dtype=object)

    # -- outputs ----------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """Columns of the flat output: every head's numbers side by side."""
        return sum(head.width for head in self.outputs)

    def head_columns(self, k: int) -> np.ndarray:
        """The flat output columns of head ``k``."""
        start = sum(head.width for head in self.outputs[:k])
        return np.arange(start, start + self.outputs[k].width)
