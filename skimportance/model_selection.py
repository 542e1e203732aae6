"""Importance across cross-validation folds, and importance as a grid-search score.

Both are thin adapters: methods are resolved through the one registry
(``_methods.resolve_methods``), folds are fitted by scikit-learn's own
``cross_validate`` (which brings ``params``, ``groups`` and ``error_score``),
and scores come from scikit-learn's scorers.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils.parallel import Parallel, delayed

from ._cv_result import CVImportanceResult
from ._engines.dask_backend import FoldWorkers
from ._engines.scoring import call_scorer
from ._methods import DEFAULT_METHOD, resolve_methods
from ._names import check_unique_names
from ._result import ImportanceResult

__all__ = ["cross_validate_importance", "importance_scorer"]


def cross_validate_importance(
    estimator,
    X,
    y,
    *,
    cv=5,
    method: str | list[str] = DEFAULT_METHOD,
    scoring=None,
    n_repeats: int | None = None,
    groups=None,
    n_jobs: int | None = None,
    random_state=None,
    batch_size: int | None = None,
    return_estimator: bool = False,
    method_params: dict | None = None,
    params: dict | None = None,
    error_score="raise",
) -> CVImportanceResult | dict[str, CVImportanceResult]:
    """Fit on each training fold, measure importance on its held-out fold.

    Importance measured on data the model never saw tells what it relies on to
    generalise; repeating it over folds shows how stable that is.

    Parameters
    ----------
    estimator : estimator
        Unfitted model (cloned for every fold).
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn: an int gives (stratified, for classifiers) K-fold.
    method : str or list of str, default="permutation"
        Any registered method name (see :class:`skimportance.ImportanceEstimator`).
        A list measures several methods on the same fitted folds (one fit per
        fold).
    scoring : str or callable, default=None
        The fold test score, and the score permutation importance measures the
        drop of: one metric, checked before the first fold is fitted. None
        uses ``estimator.score``.
    n_repeats : int, default=None
        Random draws per feature and fold, for the methods that take it (None:
        the method's default).
    groups : array-like, default=None
        Group labels for group-aware splitters (``GroupKFold``...).
    n_jobs : int, default=None
        Folds run in parallel through joblib, so
        ``joblib.parallel_config(backend="dask")`` runs them on a dask cluster
        (``X`` and ``y`` are sent to each worker once, and TensorFlow is
        limited to each worker's threads). The method itself runs
        sequentially within each fold. With a Keras model and joblib's
        default process backend, each worker process gives TensorFlow
        ``cpu_count // n_jobs`` threads for the fits, and the fitted folds,
        which come back to this process anyway, are measured here in threads.
    random_state : int, RandomState or None, default=None
        Seeds the methods' random draws; the seeds of all folds are drawn up
        front, so results do not depend on ``n_jobs`` or the backend.
        Deterministic methods ignore it.

        Methods that fit models of their own (``"conditional"``) fit them on
        each fold's training rows, unless ``method_params`` gives ``X_fit``.
    batch_size : int, default=None
        Rows per call of the network, for the methods that take it.
    return_estimator : bool, default=False
        Keep the fitted estimator of every fold in ``result.estimators``.
    method_params : dict, default=None
        Further keyword arguments for the method function; with a list of
        methods, a dict method name -> keyword arguments.
    params : dict, default=None
        Parameters passed to the estimator's ``fit``, as in
        :func:`sklearn.model_selection.cross_validate`.
    error_score : "raise" or float, default="raise"
        What a fold whose fit fails gets, as in scikit-learn; with a number,
        that fold's test score is this number and its importances are NaN.

    Returns
    -------
    CVImportanceResult or dict of str -> CVImportanceResult
        ``fold_results`` (one ``ImportanceResult`` per fold), ``test_scores``,
        ``n_train``/``n_test``; ``importances`` (n_features, n_folds) of
        per-fold mean importances, ``importances_mean``/``importances_std``
        across folds, ``ci(level, corrected=...)`` (with the Nadeau-Bengio
        correction), and for permutation and conditional importance
        ``pvalues()``/``fdr(alpha)`` (the Nadeau-Bengio corrected t-test
        over folds). A dict keyed by method when ``method`` is a list.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.linear_model import Ridge
    >>> from skimportance import cross_validate_importance
    >>> X, y = make_friedman1(n_samples=200, random_state=0)
    >>> result = cross_validate_importance(Ridge(), X, y, cv=3, random_state=0)
    >>> result.importances.shape
    (10, 3)
    >>> result.ranking()[0]  # Friedman #1's strongest term is 10 * x3
    'x3'
    """
    calls = resolve_methods(  # before any fit
        method,
        method_params,
        run_params={
            "n_repeats": n_repeats,
            "scoring": scoring,
            "batch_size": batch_size,
        },
        adapter_uses=("scoring",),
        single_metric="cross_validate_importance",
    )
    for call in calls:
        call.check_estimator(estimator)
    _check_error_score(error_score)
    X, y, groups = indexable(X, y, groups)
    splitter = check_cv(cv, y, classifier=is_classifier(estimator))
    scorer = check_scoring(estimator, scoring=scoring)
    with FoldWorkers(estimator, X, y, n_jobs=n_jobs) as workers:
        with workers.fitting():
            fitted = cross_validate(
                estimator,
                X,
                y,
                groups=groups,
                cv=splitter,
                scoring=scorer,
                n_jobs=n_jobs,
                params=params,
                return_estimator=True,
                return_indices=True,
                error_score=error_score,
            )
        tests = fitted["indices"]["test"]
        trains = fitted["indices"]["train"]
        seeds = check_random_state(random_state).randint(
            np.iinfo(np.int32).max, size=len(tests)
        )
        # Conditional importance fits its own models on each fold's training
        # rows, so only then do the training indices travel with the folds.
        fits = any(call.fits_on_training_data for call in calls)
        fold_trains = trains if fits else [None] * len(tests)
        # A fold's task names X, y and its rows rather than carrying a copy
        # of them.
        with workers.measuring([*tests, *(trains if fits else [])]):
            folds = Parallel(n_jobs=n_jobs)(
                delayed(_measure_fold)(
                    [call.seeded_with(int(seed)) for call in calls],
                    fold_estimator,
                    X,
                    y,
                    test,
                    train,
                    failed=not np.isfinite(score) and error_score != "raise",
                )
                for fold_estimator, train, test, seed, score in zip(
                    fitted["estimator"], fold_trains, tests, seeds, fitted["test_score"]
                )
            )
    results = {
        call.name: CVImportanceResult(
            _fill_failed_folds([fold.get(call.name) for fold in folds], call.name),
            test_scores=fitted["test_score"],
            n_train=[len(train) for train in trains],
            n_test=[len(test) for test in tests],
            estimators=list(fitted["estimator"]) if return_estimator else None,
            details={"cv": repr(splitter)},
        )
        for call in calls
    }
    return results[method] if isinstance(method, str) else results


def _check_error_score(error_score) -> None:
    if not (
        (isinstance(error_score, str) and error_score == "raise")
        or (isinstance(error_score, numbers.Real) and not isinstance(error_score, bool))
    ):
        raise ValueError(
            f"error_score must be 'raise' or a number, got {error_score!r}."
        )


def _measure_fold(calls, estimator, X, y, test, train, *, failed: bool) -> dict:
    """{method: result} on the held-out rows ``test``; empty if the fit failed.

    Calls that fit models of their own (conditional importance's) fit them on
    the fold's training rows ``train``, never on its test rows."""
    if failed:
        return {}
    if train is not None:
        X_train = _safe_indexing(X, train)
        calls = [call.with_training_data(X_train) for call in calls]
    X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
    return {
        call.name: call.single(
            estimator, X_test, y_test, who="cross_validate_importance"
        )
        for call in calls
    }


def _fill_failed_folds(fold_results: list, method: str) -> list:
    """Folds whose fit failed (None) get NaN importances on the same features."""
    measured = [result for result in fold_results if result is not None]
    if not measured:
        raise ValueError(
            f"Every fold failed to fit, so no importance ({method!r}) was measured."
        )
    template = measured[0]
    return [
        result
        if result is not None
        else ImportanceResult(
            np.full((template.n_features, 1), np.nan),
            template.feature_names,
            method=template.method,
            details={"fit_failed": True},
        )
        for result in fold_results
    ]


def importance_scorer(
    method: str = DEFAULT_METHOD,
    *,
    scoring=None,
    n_repeats: int | None = None,
    random_state=None,
    n_jobs: int | None = None,
    batch_size: int | None = None,
    method_params: dict | None = None,
    prefix: str = "importance_",
):
    """A multi-metric scorer: the score plus one importance per feature.

    Use it as ``GridSearchCV(scoring=importance_scorer(...), refit="score")``
    or in ``cross_validate(scoring=...)``: ``cv_results_`` then holds, for every
    candidate and split, ``test_score`` and ``test_importance_<feature>``.
    ``refit="score"`` (or ``refit=False``) is required because the scorer
    returns several metrics; ``best_*`` then follow the plain score.

    Parameters
    ----------
    method : str, default="permutation"
        Any registered method name (see :class:`skimportance.ImportanceEstimator`).
    scoring : str or callable, default=None
        The base score (and the score whose drop permutation measures): one
        metric, checked when the scorer is built. None uses
        ``estimator.score``.
    n_repeats : int, default=None
        Random draws per feature, for the methods that take it (None: the
        method's default).
    random_state : int or None, default=None
        Seeds the method's draws. Use an int: every call then uses the same
        draws. Deterministic methods ignore it.
    n_jobs, batch_size : int, default=None
        Passed to the method, for the methods that take them.
    method_params : dict, default=None
        Further keyword arguments for the method function.
    prefix : str, default="importance_"
        Prefix of the per-feature keys.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> dict`` with keys ``"score"`` and
        ``prefix + feature_name``. A key given twice (``prefix=""`` and a
        column named ``"score"``) raises a ValueError naming both.

    Raises
    ------
    ValueError
        When built: an unknown method or keyword, or a ``scoring`` that
        scikit-learn refuses or that names several metrics.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skimportance import importance_scorer
    >>> X, y = make_friedman1(n_samples=120, n_features=5, random_state=0)
    >>> search = GridSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, cv=3, refit="score",
    ...                       scoring=importance_scorer(random_state=0)).fit(X, y)
    >>> "mean_test_importance_x0" in search.cv_results_
    True
    """
    (call,) = resolve_methods(  # now, not mid-search
        method,
        method_params,
        run_params={
            "scoring": scoring,
            "n_repeats": n_repeats,
            "random_state": random_state,
            "n_jobs": n_jobs,
            "batch_size": batch_size,
        },
        adapter_uses=("scoring",),
        single_metric="importance_scorer",
    )
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}.")
    return _ImportanceScorer(call, scoring, prefix)


class _ImportanceScorer:
    """``scorer(estimator, X, y) -> {"score": ..., prefix + feature: ...}``."""

    def __init__(self, call, scoring, prefix: str):
        self.call = call
        self.scoring = scoring
        self.prefix = prefix

    def __call__(self, estimator, X, y=None) -> dict[str, float]:
        result = self.call.single(estimator, X, y, who="importance_scorer")
        keys = ["score", *(f"{self.prefix}{name}" for name in result.feature_names)]
        # prefix="" and a column named "score" would put that column's
        # importance where GridSearchCV reads the score it ranks by.
        check_unique_names(
            keys,
            [
                "the base score",
                *(
                    f"feature {name!r} with prefix {self.prefix!r}"
                    for name in result.feature_names
                ),
            ],
            what="importance_scorer key",
        )
        score = result.baseline_score
        if score is None:  # the method does not score; measure the score itself
            scorer = check_scoring(estimator, scoring=self.scoring)
            score = call_scorer(scorer, estimator, X, y)
        return {
            key: float(value)
            for key, value in zip(keys, [score, *result.importances_mean])
        }

    def __repr__(self) -> str:
        return f"importance_scorer({self.call.name!r})"
