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

import numbers
import warnings
from dataclasses import dataclass
from inspect import getattr_static
from typing import Any

import numpy as np
from sklearn import get_config
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if

from .._compat import loaded_module
from .head_kinds import ClassifierHeadView, check_output
from .slice_metric import scored_by

__all__ = [
    "ALL_OUTPUTS",
    "CacheMiss",
    "CachedEstimator",
    "HeadScorer",
    "MultiScorer",
    "ScoringContext",
    "call_scorer",
    "per_head_scorer",
    "warn_non_finite_scores",
]

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
    ``sample_weight`` parameter keep working. What the scorer returns is
    checked at once: a number, or a dict of numbers for several metrics, so a
    custom scorer returning anything else fails on the first (baseline) call,
    naming the scorer, instead of after every slice has been scored.

    Raises
    ------
    ValueError
        The scorer returned something else, in scikit-learn's words
        ("scoring must return a number, got ...").
    """
    if sample_weight is not None:
        score = scorer(estimator, X, y, sample_weight=sample_weight)
    else:
        score = scorer(estimator, X, y)
    if isinstance(score, dict):
        return {name: _checked_number(value, name) for name, value in score.items()}
    return _checked_number(score, _scorer_name(scorer))


def _checked_number(score, scorer_name: str):
    """``score`` as a number, or scikit-learn's error naming the scorer."""
    if hasattr(score, "item") and np.size(score) == 1:  # NumPy scalars, 0-d arrays
        score = score.item()
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise ValueError(
            f"scoring must return a number, got {score!r} ({type(score).__name__}) "
            f"instead. (scorer={scorer_name})"
        )
    return score


def warn_non_finite_scores(scorer, baseline, scores) -> None:
    """One warning, naming the scorer, when it returned NaN or infinity.

    scikit-learn's searches warn ("One or more of the test scores are
    non-finite") and go on; so do we, once per run rather than per slice, so
    that all-NaN importances never come without a word."""
    if isinstance(baseline, dict):  # several metrics: each named by its key
        named = {
            name: [baseline[name]] + [s[name] for row in scores for s in row]
            for name in baseline
        }
    else:
        named = {_scorer_name(scorer): [baseline] + [s for row in scores for s in row]}
    where = []
    for name, values in named.items():
        bad = ~np.isfinite(np.asarray(values, dtype=float))
        if bad[0]:
            where.append(f"{name} on the unperturbed rows")
        elif bad.any():
            where.append(
                f"{name} on {bad[1:].sum()} of {len(values) - 1} perturbed slices"
            )
    if where:
        warnings.warn(
            f"Non-finite scores from the scorer: {'; '.join(where)}. The "
            "importances are not finite there; check that the scorer can score "
            "these rows (e.g. r2 on a constant y, or predictions it refuses).",
            UserWarning,
            stacklevel=4,
        )


def _scorer_name(scorer) -> str:
    name = getattr(scorer, "__name__", None)
    return name if isinstance(name, str) else repr(scorer)


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

    scikeras = loaded_module("scikeras.wrappers")
    if scikeras is not None and score is scikeras.BaseWrapper.score:
        return _ScikerasScore(final)

    return _MixinScore(final, score)


class _MixinScore:
    """A scikit-learn mixin's ``score`` (accuracy, R^2) on cached predictions."""

    def __init__(self, final, score):
        self.final = final
        self.score = score

    def __call__(self, predictions, y, sample_weight):
        rows = np.arange(len(predictions))[:, np.newaxis]
        # Pipeline.score passes sample_weight on only when it is given.
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return self.score(_RowPredictor(self.final, predictions), rows, y, **kwargs)

    def slice_metric(self, y, sample_weight):
        """RegressorMixin.score as one call for many slices (``slice_metric``)."""
        if self.score is not RegressorMixin.score:
            return None
        return scored_by(r2_score, y, sample_weight, {})


