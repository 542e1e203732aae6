"""Conditional draws: each group's columns given the other columns.

Conditional importance replaces a group of columns by a draw from its
distribution *given the other columns*, instead of by a shuffle (which also
breaks the group's link with the columns correlated to it). As Chamma,
Engemann & Thirion (2023) do, the draw is

* for numeric columns: the prediction of a regressor fitted on the other
  columns, plus the residuals of other rows, permuted with the plan's
  permutations (one shared row order for the whole group);
* for a categorical column: a category drawn from a classifier's predicted
  probabilities.

:func:`fit_conditional_draws` fits the models (one per group, in parallel
through joblib) and precomputes every prediction and residual on the rows
the engines perturb, so :class:`ConditionalDraws` hands out the values of any
(group, repeat) slice in any order with no further model call: both engines,
and any ``n_jobs``, see the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import ThreadpoolController

from .groups import is_numeric_column
from .shared_ridge import ALPHAS, SharedRidge

__all__ = [
    "IMPUTERS",
    "ConditionalDraws",
    "column_kinds",
    "default_imputers",
    "fit_conditional_draws",
    "integer_domains",
    "named_imputer",
]


def default_imputers():
    """(regressor, classifier) used when the user gives none.

    Ridge regression with one penalty for every numeric column, chosen by
    leave-one-out over all of them at once from a wide grid (the other
    columns standardised first), as in Chamma et al. and hidimstat but from
    one factorisation (:class:`shared_ridge.SharedRidge`); a logistic
    regression for categorical columns.
    """
    return SharedRidge(), LogisticRegression(max_iter=1000)


def _ridge_cv_per_column():
    """The previous default: one ``RidgeCV`` per numeric column (or group),
    each with its own penalty. Its leave-one-out errors come from one SVD of
    the other columns: with many rows, scikit-learn's default (an
    eigendecomposition of their covariance) recomputes an n x p product for
    every penalty, twice as slow at 200 columns for the same coefficients."""
    return RidgeCV(alphas=np.asarray(ALPHAS), gcv_mode="svd")


# The imputers ``conditional_importance(imputer=...)`` knows by name.
IMPUTERS = {"shared_ridge": SharedRidge, "ridge_cv": _ridge_cv_per_column}


def named_imputer(name: str):
    """The imputer called ``name`` in :data:`IMPUTERS`."""
    if name not in IMPUTERS:
        raise ValueError(
            f"imputer={name!r} is not a known imputer; use one of "
            f"{sorted(IMPUTERS)} or a scikit-learn regressor."
        )
    return IMPUTERS[name]()


def column_kinds(X) -> list[str]:
    """``"numeric"`` or ``"categorical"`` for every column of ``X``.

    Categorical: pandas categories, booleans, strings and other objects that
    are not numbers. Integer codes are numeric; cast them to ``"category"``
    to have them drawn as categories.
    """
    import pandas as pd

    if not hasattr(X, "iloc"):
        kind = np.asarray(X).dtype.kind
        if kind in "iuf":
            return ["numeric"] * X.shape[1]
        if kind == "b":
            return ["categorical"] * X.shape[1]
        X = pd.DataFrame(X)
    return [
        "numeric" if is_numeric_column(X.iloc[:, j]) else "categorical"
        for j in range(X.shape[1])
    ]


# --- the draws ----------------------------------------------------------------------


@dataclass(frozen=True)
class _NumericDraw:
    """Prediction plus permuted residuals, shape (n_rows, n_columns)."""

    prediction: np.ndarray
    residual: np.ndarray

    def draw(self, order: np.ndarray, rng_key) -> np.ndarray:
        return self.prediction + self.residual[order]


@dataclass(frozen=True)
class _CategoricalDraw:
    """A category per row, drawn from the predicted probabilities, shape (n_rows, 1).

    The uniforms come from a generator keyed by (seed, group, repeat), so a
    slice's draw does not depend on which slices were drawn before it.
    """

    cumulative: np.ndarray  # (n_rows, n_classes) cumulative probabilities
    classes: np.ndarray
    seed: int

    def draw(self, order: np.ndarray, rng_key) -> np.ndarray:
        uniforms = np.random.default_rng([self.seed, *rng_key]).random(len(order))
        index = (self.cumulative < uniforms[:, np.newaxis]).sum(axis=1)
        index = np.minimum(index, len(self.classes) - 1)  # rounding of the last sum
        return self.classes[index][:, np.newaxis]


@dataclass(frozen=True)
class ConditionalDraws:
    """Conditional importance's perturbation (a ``plan.Perturbation``).

    Attributes
    ----------
    plan : PermutationPlan
        Its permutations order the residuals.
    groups : list of ndarray of int
        The columns of each group.
    draws : list
        Per group, the precomputed predictions and residuals (or category
        probabilities) on the plan's rows.
    """

    plan: object
    groups: list
    draws: list
    #: Per group, None or the ``_IntegerDomain`` of its integer-valued columns.
    domains: list | None = None
    imputer_alpha: float | None = None

    def values(self, X_sub, group: int, repeat: int):
        values = self.draws[group].draw(self.plan.permutation(repeat), (group, repeat))
        if self.domains is not None and self.domains[group] is not None:
            values = self.domains[group].keep(values)
        if not hasattr(X_sub, "iloc"):
            return values
        import pandas as pd

        # Each column keeps its dtype (float32, category, ...), in both engines.
        return [
            pd.array(values[:, k], dtype=X_sub.dtypes.iloc[j])
            for k, j in enumerate(self.groups[group])
        ]


@dataclass(frozen=True)
class _IntegerDomain:
    """The integer-valued columns of a group, and the range they were seen in.

    A numeric draw is a prediction plus a residual, so it may fall between or
    beyond the values a column takes: 1.7 or -0.4 for a code the model looks
    up in an embedding or a one-hot encoder. Rounded and clipped, the draws of
    a column whose every value is an integer stay integers in its range.
    """

    mask: np.ndarray  # (n_group_columns,) bool: which columns are integer-valued
    low: np.ndarray
    high: np.ndarray

    def keep(self, values: np.ndarray) -> np.ndarray:
        values = np.array(values, dtype=float)  # a copy: draws are precomputed
        values[:, self.mask] = np.clip(
            np.rint(values[:, self.mask]), self.low, self.high
        )
        return values


def integer_domains(groups, kinds, *frames) -> list:
    """Per group, the ``_IntegerDomain`` of its numeric columns whose values in
    every one of ``frames`` (X and X_fit) are integers; None where there is
    none."""
    domains = []
    for columns in groups:
        numeric = [j for j in columns if kinds[j] == "numeric"]
        if not numeric:
            domains.append(None)
            continue
        seen = np.vstack([_numbers(_take(frame, numeric)) for frame in frames])
        mask = np.zeros(len(columns), dtype=bool)
        integer = (seen == np.rint(seen)).all(axis=0)
        mask[[k for k, j in enumerate(columns) if j in numeric]] = integer
        if not mask.any():
            domains.append(None)
            continue
        domains.append(
            _IntegerDomain(
                mask, seen[:, integer].min(axis=0), seen[:, integer].max(axis=0)
            )
        )
    return domains


# --- fitting --------------------------------------------------------------------------


def fit_conditional_draws(
    plan, groups, kinds, X_fit, X_sub, imputer, categorical_imputer, seed, n_jobs
) -> ConditionalDraws:
    """Fit one model per group on ``X_fit`` and precompute its draws on ``X_sub``.

    ``imputer`` (a regressor, or :class:`SharedRidge`) models numeric groups,
    ``categorical_imputer`` (a classifier with ``predict_proba``) a
    categorical column; each sees the other columns standardised (numbers)
    or one-hot encoded (categories). Estimators with an unset
    ``random_state`` get one derived from ``seed``.
    """
    seeds = np.random.default_rng(seed).integers(2**31 - 1, size=len(groups))
    shared, alpha = {}, None
    if isinstance(imputer, SharedRidge):
        alpha, shared = _shared_ridge_draws(imputer, groups, kinds, X_fit, X_sub)
    # Many small fits: parallel over groups (n_jobs), one BLAS thread each,
    # here and in threads (joblib limits its worker processes itself).
    # Several BLAS threads per small fit only fight each other and the
    # network's threads: measured 18x slower on 2 busy cores.
    with _blas_threads().limit(limits=1, user_api="blas"):
        draws = Parallel(n_jobs=n_jobs)(
            delayed(_fit_group)(
                columns,
                kinds,
                X_fit,
                X_sub,
                imputer,
                categorical_imputer,
                int(group_seed),
            )
            for g, (columns, group_seed) in enumerate(zip(groups, seeds))
            if g not in shared
        )
    draws.reverse()  # pop() hands them out in the groups' order
    draws = [shared[g] if g in shared else draws.pop() for g in range(len(groups))]
    return ConditionalDraws(plan, groups, draws, imputer_alpha=alpha)


def _shared_ridge_draws(ridge, groups, kinds, X_fit, X_sub):
    """(alpha, {group: draw}) for every numeric group with other columns to
    condition on, all from one :class:`SharedRidge` fit.

    The design is the one every group's own model would see (numbers
    standardised, categories one-hot encoded, on ``X_fit``), built once for
    all columns: each group's design is this one with its columns left out.
    """
    targets = [
        g
        for g, columns in enumerate(groups)
        if kinds[columns[0]] == "numeric" and len(columns) < len(kinds)
    ]
    if not targets:
        return None, {}
    design = _design(kinds).fit(X_fit)
    Z_fit = np.asarray(design.transform(X_fit), dtype=float)
    # Ridge's intercept: the design centred on the fitting rows (the one-hot
    # columns are not; the standardised ones already are, up to rounding).
    centre = Z_fit.mean(axis=0)
    Z_fit -= centre
    where = _design_columns(design, kinds)
    numeric = np.array(
        [where[j][0] for j, kind in enumerate(kinds) if kind == "numeric"]
    )
    fit = ridge.fit(Z_fit, numeric)
    Z_sub = np.asarray(design.transform(X_sub), dtype=float) - centre
    scale = _numeric_scale(design, kinds)
    draws = {}
    for g in targets:
        columns = groups[g]
        residual = fit.residuals(Z_sub, [where[j][0] for j in columns])
        residual *= scale[columns]  # back to the column's units
        values = _numbers(_take(X_sub, columns))
        draws[g] = _NumericDraw(values - residual, residual)
    return fit.alpha, draws


def _design_columns(design, kinds) -> list[list[int]]:
    """The design's output columns of each input column."""
    if not hasattr(design, "output_indices_"):  # a StandardScaler: one to one
        return [[j] for j in range(len(kinds))]
    numeric = [j for j, kind in enumerate(kinds) if kind == "numeric"]
    categorical = [j for j, kind in enumerate(kinds) if kind == "categorical"]
    where = [[] for _ in kinds]
    start = design.output_indices_["numeric"].start
    for k, j in enumerate(numeric):
        where[j] = [start + k]
    start = design.output_indices_["categorical"].start
    encoder = design.named_transformers_["categorical"]
    for j, categories in zip(categorical, encoder.categories_):
        where[j] = list(range(start, start + len(categories)))
        start += len(categories)
    return where


