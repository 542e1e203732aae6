"""What LOCO refits see: rows with some raw columns set to a constant.

A column is made uninformative by a constant learnt on the training fold
(the mean of a numeric column, the mode of a categorical, object or bool
one), so a Pipeline still receives every column it was built for. The same
constant goes into the held-out rows. And the estimator must be one that can
be refitted at all: that is checked here, before any work.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .._compat import loaded_module
from .._replace import replace_columns

__all__ = ["check_refittable", "masked", "refit_constants"]


def check_refittable(estimator) -> None:
    """Refuse what cannot be refitted, saying why, before any fit.

    Raises
    ------
    TypeError
        A bare ``keras.Model``, or an estimator scikit-learn cannot clone.
    ValueError
        A Keras wrapper holding an already built model (``from_keras``):
        refitting would train that one model further, not a fresh one.
    """
    keras = loaded_module("keras")
    if keras is not None and isinstance(estimator, keras.Model):
        raise TypeError(
            "LOCO refits a scikit-learn estimator, got a bare keras Model "
            f"({type(estimator).__name__}). Wrap the recipe that builds it in a "
            "KerasRegressor or KerasClassifier (model=build_function)."
        )
    try:
        clone(estimator)
    except Exception as error:
        raise TypeError(
            f"LOCO refits clones of the estimator, but scikit-learn cannot clone "
            f"this {type(estimator).__name__}: {error}"
        ) from error
    scikeras = loaded_module("scikeras.wrappers")
    if scikeras is None:
        return
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    if isinstance(final, scikeras.BaseWrapper) and isinstance(
        getattr(final, "model", None), keras.Model
    ):
        raise ValueError(
            f"This {type(final).__name__} holds an already trained keras Model "
            "(from_keras, or model=<a keras.Model>): LOCO has nothing to refit, "
            "since refitting would train that same model further rather than a "
            "fresh one per feature. Pass a KerasRegressor or KerasClassifier "
            "whose model= is a function that builds the network, or use "
            "permutation_importance on the trained model."
        )


def _is_numeric(column: np.ndarray) -> bool:
    return column.dtype.kind in "iuf"


def _mode(values) -> object:
    import pandas as pd

    counts = (
        pd.Series(np.asarray(values, dtype=object)).dropna().value_counts(sort=True)
    )
    return counts.index[0] if len(counts) else np.nan


def refit_constants(X, rows, n_columns: int) -> list:
    """Each column's constant on ``rows`` of ``X``: mean or mode."""
    constants = []
    for j in range(n_columns):
        column = X.iloc[rows, j] if hasattr(X, "iloc") else X[rows, j]
        values = np.asarray(column)
        if _is_numeric(values):
            finite = values[~np.isnan(values.astype(float))]
            constants.append(float(finite.mean()) if len(finite) else 0.0)
        else:
            constants.append(_mode(values))
    return constants


def masked(X, columns, constants):
    """A copy of X with ``columns`` set to their constants; X itself for None.

    Numeric columns become float (a mean need not be a whole number); the
    others keep their dtype (a categorical column keeps its categories)."""
    if columns is None:
        return X
    columns = list(columns)
    if not hasattr(X, "iloc"):
        values = [np.array([constants[j]]) for j in columns]
        return replace_columns(X, [(columns, values)], promote=True)
    import pandas as pd

    values = []
    for j in columns:
        dtype = X.iloc[:, j].dtype
        numeric = dtype.kind in "iuf"
        values.append(
            np.array([constants[j]], dtype=float)
            if numeric
            else pd.array([constants[j]], dtype=dtype)
        )
    return replace_columns(X, [(columns, values)])
