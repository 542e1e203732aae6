"""What ``interaction_importance`` checks before any forward pass, and what
it explains: which features and pairs, which response columns."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import is_classifier

from ._outputs import resolve_outputs

__all__ = [
    "DEFAULT_MAX_FEATURES",
    "check_finite",
    "check_n_rows",
    "check_not_constant",
    "default_limit",
    "resolve_features",
    "response_and_targets",
    "sort_pairs",
]

#: Default screening: all pairs up to this many features, else the pairs of
#: the strongest this many (190 pairs). The pairs cost grows with the square
#: of the features; 20 keeps a default run to a few hundred grids.
DEFAULT_MAX_FEATURES = 20


# --- what is explained ----------------------------------------------------------------


def response_and_targets(run, output):
    """(response function, [(target name or None, response columns)])."""
    located = run.located
    if located is not None:
        heads = located.layout.outputs
        selection = resolve_outputs(located, output)

        def response(raw):
            return selection.response(raw).astype(np.float64)

        if output is None and len(heads) > 1:
            layout = located.layout
            return response, [
                (head.name, layout.head_columns(k)) for k, head in enumerate(heads)
            ]
        return response, [(None, np.asarray(selection.columns))]
    estimator = run.estimator
    proba = is_classifier(estimator) and hasattr(estimator, "predict_proba")
    method = "predict_proba" if proba else "predict"

    def generic_response(model, rows):
        out = np.asarray(getattr(model, method)(rows), dtype=np.float64)
        return out.reshape(len(out), -1)

    if output is None:
        n_classes = len(getattr(estimator, "classes_", ())) if proba else 0
        return generic_response, [(None, [1] if n_classes == 2 else slice(None))]
    if proba and not isinstance(output, numbers.Integral):
        classes = [str(c) for c in estimator.classes_]
        if str(output) not in classes:
            raise ValueError(f"output={output!r} is not one of the classes {classes}.")
        return generic_response, [(None, [classes.index(str(output))])]
    if isinstance(output, bool) or not isinstance(output, numbers.Integral):
        raise ValueError(f"output must be a column position, got {output!r}.")
    return generic_response, [(None, [int(output)])]


# --- checks -------------------------------------------------------------------------


def check_n_rows(X, what: str = "X") -> None:
    n = np.shape(X)[0] if np.ndim(X) else 0
    if n < 2:
        raise ValueError(
            f"Interactions compare rows with each other: {what} needs at least 2 "
            f"rows, got {n}."
        )


def check_finite(X, names, estimator) -> None:
    """No infinity, and no NaN or missing value unless a Pipeline (whose
    preprocessing may impute) takes X: its model input is checked after the
    preprocessing instead (``check_model_input`` for a Keras model)."""
    import pandas as pd
    from sklearn.pipeline import Pipeline

    allow_missing = isinstance(estimator, Pipeline)
    frame = X if hasattr(X, "iloc") else pd.DataFrame(X)
    for j in range(frame.shape[1]):
        column = frame.iloc[:, j]
        if column.dtype.kind in "biufc":
            values = column.to_numpy(dtype=float)
            bad = np.isinf(values) if allow_missing else ~np.isfinite(values)
        else:
            bad = np.zeros(len(column), bool) if allow_missing else column.isna()
        bad = np.asarray(bad)
        if bad.any():
            raise ValueError(
                f"X contains {'infinity' if allow_missing else 'NaN or infinity'} "
                f"in column {names[j]!r} (row {int(np.flatnonzero(bad)[0])}); "
                "interactions need complete, finite rows."
            )


def check_not_constant(X_sub, groups, names, features) -> None:
    """Refuse a feature constant on the rows used: it cannot interact (its
    partial dependence is flat, so H² is 0/0)."""
    import pandas as pd

    frame = X_sub if hasattr(X_sub, "iloc") else pd.DataFrame(X_sub)
    for f in features:
        if all(frame.iloc[:, j].nunique(dropna=False) <= 1 for j in groups[f]):
            raise ValueError(
                f"Feature {names[f]!r} is constant on the rows used, so it cannot "
                "interact (its partial dependence is flat and H² is 0/0); leave it "
                "out of features= or drop the column."
            )


def resolve_features(features, names) -> tuple[list[int], list[tuple[int, int]]]:
    """(candidate features, explicit pairs), as positions in ``names``.

    Raises
    ------
    ValueError
        A feature named twice, unknown, or fewer than two features.
    """
    names = [str(n) for n in names]
    if features is None:
        if len(names) < 2:
            raise ValueError(f"Interactions need at least 2 features, got {names}.")
        return list(range(len(names))), []
    if isinstance(features, (str, bytes)) or not hasattr(features, "__iter__"):
        raise TypeError(
            f"features must be a list of features or of (a, b) pairs, got {features!r}."
        )
    features = list(features)
    if features and all(isinstance(f, (tuple, list)) for f in features):
        pairs, seen = [], set()
        for pair in features:
            if len(pair) != 2:
                raise ValueError(
                    f"Each pair in features must hold 2 features, got {pair!r}."
                )
            a, b = (_position(f, names) for f in pair)
            if a == b:
                raise ValueError(f"The pair {pair!r} names feature {names[a]!r} twice.")
            key = (min(a, b), max(a, b))
            if key in seen:
                raise ValueError(
                    f"The pair ({names[a]!r}, {names[b]!r}) is named twice."
                )
            seen.add(key)
            pairs.append(key)
        return [], pairs
    positions = [_position(f, names) for f in features]
    repeated = [names[p] for p in set(positions) if positions.count(p) > 1]
    if repeated:
        raise ValueError(
            f"features names {repeated[0]!r} twice; name each feature once."
        )
    if len(positions) < 2:
        raise ValueError(f"Interactions need at least 2 features, got {features!r}.")
    return sorted(positions), []


def _position(feature, names) -> int:
    if isinstance(feature, numbers.Integral) and not isinstance(feature, bool):
        if not 0 <= feature < len(names):
            raise ValueError(
                f"Feature position {feature} is out of range for {len(names)} features."
            )
        return int(feature)
    if str(feature) not in names:
        raise ValueError(f"Unknown feature {feature!r}; the features are {names}.")
    return names.index(str(feature))


def sort_pairs(frame, by: str = "interaction"):
    """Strongest first, by ``|frame[by]|``; ties in the order evaluated."""
    order = np.argsort(-np.abs(frame[by].to_numpy()), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def default_limit(n_features: int, max_features) -> int:
    """How many features' pairs to evaluate (``max_features`` screening)."""
    if max_features is not None:
        return min(max_features, n_features)
    return n_features if n_features <= DEFAULT_MAX_FEATURES else DEFAULT_MAX_FEATURES
