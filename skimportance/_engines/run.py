"""A perturbation run: its checked inputs, and the engine that scores it.

A run scores the estimator on ``X`` (the baseline), then on copies of ``X``
in which one group of columns at a time has been replaced, once per repeat,
and reports the drop. What replaces the columns is a *perturbation*: for
permutation importance the same columns of other rows (a shuffle), for
conditional importance a prediction from the other columns plus shuffled
residuals. Every random draw is made up front in one ``plan.PermutationPlan``,
which both engines consume:

* the Keras engine (``keras_engine``), when a Keras model is inside the
  estimator, scores many (group, repeat) slices per chunk: exactly (their
  perturbed rows through the preprocessing and batched forward passes) or
  incrementally (a rank-k update of the first Dense layer, then the rest of
  the network), every slice through scikit-learn's own scorer with a
  cached-prediction stand-in;
* the generic engine (``generic_engine``), for any other estimator, perturbs
  and calls the estimator itself, in parallel over groups, exactly like
  scikit-learn.

So the two engines give equal numbers on the same plan, and the plan
reproduces scikit-learn's draws. Both return an ``engine_scores.EngineScores``:
the baseline, the scores of every slice, and, asked for a pointwise loss
(``row_loss``), each row's loss difference averaged over the repeats,
computed from the predictions they already have (``_stats`` turns them into
p-values); with what the engine chose in its ``details``, which
:meth:`PerturbationRun.results` reports. This module checks the inputs
(:func:`prepare_run`), picks the engine and builds the results.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import check_scoring, get_scorer
from sklearn.utils import check_array
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from .._budget import check_bookkeeping
from .._columns import column_map
from .._compat import check_parameters_as_sklearn
from .._model import feature_names_of, has_keras_model, locate_keras_model
from .._names import column_sources
from .._result import ImportanceResult
from .._validation import check_choice, check_positive_int
from .engine_scores import EngineScores
from .generic_engine import generic_scores
from .groups import cluster_feature_groups, resolve_feature_groups
from .keras_engine import ALGORITHMS, keras_scores
from .plan import check_plan_size
from .scoring import per_head_scorer

__all__ = [
    "ALGORITHMS",
    "PerturbationRun",
    "RunSettings",
    "prepare_permutation_run",
    "prepare_run",
]


# --- one run: checked inputs ------------------------------------------------------


@dataclass(frozen=True)
class PerturbationRun:
    """The checked inputs of a run, shared by the methods built on the engines.

    Build it with :func:`prepare_run`.
    """

    caller: str
    estimator: Any
    located: Any  # LocatedModel, or None for the generic engine
    X: Any
    y: Any
    sample_weight: Any
    column_names: np.ndarray
    groups: list[np.ndarray]
    names: np.ndarray
    scorer: Any
    n_rows: int
    grouped: bool
    clustering: dict | None = None  # feature_groups="auto": the dendrogram

    @property
    def engine(self) -> str:
        return "generic" if self.located is None else "keras"

    def scores(
        self,
        plan,
        perturbation,
        *,
        batch_size,
        n_jobs,
        verbose,
        desc,
        row_loss=None,
        algorithm: str = "auto",
    ) -> EngineScores:
        """The run's :class:`EngineScores`, from the engine that fits it.

        ``algorithm`` picks the Keras engine's: ``"exact"`` (a forward pass
        over every perturbed row), ``"incremental"`` (rank-k updates of the
        first Dense layer, see ``incremental``) or ``"auto"`` (incremental
        where it applies and its FLOP estimate is clearly lower).

        The loss differences, shape (n_groups, n_rows), are each row's
        ``row_loss`` (a ``_inference.PointwiseLoss``) averaged over the
        repeats minus its unperturbed loss; None without ``row_loss`` or y.
        """
        from tqdm.auto import tqdm

        if self.y is None:
            row_loss = None  # nothing to compare predictions with
        engine = generic_scores if self.located is None else keras_scores
        total = len(self.groups) * plan.n_repeats
        with tqdm(total=total, desc=desc, unit="slice", disable=not verbose) as bar:
            return engine(
                self,
                plan,
                perturbation,
                batch_size=batch_size,
                n_jobs=n_jobs,
                bar=bar,
                row_loss=row_loss,
                algorithm=algorithm,
            )

    def results(self, scored: EngineScores, method: str, details: dict):
        """One ImportanceResult, or a dict of them for several metrics."""
        details = {
            "engine": self.engine,
            "n_samples": self.n_rows,
            **scored.details,
            **details,
        }
        if self.grouped:
            details["feature_groups"] = {
                name: [str(c) for c in self.column_names[cols]]
                for name, cols in zip(self.names, self.groups)
            }
        if self.clustering is not None:
            details["clustering"] = self.clustering
        baseline, scores = scored.baseline, scored.scores
        differences = scored.loss_differences
        if isinstance(baseline, dict):  # several metrics, keyed like scikit-learn
            return {
                metric: _result(
                    baseline[metric],
                    [[score[metric] for score in row] for row in scores],
                    self.names,
                    method,
                    details,
                    differences,
                )
                for metric in baseline
            }
        return _result(baseline, scores, self.names, method, details, differences)


class RunSettings(NamedTuple):
    """A permutation-like run's size and engine settings, checked."""

    n_repeats: int
    batch_size: int | None
    algorithm: str


