"""The perturbation engines shared by permutation-style importance methods.

A run scores the estimator on ``X`` (the baseline), then on copies of ``X``
in which one group of columns at a time has been replaced, once per repeat,
and reports the drop. What replaces the columns is a *perturbation*: for
permutation importance the same columns of other rows (a shuffle), for
conditional importance a prediction from the other columns plus shuffled
residuals. Every random draw is made up front in one :class:`PermutationPlan`,
which both engines consume:

* the Keras engine, when a Keras model is inside the estimator, builds the
  perturbed rows of many (group, repeat) slices at once, pushes each chunk
  through the preprocessing and batched forward passes, and scores every
  slice through scikit-learn's own scorer with a cached-prediction stand-in;
* the generic engine, for any other estimator, perturbs and calls the
  estimator itself, in parallel over groups, exactly like scikit-learn.

So the two engines give equal numbers on the same plan, and the plan
reproduces scikit-learn's draws.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sklearn import config_context
from sklearn.metrics import check_scoring
from sklearn.utils import _safe_indexing, check_array, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.random import sample_without_replacement
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._budget import MAX_ROWS_PER_CALL, check_within_budget, rows_within_budget
from ._distributed import dask_client_for_chunks, run_on_dask
from ._groups import resolve_feature_groups
from ._incremental import AUTO_FLOP_RATIO, IncrementalUnavailable, plan_incremental
from ._model import feature_names_of, has_keras_model, locate_keras_model
from ._result import ImportanceResult
from ._scoring import ScoringContext, call_scorer
from ._validation import check_model_input, check_positive_int

__all__ = [
    "PermutationPlan",
    "Perturbation",
    "PerturbationRun",
    "ShuffledColumns",
    "draw_permutation_plan",
    "prepare_run",
]


# --- the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class PermutationPlan:
    """Every random draw of a run, made up front.

    Attributes
    ----------
    rows : ndarray of int or None
        Rows of X the perturbed scores use (``max_samples``); None for all.
    permutations : ndarray of unsigned int, shape (n_repeats, n_rows)
        Repeat ``r`` takes the perturbed column(s) of ``X[rows]`` from rows
        ``permutations[r]``, stored in the smallest unsigned type that holds a
        row number (2 bytes per index up to 65,536 rows, 4 beyond, instead of
        8). Read it through :meth:`permutation`.
    """

    rows: np.ndarray | None
    permutations: np.ndarray

    @property
    def n_repeats(self) -> int:
        return self.permutations.shape[0]

    @property
    def n_rows(self) -> int:
        return self.permutations.shape[1]

    def permutation(self, repeat: int) -> np.ndarray:
        """The row order of repeat ``repeat``, shape (n_rows,)."""
        return self.permutations[repeat]

    def subsample(self, *arrays):
        """``arrays`` restricted to the plan's rows (None stays None)."""
        if self.rows is None:
            return arrays
        return tuple(
            None if a is None else _safe_indexing(a, self.rows, axis=0) for a in arrays
        )


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
    check_plan_size(n_rows, n_repeats)
    random_state = check_random_state(random_state)
    seed = random_state.randint(np.iinfo(np.int32).max + 1)
    column_rng = np.random.RandomState(seed)
    rows = None
    if n_rows < n_samples:
        rows = sample_without_replacement(n_samples, n_rows, random_state=column_rng)
    shuffling = np.arange(n_rows)
    current = np.arange(n_rows)
    permutations = np.empty((n_repeats, n_rows), dtype=_index_dtype(n_rows))
    for repeat in range(n_repeats):
        column_rng.shuffle(shuffling)
        current = current[shuffling]  # scikit-learn permutes the permuted column
        permutations[repeat] = current
    return PermutationPlan(rows, permutations)


def check_plan_size(n_rows: int, n_repeats: int) -> None:
    """Refuse a plan that would not fit the memory budget, before drawing it."""
    nbytes = n_repeats * n_rows * np.dtype(_index_dtype(n_rows)).itemsize
    _check_bookkeeping("n_repeats", n_repeats, nbytes)


#: A run always holds this much bookkeeping (its plan, its scores), whatever
#: the budget, as the budget always allows one row of work: it governs the
#: work that grows with the data, and a tiny budget set to force small chunks
#: must not refuse the run itself.
BOOKKEEPING_FLOOR = 2**20


def _check_bookkeeping(name: str, value, nbytes: float) -> None:
    if nbytes > BOOKKEEPING_FLOOR:
        check_within_budget(name, value, nbytes)


def _index_dtype(n_rows: int):
    return np.uint16 if n_rows <= 2**16 else np.uint32


# --- perturbations --------------------------------------------------------------