def _numeric_scale(design, kinds) -> np.ndarray:
    """Each numeric column's standard deviation on the fitting rows (as the
    scaler divides by it; 1 elsewhere)."""
    scaler = design
    if hasattr(design, "named_transformers_"):
        scaler = design.named_transformers_["numeric"]
    scale = np.ones(len(kinds))
    scale[[j for j, kind in enumerate(kinds) if kind == "numeric"]] = scaler.scale_
    return scale


@cache
def _blas_threads() -> ThreadpoolController:
    """One controller per process: finding the libraries reads /proc (ms)."""
    return ThreadpoolController()


def _fit_group(columns, kinds, X_fit, X_sub, imputer, categorical_imputer, seed):
    others = np.setdiff1d(np.arange(len(kinds)), columns)
    categorical = kinds[columns[0]] == "categorical"
    if len(others) == 0:  # nothing to condition on: the marginal distribution
        model = DummyClassifier(strategy="prior") if categorical else DummyRegressor()
    else:
        model = make_pipeline(
            _design([kinds[j] for j in others]),
            _seeded(clone(categorical_imputer if categorical else imputer), seed),
        )
    X_fit_others, X_sub_others = _take(X_fit, others), _take(X_sub, others)
    if categorical:
        target = np.asarray(_take(X_fit, columns)).ravel()
        if len(np.unique(target.astype(str))) < 2:
            # A constant column (one level, an always-True flag): every draw
            # is that value, as a numeric constant's draw is its own value;
            # a classifier would refuse one class.
            model = DummyClassifier(strategy="prior")
        model.fit(X_fit_others, target)
        proba = np.asarray(model.predict_proba(X_sub_others), dtype=float)
        return _CategoricalDraw(
            np.cumsum(proba, axis=1), np.asarray(model.classes_, dtype=object), seed
        )
    target = _numbers(_take(X_fit, columns))
    model.fit(X_fit_others, target[:, 0] if target.shape[1] == 1 else target)
    prediction = np.asarray(model.predict(X_sub_others), dtype=float)
    prediction = prediction.reshape(len(prediction), len(columns))
    return _NumericDraw(prediction, _numbers(_take(X_sub, columns)) - prediction)


def _design(kinds: list[str]):
    """The other columns as the conditional model sees them."""
    numeric = [k for k, kind in enumerate(kinds) if kind == "numeric"]
    categorical = [k for k, kind in enumerate(kinds) if kind == "categorical"]
    if not categorical:
        return StandardScaler()
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [("numeric", StandardScaler(), numeric), ("categorical", encoder, categorical)]
    )


def _seeded(estimator, seed: int):
    """``estimator`` with every unset ``random_state`` (nested ones too) set."""
    unset = {
        key: seed
        for key, value in estimator.get_params().items()
        if key.endswith("random_state") and value is None
    }
    return estimator.set_params(**unset) if unset else estimator


def _take(X, columns):
    return X.iloc[:, columns] if hasattr(X, "iloc") else X[:, columns]


def _numbers(X) -> np.ndarray:
    return np.asarray(X, dtype=float).reshape(len(X), -1)
