"""Comparing several importance results feature by feature.

Statistics over results live here, apart from any drawing: the Display only
draws what these functions compute. Nothing here imports the result classes
(any object with ``importances``, ``importances_mean``, ``feature_names`` and
``method`` is a result), so ``_result`` and ``plotting`` do not depend on each
other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._names import check_unique_names

__all__ = ["aligned_rows", "named_results", "rank_agreement"]

_RESULT_ATTRIBUTES = ("importances", "importances_mean", "feature_names", "method")


def named_results(results) -> dict:
    """Normalise one result, a list or a dict into an ordered name -> result dict.

    A list is keyed by each result's ``method``; repeated methods become
    ``"permutation (2)"``, ...

    Raises
    ------
    ValueError
        No results; a result without features or draws; two results under
        one name (dict keys ``1`` and ``"1"``), naming both.
    """
    if _is_result(results):
        items, sources = [(str(results.method), results)], ["the result"]
    elif isinstance(results, Mapping):
        items = [(str(name), result) for name, result in results.items()]
        sources = [f"key {name!r}" for name in results]
    elif isinstance(results, Sequence) and not isinstance(results, str):
        items, seen = [], {}
        for result in results:
            _check_is_result(result, f"item {len(items)}")
            seen[result.method] = seen.get(result.method, 0) + 1
            count = seen[result.method]
            name = result.method if count == 1 else f"{result.method} ({count})"
            items.append((name, result))
        sources = [f"item {i} (method {r.method!r})" for i, (_, r) in enumerate(items)]
    else:
        raise TypeError(
            "Expected an ImportanceResult, a dict of them or a list of them, got "
            f"{type(results).__name__}."
        )
    if not items:
        raise ValueError("No results given: the dict or list is empty.")
    check_unique_names([name for name, _ in items], sources, what="result name")
    for name, result in items:
        _check_is_result(result, repr(name))
        _check_not_empty(result, name)
    return dict(items)


def aligned_rows(results: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The first result's features, and each result's rows in that order.

    Raises
    ------
    ValueError
        The results repeat a feature name or do not have the same features;
        the message names the differences.
    """
    (first_name, first), *_ = results.items()
    reference = list(first.feature_names)
    rows = {}
    for name, result in results.items():
        features = list(result.feature_names)
        if len(results) > 1 and len(set(features)) != len(features):
            duplicated = sorted({f for f in features if features.count(f) > 1})
            raise ValueError(
                f"Result {name!r} repeats feature names {duplicated}; results can "
                "only be compared when each feature name is unique."
            )
        missing = [f for f in reference if f not in set(features)]
        extra = [f for f in features if f not in set(reference)]
        if missing or extra:
            raise ValueError(
                f"Results {first_name!r} and {name!r} have different features: "
                f"only in {first_name!r}: {missing}; only in {name!r}: {extra}. "
                "Compare results computed on the same features (and groups)."
            )
        position = {feature: i for i, feature in enumerate(features)}
        rows[name] = np.asarray([position[f] for f in reference], dtype=np.intp)
    return np.asarray(first.feature_names, dtype=object), rows


def rank_agreement(results):
    """Spearman rank correlation between every pair of results.

    Each result's mean importances are matched by feature name and ranked;
    1 means two methods order the features identically, -1 reversed.

    Parameters
    ----------
    results : dict of str to ImportanceResult, or a list of them
        At least two features each, the same features in every result.

    Returns
    -------
    pandas.DataFrame of shape (n_results, n_results)
        Symmetric, indexed by result name. A pair involving a result whose
        importances are all equal is NaN.

    Raises
    ------
    ValueError
        The results do not have the same features, or have fewer than two.

    Examples
    --------
    >>> from skimportance import ImportanceResult, rank_agreement
    >>> a = ImportanceResult([3, 2, 1], ["x", "y", "z"], method="permutation")
    >>> b = ImportanceResult([1, 2, 3], ["z", "y", "x"], method="olden")
    >>> rank_agreement([a, b])
                 permutation  olden
    permutation          1.0    1.0
    olden                1.0    1.0
    """
    import pandas as pd

    results = named_results(results)
    features, rows = aligned_rows(results)
    if len(features) < 2:
        raise ValueError(
            f"Rank agreement needs at least 2 features, got {len(features)}."
        )
    means = pd.DataFrame(
        {name: r.importances_mean[rows[name]] for name, r in results.items()},
        index=features,
    )
    return means.corr(method="spearman")


def _is_result(obj) -> bool:
    return all(hasattr(obj, attribute) for attribute in _RESULT_ATTRIBUTES)


def _check_not_empty(result, name: str) -> None:
    """Nothing can be drawn or ranked from a result without numbers."""
    shape = np.shape(result.importances)
    if len(shape) != 2 or 0 in shape:
        raise ValueError(
            f"Result {name!r} is empty: its importances have shape {shape}, but "
            "at least one feature and one draw are needed to plot or compare it."
        )


def _check_is_result(result, where: str) -> None:
    if not _is_result(result):
        raise TypeError(
            f"Result {where} is a {type(result).__name__}, not an ImportanceResult."
        )
