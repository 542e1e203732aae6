"""One table in, the inputs a Keras model wants out; N-D features.

``InputSplitter`` maps the columns of one 2-D X to a model's named inputs
(``inputs={"numeric": ["age", "income"], "city": ["city_code"]}``), so that a
model with several inputs stays a scikit-learn estimator taking one table.
``HeadJoiner`` puts the outputs of several heads side by side, as one 2-D
prediction. ``nd_feature_blocks`` says what a "feature" of an N-D input is:
a channel across all timesteps, a timestep across all channels, or any
grouping given as a mask of the input's shape (as captum's ``feature_mask``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "HeadJoiner",
    "InputSplitter",
    "check_flat_rows_of_a_sequence_model",
    "check_inputs_mapping",
    "nd_feature_blocks",
]


def check_inputs_mapping(inputs, feature_names, n_columns: int) -> dict[str, list]:
    """Resolve ``inputs`` to column positions: {input name: [positions]}.

    Every column of X must go to exactly one input: a column named twice, one
    left out (it would be silently dropped) or one that does not exist is a
    ValueError naming it.
    """
    if not isinstance(inputs, Mapping) or not inputs:
        raise TypeError(
            "inputs must be a non-empty dict {model input name: X's columns}, got "
            f"{type(inputs).__name__}."
        )
    names = None if feature_names is None else [str(n) for n in feature_names]
    owner: dict[int, str] = {}
    positions: dict[str, list] = {}
    for input_name, columns in inputs.items():
        if isinstance(columns, (str, numbers.Integral)):
            columns = [columns]
        resolved = []
        for column in columns:
            j = _position(column, names, n_columns, input_name)
            if j in owner:
                label = names[j] if names else j
                raise ValueError(
                    f"inputs: column {label!r} is mapped to input {owner[j]!r} and "
                    f"to input {input_name!r}; each column feeds one input."
                )
            owner[j] = str(input_name)
            resolved.append(j)
        if not resolved:
            raise ValueError(f"inputs: input {input_name!r} is given no column.")
        positions[str(input_name)] = resolved
    unmapped = [j for j in range(n_columns) if j not in owner]
    if unmapped:
        shown = [names[j] if names else j for j in unmapped]
        raise ValueError(
            f"inputs: X's column(s) {shown} are mapped to no input of the model; "
            "map them, or drop them from X (nothing is dropped silently)."
        )
    return positions


def _position(column, names, n_columns: int, input_name) -> int:
    if isinstance(column, (bool, np.bool_)):
        raise TypeError(f"inputs: input {input_name!r} lists a boolean column.")
    if isinstance(column, numbers.Integral):
        if not 0 <= column < n_columns:
            raise ValueError(
                f"inputs: input {input_name!r} refers to column {column}, out of "
                f"range for X with {n_columns} columns."
            )
        return int(column)
    if names is None:
        raise ValueError(
            f"inputs: input {input_name!r} names column {column!r}, but X has no "
            "column names; pass a DataFrame or use positions."
        )
    if str(column) not in names:
        raise ValueError(
            f"inputs: input {input_name!r} refers to unknown column {column!r}; X's "
            f"columns are {names[:10]}{'...' if len(names) > 10 else ''}."
        )
    return names.index(str(column))


class InputSplitter(TransformerMixin, BaseEstimator):
    """Split the columns of a 2-D X into a dict of arrays, one per model input.

    Parameters
    ----------
    inputs : dict
        Model input name -> X's columns (names or positions).
    feature_names : array-like of str or None
        X's column names, to resolve names.

    Attributes
    ----------
    positions_ : dict
        Input name -> column positions.
    """

    def __init__(self, inputs, feature_names=None):
        self.inputs = inputs
        self.feature_names = feature_names

    def fit(self, X, y=None):
        self.positions_ = check_inputs_mapping(
            self.inputs, self.feature_names, np.shape(X)[1]
        )
        return self

    def transform(self, X):
        X = np.asarray(X)
        return {name: X[:, columns] for name, columns in self.positions_.items()}

    def get_metadata(self) -> dict:
        """What scikeras passes on to a model-building function (scikeras asks
        an unfitted copy, so nothing learnt in ``fit`` can be in it)."""
        return {"n_inputs_": len(self.inputs)}


class HeadJoiner(TransformerMixin, BaseEstimator):
    """Targets of several output heads: one 2-D y in, one block per head out,
    and the heads' predictions side by side on the way back.

    Parameters
    ----------
    widths : tuple of int
        Units of each head, in the model's order.
    """

    def __init__(self, widths=()):
        self.widths = widths

    def fit(self, y=None):
        return self

    def transform(self, y):
        y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        bounds = np.cumsum([0, *self.widths])
        return [y[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def inverse_transform(self, y):
        if isinstance(y, (list, tuple)):
            y = np.concatenate([np.reshape(h, (len(h), -1)) for h in y], axis=1)
        return np.asarray(y, dtype=np.float64)

    def get_metadata(self) -> dict:
        return {"n_outputs_expected_": len(self.widths)}


def nd_feature_blocks(shape, feature_axis, feature_names=None):
    """(blocks, names): the flat positions of each feature of an N-D input.

    Parameters
    ----------
    shape : tuple of int
        The input's per-row shape, e.g. (timesteps, channels).
    feature_axis : "channel", "timestep", int or array-like of int
        ``"channel"`` (the last axis, the default for 3-D): a feature is one
        channel across all timesteps; ``"timestep"`` (the first axis): one
        timestep across all channels; an int: that axis of the per-row shape;
        an array of ``shape``: a label per position, one feature per label.
    feature_names : list of str, default=None
        One name per feature; by default ``channel 0``.., ``t=0``.., or the
        mask's labels.
    """
    shape = tuple(int(s) for s in shape)
    index = np.arange(int(np.prod(shape))).reshape(shape)
    if isinstance(feature_axis, str):
        axes = {"channel": len(shape) - 1, "timestep": 0}
        if feature_axis not in axes:
            raise ValueError(
                "feature_axis must be 'channel', 'timestep', an axis number or a "
                f"mask of the input's shape {shape}; got {feature_axis!r}."
            )
        axis = axes[feature_axis]
        prefix = "channel " if feature_axis == "channel" else "t="
    elif isinstance(feature_axis, numbers.Integral) and not isinstance(
        feature_axis, bool
    ):
        if not -len(shape) <= feature_axis < len(shape):
            raise ValueError(
                f"feature_axis={feature_axis} is out of range for the input's "
                f"shape {shape}."
            )
        axis = int(feature_axis) % len(shape)
        prefix = f"axis {axis}="
    else:
        mask = np.asarray(feature_axis)
        if mask.shape != shape:
            raise ValueError(
                f"A feature mask must have the input's shape {shape}; got {mask.shape}."
            )
        labels = np.unique(mask)
        blocks = [index[mask == label] for label in labels]
        default = [f"feature {label}" for label in labels]
        return blocks, _names(feature_names, default)
    blocks = [np.take(index, i, axis=axis).ravel() for i in range(shape[axis])]
    default = [f"{prefix}{i}" for i in range(shape[axis])]
    return blocks, _names(feature_names, default)


def _names(given, default) -> np.ndarray:
    if given is None:
        return np.asarray(default, dtype=object)
    given = [str(name) for name in given]
    if len(given) != len(default):
        raise ValueError(
            f"feature_names has {len(given)} names for {len(default)} features."
        )
    if len(set(given)) != len(given):
        raise ValueError(f"feature_names repeats a name: {given}.")
    return np.asarray(given, dtype=object)


def check_flat_rows_of_a_sequence_model(located, n_columns: int) -> None:
    """A 2-D X for a model taking N-D rows: ask for the N-D shape, instead
    of scikit-learn's count of features (the first axis of the rows)."""
    if located is None or located.nd_shape is None or located.preprocessor:
        return
    shape = located.nd_shape
    dims = ", ".join(map(str, shape))
    fits = n_columns == int(np.prod(shape))
    raise ValueError(
        f"X is 2-D with {n_columns} columns, but the Keras model takes rows of "
        f"shape {shape}: pass X of shape (n_samples, {dims})"
        + (f", e.g. X.reshape(len(X), {dims})." if fits else ".")
    )