class Perturbation(Protocol):
    """What replaces a group's columns in one (group, repeat) slice."""

    def values(self, X_sub, group: int, repeat: int):
        """The new values of group ``group``'s columns for the rows ``X_sub``.

        An ndarray of shape (n_rows, n_columns_of_group) when ``X_sub`` is an
        array; a list of one column array per column of the group (keeping
        each column's dtype) when it is a DataFrame.
        """


@dataclass(frozen=True)
class ShuffledColumns:
    """Permutation importance: a group's columns taken from the plan's
    permuted rows, with one shared row order per group (one-hot rows stay
    valid)."""

    plan: PermutationPlan
    groups: list[np.ndarray]

    def values(self, X_sub, group: int, repeat: int):
        order, columns = self.plan.permutation(repeat), self.groups[group]
        if hasattr(X_sub, "iloc"):
            return [X_sub.iloc[:, j].array.take(order) for j in columns]
        return X_sub[np.ix_(order, columns)]


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
    #: What the engine chose and why (``algorithm``, ``flops``...), filled by
    #: :meth:`scores` and reported in the results' details.
    engine_details: dict = field(default_factory=dict)

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
        algorithm: str = "auto",
    ):
        """(baseline score, scores grid [group][repeat]) on the chosen engine.

        ``algorithm`` picks the Keras engine's: ``"exact"`` (a forward pass
        over every perturbed row), ``"incremental"`` (rank-k updates of the
        first Dense layer, see ``_incremental``) or ``"auto"`` (incremental
        where it applies and its FLOP estimate is clearly lower).
        """
        from tqdm.auto import tqdm

        total = len(self.groups) * plan.n_repeats
        # Per slice: its score (a float and its list slot) and its importance.
        _check_bookkeeping("n_repeats", plan.n_repeats, 48 * total)
        with tqdm(total=total, desc=desc, unit="slice", disable=not verbose) as bar:
            if self.located is not None:
                return _keras_scores(
                    self, plan, perturbation, batch_size, n_jobs, bar, algorithm
                )
            if algorithm == "incremental":
                raise ValueError(
                    "algorithm='incremental' does not apply: it needs a Keras "
                    f"model inside the estimator, got {type(self.estimator).__name__}."
                )
            self.engine_details["algorithm"] = "exact"
            return _generic_scores(self, plan, perturbation, n_jobs, bar)

    def results(self, baseline, scores, method: str, details: dict):
        """One ImportanceResult, or a dict of them for several metrics."""
        details = {
            "engine": self.engine,
            "n_samples": self.n_rows,
            **self.engine_details,
            **details,
        }
        if self.grouped:
            details["feature_groups"] = {
                name: [str(c) for c in self.column_names[cols]]
                for name, cols in zip(self.names, self.groups)
            }
        if isinstance(baseline, dict):  # several metrics, keyed like scikit-learn
            return {
                metric: _result(
                    baseline[metric],
                    [[score[metric] for score in row] for row in scores],
                    self.names,
                    method,
                    details,
                )
                for metric in baseline
            }
        return _result(baseline, scores, self.names, method, details)


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
) -> PerturbationRun:
    """Check everything a run needs, before any data reaches a model.

    Raises
    ------
    ValueError, TypeError, NotFittedError
        Bad ``max_samples``, X with the wrong number of columns, y or
        sample_weight of the wrong length, bad ``feature_groups``, an
        unfitted estimator, a bare ``keras.Model``.
    """
    if not hasattr(X, "iloc"):  # as scikit-learn: DataFrames pass untouched
        X = check_array(X, ensure_all_finite="allow-nan", dtype=None)
    n_samples, n_columns = X.shape
    n_rows = rows_used(max_samples, n_samples)

    located = locate_keras_model(estimator) if has_keras_model(estimator) else None
    if located is None:
        check_is_fitted(estimator)
    elif located.kind == "keras_model":
        raise TypeError(
            f"{caller} scores a scikit-learn estimator, got a bare "
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
        scorer=check_scoring(estimator, scoring=scoring),
        n_rows=n_rows,
        grouped=feature_groups is not None,
    )


def check_run_sizes(n_repeats, batch_size) -> tuple[int, int | None]:
    """``n_repeats`` and ``batch_size`` checked (counts of at least one)."""
    n_repeats = check_positive_int("n_repeats", n_repeats)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    return n_repeats, batch_size


# --- the Keras engine -------------------------------------------------------------

ALGORITHMS = ("auto", "exact", "incremental")


