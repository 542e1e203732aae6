"""From a CSV file to a Keras pipeline, for ``skimportance explain``.

Reading and checking the table, choosing the task and building the
preprocessing: numeric columns are imputed (median, plus a missing-value
indicator) and standardised, categorical ones one-hot encoded with missing
values as a category of their own. Importances come back on the CSV's own
columns from the methods themselves (``columns="raw"``), never by summing
indicator columns here.
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
    if y.isna().any():
        raise TableError(
            f"target {target!r} is missing in {int(y.isna().sum())} row(s); drop "
            "those rows first (missing inputs are fine: they are imputed)"
        )
    infinite = [
        str(c)
        for c in X.columns.tolist() + [target]
        if _is_number_column(frame[c]) and np.isinf(frame[c].to_numpy(float)).any()
    ]
    if infinite:
        raise TableError(
            f"infinite values in column(s) {', '.join(infinite)}; replace them "
            "(or leave the cells empty, to be imputed)"
        )
    if len(frame) < 10:
        raise TableError(f"{path} has {len(frame)} rows; at least 10 are needed")
    return X, y


def _is_number_column(column) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(column) and not is_bool_dtype(column)


def resolve_task(y, task: str) -> str:
    """'regression' or 'classification' for target ``y`` and the user's choice."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = is_numeric_dtype(y) and not is_bool_dtype(y)
    if y.nunique() < 2:
        raise TableError(
            f"target {y.name!r} takes a single value ({y.iloc[0]!r}): there is "
            "nothing to predict"
        )
    if task == "regression":
        if not numeric:
            example = y.iloc[0]
            raise TableError(
                f"target {y.name!r} is not numeric (e.g. {example!r}); "
                "use --task classification"
            )
        return task
    if task == "classification":
        return task
    if not numeric:
        return resolve_task(y, "classification")
    values = y.to_numpy(dtype=float)
    few_integers = (
        np.all(values == np.round(values)) and y.nunique() <= MAX_AUTO_CLASSES
    )
    return "classification" if few_integers else "regression"


def categorical_columns(X) -> list:
    return [c for c in X.columns if not _is_number_column(X[c])]


def summary(X, y, path: str, task: str) -> dict:
    """The data summary the HTML report shows: sizes, the task, and per column
    its kind and how many cells are missing."""
    categorical = set(categorical_columns(X))
    return {
        "file": Path(path).name,
        "rows": len(X),
        "target": f"{y.name} ({task})",
        "columns": {
            str(c): {
                "kind": "categorical" if c in categorical else "numeric",
                "missing": int(X[c].isna().sum()),
                "distinct": int(X[c].nunique()),
            }
            for c in X.columns
        },
    }


def check_classes(y, n_folds: int) -> None:
    """Every class needs a row in each of ``n_folds`` stratified folds."""
    counts = y.value_counts()
    rare = counts[counts < n_folds]
    if len(rare):
        label, count = rare.index[0], int(rare.iloc[0])
        raise TableError(
            f"class {label!r} of {y.name!r} has {count} row(s); each class needs at "
            f"least {n_folds} to be split into training and held-out rows"
        )


def preprocessor(X):
    """Numeric columns: median imputation with a missing-value indicator, then
    StandardScaler. Other columns: one-hot, missing values a category of
    their own.

    Categories are fixed from all of X so that every cross-validation fold
    encodes the same columns.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = categorical_columns(X)
    numeric = [c for c in X.columns if c not in categorical]
    parts = []
    if numeric:
        imputer = SimpleImputer(strategy="median", add_indicator=True)
        parts.append(("num", make_pipeline(imputer, StandardScaler()), numeric))
    if categorical:
        categories = [sorted(_as_str(X[[c]]).iloc[:, 0].unique()) for c in categorical]
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


#: The category a missing categorical cell becomes.
MISSING = "(missing)"


def _as_str(frame):
    # Mixed columns (numbers and text, booleans) become text before encoding,
    # matching the categories fixed in preprocessor(); a missing cell is a
    # category of its own.
    return frame.astype(object).where(frame.notna(), MISSING).astype(str)
