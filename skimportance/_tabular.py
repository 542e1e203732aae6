"""From a CSV file to a Keras pipeline, for ``skimportance explain``.

Reading and checking the table, choosing the task, building the preprocessing
(standardise numeric columns, one-hot encode categorical ones) and mapping
importances measured on encoded columns back to the CSV's columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TASKS = ("auto", "regression", "classification")
#: An integer target with at most this many distinct values is taken for
#: class labels by ``--task auto``.
MAX_AUTO_CLASSES = 10


class TableError(ValueError):
    """A problem with the user's table, reported as one line by the CLI."""


def read_table(path: str, target: str):
    """(X DataFrame, y Series) from a CSV file, with clear errors."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise TableError(f"no such file: {path}")
    try:
        frame = pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise TableError(f"cannot parse {path} as CSV: {error}") from None
    if frame.empty:
        raise TableError(f"{path} has a header but no rows")
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise TableError(
            f"target column {target!r} not found in {path}; columns: {columns}"
        )
    X, y = frame.drop(columns=[target]), frame[target]
    if X.shape[1] == 0:
        raise TableError(f"{path} has no columns besides the target {target!r}")
    missing = X.columns[X.isna().any()].tolist() + ([target] if y.isna().any() else [])
    if missing:
        raise TableError(
            f"missing values in column(s) {', '.join(map(str, missing))}; "
            "fill or drop them first"
        )
    if len(frame) < 10:
        raise TableError(f"{path} has {len(frame)} rows; at least 10 are needed")
    return X, y


def resolve_task(y, task: str) -> str:
    """'regression' or 'classification' for target ``y`` and the user's choice."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = is_numeric_dtype(y) and not is_bool_dtype(y)
    if task == "regression":
        if not numeric:
            example = y.iloc[0]
            raise TableError(
                f"target {y.name!r} is not numeric (e.g. {example!r}); "
                "use --task classification"
            )
        return task
    if task == "classification":
        if y.nunique() < 2:
            raise TableError(f"target {y.name!r} has a single class")
        return task
    if not numeric:
        return resolve_task(y, "classification")
    values = y.to_numpy(dtype=float)
    few_integers = (
        np.all(values == np.round(values)) and y.nunique() <= MAX_AUTO_CLASSES
    )
    return "classification" if few_integers else "regression"


def categorical_columns(X) -> list:
    from pandas.api.types import is_numeric_dtype

    return [c for c in X.columns if not is_numeric_dtype(X[c]) or X[c].dtype == bool]


def preprocessor(X):
    """StandardScaler on numeric columns, OneHotEncoder on the others.

    Categories are fixed from all of X so that every cross-validation fold
    encodes the same columns.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = categorical_columns(X)
    numeric = [c for c in X.columns if c not in categorical]
    parts = []
    if numeric:
        parts.append(("num", StandardScaler(), numeric))
    if categorical:
        categories = [sorted(X[c].astype(str).unique()) for c in categorical]
        encoder = OneHotEncoder(
            categories=categories, handle_unknown="ignore", sparse_output=False
        )
        parts.append(("cat", _as_strings_then(encoder), categorical))
    return ColumnTransformer(parts)


def _as_strings_then(encoder):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    to_str = FunctionTransformer(_as_str, feature_names_out="one-to-one")
    return make_pipeline(to_str, encoder)


def _as_str(frame):
    # Mixed columns (numbers and text, booleans) become text before encoding,
    # matching the categories fixed in preprocessor().
    return frame.astype(str)


def encoded_to_raw(X) -> np.ndarray:
    """For each encoded column (in the preprocessor's order), its CSV column."""
    categorical = categorical_columns(X)
    owners = [c for c in X.columns if c not in categorical]
    for column in categorical:
        owners += [column] * X[column].astype(str).nunique()
    return np.asarray([str(c) for c in owners], dtype=object)


def to_raw_columns(result, X):
    """Express a result measured on encoded columns on the CSV's columns.

    A CSV column encoded as one model input keeps its (signed) value; a
    one-hot encoded column gets the sum of the absolute values of its
    indicator columns. Results already on the CSV columns pass through.
    """
    from dataclasses import replace

    from ._result import CVImportanceResult, ImportanceResult

    if isinstance(result, CVImportanceResult):
        folds = [to_raw_columns(fold, X) for fold in result.fold_results]
        return replace(result, fold_results=folds)
    columns = np.asarray([str(c) for c in X.columns], dtype=object)
    if list(result.feature_names) == list(columns):
        return result
    owners = encoded_to_raw(X)
    if len(owners) != result.n_features:
        raise ValueError(
            f"{result.method}: {result.n_features} encoded columns, expected "
            f"{len(owners)}."
        )
    rows = []
    for column in columns:
        block = result.importances[owners == column]
        rows.append(block[0] if len(block) == 1 else np.abs(block).sum(axis=0))
    return ImportanceResult(
        np.vstack(rows),
        columns,
        method=result.method,
        baseline_score=result.baseline_score,
        details={**result.details, "aggregated_from": list(result.feature_names)},
    )
