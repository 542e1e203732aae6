"""The shared ridge imputer: one factorisation, the numbers of per-column ridges.

Every claim is checked against scikit-learn itself: the coefficients against
``Ridge`` fitted column by column, the leave-one-out errors against
``RidgeCV`` and against refitting without each row, the importances against
``conditional_importance`` run with per-column ``Ridge`` imputers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skimportance import conditional_importance
from skimportance._engines.shared_ridge import SharedRidge, loo_errors


def correlated(n=60, p=5, seed=0):
    """Columns of different scales, two of them strongly correlated."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 1] += 2 * X[:, 0]
    return X * np.arange(1, p + 1)


def standardised(X):
    scaler = StandardScaler().fit(X)
    return scaler.transform(X), scaler


@pytest.mark.parametrize("alpha", [1e-3, 0.7, 50.0])
def test_coefficients_equal_a_ridge_per_column(alpha):
    X = correlated()
    Z, scaler = standardised(X)
    fit = SharedRidge(alphas=(alpha,)).fit(Z, np.arange(Z.shape[1]))
    for j in range(X.shape[1]):
        others = np.delete(np.arange(X.shape[1]), j)
        ridge = Ridge(alpha=alpha).fit(Z[:, others], X[:, j])
        ours = fit.coefficients(j) * scaler.scale_[j]  # z_j back in x_j's units
        np.testing.assert_allclose(ours[others], ridge.coef_, rtol=0, atol=1e-8)
        assert ours[j] == 0.0
        Z_new = Z[:7] + 0.3  # any rows: the residual of x_j on them
        residual = fit.residuals(Z_new, [j])[:, 0] * scaler.scale_[j]
        expected = (X[:7, j] + 0.3 * scaler.scale_[j]) - ridge.predict(Z_new[:, others])
        np.testing.assert_allclose(residual, expected, rtol=0, atol=1e-8)


def test_leave_one_out_errors_equal_refitting_without_each_row():
    X = correlated(n=30, p=4)
    Z, _ = standardised(X)
    alphas = (0.01, 3.0, 300.0)
    eigenvalues, vectors = np.linalg.eigh(Z.T @ Z)
    ours = loo_errors(Z, np.arange(4), alphas, eigenvalues, vectors)
    for a, alpha in enumerate(alphas):
        for j in range(4):
            others = np.delete(np.arange(4), j)
            squares = 0.0
            for i in range(len(Z)):
                keep = np.arange(len(Z)) != i
                ridge = Ridge(alpha=alpha).fit(Z[keep][:, others], Z[keep, j])
                squares += (ridge.predict(Z[i : i + 1, others])[0] - Z[i, j]) ** 2
            assert ours[a, j] == pytest.approx(squares, rel=1e-10)


def test_the_penalty_minimises_ridgecvs_leave_one_out_summed_over_columns():
    X = correlated(n=80, p=6, seed=1)
    Z, _ = standardised(X)
    alphas = tuple(np.logspace(-3, 3, 13))
    totals = np.zeros(len(alphas))
    for j in range(Z.shape[1]):
        others = np.delete(np.arange(Z.shape[1]), j)
        cv = RidgeCV(alphas=alphas, store_cv_results=True).fit(Z[:, others], Z[:, j])
        totals += cv.cv_results_.sum(axis=0)
    fit = SharedRidge(alphas=alphas).fit(Z, np.arange(Z.shape[1]))
    assert fit.alpha == alphas[int(np.argmin(totals))]
    assert alphas[0] < fit.alpha < alphas[-1]  # a real choice, not an end of the grid


def mixed_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(correlated(n, 5, seed), columns=list("abcde"))
    X["colour"] = pd.Categorical(np.where(X["a"] > 0, "red", rng.choice(["g", "b"], n)))
    y = X["a"] + 0.5 * X["c"] - X["e"] + (X["colour"] == "red") + rng.normal(size=n)
    return X, y.to_numpy()


def test_importances_equal_per_column_ridges_with_the_chosen_penalty():
    """Numeric columns, a group and a categorical column in the design."""
    X, y = mixed_frame()
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["colour"]), remainder="passthrough"),
        LinearRegression(),
    ).fit(X, y)
    groups = [["a", "b"], ["c"], ["d"], ["e"], ["colour"]]
    X_fit, X_test, y_test = X[:120], X[120:], y[120:]
    common = dict(X_fit=X_fit, feature_groups=groups, n_repeats=4, random_state=0)
    shared = conditional_importance(model, X_test, y_test, **common)
    alpha = shared.details["imputer_alpha"]
    assert alpha in SharedRidge().alphas
    per_column = conditional_importance(
        model, X_test, y_test, imputer=Ridge(alpha=alpha), **common
    )
    np.testing.assert_allclose(
        shared.importances, per_column.importances, rtol=0, atol=1e-10
    )
    assert per_column.details["imputer_alpha"] is None


def test_ridge_cv_by_name_is_one_ridgecv_per_column():
    X, y = mixed_frame()
    model = LinearRegression().fit(X[list("abcde")], y)
    X = X[list("abcde")]
    named = conditional_importance(model, X, y, imputer="ridge_cv", random_state=0)
    given = conditional_importance(
        model,
        X,
        y,
        imputer=RidgeCV(alphas=np.logspace(-3, 3, 13), gcv_mode="svd"),
        random_state=0,
    )
    np.testing.assert_array_equal(named.importances, given.importances)
    assert named.details["imputer"].startswith("RidgeCV")


def test_an_unknown_imputer_name_is_refused():
    X, y = mixed_frame()
    model = LinearRegression().fit(X[["a", "b"]], y)
    with pytest.raises(ValueError, match="imputer='lasso' is not a known imputer"):
        conditional_importance(model, X[["a", "b"]], y, imputer="lasso")