def _keras_scores(run, plan, perturbation, batch_size, n_jobs, bar, algorithm):
    located = run.located
    _check_batch_size(run, plan, batch_size)
    context = ScoringContext.from_located(located)
    X_model = check_model_input(located, run.X, caller=run.caller)
    raw = located.forward(X_model, batch_size=batch_size)
    baseline = call_scorer(
        run.scorer, context.stand_in(run.X, raw), run.X, run.y, run.sample_weight
    )

    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    exact = ExactSlices(
        located=located,
        scorer=run.scorer,
        X_sub=X_sub,
        y=y_sub,
        sample_weight=weight_sub,
        perturbation=perturbation,
        groups=run.groups,
        n_repeats=plan.n_repeats,
        per_chunk=max(1, _chunk_rows(run.X, X_model) // plan.n_rows),
        batch_size=batch_size,
    )
    del X_model, raw
    slices = _choose_slices(algorithm, run, exact, batch_size)
    try:
        scores = run_slices(slices, n_jobs, bar, caller=run.caller)
    except IncrementalUnavailable as exc:  # found only at a later repeat
        if algorithm == "incremental":
            raise ValueError(f"algorithm='incremental' does not apply: {exc}.") from exc
        run.engine_details.update(algorithm="exact", incremental_unavailable=str(exc))
        bar.reset()
        scores = run_slices(exact, n_jobs, bar, caller=run.caller)
    return baseline, _as_grid(scores, len(run.groups), plan.n_repeats)


def _check_batch_size(run, plan, batch_size) -> None:
    """A ``batch_size`` whose forward pass would not fit the budget is refused."""
    if batch_size is None:
        return
    most_rows = max(run.X.shape[0], len(run.groups) * plan.n_repeats * plan.n_rows)
    rows = min(batch_size, most_rows)
    check_within_budget("batch_size", batch_size, rows * run.located.bytes_per_row)


def _choose_slices(algorithm, run, exact, batch_size):
    """The exact slices, or the incremental ones where they apply (and, for
    ``"auto"``, where the FLOP estimate says they are faster)."""
    details = run.engine_details
    details["algorithm"] = "exact"
    if algorithm == "exact":
        return exact
    try:
        incremental = plan_incremental(
            exact,
            rows_per_call=batch_size or exact.located.rows_per_call,
            favourable=None if algorithm == "incremental" else AUTO_FLOP_RATIO,
            details=details,
        )
    except IncrementalUnavailable as exc:
        if algorithm == "incremental":
            raise ValueError(f"algorithm='incremental' does not apply: {exc}.") from exc
        details["incremental_unavailable"] = str(exc)
        return exact
    if incremental is None:  # auto: not expected to be faster
        return exact
    details["algorithm"] = "incremental"
    return incremental


class ExactSlices:
    """Scores of (group, repeat) slices by a forward pass over their rows.

    A chunk is a list of whole slices; :meth:`prepare` builds their perturbed
    rows, preprocesses them and runs the network, :meth:`score` scores each
    slice through scikit-learn's scorer with a cached-prediction stand-in.
    Picklable: a dask worker receives it once and scores the chunks it is
    named.
    """

    def __init__(
        self,
        *,
        located,
        scorer,
        X_sub,
        y,
        sample_weight,
        perturbation,
        groups,
        n_repeats: int,
        per_chunk: int,
        batch_size,
    ):
        self.located = located
        self.scorer = scorer
        self.X_sub, self.y, self.sample_weight = X_sub, y, sample_weight
        self.perturbation = perturbation
        self.groups = groups
        self.n_repeats = n_repeats
        self.per_chunk = per_chunk
        # Decided here, where the memory budget is set, not where chunks run.
        self.batch_size = batch_size or located.rows_per_call
        self._context = None

    def __getstate__(self):
        return {**self.__dict__, "_context": None}  # rebuilt where it is used

    @property
    def context(self) -> ScoringContext:
        if self._context is None:
            self._context = ScoringContext.from_located(self.located)
        return self._context

    def chunks(self):
        """Lists of whole (group, repeat) slices, generated as they are needed."""
        chunk = []
        for group in range(len(self.groups)):
            for repeat in range(self.n_repeats):
                chunk.append((group, repeat))
                if len(chunk) == self.per_chunk:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def prepare(self, chunk):
        X_chunk = _perturbed_rows(self.X_sub, self.perturbation, self.groups, chunk)
        raw = self.located.forward(_model_rows(self.located, X_chunk), self.batch_size)
        return chunk, X_chunk, raw

    def score(self, prepared) -> list:
        """[((group, repeat), score)] of a prepared chunk."""
        chunk, X_chunk, raw = prepared
        scores = _score_chunk(
            self.context,
            self.scorer,
            X_chunk,
            raw,
            len(chunk),
            len(self.X_sub),
            self.y,
            self.sample_weight,
        )
        return list(zip(chunk, scores))

    def run(self, chunk) -> list:
        return self.score(self.prepare(chunk))


def run_slices(slices, n_jobs, bar, *, caller: str) -> list:
    """Scores of every slice, group by group, in this process or on dask.

    In this process the network runs on one chunk while worker threads score
    the previous ones (chunks are built lazily, as joblib asks for work, so
    only a few exist at once). Under ``joblib.parallel_config(backend="dask")``
    the chunks run on the cluster, which receives ``slices`` once.
    """
    n_repeats = slices.n_repeats
    scores = [None] * (len(slices.groups) * n_repeats)

    def collect(scored):
        for (group, repeat), score in scored:
            scores[group * n_repeats + repeat] = score
        bar.update(len(scored))

    client = dask_client_for_chunks()
    if client is not None:
        run_on_dask(client, slices, collect, caller=caller)
        return scores

    def chunk_tasks():
        for chunk in slices.chunks():
            yield delayed(slices.score)(slices.prepare(chunk))

    # Threads, whatever the backend: scoring is light and the stand-ins hold
    # the model, which a process backend would pickle into every chunk (dask
    # is handled above; inside a dask worker this keeps the fold local).
    parallel = Parallel(n_jobs=n_jobs, backend="threading", return_as="generator")
    for scored in parallel(chunk_tasks()):
        collect(scored)
    return scores


def _perturbed_rows(X_sub, perturbation, groups, chunk):
    """Rows of several (group, repeat) slices stacked: copies of ``X_sub``, each
    with its group's columns perturbed. Only these rows are materialised."""
    n_rows = len(X_sub)
    if hasattr(X_sub, "iloc"):
        return _perturbed_frame(X_sub, perturbation, groups, chunk)
    out = np.tile(X_sub, (len(chunk), 1))
    for s, (group, repeat) in enumerate(chunk):
        values = perturbation.values(X_sub, group, repeat)
        out[s * n_rows : (s + 1) * n_rows, groups[group]] = values
    return out


def _perturbed_frame(X_sub, perturbation, groups, chunk):
    import pandas as pd

    n_rows = len(X_sub)
    positions = np.tile(np.arange(n_rows), len(chunk))
    # Column by column through .array keeps every dtype (categorical included)
    # and builds the frame in one go instead of fragmenting it.
    data = {j: X_sub.iloc[:, j].array.take(positions) for j in range(X_sub.shape[1])}
    for s, (group, repeat) in enumerate(chunk):
        values = perturbation.values(X_sub, group, repeat)
        for j, column_values in zip(groups[group], values):
            data[j][s * n_rows : (s + 1) * n_rows] = column_values
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
    """Perturbed rows per chunk: two chunks (one scored while the next is
    built) of raw rows and their preprocessed copies fit the memory budget.
    One-hot encoding in a Pipeline can make the model rows the wider ones."""
    bytes_per_row = 8 * (X.shape[1] + X_model.shape[1])  # as float64
    return rows_within_budget(bytes_per_row, share=0.5, max_rows=MAX_ROWS_PER_CALL)


# --- the generic engine -----------------------------------------------------------


def _generic_scores(run, plan, perturbation, n_jobs, bar):
    baseline = call_scorer(run.scorer, run.estimator, run.X, run.y, run.sample_weight)
    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    scores = []
    tasks = (
        delayed(_group_scores)(
            run.estimator,
            run.scorer,
            X_sub,
            y_sub,
            weight_sub,
            perturbation,
            group,
            columns,
            plan.n_repeats,
        )
        for group, columns in enumerate(run.groups)
    )
    for group_scores in parallel(tasks):
        scores.extend(group_scores)
        bar.update(len(group_scores))
    return baseline, _as_grid(scores, len(run.groups), plan.n_repeats)


def _group_scores(
    estimator, scorer, X_sub, y, sample_weight, perturbation, group, columns, n_repeats
):
    # A private copy: X_sub may be shared between threads or a read-only memmap.
    X_perturbed = X_sub.copy()
    scores = []
    for repeat in range(n_repeats):
        values = perturbation.values(X_sub, group, repeat)
        if hasattr(X_perturbed, "iloc"):
            for j, column_values in zip(columns, values):
                X_perturbed.isetitem(j, column_values)
        else:
            X_perturbed[:, columns] = values
        scores.append(call_scorer(scorer, estimator, X_perturbed, y, sample_weight))
    return scores


# --- results ----------------------------------------------------------------------


def _as_grid(scores: list, n_groups: int, n_repeats: int) -> list[list]:
    return [scores[g * n_repeats : (g + 1) * n_repeats] for g in range(n_groups)]


def _result(baseline, scores, names, method, details):
    importances = baseline - np.asarray(scores, dtype=float)
    return ImportanceResult(
        importances,
        names,
        method=method,
        baseline_score=float(baseline),
        details=dict(details),
    )


# --- validation -------------------------------------------------------------------


def rows_used(max_samples, n_samples: int) -> int:
    """Rows per perturbed score, computed as scikit-learn does."""
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
