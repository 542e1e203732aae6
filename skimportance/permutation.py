"""Permutation importance: scikit-learn's numbers, batched for Keras models.

Two engines consume ONE permutation plan (:func:`draw_permutation_plan`):

* the Keras engine, when a Keras model is inside the estimator, builds the
  permuted rows of many (feature, repeat) slices at once, pushes each chunk
  through the preprocessing and one batched forward pass, and scores every
  slice through scikit-learn's own scorer with a cached-prediction stand-in;
* the generic engine, for any other estimator, permutes and calls the
  estimator itself, in parallel over features, exactly like scikit-learn.

Because the plan reproduces scikit-learn's random draws, both engines return
the numbers ``sklearn.inspection.permutation_importance`` returns for the same
``random_state``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn import config_context
from sklearn.metrics import check_scoring
from sklearn.utils import _safe_indexing, check_array, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.random import sample_without_replacement
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._budget import MAX_ROWS_PER_CALL, rows_within_budget
from ._groups import resolve_feature_groups
from ._model import feature_names_of, has_keras_model, locate_keras_model
from ._result import ImportanceResult
from ._scoring import ScoringContext, call_scorer
from ._validation import check_model_input, check_positive_int

__all__ = ["PermutationPlan", "draw_permutation_plan", "permutation_importance"]


def permutation_importance(
    estimator,
    X,
    y,
    *,
    scoring=None,
    n_repeats: int = 5,
    n_jobs: int | None = None,
    random_state=None,
    sample_weight=None,
    max_samples: float | int = 1.0,
    feature_groups=None,
    batch_size: int | None = None,
    verbose: int = 0,
) -> ImportanceResult | dict[str, ImportanceResult]:
    """Permutation importance, a drop-in for scikit-learn's, fast for Keras.

    The importance of a feature is how much the score drops when that column
    of ``X`` is shuffled. Same arguments and same numbers as
    :func:`sklearn.inspection.permutation_importance` for the same
    ``random_state`` (to float32 rounding when a Keras model is inside). When
    a Keras model is inside ``estimator`` (a Keras wrapper or a Pipeline
    ending in one), all permuted rows go through the network in large batches
    instead of one ``predict`` call per feature and repeat.

    Parameters
    ----------
    estimator : object
        A fitted estimator: a Keras wrapper (ours, scikeras's or
        ``keras.wrappers``), a Pipeline ending in one, or any fitted
        scikit-learn estimator.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        Data to compute the importances on, as the estimator takes it: for a
        Pipeline, the raw columns are permuted, before any preprocessing.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        Targets (None for unsupervised scorers).
    scoring : str, callable, list, tuple, dict or None, default=None
        As in scikit-learn: None uses ``estimator.score``; a list, tuple, dict
        or a callable returning a dict gives several metrics at once.
    n_repeats : int, default=5
        Number of times each feature (or group) is permuted.
    n_jobs : int or None, default=None
        Parallel jobs, through joblib (so ``joblib.parallel_config`` applies).
        The generic engine runs features in parallel, the Keras engine scores
        chunks in worker threads while the next forward pass runs.
    random_state : int, RandomState instance or None, default=None
        Controls the permutations, exactly as in scikit-learn.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights used in scoring.
    max_samples : int or float, default=1.0
        Rows drawn (without replacement) from ``X`` for the permuted scores:
        an int is a count, a float a fraction of ``n_samples``. The baseline
        score always uses all of ``X``, as in scikit-learn.
    feature_groups : list of lists, dict or None, default=None
        Columns to permute together, with one shared row permutation per group
        (so one-hot rows stay valid): a list of lists of column positions or
        names, or a dict group name -> columns. Only the listed columns are
        evaluated. Groups of one column reproduce the ungrouped result.
    batch_size : int or None, default=None
        Keras engine only: the most rows fed to the network in one call. None
        lets the memory budget decide. Memory is bounded by scikit-learn's
        ``working_memory`` (``sklearn.set_config``): the permuted rows are
        built in chunks that fit it, each holding whole (feature, repeat)
        slices, so at least one permuted copy of ``X``.
    verbose : int, default=0
        Show a progress bar when > 0.

    Returns
    -------
    ImportanceResult or dict of str -> ImportanceResult
        ``importances`` of shape (n_features or n_groups, n_repeats),
        ``importances_mean``, ``importances_std``, ``feature_names`` and
        ``baseline_score``; ``details["engine"]`` says which engine ran. For
        several metrics, a dict keyed like scikit-learn's.

    Raises
    ------
    ValueError
        Bad ``n_repeats``/``max_samples``/``batch_size``, X with NaN going into
        a Keras model, X with the wrong number of columns, y or sample_weight
        of the wrong length, bad ``feature_groups``. Raised before any data
        reaches the network.
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.

    See Also
    --------
    sklearn.inspection.permutation_importance : The reference implementation.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import from_keras, permutation_importance
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, use_bias=False)])
    >>> model.set_weights([np.array([[2.0], [1.0], [0.0]])])
    >>> reg = from_keras(model, task="regression")
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> y = X @ np.array([2.0, 1.0, 0.0])
    >>> result = permutation_importance(reg, X, y, n_repeats=3, random_state=0)
    >>> result.ranking().tolist()
    ['x0', 'x1', 'x2']
    >>> grouped = permutation_importance(reg, X, y, random_state=0,
    ...                                  feature_groups={"x0 and x1": [0, 1]})
    >>> grouped.feature_names.tolist()
    ['x0 and x1']
    """
    n_repeats = check_positive_int("n_repeats", n_repeats)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if not hasattr(X, "iloc"):  # as scikit-learn: DataFrames pass untouched
        X = check_array(X, ensure_all_finite="allow-nan", dtype=None)
    n_samples, n_columns = X.shape
    n_rows = _rows_used(max_samples, n_samples)

    located = locate_keras_model(estimator) if has_keras_model(estimator) else None
    if located is None:
        check_is_fitted(estimator)
    elif located.kind == "keras_model":
        raise TypeError(
            "permutation_importance scores a scikit-learn estimator, got a bare "
            f"{type(estimator).__name__}; wrap it first with "
            "skimportance.from_keras(model, task='regression' or 'classification')."
        )
    _check_n_columns(estimator, n_columns)
    if y is not None:
        check_consistent_length(X, y)
    if sample_weight is not None:
        check_consistent_length(X, sample_weight)

    column_names = feature_names_of(estimator, X, n_columns)
    groups, names = resolve_feature_groups(feature_groups, column_names)
    scorer = check_scoring(estimator, scoring=scoring)
    plan = draw_permutation_plan(random_state, n_samples, n_rows, n_repeats)

    with _progress(len(groups) * n_repeats, verbose) as bar:
        if located is not None:
            baseline, scores = _keras_scores(
                located,
                X,
                y,
                sample_weight,
                plan,
                groups,
                scorer,
                batch_size,
                n_jobs,
                bar,
            )
        else:
            baseline, scores = _generic_scores(
                estimator, X, y, sample_weight, plan, groups, scorer, n_jobs, bar
            )

    details = {"engine": "generic" if located is None else "keras", "n_samples": n_rows}
    if feature_groups is not None:
        details["feature_groups"] = {
            name: [str(c) for c in column_names[cols]]
            for name, cols in zip(names, groups)
        }
    return _results(baseline, scores, names, details)


# --- the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class PermutationPlan:
    """Every random draw of a permutation importance run, made up front.

    Attributes
    ----------
    rows : ndarray of int or None
        Rows of X the permuted scores use (``max_samples``); None for all.
    permutations : ndarray of int, shape (n_repeats, n_rows)
        Repeat ``r`` replaces the permuted column(s) of ``X[rows]`` by
        ``X[rows][permutations[r]]``.
    """

    rows: np.ndarray | None
    permutations: np.ndarray

    @property
    def n_repeats(self) -> int:
        return self.permutations.shape[0]

    @property
    def n_rows(self) -> int:
        return self.permutations.shape[1]


def draw_permutation_plan(
    random_state, n_samples: int, n_rows: int, n_repeats: int
) -> PermutationPlan:
    """Draw scikit-learn's permutations for every feature and repeat.

    ``sklearn.inspection.permutation_importance`` draws ONE seed from
    ``random_state`` and gives every column a fresh ``RandomState(seed)``;
    each then draws the ``max_samples`` rows and shuffles a running index
    array once per repeat, permuting the already permuted column again. So all
    columns see the same draws, and one plan serves every feature and group.
    """
    random_state = check_random_state(random_state)
    seed = random_state.randint(np.iinfo(np.int32).max + 1)
    column_rng = np.random.RandomState(seed)
    rows = None
    if n_rows < n_samples:
        rows = sample_without_replacement(n_samples, n_rows, random_state=column_rng)
    shuffling = np.arange(n_rows)
    current = np.arange(n_rows)
    permutations = np.empty((n_repeats, n_rows), dtype=np.intp)
    for repeat in range(n_repeats):
        column_rng.shuffle(shuffling)
        current = current[shuffling]  # scikit-learn permutes the permuted column
        permutations[repeat] = current
    return PermutationPlan(rows, permutations)


def _subsample(plan: PermutationPlan, *arrays):
    if plan.rows is None:
        return arrays
    return tuple(
        None if a is None else _safe_indexing(a, plan.rows, axis=0) for a in arrays
    )


# --- the Keras engine -------------------------------------------------------------


def _keras_scores(
    located, X, y, sample_weight, plan, groups, scorer, batch_size, n_jobs, bar
):
    context = ScoringContext.from_located(located)
    X_model = check_model_input(located, X, caller="permutation_importance")
    raw = located.forward(X_model, batch_size=batch_size)
    baseline = call_scorer(scorer, context.stand_in(X, raw), X, y, sample_weight)

    X_sub, y_sub, weight_sub = _subsample(plan, X, y, sample_weight)
    n_rows = plan.n_rows
    slices = [(g, r) for g in range(len(groups)) for r in range(plan.n_repeats)]
    per_chunk = max(1, _chunk_rows(X, X_model) // n_rows)  # whole slices only
    del X_model, raw

    def chunk_tasks():
        # Runs lazily, as joblib asks for work: at most a few chunks exist at once.
        for start in range(0, len(slices), per_chunk):
            chunk = slices[start : start + per_chunk]
            X_chunk = _permuted_rows(X_sub, plan.permutations, groups, chunk)
            raw_chunk = located.forward(_model_rows(located, X_chunk), batch_size)
            yield delayed(_score_chunk)(
                context,
                scorer,
                X_chunk,
                raw_chunk,
                len(chunk),
                n_rows,
                y_sub,
                weight_sub,
            )

    # Threads: scoring is light, and the stand-ins hold the model.
    parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
    scores = []
    for chunk_scores in parallel(chunk_tasks()):
        scores.extend(chunk_scores)
        bar.update(len(chunk_scores))
    return baseline, _as_grid(scores, len(groups), plan.n_repeats)


def _permuted_rows(X_sub, permutations, groups, chunk):
    """Rows of several (group, repeat) slices stacked: copies of ``X_sub``, each
    with its group's columns permuted. Only these rows are materialised."""
    n_rows = len(permutations[0])
    if hasattr(X_sub, "iloc"):
        return _permuted_frame(X_sub, permutations, groups, chunk)
    out = np.tile(X_sub, (len(chunk), 1))
    for s, (group, repeat) in enumerate(chunk):
        columns = groups[group]
        out[s * n_rows : (s + 1) * n_rows, columns] = X_sub[
            np.ix_(permutations[repeat], columns)
        ]
    return out


