"""Copies of X with some columns replaced: the one place that writes them.

Every method that perturbs inputs needs "X, but with these columns holding
those values": the generic and Keras engines (a group's columns shuffled or
drawn), the incremental engine's checks, the raw-column map (one column
moved) and the raw-space baselines (one column set to a value). They all
call :func:`replace_columns`, or :func:`stack_replaced` for several such
copies stacked along the rows (the Keras engine's chunks).

X is an ndarray (columns on axis 1, any number of further axes) or a pandas
DataFrame. A DataFrame keeps its index, its column labels and every dtype
(categorical included): columns are rebuilt from their ``.array`` in one go
rather than assigned one by one into a copy. X is never modified; a
DataFrame copy may share the memory of the columns it does not replace, so
treat the copies as read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["replace_columns", "stack_replaced"]

#: One copy's changes: (column positions, their new values) pairs. The values
#: are an ndarray of shape (n_rows, n_columns, ...) or a list of one column per
#: position; a single row broadcasts to every row.
Changes = Sequence[tuple[Sequence[int], object]]


def replace_columns(X, changes: Changes, *, promote: bool = False):
    """A copy of ``X`` whose columns named in ``changes`` hold the new values.

    Parameters
    ----------
    X : ndarray or DataFrame
    changes : sequence of (columns, values)
        Column positions and their new values: an ndarray of shape
        (n_rows, len(columns)) or a list of one column per position.
    promote : bool, default=False
        An integer or boolean ndarray becomes float64 where a new value is a
        float (instead of the new values being cast to X's dtype).
    """
    return stack_replaced(X, 1, [changes], promote=promote)


def stack_replaced(X, n_copies: int, changes: Iterable[Changes], *, promote=False):
    """``n_copies`` copies of ``X`` stacked along the rows, the k-th with the
    k-th ``changes`` (see :func:`replace_columns`) applied.

    ``changes`` may be a generator: each copy's values are asked for only
    when that copy is written, so only one copy's new values exist at once.
    """
    if hasattr(X, "iloc"):
        return _stacked_frame(X, n_copies, changes)
    n_rows = len(X)
    X = np.asarray(X)
    out = np.tile(X, (n_copies,) + (1,) * (X.ndim - 1))
    for k, change in enumerate(changes):
        rows = slice(k * n_rows, (k + 1) * n_rows)
        for columns, values in change:
            if not (isinstance(values, np.ndarray) and values.ndim >= 2):
                values = np.column_stack(values)  # one column per position
            if promote and out.dtype.kind in "iub" and values.dtype.kind == "f":
                out = out.astype(np.float64)
            out[rows, columns] = values
    return out


def _stacked_frame(X, n_copies: int, changes: Iterable[Changes]):
    import pandas as pd

    n_rows = len(X)
    if n_copies == 1:  # no stacking: the untouched columns need no copy
        positions = None
        data = {j: X.iloc[:, j].array for j in range(X.shape[1])}
    else:
        positions = np.tile(np.arange(n_rows), n_copies)
        data = {j: X.iloc[:, j].array.take(positions) for j in range(X.shape[1])}
    for k, change in enumerate(changes):
        for columns, values in change:
            for j, column in zip(columns, _as_columns(values, len(columns))):
                if positions is None:
                    data[j] = _full_length(column, n_rows)
                else:
                    data[j][k * n_rows : (k + 1) * n_rows] = column
    index = X.index if positions is None else X.index[positions]
    frame = pd.DataFrame(data, index=index, copy=False)
    frame.columns = X.columns
    return frame


def _as_columns(values, n_columns: int) -> list:
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return [values[:, i] for i in range(n_columns)]
    return list(values)


def _full_length(column, n_rows: int):
    """``column``, a single value repeated down all ``n_rows`` rows."""
    if len(column) == 1 and n_rows != 1:
        return column.take(np.zeros(n_rows, dtype=np.intp))
    return column
