"""Resolve ``feature_groups``: which input columns are perturbed together.

Groups are given by the user (lists or a dict), or found from the data with
``feature_groups="auto"``: :func:`cluster_feature_groups` clusters the columns
hierarchically on their absolute Spearman correlation, as in scikit-learn's
example "Permutation Importance with Multicollinear or Correlated Features".
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .._names import check_unique_names

__all__ = ["cluster_feature_groups", "is_numeric_column", "resolve_feature_groups"]


def resolve_feature_groups(
    feature_groups, feature_names, column_sources=None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Turn ``feature_groups`` into column indices and names.

    Parameters
    ----------
    feature_groups : None, list of lists, or dict
        None: every column is its own group. A list: each entry is a list of
        column positions (int) or names (str); the group is named after its
        columns, joined with ``"+"``. A dict: group name -> such a list. A bare
        int or str stands for a group of one column. Columns in no group are
        not evaluated.
    feature_names : array-like of str
        The names of X's columns, in order.
    column_sources : list of str, default=None
        How to point at each column in a message (``"column 0 ('a')"``);
        by default ``"column j"``.

    Returns
    -------
    groups : list of ndarray of int
        The column positions of each group.
    names : ndarray of str
        The name of each group.

    Raises
    ------
    ValueError
        An empty group, a column in two groups (or twice in one), a position
        out of range or an unknown name; the message names the group. Two
        groups (or, without groups, two columns) with the same name; the
        message names both.
    TypeError
        ``feature_groups`` or a member has the wrong type.
    """
    feature_names = [str(name) for name in feature_names]
    n_features = len(feature_names)
    if feature_groups is None:
        # Every column is reported under its own name, so names must differ
        # (DataFrame labels 1 and "1" both become "1").
        sources = column_sources or [f"column {j}" for j in range(n_features)]
        check_unique_names(feature_names, sources, what="feature name")
        return [np.array([j]) for j in range(n_features)], np.asarray(
            feature_names, dtype=object
        )

    if isinstance(feature_groups, Mapping):
        entries = [
            (str(key), members, repr(key)) for key, members in feature_groups.items()
        ]
        sources = [f"key {key!r}" for key in feature_groups]
    elif isinstance(feature_groups, (str, bytes)) or not _is_sequence(feature_groups):
        shown = (
            repr(feature_groups)
            if isinstance(feature_groups, str)
            else type(feature_groups).__name__
        )
        raise TypeError(
            "feature_groups must be a list of lists of columns, a dict "
            f"name -> columns or 'auto', got {shown}."
        )
    else:
        entries = [
            (None, members, f"#{i} {_show(members)}")
            for i, members in enumerate(feature_groups)
        ]
        sources = [f"group {label}" for _, _, label in entries]
    if not entries:
        raise ValueError("feature_groups is empty: give at least one group.")

    positions = _name_positions(feature_names)
    owner: dict[int, str] = {}
    groups, names = [], []
    for name, members, label in entries:
        columns = []
        for member in _members(members, label):
            j = _column_position(member, label, positions, feature_names)
            if j in owner:
                where = (
                    "twice in" if owner[j] == label else f"in group {owner[j]} and in"
                )
                raise ValueError(
                    f"feature_groups: column {feature_names[j]!r} is {where} group "
                    f"{label}; groups must not overlap."
                )
            owner[j] = label
            columns.append(j)
        if not columns:
            raise ValueError(f"feature_groups: group {label} is empty.")
        groups.append(np.asarray(columns, dtype=np.intp))
        names.append(
            name if name is not None else "+".join(feature_names[j] for j in columns)
        )
    # [["a", "b"], ["a+b"]] both become "a+b"; dict keys 1 and "1" both "1".
    check_unique_names(names, sources, what="feature group name")
    return groups, np.asarray(names, dtype=object)


def _is_sequence(obj) -> bool:
    return hasattr(obj, "__iter__") and hasattr(obj, "__len__")


def _show(members) -> str:
    if isinstance(members, np.ndarray):
        members = members.tolist()
    return (
        repr(list(members))
        if _is_sequence(members) and not isinstance(members, str)
        else repr(members)
    )


def _members(members, label: str) -> list:
    if isinstance(members, (str, numbers.Integral)):
        return [members]  # a group of one column
    if not _is_sequence(members):
        raise TypeError(
            f"feature_groups: group {label} must list columns (int positions or "
            f"str names), got {type(members).__name__}."
        )
    return list(members)