def _permuted_frame(X_sub, permutations, groups, chunk):
    import pandas as pd

    n_rows = len(permutations[0])
    positions = np.tile(np.arange(n_rows), len(chunk))
    rows_of = {}  # column -> the row each output row takes that column from
    for s, (group, repeat) in enumerate(chunk):
        for column in groups[group]:
            take = rows_of.setdefault(column, positions.copy())
            take[s * n_rows : (s + 1) * n_rows] = permutations[repeat]
    # Column by column through .array keeps every dtype (categorical included)
    # and builds the frame in one go instead of fragmenting it.
    data = {
        j: X_sub.iloc[:, j].array.take(rows_of.get(j, positions))
        for j in range(X_sub.shape[1])
    }
    frame = pd.DataFrame(data, index=X_sub.index[positions], copy=False)
    frame.columns = X_sub.columns
    return frame


def _model_rows(located, X) -> np.ndarray:
    """The rows the network takes; dense, as the batched forward pass needs."""
    X_model = located.to_model_input(X)
    # A sparse matrix (e.g. from a one-hot encoder in a Pipeline) is densified
    # here, chunk by chunk, which the chunk size already accounts for.
    return X_model.toarray() if hasattr(X_model, "toarray") else X_model


def _score_chunk(context, scorer, X_chunk, raw, n_slices, n_rows, y, sample_weight):
    scores = []
    # The baseline call already ran the scorer with full parameter validation
    # on the same y, sample_weight and prediction shapes; repeating it for every
    # slice costs more than the metric itself. Data checks (NaN, shapes) stay on.
    with config_context(skip_parameter_validation=True):
        for s in range(n_slices):
            rows = slice(s * n_rows, (s + 1) * n_rows)
            X_slice = X_chunk.iloc[rows] if hasattr(X_chunk, "iloc") else X_chunk[rows]
            stand_in = context.stand_in(X_slice, raw[rows])
            scores.append(call_scorer(scorer, stand_in, X_slice, y, sample_weight))
    return scores


