"""Importance as scikit-learn feature selection: a meta-estimator and a selector.

Both are thin adapters over the method functions: they resolve ``method``
through the one registry (``_methods``), fit the inner estimator, measure
importance and expose it the way scikit-learn's selection tools expect.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.feature_selection import SelectFromModel, SelectorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_scalar, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._methods import DEFAULT_METHOD, REGISTRY, RUN_PARAMETERS, resolve_methods
from ._stats import check_alpha
from ._validation import check_positive_int

__all__ = ["ImportanceEstimator", "ImportanceSelector"]


def _inner_has(name: str):
    """available_if check: the (fitted or unfitted) inner estimator has ``name``."""

    def check(self):
        inner = getattr(self, "estimator_", self.estimator)
        getattr(inner, name)  # raises AttributeError, which hides the method
        return True

    return check


class ImportanceEstimator(MetaEstimatorMixin, BaseEstimator):
    """Wrap an estimator so that it exposes ``feature_importances_``.

    ``fit`` fits a clone of ``estimator``, then measures the importance of every
    input column with ``method``. With ``feature_importances_`` in place,
    :class:`~sklearn.feature_selection.SelectFromModel`,
    :class:`~sklearn.feature_selection.RFE` and
    :class:`~sklearn.feature_selection.RFECV` work with Keras models.
    ``predict``, ``predict_proba``, ``decision_function``, ``score`` and
    ``classes_`` are delegated to the fitted estimator; tags follow it.

    **Which data?** By default the importances are measured on the training
    data, which shows what the model relies on (and can overrate features it
    overfits). Set ``validation_fraction`` to hold out a (stratified, for
    classifiers) part of the data: the estimator is then fitted on the rest and
    the importances are measured on the held-out rows.

    Parameters
    ----------
    estimator : estimator
        The model: a Keras wrapper, a Pipeline ending in one, or any estimator
        (for the methods that need no Keras model, such as permutation
        importance).
    method : str, default="permutation"
        Any registered method (``skimportance --help`` lists them). Every
        method reports on X's own columns (``columns="raw"``), whatever the
        preprocessing makes of them; weight methods refuse one-hot encoded
        columns. A method that fits models of its own (conditional
        importance) fits them on the rows the estimator is fitted on.
    method_params : dict, default=None
        Further keyword arguments for the method function, e.g.
        ``{"baseline": "mean"}``. A key the method does not take fails at
        ``fit``, before any training.
    validation_fraction : float, default=None
        Fraction of rows held out for measuring importance; None uses the
        training data.
    random_state : int, RandomState or None, default=None
        Seeds the held-out split and, unless ``method_params`` sets one, the
        method's random draws (deterministic methods ignore it).
    n_repeats, scoring, n_jobs, batch_size : default=None
        Passed to the method (None: its default); an error for a method that
        does not take it.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone.
    importances_ : ImportanceResult
        The full result.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Mean importances made non-negative for selection: negative permutation
        importances (no better than noise) become 0; signed methods (those
        whose spec says ``signed``) use their magnitude.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.feature_selection import SelectFromModel
    >>> from sklearn.linear_model import Ridge
    >>> from skimportance import ImportanceEstimator
    >>> X, y = make_friedman1(n_samples=200, random_state=0)
    >>> ranked = ImportanceEstimator(Ridge(), random_state=0).fit(X, y)
    >>> ranked.feature_importances_.shape
    (10,)
    >>> selector = SelectFromModel(ImportanceEstimator(Ridge(), random_state=0))
    >>> selector.fit(X, y).transform(X).shape[1] < 10
    True
    """

    def __init__(
        self,
        estimator,
        *,
        method: str = DEFAULT_METHOD,
        method_params: dict | None = None,
        validation_fraction: float | None = None,
        random_state=None,
        n_repeats: int | None = None,
        scoring=None,
        n_jobs: int | None = None,
        batch_size: int | None = None,
    ):
        self.estimator = estimator
        self.method = method
        self.method_params = method_params
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_repeats = n_repeats
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.batch_size = batch_size

    def fit(self, X, y=None, **fit_params):
        """Fit a clone of ``estimator`` and measure its feature importances."""
        call = _method_call(self)  # before training
        call.check_estimator(self.estimator)
        X_fit, y_fit, X_eval, y_eval = _split_for_importance(
            self.estimator, X, y, self.validation_fraction, self.random_state
        )
        self.estimator_ = clone(self.estimator).fit(X_fit, y_fit, **fit_params)
        validate_data(self, X, reset=True, skip_check_array=True)
        # A method's own models (conditional importance's) learn from the
        # rows the estimator learnt from, as in cross_validate_importance.
        call = call.with_training_data(X_fit)
        self._measure(call, X_eval, y_eval, getattr(self, "n_features_in_", None))
        return self

    def _measure(self, call, X, y, n_columns: int | None) -> None:
        result = call.single(self.estimator_, X, y, who=type(self).__name__)
        if n_columns is not None and result.n_features != n_columns:
            raise ValueError(
                f"Method {self.method!r} measured {result.n_features} model inputs "
                f"but X has {n_columns} columns: the preprocessing changes the "
                "columns, and a selector selects X's own. Leave columns='raw' (the "
                "default), which reports one importance per column of X."
            )
        self.importances_ = result
        self.feature_importances_ = call.spec.selection_scores(result.importances_mean)

    # -- delegation ------------------------------------------------------------
    @available_if(_inner_has("predict"))
    def predict(self, X, **params):
        check_is_fitted(self)
        return self.estimator_.predict(X, **params)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X, **params):
        check_is_fitted(self)
        return self.estimator_.predict_proba(X, **params)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X):
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_inner_has("score"))
    def score(self, X, y=None, **params):
        check_is_fitted(self)
        return self.estimator_.score(X, y, **params)

    @property
    def classes_(self):
        check_is_fitted(self)
        return self.estimator_.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "feature_importances_")

    def __sklearn_tags__(self):
        tags = copy.deepcopy(get_tags(self.estimator))
        tags.requires_fit = True
        tags.input_tags.sparse = False  # the importance methods take dense X
        return tags


class ImportanceSelector(SelectorMixin, MetaEstimatorMixin, BaseEstimator):
    """Keep the most important features, for use inside a Pipeline.

    A :class:`~sklearn.feature_selection.SelectorMixin` transformer: ``fit``
    measures importances as :class:`ImportanceEstimator` does, then keeps the
    features chosen by ``threshold``/``max_features`` with scikit-learn's
    :class:`~sklearn.feature_selection.SelectFromModel` rules. Its parameters
    tune in ``GridSearchCV`` (e.g. ``select__max_features``); it supports
    ``get_feature_names_out`` and ``set_output(transform="pandas")``.

    Parameters
    ----------
    estimator : estimator
        The model whose importances rank the features.
    method : str, default="permutation"
        Any registered method; see :class:`ImportanceEstimator`.
    threshold : str or float, default=None
        As in ``SelectFromModel``: a number, ``"mean"``, ``"median"`` or e.g.
        ``"1.5*mean"``. None means ``"mean"`` when ``max_features`` is None,
        and no threshold (exactly ``max_features`` features) otherwise.
        Or by p-values, for methods that test their importances (those that
        record per-row loss differences, like permutation importance):
        ``"fdr:0.05"`` keeps the
        features selected at false discovery rate 0.05 by Benjamini-Hochberg
        (:meth:`ImportanceResult.fdr`), ``"pvalue:0.01"`` those with p-value
        below 0.01 (:meth:`ImportanceResult.pvalues`). p-values are only
        valid on rows the model did not learn from: use
        ``validation_fraction`` (or ``prefit=True`` with held-out rows).
    max_features : int, default=None
        Keep at most this many features.
    method_params : dict, default=None
        Extra keyword arguments for the method function.
    prefit : bool, default=False
        ``estimator`` is already fitted: ``fit(X, y)`` only measures importance
        on ``X, y`` (pass held-out data). Not for use inside cross-validation,
        which clones (and so unfits) the estimator.
    validation_fraction : float, default=None
        See :class:`ImportanceEstimator` (ignored with ``prefit=True``).
    random_state : int, RandomState or None, default=None
        Seeds the held-out split and the method's random draws.
    n_repeats, scoring, n_jobs, batch_size : default=None
        Passed to the method, as in :class:`ImportanceEstimator`.

    Attributes
    ----------
    importance_estimator_ : ImportanceEstimator
        The fitted meta-estimator holding the model and its importances.
    importances_ : ImportanceResult
        The full importance result.
    feature_importances_ : ndarray of shape (n_features_in_,)
        The non-negative scores used to select.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.linear_model import Ridge
    >>> from skimportance import ImportanceSelector
    >>> X, y = make_friedman1(n_samples=200, random_state=0)
    >>> selector = ImportanceSelector(Ridge(), max_features=4, random_state=0)
    >>> selector.fit_transform(X, y).shape
    (200, 4)
    """

    def __init__(
        self,
        estimator,
        *,
        method: str = DEFAULT_METHOD,
        threshold=None,
        max_features: int | None = None,
        method_params: dict | None = None,
        prefit: bool = False,
        validation_fraction: float | None = None,
        random_state=None,
        n_repeats: int | None = None,
        scoring=None,
        n_jobs: int | None = None,
        batch_size: int | None = None,
    ):
        self.estimator = estimator
        self.method = method
        self.threshold = threshold
        self.max_features = max_features
        self.method_params = method_params
        self.prefit = prefit
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_repeats = n_repeats
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.batch_size = batch_size

    def fit(self, X, y=None, **fit_params):
        """Measure importances and choose the features to keep."""
        validate_data(self, X, reset=True, skip_check_array=True)
        self._check_max_features()
        by_pvalue = _pvalue_rule(self.threshold, _method_call(self))
        measurer = ImportanceEstimator(
            self.estimator,
            method=self.method,
            method_params=self.method_params,
            validation_fraction=None if self.prefit else self.validation_fraction,
            **_run_params(self),
        )
        if self.prefit:
            call = _method_call(self)
            check_is_fitted(self.estimator)
            measurer.estimator_ = self.estimator
            measurer._measure(call, X, y, getattr(self, "n_features_in_", None))
            measurer.n_features_in_ = self.n_features_in_
        else:
            measurer.fit(X, y, **fit_params)
        self.importance_estimator_ = measurer
        self.importances_ = measurer.importances_
        self.feature_importances_ = measurer.feature_importances_
        if by_pvalue is not None:
            self.support_ = self._significant(*by_pvalue)
            return self
        threshold = self.threshold
        if threshold is None:
            threshold = "mean" if self.max_features is None else -np.inf
        rule = SelectFromModel(
            measurer, threshold=threshold, max_features=self.max_features, prefit=True
        )
        self.support_ = rule.get_support()
        return self

    def _significant(self, test: str, alpha: float) -> np.ndarray:
        """The features whose p-values pass, the most important first if
        ``max_features`` keeps fewer."""
        if test == "fdr":
            passed = self.importances_.fdr(alpha)["selected"].to_numpy()
        else:
            passed = (self.importances_.pvalues() < alpha).to_numpy()
        if self.max_features is not None:
            order = np.argsort(-self.feature_importances_, kind="stable")
            ranked = [j for j in order if passed[j]][: self.max_features]
            passed = np.isin(np.arange(len(passed)), ranked)
        return passed

    def _check_max_features(self) -> None:
        if self.max_features is None:
            return
        # A bool is no count: max_features=True would silently keep 1 feature.
        check_positive_int("max_features", self.max_features)
        check_scalar(
            self.max_features,
            "max_features",
            numbers.Integral,
            max_val=self.n_features_in_,
        )

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        spec = REGISTRY.get(self.method)  # an unknown name fails in fit
        tags.target_tags.required = spec is None or spec.needs_y
        return tags


def _pvalue_rule(threshold, call) -> tuple[str, float] | None:
    """("fdr" or "pvalue", alpha) for a p-value threshold; None for the
    thresholds SelectFromModel reads. Checked before any training."""
    if not isinstance(threshold, str):
        return None
    test, colon, value = threshold.partition(":")
    if not colon or test.strip() not in ("fdr", "pvalue"):
        return None
    try:
        alpha = check_alpha(float(value))
    except ValueError:
        raise ValueError(
            f"threshold={threshold!r}: give the level after the colon, a number "
            "in (0, 1), e.g. 'fdr:0.05' or 'pvalue:0.01'."
        ) from None
    if not call.spec.tested:
        raise ValueError(
            f"threshold={threshold!r} selects by p-values, which method "
            f"{call.name!r} does not give; use a method that tests its "
            f"importances: {', '.join(n for n, s in REGISTRY.items() if s.tested)}."
        )
    return test.strip(), alpha


def _run_params(meta) -> dict:
    return {name: getattr(meta, name) for name in RUN_PARAMETERS}


def _method_call(meta):
    """The one checked call of ``meta.method`` (raises before any training)."""
    (call,) = resolve_methods(
        meta.method,
        meta.method_params,
        run_params=_run_params(meta),
        adapter_uses=("random_state",),  # it also seeds the held-out split
        single_metric=type(meta).__name__,
    )
    return call


def _split_for_importance(estimator, X, y, fraction, random_state):
    """(X_fit, y_fit, X_eval, y_eval): all data twice, or a held-out split."""
    if fraction is None:
        return X, y, X, y
    if not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}.")
    stratify = y if (y is not None and is_classifier(estimator)) else None
    if y is None:
        X_fit, X_eval = train_test_split(
            X, test_size=fraction, random_state=random_state
        )
        return X_fit, None, X_eval, None
    X_fit, X_eval, y_fit, y_eval = train_test_split(
        X, y, test_size=fraction, random_state=random_state, stratify=stratify
    )
    return X_fit, y_fit, X_eval, y_eval
