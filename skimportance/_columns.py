"""Raw columns <-> model columns: reporting importance on the user's columns.

The user's estimator often encodes its input before the Keras model sees it: a
``ColumnTransformer`` one-hot encodes ``city`` into ``cat__city_east``,
``cat__city_west``...; a ``SimpleImputer(add_indicator=True)`` adds a
missing-value column for ``income``. Importance of an encoded column is not
importance of the user's column, so every method reports on the *raw* columns
by default (``columns="raw"``) and on the encoded ones only when asked
(``columns="model"``).

A :class:`ColumnMap` says which model columns each raw column produces (its
*block*). It is read off the fitted preprocessing *on the data*: each raw
column in turn is moved (its values shifted by one row) and the model columns
that change form its block. This needs no list of known transformer types,
and it checks separability as a side effect: a model column moved by two raw
columns (PCA, polynomial features) belongs to no single raw column, and the
map says so instead of guessing. Without data, the names the preprocessing
reports (``get_feature_names_out``) can still prove a one-to-one map.

Each method aggregates on its own principle, documented in the user guide:
permutation and probes act on the raw column itself; input x gradient and
integrated gradients sum attributions over a block (which keeps
completeness); saliency takes the Euclidean norm of the block's gradient;
weight methods refuse blocks of several columns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._model import feature_names_of
from ._replace import replace_columns

__all__ = ["COLUMNS", "ColumnMap", "check_columns", "column_map"]

COLUMNS = ("raw", "model")


def check_columns(columns) -> str:
    """Return ``columns`` if it is ``"raw"`` or ``"model"``, else a ValueError."""
    if not (isinstance(columns, str) and columns in COLUMNS):
        raise ValueError(f"columns must be 'raw' or 'model'; got {columns!r}.")
    return columns


@dataclass(frozen=True)
class ColumnMap:
    """Which model columns (those reaching Keras) each raw column produces.

    Attributes
    ----------
    raw_names : ndarray of str
        The user's columns, in X's order.
    model_names : ndarray of str
        The columns reaching the Keras model.
    blocks : tuple of ndarray of int
        ``blocks[j]``: the model columns produced by raw column ``j`` alone.
    shared : ndarray of int
        Model columns moved by more than one raw column (not separable).
    integer : ndarray of bool
        Raw columns that feed an integer model input (codes for an
        Embedding): categorical, whatever their dtype.
    nd : bool
        The "raw columns" are features of one N-D input (channels,
        timesteps), defined on the model's own input rather than on X's
        columns.
    """

    raw_names: np.ndarray
    model_names: np.ndarray
    blocks: tuple[np.ndarray, ...]
    shared: np.ndarray
    integer: np.ndarray | None = None
    nd: bool = False

    @property
    def n_raw(self) -> int:
        return len(self.raw_names)

    @property
    def coded(self) -> np.ndarray:
        """Which raw columns feed an integer input (see ``integer``)."""
        if self.integer is None:
            return np.zeros(self.n_raw, dtype=bool)
        return self.integer

    @property
    def separable(self) -> bool:
        """Every model column comes from at most one raw column."""
        return len(self.shared) == 0

    @property
    def one_to_one(self) -> bool:
        """Each raw column is exactly one model column, and vice versa."""
        return (
            self.separable
            and len(self.model_names) == self.n_raw
            and all(len(block) == 1 for block in self.blocks)
        )

    def encoded(self) -> dict[str, int]:
        """Raw columns spread over several model columns: name -> block width."""
        return {
            str(name): len(block)
            for name, block in zip(self.raw_names, self.blocks)
            if len(block) > 1
        }

    def check_separable(self, what: str) -> None:
        """Refuse raw-column reporting when the preprocessing mixes columns."""
        if not self.separable:
            shared = [str(self.model_names[k]) for k in self.shared[:5]]
            raise ValueError(
                f"{what} cannot report on raw columns: the preprocessing mixes "
                f"them (model columns {shared} each depend on several raw "
                "columns, as PCA or polynomial features do). Use "
                "columns='model' to see the model's own inputs, or "
                "permutation_importance, which works on raw columns directly."
            )

    def aggregate(self, values: np.ndarray, how: str, axis: int = 1) -> np.ndarray:
        """Combine the model-column axis ``axis`` of ``values`` into raw columns.

        ``how="sum"`` adds each block up (attributions: completeness is kept);
        ``how="norm"`` takes each block's Euclidean norm (gradients). A raw
        column the model never sees (an empty block) gets 0.
        """
        self.check_separable("This method")
        by_column = np.moveaxis(np.asarray(values), axis, 0)
        if how == "sum":
            parts = [by_column[block].sum(axis=0) for block in self.blocks]
        else:
            parts = [
                np.sqrt((by_column[block] ** 2).sum(axis=0)) for block in self.blocks
            ]
        return np.moveaxis(np.stack(parts), 0, axis)


def column_map(located, X=None, X_model=None) -> ColumnMap:
    """The map from the raw columns of ``X`` to the Keras model's columns.

    Parameters
    ----------
    located : LocatedModel
        The model and its preprocessing.
    X : array-like or DataFrame, default=None
        Raw rows. Needed to read the map off a preprocessing that is not
        visibly one-to-one.
    X_model : ndarray, default=None
        ``located.to_model_input(X)``, if already computed.

    Raises
    ------
    ValueError
        No X, and the preprocessing's feature names do not prove a
        one-to-one map.
    """
    if located.nd_shape is not None:
        return _nd_map(located)
    n_model = located.n_model_features
    model_names = located.model_feature_names(X)
    if located.preprocessor is None:
        positions = _input_positions(located)
        if positions is not None:
            mapping = _map_from_inputs(located, positions, model_names)
        else:
            raw_names = feature_names_of(located.final, X, n_model)
            mapping = _identity(raw_names, model_names)
    elif X is None:
        mapping = _map_from_names(located, model_names)
    else:
        if X_model is None:
            X_model = _dense(located.to_model_input(X))
        raw_names = feature_names_of(located.estimator, X, np.shape(X)[1])
        mapping = _map_from_data(located, X, X_model, raw_names, model_names)
    return _with_integer_flags(mapping, located)


def _nd_map(located) -> ColumnMap:
    """Features of one N-D input: channels, timesteps or a mask's labels."""
    from ._inputs import nd_feature_blocks

    final = located.final
    axis = getattr(final, "feature_axis", None)
    if axis is None:  # a bare model, or a wrapper not made by from_keras
        axis = "channel"
    names = getattr(final, "nd_feature_names", None)
    blocks, names = nd_feature_blocks(located.nd_shape, axis, names)
    return ColumnMap(
        names,
        located.layout.default_names(),
        tuple(np.asarray(b) for b in blocks),
        np.array([], dtype=np.intp),
        nd=True,
    )


