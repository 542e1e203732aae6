"""feature_groups="auto": correlated columns found, named, kept and drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold

from skimportance import (
    ImportanceDisplay,
    conditional_importance,
    cross_validate_importance,
    permutation_importance,
)
from skimportance._engines.groups import cluster_feature_groups


def blocks(n=300, seed=0):
    """x0, x1, x2: one block (rho ~0.9); x3, x4: a pair (rho ~0.8); x5 alone."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    X = np.column_stack(
        [
            z[:, 0],
            z[:, 0] + 0.3 * rng.normal(size=n),
            z[:, 0] + 0.3 * rng.normal(size=n),
            z[:, 1],
            z[:, 1] + 0.7 * rng.normal(size=n),
            z[:, 2],
        ]
    )
    y = X @ np.array([1.0, 0.5, 0.0, 1.0, 0.0, 0.5]) + rng.normal(size=n)
    return X, y


def test_correlated_blocks_become_named_groups():
    X, y = blocks()
    model = LinearRegression().fit(X, y)
    result = permutation_importance(model, X, y, feature_groups="auto", random_state=0)
    assert result.feature_names.tolist() == ["x0+x1+x2", "x3+x4", "x5"]
    assert result.details["feature_groups"] == {
        "x0+x1+x2": ["x0", "x1", "x2"],
        "x3+x4": ["x3", "x4"],
        "x5": ["x5"],
    }
    clustering = result.details["clustering"]
    assert clustering["columns"] == [f"x{j}" for j in range(6)]
    assert clustering["linkage"].shape == (5, 4)
    assert clustering["threshold"] == 0.7
    # The same numbers as the groups given by hand.
    by_hand = permutation_importance(
        model,
        X,
        y,
        random_state=0,
        feature_groups={"x0+x1+x2": [0, 1, 2], "x3+x4": [3, 4], "x5": [5]},
    )
    np.testing.assert_array_equal(result.importances, by_hand.importances)


def test_the_threshold_decides_what_joins():
    X, _ = blocks()
    names = [f"x{j}" for j in range(6)]
    strict, _ = cluster_feature_groups(X, names, 0.85)
    loose, _ = cluster_feature_groups(X, names, 0.7)
    assert list(strict) == ["x0+x1+x2", "x3", "x4", "x5"]  # the pair has rho ~0.8
    assert list(loose) == ["x0+x1+x2", "x3+x4", "x5"]
    rho = pd.DataFrame(X).corr(method="spearman").abs().to_numpy()
    assert 0.7 < rho[3, 4] < 0.85  # what the two thresholds straddle
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(ValueError, match=r"cluster_threshold must be in \(0, 1\]"):
            cluster_feature_groups(X, names, bad)


def test_categorical_columns_stay_alone_and_names_come_from_the_frame():
    X, y = blocks(n=200)
    frame = pd.DataFrame(X, columns=list("abcdef")).assign(
        colour=pd.Categorical(np.where(X[:, 0] > 0, "red", "blue"))
    )
    groups, clustering = cluster_feature_groups(frame, frame.columns, 0.7)
    assert list(groups) == ["a+b+c", "d+e", "f", "colour"]
    assert groups["colour"] == [6]
    assert clustering["columns"] == list("abcdef")


def test_conditional_importance_draws_the_groups_given_the_rest():
    X, y = blocks(n=400, seed=1)
    model = LinearRegression().fit(X, y)
    result = conditional_importance(
        model, X, y, feature_groups="auto", cluster_threshold=0.7, random_state=0
    )
    assert result.feature_names.tolist() == ["x0+x1+x2", "x3+x4", "x5"]
    assert result.ranking()[0] in ("x0+x1+x2", "x3+x4")
    assert result.pvalues().lt(0.05).all()


def test_the_dendrogram_is_drawn_from_the_result_or_its_folds():
    pytest.importorskip("matplotlib").use("Agg")
    import matplotlib.pyplot as plt

    X, y = blocks()
    result = permutation_importance(
        LinearRegression().fit(X, y), X, y, feature_groups="auto", random_state=0
    )
    display = ImportanceDisplay.from_result(result).plot_dendrogram()
    assert sorted(display.dendrogram_["ivl"]) == [f"x{j}" for j in range(6)]
    cut = [line for line in display.ax_.get_lines() if line.get_linestyle() == "--"]
    assert cut and cut[0].get_xdata()[0] == pytest.approx(0.3)

    # cross-validated: each fold clusters its own test rows; with clear blocks
    # they agree, and the first fold's tree is drawn.
    folded = cross_validate_importance(
        Ridge(), X, y, cv=KFold(3), method_params={"feature_groups": "auto"}
    )
    fig, ax = plt.subplots()
    drawn = ImportanceDisplay.from_result(folded).plot_dendrogram(ax=ax)
    assert drawn.ax_ is ax
    plt.close("all")


def test_no_clustering_no_dendrogram():
    pytest.importorskip("matplotlib").use("Agg")
    X, y = blocks()
    plain = permutation_importance(LinearRegression().fit(X, y), X, y)
    with pytest.raises(ValueError, match="feature_groups='auto'"):
        ImportanceDisplay.from_result(plain).plot_dendrogram()
    one_numeric = pd.DataFrame(
        {"a": X[:, 0], "c": pd.Categorical(np.where(X[:, 1] > 0, "u", "v"))}
    )
    _, clustering = cluster_feature_groups(one_numeric, ["a", "c"], 0.7)
    assert clustering["linkage"].shape == (0, 4)
