"""Points and rows in the user's raw input space, for probes and baselines.

A probe on raw columns sets a raw value (or a category) and lets the
estimator's own preprocessing and the model's own layers do the rest, so a
baseline "at the mean" means the mean of the user's column, whatever the
Pipeline or an in-model ``Normalization`` layer does with it. Rows keep X's
type: a DataFrame stays a DataFrame with its dtypes (categories included),
an array stays an array.

A raw column is *categorical* when its dtype is not numeric, when the
preprocessing spreads it over several model columns (an integer code one-hot
encoded), or when it feeds an integer input of the model (codes for an
Embedding): its baseline is then the most frequent value (the mode), and it
is probed level by level instead of by a shift.
"""

from __future__ import annotations

import numpy as np
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from ._replace import replace_columns

__all__ = ["RawSpace"]

STATISTICS = ("mean", "median")


class RawSpace:
    """The raw rows X, which of their columns are categorical, and row builders.

    Parameters
    ----------
    X : ndarray or DataFrame of shape (n_samples, n_columns)
        The user's rows, as the estimator takes them.
    column_map : ColumnMap
        How raw columns reach the model; a column spread over several model
        columns is treated as categorical.
    """

    def __init__(self, X, column_map):
        self.X = X
        self.frame = hasattr(X, "iloc")
        n_columns = np.shape(X)[1]
        self.categorical = np.array(
            [
                not self._numeric(j)
                or len(column_map.blocks[j]) > 1
                or column_map.coded[j]
                for j in range(n_columns)
            ]
        )

    # -- columns -------------------------------------------------------------
    def _column(self, j: int):
        return self.X.iloc[:, j].array if self.frame else np.asarray(self.X)[:, j]

    def _numeric(self, j: int) -> bool:
        if self.frame:
            dtype = self.X.dtypes.iloc[j]
            return is_numeric_dtype(dtype) and not is_bool_dtype(dtype)
        return np.asarray(self.X).dtype.kind in "iuf"

    def _as_float(self, j: int) -> np.ndarray:
        return np.asarray(self._column(j), dtype=np.float64)

    def levels(self, j: int):
        """The distinct values of column ``j`` (NaN excluded), typed like X's
        column, most frequent first."""
        return self._column(j).take(self._level_rows(j))

    def _level_rows(self, j: int) -> np.ndarray:
        """One row index per distinct value, most frequent first."""
        import pandas as pd

        codes, _ = pd.factorize(np.asarray(self._column(j), dtype=object))
        present = np.flatnonzero(codes >= 0)
        _, first, counts = np.unique(
            codes[present], return_index=True, return_counts=True
        )
        order = np.argsort(-counts, kind="stable")
        return present[first[order]]

    # -- points --------------------------------------------------------------
    def baseline(self, statistic: str):
        """One raw row: each numeric column's mean or median, each categorical
        column's most frequent value."""
        row = self._take_rows(np.zeros(1, dtype=np.intp))
        for j in range(np.shape(self.X)[1]):
            if self.categorical[j]:
                value = self._column(j).take(self._level_rows(j)[:1])
            else:
                column = self._as_float(j)
                centre = np.nanmean if statistic == "mean" else np.nanmedian
                value = np.array([centre(column)])
            row = self.with_column(row, j, value)
        return row

    def spread(self, j: int) -> float:
        """The standard deviation of numeric column ``j``."""
        return float(np.nanstd(self._as_float(j)))

    def quantiles(self, j: int, resolution: int) -> np.ndarray:
        """``resolution`` quantiles of numeric column ``j``, minimum to maximum."""
        return np.nanquantile(self._as_float(j), np.linspace(0, 1, resolution))

    # -- rows ----------------------------------------------------------------
    def repeat(self, row, n: int):
        """``n`` copies of a one-row ``row``."""
        if self.frame:
            return row.iloc[np.zeros(n, dtype=np.intp)].reset_index(drop=True)
        return np.repeat(row, n, axis=0)

    def with_column(self, rows, j: int, values):
        """A copy of ``rows`` whose column ``j`` holds ``values`` (broadcast)."""
        return replace_columns(rows, [([j], [values])], promote=True)

    def concat(self, parts):
        """Row blocks stacked, in order."""
        if self.frame:
            import pandas as pd

            return pd.concat(parts, ignore_index=True)
        return np.concatenate(parts, axis=0)

    def _take_rows(self, rows: np.ndarray):
        if self.frame:
            return self.X.iloc[rows].reset_index(drop=True)
        X = np.asarray(self.X)
        return X[rows].astype(np.float64) if X.dtype.kind in "iub" else X[rows]