class _ScikerasScore:
    """scikeras's ``BaseWrapper.score`` from cached predictions, its steps
    that depend only on ``y`` and ``sample_weight`` done once per run.

    Every slice of a run is scored against the same ``y``: validating it,
    dropping the zero-weight rows and routing the score parameters again for
    each slice cost more than the metric (a third of a 2000 x 20 x 5 run).
    The steps are scikeras's own, in its order; only the metric runs per
    slice. A new ``y`` or ``sample_weight`` object starts over.
    """

    def __init__(self, final):
        self.final = final
        self._prepared = None

    def __call__(self, predictions, y, sample_weight):
        _, _, y_valid, rows, weight, score_args = self._prepared_for(
            y, sample_weight, len(predictions)
        )
        return self.final.scorer(
            y_valid, predictions[rows], sample_weight=weight, **score_args
        )

    def slice_metric(self, y, sample_weight):
        """KerasRegressor's ``score`` as one call for many slices
        (``slice_metric``); None for any other wrapper, or an overridden
        ``scorer``."""
        from scikeras.wrappers import KerasRegressor

        scorer = getattr_static(type(self.final), "scorer", None)
        if scorer is not getattr_static(KerasRegressor, "scorer"):
            return None
        n_rows = len(y)
        _, _, y_valid, rows, weight, score_args = self._prepared_for(
            y, sample_weight, n_rows
        )
        dropped = len(rows) != n_rows
        return scored_by(
            r2_score, y_valid, weight, score_args, rows=rows if dropped else None
        )

    def _prepared_for(self, y, sample_weight, n_rows: int):
        prepared = self._prepared
        if prepared is None or prepared[0] is not y or prepared[1] is not sample_weight:
            prepared = self._prepare(y, sample_weight, n_rows)
        return prepared

    def _prepare(self, y, sample_weight, n_rows: int):
        from scikeras._utils import route_params

        final = self.final
        _, y_valid = final._validate_data(X=None, y=y)
        rows, weight = np.arange(n_rows), None
        if sample_weight is not None:
            rows, y_valid, weight = final._validate_sample_weight(
                X=rows, y=y_valid, sample_weight=sample_weight
            )
        score_args = route_params(
            final.get_params(), destination="score", pass_filter=set()
        )
        self._prepared = (y, sample_weight, y_valid, rows, weight, score_args)
        return self._prepared


# --- several output heads: one score per head, plus all of them ------------------


class _HeadView:
    """The estimator seen through the output columns of one head."""

    def __init__(self, estimator, columns: np.ndarray):
        self.estimator = estimator
        self.columns = columns

    def __sklearn_tags__(self):
        return get_tags(self.estimator)

    def predict(self, X):
        predictions = np.asarray(self.estimator.predict(X))
        predictions = predictions.reshape(len(predictions), -1)[:, self.columns]
        return predictions[:, 0] if len(self.columns) == 1 else predictions


class HeadScorer:
    """``scorer`` on one head: its columns of the prediction and of y."""

    def __init__(self, scorer, columns: np.ndarray, classes=None):
        self.scorer = scorer
        self.columns = columns
        self.classes = classes  # a binary head's two classes: seen as a classifier

    def __call__(self, estimator, X, y, sample_weight=None):
        y = np.asarray(y)
        y = y.reshape(len(y), -1)[:, self.columns]
        y = y[:, 0] if len(self.columns) == 1 else y
        if self.classes is None:
            view = _HeadView(estimator, self.columns)
        else:
            view = ClassifierHeadView(estimator, self.columns, self.classes)
        return call_scorer(self.scorer, view, X, y, sample_weight)


class MultiScorer:
    """Several named scorers called as one: ``{name: score}``."""

    def __init__(self, scorers: dict):
        self.scorers = scorers

    def __call__(self, estimator, X, y, sample_weight=None):
        return {
            name: call_scorer(scorer, estimator, X, y, sample_weight)
            for name, scorer in self.scorers.items()
        }


#: The key of the score over every output head together.
ALL_OUTPUTS = "all outputs"


def per_head_scorer(
    layout, scorer, y, head_scorer=None, classes=None, output=None
) -> MultiScorer:
    """One score per output head (named after the head, or after y's column
    when each head has one unit and y is a DataFrame), plus ``"all outputs"``;
    only the head ``output`` when given.

    ``scorer`` scores all outputs together; ``head_scorer`` (default:
    ``scorer``) each head, as a regressor's ``score`` would (R^2) when the
    user gave no scoring. ``classes``: {head index: classes} of the heads a
    scorer sees as binary classifiers (``head_kinds``).

    Raises
    ------
    ValueError
        y does not have one column per output unit.
    """
    n_units = layout.n_outputs
    if y is None or np.ndim(y) != 2 or np.shape(y)[1] != n_units:
        raise ValueError(
            f"The model has {len(layout.outputs)} output heads with {n_units} units "
            f"in all; y must have one column per unit, got shape {np.shape(y)}."
        )
    names = [head.name for head in layout.outputs]
    columns = getattr(y, "columns", None)
    if columns is not None and all(head.width == 1 for head in layout.outputs):
        names = [str(c) for c in columns]
    if ALL_OUTPUTS in names or len(set(names)) != len(names):
        raise ValueError(
            f"Output names must be distinct from each other and from "
            f"{ALL_OUTPUTS!r}; got {names}."
        )
    each = head_scorer or scorer
    classes = classes or {}
    heads = {
        name: HeadScorer(each, layout.head_columns(k), classes.get(k))
        for k, name in enumerate(names)
    }
    if output is not None:
        chosen = check_output(output, names)
        return MultiScorer({chosen: heads[chosen]})
    if getattr(each, "_response_method", "predict") != "predict":
        # probabilities or decision values: the heads that are not binary
        # classifiers, and all outputs together, have none
        others = [name for k, name in enumerate(names) if k not in classes]
        raise ValueError(
            f"This scorer needs class probabilities or decision values, which "
            f"output heads {others} do not give (and neither do all heads "
            f"together); choose a binary head with output= (one of "
            f"{[names[k] for k in classes] or names})."
        )
    return MultiScorer({**heads, ALL_OUTPUTS: scorer})
