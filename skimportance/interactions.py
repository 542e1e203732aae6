"""Interactions: when one variable changes the importance of another.

Two measures of how much a pair of features acts together rather than each
on its own:

* ``method="h2"``, Friedman & Popescu's (2008) H-statistic, from centred
  partial dependence evaluated at the data points. It needs no y. The grids
  behind it are ``n * n`` rows per feature and per pair, built by
  ``_engines.pd_grid``: exactly, or as rank-1 and rank-2 updates of a Keras
  network's first Dense layer where the network and the preprocessing allow.
* ``method="permutation"``, the joint-permutation excess: the loss increase
  when both features are permuted (independently), minus the two single
  increases, from per-row losses; tested two-sided across rows
  (``_pair_permutation``).

With many features the cost is quadratic in their number, so pairs are
*screened*: only the pairs among the ``max_features`` strongest features are
evaluated (by total H², or by permutation importance).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.random import sample_without_replacement

from ._engines.keras_engine import ALGORITHMS
from ._engines.network_split import IncrementalUnavailable
from ._engines.pd_grid import (
    ExactGrid,
    GenericGrid,
    grid_means,
    incremental_grid,
)
from ._engines.run import prepare_run
from ._interaction_inputs import (
    check_finite,
    check_n_rows,
    check_not_constant,
    default_limit,
    resolve_features,
    response_and_targets,
    sort_pairs,
)
from ._interaction_result import InteractionResult
from ._validation import check_choice, check_model_input, check_positive_int
from .permutation import JOINT_PERMUTATION

__all__ = ["interaction_importance"]

#: ``method=`` of :func:`interaction_importance`.
METHODS = ("h2", JOINT_PERMUTATION)


#: Default rows of the H-statistic: each grid has n * n rows.
DEFAULT_H2_ROWS = 300


def interaction_importance(
    estimator,
    X,
    y=None,
    *,
    method: str = "h2",
    features=None,
    max_features: int | None = None,
    max_samples: float | int | None = None,
    n_repeats: int = 5,
    random_state=None,
    scoring=None,
    n_jobs: int | None = None,
    batch_size: int | None = None,
    feature_groups=None,
    algorithm: str = "auto",
    output=None,
    loss="auto",
    verbose: int = 0,
) -> InteractionResult | dict[str, InteractionResult]:
    """Pairwise feature interactions of a fitted estimator, strongest first.

    Parameters
    ----------
    estimator : object
        A fitted estimator: a Keras wrapper, a Pipeline ending in one, or any
        fitted scikit-learn estimator.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        Rows to measure on, as the estimator takes them (raw columns for a
        Pipeline). Held-out rows for ``"permutation"``'s p-values.
    y : array-like or None, default=None
        Targets: needed by ``"permutation"``, refused by ``"h2"`` (which
        needs none).
    method : {"h2", "permutation"}, default="h2"
        ``"h2"``: Friedman & Popescu's H², pairwise
        ``sum_i (PD_jk - PD_j - PD_k)^2 / sum_i PD_jk^2`` over the rows, with
        centred partial dependences, plus the unnormalised ``h`` (the square
        root of the numerator, Inglis et al. 2022; H² inflates for pairs with
        tiny effects, so pairs are ranked by ``h``) and each feature's total H²
        ``sum_i (f - PD_j - PD_-j)^2 / sum_i f^2``. For classifiers, on the
        predicted probabilities (the positive class for binary ones); several
        response columns add up. ``"permutation"``: the score drop when
        both features are permuted, each with its own permutation, minus the
        two single drops; signed (a product interaction gives a negative
        excess: permuting one feature already breaks it) and tested
        two-sided across rows.
    features : list of features, list of pairs, or None, default=None
        Features (names or positions; group names with ``feature_groups``)
        whose pairs to evaluate, or explicit (a, b) pairs. None: every
        feature, screened by ``max_features``.
    max_features : int or None, default=None
        Keep only the pairs of the ``max_features`` features with the highest
        total H² (``"h2"``) or permutation importance (``"permutation"``).
        None: all pairs up to 20 features, else the top 20, since the cost
        grows with the square of the number of features.
    max_samples : int, float or None, default=None
        Rows used (drawn without replacement with ``random_state``): a count
        or a fraction. None: ``"h2"`` uses at most 300 rows (its cost is
        quadratic in rows), ``"permutation"`` all rows.
    n_repeats : int, default=5
        ``"permutation"``: repeats of each permutation.
    random_state : int, RandomState instance or None, default=None
        Controls the row subsample and the permutations. The single-feature
        permutations are those of :func:`skimportance.permutation_importance`
        for the same ``random_state``.
    scoring : str, callable or None, default=None
        ``"permutation"``: the score, as in scikit-learn.
    n_jobs : int or None, default=None
        Parallel jobs through joblib.
    batch_size : int or None, default=None
        The most rows per forward pass; None lets ``working_memory`` decide.
    feature_groups : list of lists, dict or None, default=None
        Columns that form one feature (one-hot blocks, named groups), as in
        :func:`skimportance.permutation_importance`.
    algorithm : {"auto", "exact", "incremental"}, default="auto"
        ``"h2"`` with a Keras network: ``"incremental"`` computes the first
        Dense layer once and each grid as rank-1/rank-2 updates of it (no
        preprocessing, no first layer per grid row); it needs a first Dense
        layer and column-separable preprocessing, else raises a ValueError
        saying why. ``"auto"`` uses it where it applies. ``"permutation"``
        runs its single features on the chosen engine and its pairs on the
        exact one. ``details["algorithm"]`` says which ran.
    output : int, str or None, default=None
        ``"h2"``: the response column (class label, position or output head)
        to explain; None explains the positive class of a binary classifier,
        else every column together, and each head apart (a dict of results)
        for a network with several output heads.
    loss : str, callable or None, default="auto"
        ``"permutation"``: the pointwise loss whose per-row excess is tested
        (see :func:`skimportance.permutation_importance`); None gives no
        p-values.
    verbose : int, default=0
        Show a progress bar when > 0.

    Returns
    -------
    InteractionResult or dict of str -> InteractionResult
        A dict for several output heads or metrics.

    Raises
    ------
    ValueError
        Before any forward pass: an unknown method, a y given to ``"h2"`` or
        missing for ``"permutation"``, a feature named twice or unknown in
        ``features``, ``max_features < 1``, fewer than 2 rows, X with NaN or
        infinity, a constant feature (it cannot interact: its partial
        dependence is flat and H² is 0/0), fewer than 2 features.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import PolynomialFeatures
    >>> from sklearn.linear_model import LinearRegression
    >>> from skimportance import interaction_importance
    >>> X = np.random.RandomState(0).uniform(-1, 1, size=(100, 3))
    >>> y = X[:, 0] * X[:, 1] + X[:, 2]
    >>> model = make_pipeline(PolynomialFeatures(2), LinearRegression()).fit(X, y)
    >>> result = interaction_importance(model, X, max_samples=50, random_state=0)
    >>> result.top(1)
    [('x0', 'x1')]
    >>> bool(result.pairs["interaction"].iloc[1:].max() < 1e-6)  # additive pairs
    True
    >>> excess = interaction_importance(model, X, y, method="permutation",
    ...                                 random_state=0)
    >>> top = excess.pairs.iloc[0]
    >>> top["feature_a"], top["feature_b"], bool(top["interaction"] < 0)
    ('x0', 'x1', True)
    """
    method = check_choice("method", method, METHODS)
    algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
    if method == "h2" and y is not None:
        raise ValueError(
            "method='h2' measures interactions of the fitted function from X "
            "alone and takes no y; pass y=None (or use method='permutation')."
        )
    if method == JOINT_PERMUTATION and y is None:
        raise ValueError(
            "method='permutation' compares losses, so it needs y, the targets of X."
        )
    if max_features is not None:
        max_features = check_positive_int("max_features", max_features)
    if method == JOINT_PERMUTATION:
        from ._pair_permutation import pair_permutation

        return pair_permutation(
            estimator,
            X,
            y,
            features=features,
            max_features=max_features,
            max_samples=1.0 if max_samples is None else max_samples,
            n_repeats=n_repeats,
            random_state=random_state,
            scoring=scoring,
            n_jobs=n_jobs,
            batch_size=batch_size,
            feature_groups=feature_groups,
            algorithm=algorithm,
            output=output,
            loss=loss,
            verbose=verbose,
        )
    check_n_rows(X)
    n_samples = len(X)
    if max_samples is None:
        max_samples = min(n_samples, DEFAULT_H2_ROWS)
    run = prepare_run(
        estimator,
        X,
        None,
        caller="interaction_importance",
        max_samples=max_samples,
        feature_groups=feature_groups,
        scored=False,
    )
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    check_finite(run.X, run.column_names, estimator)
    candidates, pairs = resolve_features(features, run.names)
    rng = check_random_state(random_state)
    X_sub = run.X
    if run.n_rows < n_samples:
        rows = sample_without_replacement(n_samples, run.n_rows, random_state=rng)
        X_sub = _safe_indexing(run.X, rows, axis=0)
    check_n_rows(X_sub, "rows used (max_samples)")
    involved = sorted(set(candidates) | {f for pair in pairs for f in pair})
    check_not_constant(X_sub, run.groups, run.names, involved)
    if run.located is not None:
        check_model_input(run.located, X_sub, caller="interaction_importance")
    response, targets = response_and_targets(run, output)
    return _h2(
        run,
        X_sub,
        candidates,
        pairs,
        max_features,
        response,
        targets,
        algorithm,
        batch_size,
        n_jobs,
        verbose,
    )


# --- the H-statistic -----------------------------------------------------------------


def _h2(
    run,
    X_sub,
    candidates,
    pairs,
    max_features,
    response,
    targets,
    algorithm,
    batch_size,
    n_jobs,
    verbose,
):
    from tqdm.auto import tqdm

    details = {"n_samples": len(X_sub), "engine": run.engine}
    engine = _GridEngine(run, X_sub, response, algorithm, batch_size, details)
    n = len(X_sub)
    singles = sorted(set(candidates) | {f for pair in pairs for f in pair})
    with tqdm(desc="interactions", unit="slice", disable=not verbose) as bar:
        bar.total = n * len(singles)
        single = dict(zip(singles, engine.means([(f,) for f in singles], n_jobs, bar)))
        totals = {t: _total_h2(single, singles, columns) for t, columns in targets}
        if not pairs:
            kept = candidates
            limit = default_limit(len(candidates), max_features)
            if limit < len(candidates):
                # Screened on the first target's total H² (all heads share X);
                # its denominator is common to every feature, so it ranks as
                # the unnormalised total does.
                first = totals[targets[0][0]]
                order = np.argsort(
                    -first[[singles.index(f) for f in candidates]], kind="stable"
                )
                kept = sorted(candidates[i] for i in order[:limit])
                details["screened_from"] = len(candidates)
            pairs = [(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :]]
        bar.total += n * len(pairs)
        joint = engine.means(pairs, n_jobs, bar)
    shown = sorted({f for pair in pairs for f in pair})
    results = {}
    for name, columns in targets:
        frame = _pairs_frame(run.names, pairs, single, joint, columns)
        total = _total_series(run.names, singles, totals[name], shown)
        results[name] = InteractionResult(
            frame, "h2", run.names[shown], total=total, details=dict(details)
        )
    return results[None] if None in results else results


class _GridEngine:
    """The grid engine of a run: incremental where it applies (and allowed)."""

    def __init__(self, run, X_sub, response, algorithm, batch_size, details):
        self.run, self.details = run, details
        located = run.located
        self.incremental = None
        if located is None:
            if algorithm == "incremental":
                raise ValueError(
                    "algorithm='incremental' does not apply: it needs a Keras model "
                    f"inside the estimator, got {type(run.estimator).__name__}."
                )
            self.exact = lambda sets: GenericGrid(run.estimator, response, X_sub, sets)
            details["algorithm"] = "exact"
            return
        self.exact = lambda sets: ExactGrid(located, response, X_sub, sets, batch_size)
        details["algorithm"] = "exact"
        if algorithm == "exact":
            return
        try:
            self.incremental = incremental_grid(
                located, response, X_sub, run.groups, batch_size
            )
            details["algorithm"] = "incremental"
        except IncrementalUnavailable as exc:
            if algorithm == "incremental":
                raise ValueError(
                    f"algorithm='incremental' does not apply: {exc}."
                ) from exc
            details["incremental_unavailable"] = str(exc)

    def means(self, sets, n_jobs, bar):
        """:class:`GridMeans` of each set (a tuple of feature positions)."""
        if not sets:
            return []
        if self.incremental is not None:
            grid = self.incremental.with_sets(sets)
        else:
            groups = self.run.groups
            grid = self.exact([np.concatenate([groups[f] for f in s]) for s in sets])
        return grid_means(grid, len(sets), n_jobs=n_jobs, bar=bar)


def _centred(values, columns):
    values = values[:, columns]
    return values - values.mean(axis=0)


def _total_h2(single, singles, columns) -> np.ndarray:
    """Each feature's total H²: sum (f - PD_j - PD_-j)^2 / sum f^2, centred."""
    out = np.empty(len(singles))
    for k, f in enumerate(singles):
        means = single[f]
        whole = _centred(means.diagonal, columns)
        rest = whole - _centred(means.rows, columns) - _centred(means.columns, columns)
        out[k] = _ratio(np.sum(rest**2), np.sum(whole**2))
    return out