def _input_positions(located):
    """X's column positions feeding each model input (``inputs=``), or None."""
    encoder = getattr(located.final, "feature_encoder_", None)
    return getattr(encoder, "positions_", None)


def _map_from_inputs(located, positions, model_names) -> ColumnMap:
    """Several model inputs fed from X's columns: each column is one flat
    model column, in the model's input order."""
    layout = located.layout
    n_raw = sum(len(columns) for columns in positions.values())
    blocks = [np.array([], dtype=np.intp)] * n_raw
    for k, spec in enumerate(layout.inputs):
        for i, j in enumerate(positions[spec.name]):
            blocks[j] = np.array([layout.offsets[k] + i])
    raw_names = feature_names_of(located.final, None, n_raw)
    return ColumnMap(
        np.asarray(raw_names, dtype=object),
        np.asarray(model_names, dtype=object),
        tuple(blocks),
        np.array([], dtype=np.intp),
    )


def _with_integer_flags(mapping: ColumnMap, located) -> ColumnMap:
    """Mark raw columns that feed an integer model input."""
    layout = located.layout
    integer_columns = set()
    for k, spec in enumerate(layout.inputs):
        if not spec.is_float:
            integer_columns.update(layout.input_columns(k).tolist())
    if not integer_columns:
        return mapping
    flags = np.array(
        [bool(integer_columns & set(block.tolist())) for block in mapping.blocks]
    )
    return replace(mapping, integer=flags)


def _identity(raw_names, model_names) -> ColumnMap:
    blocks = tuple(np.array([j]) for j in range(len(raw_names)))
    return ColumnMap(
        np.asarray(raw_names, dtype=object),
        np.asarray(model_names, dtype=object),
        blocks,
        np.array([], dtype=np.intp),
    )


def _map_from_names(located, model_names) -> ColumnMap:
    """A one-to-one map proved by names: model column k is raw column k,
    possibly prefixed by a ColumnTransformer (``"num__age"``)."""
    estimator = located.estimator
    raw_names = getattr(estimator, "feature_names_in_", None)
    if raw_names is None and hasattr(estimator, "n_features_in_"):
        raw_names = [f"x{k}" for k in range(estimator.n_features_in_)]
    if raw_names is not None and len(raw_names) == len(model_names):
        matches = all(
            str(out) == str(raw) or str(out).endswith(f"__{raw}")
            for out, raw in zip(model_names, raw_names)
        )
        if matches:
            return _identity(raw_names, model_names)
    raise ValueError(
        "The preprocessing in front of the Keras model changes the columns, "
        "and without X their mapping to the raw columns cannot be read. Pass "
        "X, or use columns='model' for the model's own inputs."
    )


def _map_from_data(located, X, X_model, raw_names, model_names) -> ColumnMap:
    """Move each raw column; the model columns that change are its block."""
    n_raw = np.shape(X)[1]
    owners = np.zeros((n_raw, X_model.shape[1]), dtype=bool)
    for j in range(n_raw):
        moved = _moved(X, j)
        if moved is not None:
            owners[j] = _changed(_dense(located.to_model_input(moved)), X_model)
    counts = owners.sum(axis=0)
    shared = np.flatnonzero(counts > 1)
    blocks = tuple(np.flatnonzero(owners[j] & (counts == 1)) for j in range(n_raw))
    return ColumnMap(
        np.asarray(raw_names, dtype=object),
        np.asarray(model_names, dtype=object),
        blocks,
        shared,
    )


def _moved(X, j: int):
    """A copy of X whose column ``j`` changes in every row it can (X is
    untouched): its values shifted by one row, or, for a constant numeric
    column, plus one. None for a constant non-numeric column."""
    import pandas as pd

    column = X.iloc[:, j].array if hasattr(X, "iloc") else np.asarray(X)[:, j]
    if pd.Series(np.asarray(column, dtype=object)).nunique(dropna=False) > 1:
        new = column.take(np.roll(np.arange(len(column)), 1))
    else:
        try:
            new = np.asarray(column, dtype=np.float64) + 1.0
        except (TypeError, ValueError):
            return None
    return replace_columns(X, [([j], [new])], promote=True)


def _changed(moved: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Model columns that differ anywhere (NaN equal to NaN)."""
    moved = np.asarray(moved, dtype=np.float64)
    original = np.asarray(original, dtype=np.float64)
    same = (moved == original) | (np.isnan(moved) & np.isnan(original))
    return ~same.all(axis=0)


def _dense(X_model) -> np.ndarray:
    return np.asarray(X_model.toarray() if hasattr(X_model, "toarray") else X_model)