def prepare_permutation_run(
    estimator,
    X,
    y,
    *,
    caller: str,
    scoring,
    n_repeats,
    n_jobs,
    random_state,
    sample_weight,
    max_samples,
    feature_groups,
    cluster_threshold,
    batch_size,
    algorithm,
) -> tuple[PerturbationRun, RunSettings]:
    """What permutation and conditional importance check before any work.

    The parameters they share with scikit-learn's permutation importance are
    checked first, by scikit-learn's own constraints and in its words (the
    one is a drop-in for it); then the sizes, the engine, and the run itself
    (:func:`prepare_run`).
    """
    check_parameters_as_sklearn(
        sklearn_permutation_importance,
        {
            "scoring": scoring,
            "n_repeats": n_repeats,
            "n_jobs": n_jobs,
            "random_state": random_state,
            "max_samples": max_samples,
        },
        caller=caller,
    )
    n_repeats, batch_size = check_run_sizes(n_repeats, batch_size)
    algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
    run = prepare_run(
        estimator,
        X,
        y,
        caller=caller,
        scoring=scoring,
        sample_weight=sample_weight,
        max_samples=max_samples,
        feature_groups=feature_groups,
        cluster_threshold=cluster_threshold,
    )
    # The run's bookkeeping, refused before any work (conditional importance
    # fits its models first): the plan, and per slice its score (a float and
    # its list slot) and its importance.
    check_plan_size(run.n_rows, n_repeats)
    check_bookkeeping("n_repeats", n_repeats, 48 * len(run.groups) * n_repeats)
    return run, RunSettings(n_repeats, batch_size, algorithm)


def prepare_run(
    estimator,
    X,
    y,
    *,
    caller: str,
    scoring=None,
    sample_weight=None,
    max_samples=1.0,
    feature_groups=None,
    cluster_threshold=0.7,
) -> PerturbationRun:
    """Check everything a run needs, before any data reaches a model.

    An N-D X (sequences for a model with one N-D input) is flattened, each
    feature of the input (a channel, a timestep, a mask's label; see
    ``from_keras(feature_axis=...)``) becoming a group of flat columns.
    ``feature_groups="inputs"`` groups X's columns by the model input they
    feed; ``feature_groups="auto"`` clusters them on their correlation
    (``groups.cluster_feature_groups``, at ``cluster_threshold``). A model
    with several output heads is scored per head and overall.

    Raises
    ------
    ValueError, TypeError, NotFittedError
        Bad ``max_samples``, X with the wrong number of columns, y or
        sample_weight of the wrong length, bad ``feature_groups``, an
        unfitted estimator, a bare ``keras.Model``.
    """
    located = locate_keras_model(estimator) if has_keras_model(estimator) else None
    nd = located is not None and located.nd_shape is not None and np.ndim(X) > 2
    if nd:
        X = _flat_sequences(X, located)
    elif not hasattr(X, "iloc"):  # as scikit-learn: DataFrames pass untouched
        X = check_array(X, ensure_all_finite="allow-nan", dtype=None)
    n_samples, n_columns = X.shape
    n_rows = rows_used(max_samples, n_samples)

    if located is None:
        check_is_fitted(estimator)
    elif located.kind == "keras_model":
        raise TypeError(
            f"{caller} scores a scikit-learn estimator, got a bare "
            f"{type(estimator).__name__}; wrap it first with "
            "skimportance.from_keras(model, task='regression' or 'classification')."
        )
    if not nd:
        _check_n_columns(estimator, n_columns)
    # In the order scikit-learn's metrics list them: y, predictions, weights.
    check_consistent_length(*(a for a in (y, X, sample_weight) if a is not None))

    clustering = None
    if nd:
        column_names, groups, names = _nd_groups(located, feature_groups)
    else:
        column_names = feature_names_of(estimator, X, n_columns)
        if isinstance(feature_groups, str) and feature_groups == "inputs":
            feature_groups = _input_groups(located)
        elif isinstance(feature_groups, str) and feature_groups == "auto":
            feature_groups, clustering = cluster_feature_groups(
                X, column_names, cluster_threshold
            )
        groups, names = resolve_feature_groups(
            feature_groups, column_names, column_sources(X, n_columns)
        )
    scorer = check_scoring(estimator, scoring=scoring)
    if located is not None and len(located.layout.outputs) > 1:
        if isinstance(scoring, (list, tuple, set, dict)):
            raise ValueError(
                "A model with several output heads is scored per head with one "
                f"metric; pass a single scoring metric, not {scoring!r}."
            )
        # Each head scored as the (regressor's) estimator.score would: R^2.
        head = scorer if scoring is not None else get_scorer("r2")
        scorer = per_head_scorer(located.layout, scorer, y, head_scorer=head)
    return PerturbationRun(
        caller=caller,
        estimator=estimator,
        located=located,
        X=X,
        y=y,
        sample_weight=sample_weight,
        column_names=column_names,
        groups=groups,
        names=names,
        scorer=scorer,
        n_rows=n_rows,
        grouped=feature_groups is not None,
        clustering=clustering,
    )


