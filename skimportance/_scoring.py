"""Score cached predictions through scikit-learn's own scorers.

The fast Keras paths compute many predictions in one batched forward pass and
then need the score of each slice of rows. Rather than re-implementing any
metric, we hand scikit-learn's scorer a :class:`CachedEstimator`: a tiny
stand-in that looks like the user's estimator to the scorer (same tags, so
``is_classifier`` holds; the same ``classes_``; exactly the same response
methods) but answers ``predict``/``predict_proba``/``decision_function`` from
the network output already computed for those rows.

The stand-in only answers from the cache when it is asked about the very
object it was built for (``X is self.X``). A custom scorer that predicts on
anything else (a copy, a subset) is served by the real estimator, so results
stay correct whatever the scorer does, only slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from inspect import getattr_static
from typing import Any

import numpy as np
from sklearn import get_config
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if

from ._compat import loaded_module

__all__ = ["CacheMiss", "CachedEstimator", "ScoringContext", "call_scorer"]

#: Methods a scorer may call on an estimator; the stand-in offers those the
#: real estimator offers, and no others.
_ESTIMATOR_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score",
)


class CacheMiss(LookupError):
    """A strict stand-in was asked for something its cache cannot answer."""


def call_scorer(scorer, estimator, X, y, sample_weight=None):
    """Call ``scorer`` the way scikit-learn's permutation importance does.

    ``sample_weight`` is passed only when given, so scorers without a
    ``sample_weight`` parameter keep working.
    """
    if sample_weight is not None:
        return scorer(estimator, X, y, sample_weight=sample_weight)
    return scorer(estimator, X, y)


@dataclass(frozen=True)
class ScoringContext:
    """What every stand-in for one estimator shares, computed once.

    Build it with :meth:`from_located`.
    """

    estimator: Any
    located: Any
    tags: Any
    classes: Any
    offered: frozenset  # methods the estimator has
    cached: frozenset  # those the located model can answer from raw output
    final_score: Any  # callable(predictions, y, sample_weight) or None

    @classmethod
    def from_located(cls, located) -> ScoringContext:
        estimator = located.estimator
        try:
            tags = get_tags(estimator)
        except (AttributeError, TypeError):  # e.g. a bare keras.Model
            tags = None
        offered = frozenset(m for m in _ESTIMATOR_METHODS if hasattr(estimator, m))
        return cls(
            estimator=estimator,
            located=located,
            tags=tags,
            # Pipeline.classes_ raises AttributeError for a regressor.
            classes=getattr(estimator, "classes_", None),
            offered=offered,
            cached=frozenset(located.response_methods),
            final_score=_final_score_function(located) if "score" in offered else None,
        )

    def stand_in(self, X, raw, *, strict: bool = False) -> CachedEstimator:
        """A stand-in answering for rows ``X`` whose network output is ``raw``."""
        return CachedEstimator(self, X, raw, strict=strict)


def _offers(method: str):
    return lambda self: method in self.context.offered


class CachedEstimator:
    """Stand-in for a fitted estimator whose predictions on ``X`` are known.

    Parameters
    ----------
    context : ScoringContext
        The real estimator, its located Keras model, tags and classes.
    X : array-like
        The rows the cached output belongs to. Calls with this very object are
        answered from the cache; any other input goes to the real estimator.
    raw : ndarray
        Raw network output for ``X`` (``LocatedModel.forward``), decoded on
        demand into what each response method returns.
    strict : bool, default=False
        Raise :class:`CacheMiss` instead of calling the real estimator. The
        incremental engine hands scorers a placeholder ``X`` (it never builds
        the perturbed rows), so any question the cache cannot answer must
        come back to it rather than reach the estimator with the wrong rows.
    """

    def __init__(self, context: ScoringContext, X, raw: np.ndarray, strict=False):
        self.context = context
        self.X = X
        self.raw = raw
        self.strict = strict
        self._decoded: dict[str, np.ndarray] = {}
        if context.classes is not None:
            self.classes_ = context.classes

    def __sklearn_tags__(self):
        if self.context.tags is None:
            raise AttributeError(
                f"{type(self.context.estimator).__name__} has no scikit-learn tags."
            )
        return self.context.tags

    def _respond(self, method: str, X):
        if X is self.X and method in self.context.cached:
            decoded = self._decoded.get(method)
            if decoded is None:
                decoded = self.context.located.decode(self.raw, method)
                self._decoded[method] = decoded
            return decoded
        if self.strict:
            raise CacheMiss(method)
        return getattr(self.context.estimator, method)(X)

    # The method names matter: scikit-learn's scorers dispatch on __name__.
    @available_if(_offers("predict"))
    def predict(self, X):
        return self._respond("predict", X)

    @available_if(_offers("predict_proba"))
    def predict_proba(self, X):
        return self._respond("predict_proba", X)

    @available_if(_offers("predict_log_proba"))
    def predict_log_proba(self, X):
        return self._respond("predict_log_proba", X)

    @available_if(_offers("decision_function"))
    def decision_function(self, X):
        return self._respond("decision_function", X)

    @available_if(_offers("score"))
    def score(self, X, y=None, sample_weight=None, **params):
        # scoring=None means estimator.score: answer it from the cache when we
        # know that score method only needs predict on these rows.
        final_score = self.context.final_score
        if X is self.X and not params and final_score is not None:
            return final_score(self.predict(X), y, sample_weight)
        if self.strict:
            raise CacheMiss("score")
        if sample_weight is not None:
            params["sample_weight"] = sample_weight
        return self.context.estimator.score(X, y, **params)


# --- estimator.score from cached predictions -----------------------------------


class _RowPredictor:
    """Looks like the final estimator, but ``predict`` reads cached rows.

    Its ``X`` is a column of row numbers, so whatever rows a ``score``
    implementation selects (scikeras drops zero-weight rows) are still
    matched to the right cached predictions.
    """

    def __init__(self, final, predictions: np.ndarray):
        self._final = final
        self._predictions = predictions

    def __getattr__(self, name):
        return getattr(self._final, name)

    def predict(self, rows):
        return self._predictions[np.asarray(rows)[:, 0]]


def _row_wise_score_methods() -> tuple:
    """``score`` implementations that only call ``self.predict`` on row subsets."""
    known = [ClassifierMixin.score, RegressorMixin.score]
    scikeras = loaded_module("scikeras.wrappers")
    if scikeras is not None:
        known.append(scikeras.BaseWrapper.score)
    return tuple(known)


def _final_score_function(located):
    """Return ``f(predictions, y, sample_weight) -> estimator.score(X, y, ...)``.

    Only for estimators whose ``score`` we know to be "a metric of
    ``predict(X)``" (scikeras, scikit-learn mixins, a plain Pipeline in front
    of them); None otherwise, and the real ``score`` is called instead.
    """
    estimator, final = located.estimator, located.final
    if final is None or get_config().get("enable_metadata_routing", False):
        return None
    # getattr_static: the descriptors themselves (Pipeline.score is wrapped by
    # available_if, which builds a new function on every attribute access).
    if isinstance(estimator, Pipeline) and getattr_static(
        type(estimator), "score", None
    ) is not getattr_static(Pipeline, "score"):
        return None
    score = getattr_static(type(final), "score", None)
    if not any(score is known for known in _row_wise_score_methods()):
        return None

    def final_score(predictions, y, sample_weight):
        rows = np.arange(len(predictions))[:, np.newaxis]
        # Pipeline.score passes sample_weight on only when it is given.
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return score(_RowPredictor(final, predictions), rows, y, **kwargs)

    return final_score