def _chunk_rows(X, X_model) -> int:
    """Permuted rows per chunk: two chunks (one scored while the next is
    built) of raw rows and their preprocessed copies fit the memory budget.
    One-hot encoding in a Pipeline can make the model rows the wider ones."""
    bytes_per_row = 8 * (X.shape[1] + X_model.shape[1])  # as float64
    return rows_within_budget(bytes_per_row, share=0.5, max_rows=MAX_ROWS_PER_CALL)


# --- the generic engine -----------------------------------------------------------


def _generic_scores(estimator, X, y, sample_weight, plan, groups, scorer, n_jobs, bar):
    baseline = call_scorer(scorer, estimator, X, y, sample_weight)
    X_sub, y_sub, weight_sub = _subsample(plan, X, y, sample_weight)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    scores = []
    tasks = (
        delayed(_group_scores)(
            estimator, scorer, X_sub, y_sub, weight_sub, columns, plan.permutations
        )
        for columns in groups
    )
    for group_scores in parallel(tasks):
        scores.extend(group_scores)
        bar.update(len(group_scores))
    return baseline, _as_grid(scores, len(groups), plan.n_repeats)


def _group_scores(estimator, scorer, X_sub, y, sample_weight, columns, permutations):
    # A private copy: X_sub may be shared between threads or a read-only memmap.
    X_permuted = X_sub.copy()
    scores = []
    for permutation in permutations:
        if hasattr(X_permuted, "iloc"):
            for j in columns:
                X_permuted.isetitem(j, X_sub.iloc[:, j].array.take(permutation))
        else:
            X_permuted[:, columns] = X_sub[np.ix_(permutation, columns)]
        scores.append(call_scorer(scorer, estimator, X_permuted, y, sample_weight))
    return scores