def _name_positions(feature_names: list[str]) -> dict[str, int | None]:
    positions: dict[str, int | None] = {}
    for j, name in enumerate(feature_names):
        positions[name] = None if name in positions else j  # None: ambiguous
    return positions


def _column_position(member, label: str, positions, feature_names) -> int:
    n_features = len(feature_names)
    if isinstance(member, (bool, np.bool_)):
        raise TypeError(
            f"feature_groups: group {label} contains a boolean ({member!r}); "
            "give column positions or names."
        )
    if isinstance(member, numbers.Integral):
        j = int(member)
        if not 0 <= j < n_features:
            raise ValueError(
                f"feature_groups: group {label} refers to column {j}, out of range "
                f"for X with {n_features} columns."
            )
        return j
    if isinstance(member, str):
        if member not in positions:
            raise ValueError(
                f"feature_groups: group {label} refers to unknown column {member!r}; "
                f"X's columns are {_shorten(feature_names)}."
            )
        j = positions[member]
        if j is None:
            raise ValueError(
                f"feature_groups: group {label} refers to column {member!r}, a name "
                "X has more than once; use column positions."
            )
        return j
    raise TypeError(
        f"feature_groups: group {label} contains {member!r} of type "
        f"{type(member).__name__}; give column positions (int) or names (str)."
    )


def _shorten(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def cluster_feature_groups(X, feature_names, threshold) -> tuple[dict, dict]:
    """Groups of correlated columns, by hierarchical clustering on |Spearman rho|.

    The distance between two columns is ``1 - |rho|``; clusters are merged by
    average linkage and cut where the average |rho| between two clusters
    falls below ``threshold``. Each group is named after its members, joined
    with ``"+"`` (a lone column keeps its name). Columns that are not
    numeric (categories, strings) are never grouped.

    Parameters
    ----------
    X : ndarray or DataFrame of shape (n_samples, n_features)
    feature_names : array-like of str
    threshold : float in (0, 1]
        The |rho| at which columns join one group.

    Returns
    -------
    groups : dict
        Group name -> column positions, in the order of each group's first
        column.
    clustering : dict
        ``linkage`` (SciPy's linkage matrix over ``columns``), ``columns``
        (the clustered names), ``threshold``, ``cut`` (the distance
        ``1 - threshold``), ``method`` and ``correlation``: what
        ``ImportanceDisplay.plot_dendrogram`` draws.
    """
    import pandas as pd
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not 0 < threshold <= 1
    ):
        raise ValueError(f"cluster_threshold must be in (0, 1], got {threshold!r}.")
    feature_names = [str(name) for name in feature_names]
    frame = X if hasattr(X, "iloc") else pd.DataFrame(X)
    numeric = [j for j in range(frame.shape[1]) if is_numeric_column(frame.iloc[:, j])]
    labels = np.arange(len(feature_names))  # every column alone by default
    linkage = np.empty((0, 4))
    if len(numeric) >= 2:
        values = (
            frame.iloc[:, numeric].astype(float).set_axis(range(len(numeric)), axis=1)
        )
        rho = np.nan_to_num(values.corr(method="spearman").to_numpy(), nan=0.0)
        distance = np.clip(1.0 - np.abs(rho), 0.0, None)
        distance = (distance + distance.T) / 2
        np.fill_diagonal(distance, 0.0)
        linkage = hierarchy.linkage(
            squareform(distance, checks=False), method="average"
        )
        clusters = hierarchy.fcluster(linkage, t=1.0 - threshold, criterion="distance")
        labels[numeric] = len(feature_names) + clusters  # apart from lone columns

    groups: dict[str, list[int]] = {}
    for label in dict.fromkeys(labels):  # in the order of first appearance
        members = np.flatnonzero(labels == label).tolist()
        groups["+".join(feature_names[j] for j in members)] = members
    clustering = {
        "linkage": linkage,
        "columns": [feature_names[j] for j in numeric],
        "threshold": float(threshold),
        "cut": 1.0 - float(threshold),
        "method": "average",
        "correlation": "spearman",
    }
    return groups, clustering


def is_numeric_column(column) -> bool:
    """A numeric column (bools and categories are not), or numbers as objects."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.is_numeric_dtype(dtype):
        return True
    try:
        pd.to_numeric(column, errors="raise")
    except (TypeError, ValueError):
        return False
    return True