def _ratio(numerator, denominator) -> float:
    # A flat function (the model ignores the features) has nothing to
    # interact: 0, not 0/0.
    return float(numerator / denominator) if denominator > 0 else 0.0


def _pairs_frame(names, pairs, single, joint, columns):
    import pandas as pd

    rows = []
    for (a, b), means in zip(pairs, joint):
        both = _centred(means.rows, columns)
        rest = (
            both - _centred(single[a].rows, columns) - _centred(single[b].rows, columns)
        )
        numerator = float(np.sum(rest**2))
        rows.append(
            (names[a], names[b], _ratio(numerator, np.sum(both**2)), np.sqrt(numerator))
        )
    frame = pd.DataFrame(rows, columns=["feature_a", "feature_b", "interaction", "h"])
    frame["std"] = np.nan
    frame["pvalue"] = np.nan
    # Strongest first by h: H² is a share of the pair's own joint effect,
    # so a pair of inputs the model barely uses can reach a large H² from a
    # tiny, noisy numerator (Inglis et al. 2022); h measures the interaction
    # itself, on the prediction's scale.
    return sort_pairs(
        frame[["feature_a", "feature_b", "interaction", "std", "pvalue", "h"]], by="h"
    )


def _total_series(names, singles, values, shown):
    import pandas as pd

    series = pd.Series(
        values, index=pd.Index(names[singles], name="feature"), name="h2"
    )
    series = series[[names[f] for f in shown]]
    return series.sort_values(ascending=False, kind="stable")