def _flat_sequences(X, located) -> np.ndarray:
    """N-D rows (n, *input shape) as flat rows (n, prod(shape))."""
    X = np.asarray(X)
    if X.shape[1:] != located.nd_shape:
        raise ValueError(
            f"X has rows of shape {X.shape[1:]}, but the Keras model takes rows of "
            f"shape {located.nd_shape}."
        )
    return X.reshape(len(X), -1)


def _nd_groups(located, feature_groups):
    """(flat column names, groups of flat columns, names) for N-D features."""
    mapping = column_map(located)
    if feature_groups is None:
        return mapping.model_names, list(mapping.blocks), mapping.raw_names
    chosen, names = resolve_feature_groups(feature_groups, mapping.raw_names)
    groups = [np.concatenate([mapping.blocks[f] for f in group]) for group in chosen]
    return mapping.model_names, groups, names


def _input_groups(located) -> dict:
    """``feature_groups="inputs"``: X's columns grouped by the input they feed."""
    mapped = getattr(located.final, "input_columns_", None) if located else None
    if mapped is None:
        raise ValueError(
            "feature_groups='inputs' groups X's columns by the model input they "
            "feed; it needs a model with several inputs wrapped with "
            "from_keras(model, task=..., inputs={...}) or a wrapper given inputs=."
        )
    return mapped


def check_run_sizes(n_repeats, batch_size) -> tuple[int, int | None]:
    """``n_repeats`` and ``batch_size`` checked (counts of at least one)."""
    n_repeats = check_positive_int("n_repeats", n_repeats)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    return n_repeats, batch_size


# --- results ----------------------------------------------------------------------


def _result(baseline, scores, names, method, details, loss_differences=None):
    importances = baseline - np.asarray(scores, dtype=float)
    return ImportanceResult(
        importances,
        names,
        method=method,
        baseline_score=float(baseline),
        details=dict(details),
        loss_differences=loss_differences,
    )


# --- validation -------------------------------------------------------------------


def rows_used(max_samples, n_samples: int) -> int:
    """Rows per perturbed score, computed as scikit-learn does."""
    if isinstance(max_samples, bool) or not isinstance(max_samples, numbers.Real):
        raise TypeError(f"max_samples must be an int or a float, got {max_samples!r}.")
    if isinstance(max_samples, numbers.Integral):
        if max_samples < 1:
            raise ValueError(
                f"max_samples must be in [1, n_samples={n_samples}] when an int, "
                f"got {max_samples}."
            )
        if max_samples > n_samples:  # scikit-learn's words, for the drop-in
            raise ValueError("max_samples must be <= n_samples")
        return int(max_samples)
    if not 0 < max_samples <= 1:
        raise ValueError(
            f"max_samples must be in (0, 1] when a float, got {max_samples}."
        )
    n_rows = int(max_samples * n_samples)
    if n_rows < 1:  # scikit-learn's estimator refuses the empty rows in these words
        raise ValueError(
            "Found array with 0 sample(s) while a minimum of 1 is required: "
            f"max_samples={max_samples} of {n_samples} rows leaves no row to score."
        )
    return n_rows


def _check_n_columns(estimator, n_columns: int) -> None:
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and n_columns != expected:
        raise ValueError(  # scikit-learn's words
            f"X has {n_columns} features, but {type(estimator).__name__} is "
            f"expecting {expected} features as input."
        )
