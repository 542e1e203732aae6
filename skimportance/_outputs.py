"""Which response columns of a Keras model a method explains (``output=``).

Weight, probe and gradient importance explain the *response columns* of the
model:

* a classifier (anything with ``classes_``): one column per class, holding the
  class probability. A single sigmoid unit is read as ``[1 - p, p]``, the way
  ``predict_proba`` reports it;
* anything else: one column per unit of the network's output layer.

``output=None`` explains the one column there is; for a binary classifier (one
sigmoid unit or two softmax units) the probability of the positive class
``classes_[1]`` (scikit-learn's convention);
with several columns (multiclass, multi-output) every column, combined as the
mean absolute importance over columns, because signed importances for
different classes cancel (a softmax's probabilities sum to one). ``output=k``
explains column ``k`` alone, keeping its sign where the method has one; a
class label or column name is accepted too when it is not an integer.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError

from ._names import check_unique_names

__all__ = ["OutputSelection", "one_result_per_head", "resolve_outputs"]


@dataclass(frozen=True)
class OutputSelection:
    """Which response columns a method explains, and how to read them.

    Attributes
    ----------
    names : tuple of str
        Every response column: class labels for a classifier, else
        ``"output 0"``, ``"output 1"``, ...
    expand_binary : bool
        The network has one sigmoid unit ``p`` standing for two classes, read
        as the columns ``[1 - p, p]``.
    columns : tuple of int
        The columns explained.
    """

    names: tuple[str, ...]
    expand_binary: bool
    columns: tuple[int, ...]

    @property
    def aggregate(self) -> bool:
        """Several columns are explained and combined into one number."""
        return len(self.columns) > 1

    @property
    def explained(self) -> list[str]:
        return [self.names[k] for k in self.columns]

    def response(self, raw: np.ndarray) -> np.ndarray:
        """Every response column, shape (n_rows, len(names)), from raw output.

        Stays in the network's dtype so that ``f(a) - f(b)`` is computed exactly
        as a user subtracting two ``model.predict`` results would.
        """
        raw = np.reshape(raw, (len(raw), -1))
        if self.expand_binary:
            return np.concatenate([1 - raw, raw], axis=1)
        return raw

    def combine(self, per_output: np.ndarray) -> np.ndarray:
        """Reduce ``(..., len(names))`` values to the explained importance.

        One column keeps its sign; several are combined as the mean absolute
        value, since signed effects on different classes cancel.
        """
        chosen = per_output[..., list(self.columns)]
        if self.aggregate:
            return np.abs(chosen).mean(axis=-1)
        return chosen[..., 0]


def one_result_per_head(function):
    """Run ``function`` once per output head of a model with several, when no
    ``output`` is chosen: a dict {head name: result}. Otherwise, or when no
    Keras model can be found (the function then says why), call it as is."""
    from ._model import has_keras_model, locate_keras_model

    @functools.wraps(function)
    def per_head(estimator, *args, **kwargs):
        if kwargs.get("output") is None and has_keras_model(estimator):
            try:
                heads = locate_keras_model(estimator).layout.outputs
            except (ValueError, TypeError, NotFittedError):
                heads = ()  # the function raises its own, clearer error
            if len(heads) > 1:
                return {
                    head.name: function(
                        estimator, *args, **{**kwargs, "output": head.name}
                    )
                    for head in heads
                }
        return function(estimator, *args, **kwargs)

    return per_head


def resolve_outputs(located, output) -> OutputSelection:
    """Check ``output`` against the model and say which columns to explain.

    A model with several output heads has their units side by side; ``output``
    may then name a head, which selects all of its units.
    """
    heads = located.layout.outputs
    if len(heads) == 1:
        shape = tuple(located.model.outputs[0].shape)
        if len(shape) > 2:
            raise ValueError(
                f"The Keras model's output has shape {shape}; only outputs of "
                "shape (batch,) or (batch, n_outputs) are supported."
            )
    n_units = located.layout.n_outputs
    final = located.final
    classes = getattr(final, "classes_", None) if final is not None else None
    expand_binary = classes is not None and n_units == 1 and len(classes) == 2
    by_class = classes is not None and (expand_binary or len(classes) == n_units)
    if by_class:
        names = tuple(str(label) for label in classes)
        # Output columns are chosen (output="label") and reported by name; two
        # labels of an object dtype may print alike.
        check_unique_names(
            names,
            [f"class {k} ({label!r})" for k, label in enumerate(classes)],
            what="output name",
        )
    elif len(heads) > 1:
        names = tuple(
            head.name if head.width == 1 else f"{head.name}[{k}]"
            for head in heads
            for k in range(head.width)
        )
    else:
        names = tuple(f"output {k}" for k in range(n_units))
    head_names = [head.name for head in heads]

    if output is None:
        if by_class and len(names) == 2:
            columns: tuple[int, ...] = (1,)  # scikit-learn's positive class
        else:
            columns = tuple(range(len(names)))
    elif isinstance(output, bool):
        raise TypeError("output must be an integer position or a label, not bool.")
    elif isinstance(output, numbers.Integral):
        if not 0 <= output < len(names):
            raise ValueError(
                f"output={output} is out of range: the model has {len(names)} "
                f"response column(s) {list(names)}; use 0..{len(names) - 1}."
            )
        columns = (int(output),)
    elif str(output) in names:
        columns = (names.index(str(output)),)
    elif len(heads) > 1 and str(output) in head_names:
        k = head_names.index(str(output))
        columns = tuple(int(c) for c in located.layout.head_columns(k))
    else:
        raise ValueError(
            f"output={output!r} is neither a column position nor one of the "
            f"response columns {list(names)}."
        )
    return OutputSelection(names, expand_binary, columns)