# --- results ----------------------------------------------------------------------


def _as_grid(scores: list, n_groups: int, n_repeats: int) -> list[list]:
    return [scores[g * n_repeats : (g + 1) * n_repeats] for g in range(n_groups)]


def _results(baseline, scores, names, details):
    if isinstance(baseline, dict):  # several metrics, keyed like scikit-learn
        return {
            metric: _result(
                baseline[metric],
                [[score[metric] for score in row] for row in scores],
                names,
                details,
            )
            for metric in baseline
        }
    return _result(baseline, scores, names, details)


def _result(baseline, scores, names, details):
    importances = baseline - np.asarray(scores, dtype=float)
    return ImportanceResult(
        importances,
        names,
        method="permutation",
        baseline_score=float(baseline),
        details=dict(details),
    )


def _progress(total: int, verbose: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc="permutation importance", unit="perm", disable=not verbose
    )


# --- validation -------------------------------------------------------------------


def _rows_used(max_samples, n_samples: int) -> int:
    """Rows per permuted score, computed as scikit-learn does."""
    if isinstance(max_samples, bool) or not isinstance(max_samples, numbers.Real):
        raise TypeError(f"max_samples must be an int or a float, got {max_samples!r}.")
    if isinstance(max_samples, numbers.Integral):
        if not 1 <= max_samples <= n_samples:
            raise ValueError(
                f"max_samples must be in [1, n_samples={n_samples}] when an int, "
                f"got {max_samples}."
            )
        return int(max_samples)
    if not 0 < max_samples <= 1:
        raise ValueError(
            f"max_samples must be in (0, 1] when a float, got {max_samples}."
        )
    n_rows = int(max_samples * n_samples)
    if n_rows < 1:
        raise ValueError(
            f"max_samples={max_samples} of {n_samples} rows leaves no row to score."
        )
    return n_rows


def _check_n_columns(estimator, n_columns: int) -> None:
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and n_columns != expected:
        raise ValueError(
            f"X has {n_columns} features, but {type(estimator).__name__} was "
            f"fitted with {expected} features."
        )
