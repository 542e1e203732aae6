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
reproduces scikit-learn's draws. Asked for a pointwise loss (``row_loss``),
both engines also return each row's loss difference averaged over the
repeats, computed from the predictions they already have; ``_inference``
turns them into p-values.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn import config_context
from sklearn.metrics import check_scoring, get_scorer
from sklearn.utils import _safe_indexing, check_array, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.random import sample_without_replacement
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._budget import MAX_ROWS_PER_CALL, rows_within_budget
from ._columns import column_map
from ._groups import cluster_feature_groups, resolve_feature_groups
from ._model import feature_names_of, has_keras_model, locate_keras_model
from ._names import column_sources
from ._result import ImportanceResult
from ._scoring import ScoringContext, call_scorer, per_head_scorer
from ._validation import check_batch_size, check_model_input, check_positive_int

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
    permutations : ndarray of int, shape (n_repeats, n_rows)
        Repeat ``r`` takes the perturbed column(s) of ``X[rows]`` from rows
        ``permutations[r]``. Read it through :meth:`permutation`.
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
    clustering: dict | None = None  # feature_groups="auto": the dendrogram

    @property
    def engine(self) -> str:
        return "generic" if self.located is None else "keras"

    def scores(
        self, plan, perturbation, *, batch_size, n_jobs, verbose, desc, row_loss=None
    ):
        """(baseline score, scores grid [group][repeat], loss differences).

        The loss differences, shape (n_groups, n_rows), are each row's
        ``row_loss`` (a ``_inference.PointwiseLoss``) averaged over the
        repeats minus its unperturbed loss; None without ``row_loss`` or y.
        """
        from tqdm.auto import tqdm

        if self.y is None:
            row_loss = None  # nothing to compare predictions with
        total = len(self.groups) * plan.n_repeats
        with tqdm(total=total, desc=desc, unit="slice", disable=not verbose) as bar:
            if self.located is not None:
                return _keras_scores(
                    self, plan, perturbation, batch_size, n_jobs, bar, row_loss
                )
            return _generic_scores(self, plan, perturbation, n_jobs, bar, row_loss)

    def results(
        self, baseline, scores, method: str, details: dict, loss_differences=None
    ):
        """One ImportanceResult, or a dict of them for several metrics."""
        details = {"engine": self.engine, "n_samples": self.n_rows, **details}
        if self.grouped:
            details["feature_groups"] = {
                name: [str(c) for c in self.column_names[cols]]
                for name, cols in zip(self.names, self.groups)
            }
        if self.clustering is not None:
            details["clustering"] = self.clustering
        if isinstance(baseline, dict):  # several metrics, keyed like scikit-learn
            return {
                metric: _result(
                    baseline[metric],
                    [[score[metric] for score in row] for row in scores],
                    self.names,
                    method,
                    details,
                    loss_differences,
                )
                for metric in baseline
            }
        return _result(baseline, scores, self.names, method, details, loss_differences)


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
    (``_groups.cluster_feature_groups``, at ``cluster_threshold``). A model
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


# --- the Keras engine -------------------------------------------------------------


def _keras_scores(run, plan, perturbation, batch_size, n_jobs, bar, row_loss=None):
    located = run.located
    context = ScoringContext.from_located(located)
    X_model = check_model_input(located, run.X, caller=run.caller)
    check_batch_size(located, batch_size)
    raw = located.forward(X_model, batch_size=batch_size)
    baseline = call_scorer(
        run.scorer, context.stand_in(run.X, raw), run.X, run.y, run.sample_weight
    )

    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    raw_sub = raw if plan.rows is None else raw[plan.rows]
    losses = _LossCollector.start(
        row_loss, context.stand_in(X_sub, raw_sub), X_sub, y_sub, plan.n_repeats
    )
    n_rows = plan.n_rows
    slices = [(g, r) for g in range(len(run.groups)) for r in range(plan.n_repeats)]
    per_chunk = max(1, _chunk_rows(run.X, X_model) // n_rows)  # whole slices only
    del X_model, raw, raw_sub

    def chunk_tasks():
        # Runs lazily, as joblib asks for work: at most a few chunks exist at once.
        for start in range(0, len(slices), per_chunk):
            chunk = slices[start : start + per_chunk]
            X_chunk = _perturbed_rows(X_sub, perturbation, run.groups, chunk)
            raw_chunk = located.forward(_model_rows(located, X_chunk), batch_size)
            yield delayed(_score_chunk)(
                context,
                run.scorer,
                X_chunk,
                raw_chunk,
                len(chunk),
                n_rows,
                y_sub,
                weight_sub,
                losses.slice_loss,
            )

    # Threads: scoring is light, and the stand-ins hold the model.
    parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
    scores = []
    for chunk_scores, chunk_losses in parallel(chunk_tasks()):
        # Chunks come back in order, so every sum runs over the repeats in order.
        losses.add(slices[len(scores) : len(scores) + len(chunk_scores)], chunk_losses)
        scores.extend(chunk_scores)
        bar.update(len(chunk_scores))
    grid = _as_grid(scores, len(run.groups), plan.n_repeats)
    return baseline, grid, losses.differences()


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


def _score_chunk(
    context, scorer, X_chunk, raw, n_slices, n_rows, y, sample_weight, slice_loss=None
):
    """(scores, per-row loss differences or None) of the slices of one chunk."""
    scores, losses = [], [] if slice_loss is not None else None
    # The baseline call already ran the scorer with full parameter validation
    # on the same y, sample_weight and prediction shapes; repeating it for every
    # slice costs more than the metric itself. Data checks (NaN, shapes) stay on.
    with config_context(skip_parameter_validation=True):
        for s in range(n_slices):
            rows = slice(s * n_rows, (s + 1) * n_rows)
            X_slice = X_chunk.iloc[rows] if hasattr(X_chunk, "iloc") else X_chunk[rows]
            stand_in = context.stand_in(X_slice, raw[rows])
            scores.append(call_scorer(scorer, stand_in, X_slice, y, sample_weight))
            if slice_loss is not None:  # from the stand-in's cached predictions
                losses.append(slice_loss(stand_in, X_slice, y))
    return scores, losses


def _chunk_rows(X, X_model) -> int:
    """Perturbed rows per chunk: two chunks (one scored while the next is
    built) of raw rows and their preprocessed copies fit the memory budget.
    One-hot encoding in a Pipeline can make the model rows the wider ones."""
    bytes_per_row = 8 * (X.shape[1] + X_model.shape[1])  # as float64
    return rows_within_budget(bytes_per_row, share=0.5, max_rows=MAX_ROWS_PER_CALL)


# --- the generic engine -----------------------------------------------------------


def _generic_scores(run, plan, perturbation, n_jobs, bar, row_loss=None):
    baseline = call_scorer(run.scorer, run.estimator, run.X, run.y, run.sample_weight)
    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    losses = _LossCollector.start(row_loss, run.estimator, X_sub, y_sub, plan.n_repeats)
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
            losses.slice_loss,
        )
        for group, columns in enumerate(run.groups)
    )
    for group, (group_scores, group_losses) in enumerate(parallel(tasks)):
        losses.add_group(group, group_losses)
        scores.extend(group_scores)
        bar.update(len(group_scores))
    grid = _as_grid(scores, len(run.groups), plan.n_repeats)
    return baseline, grid, losses.differences()


def _group_scores(
    estimator,
    scorer,
    X_sub,
    y,
    sample_weight,
    perturbation,
    group,
    columns,
    n_repeats,
    slice_loss=None,
):
    """(scores, per-row loss differences summed over the repeats or None)."""
    # A private copy: X_sub may be shared between threads or a read-only memmap.
    X_perturbed = X_sub.copy()
    scores = []
    loss_sum = None if slice_loss is None else np.zeros(len(X_sub))
    for repeat in range(n_repeats):
        values = perturbation.values(X_sub, group, repeat)
        if hasattr(X_perturbed, "iloc"):
            for j, column_values in zip(columns, values):
                X_perturbed.isetitem(j, column_values)
        else:
            X_perturbed[:, columns] = values
        scores.append(call_scorer(scorer, estimator, X_perturbed, y, sample_weight))
        if slice_loss is not None:  # summed over the repeats in order, as the
            loss_sum += slice_loss(estimator, X_perturbed, y)  # Keras engine does
    return scores, loss_sum


# --- results ----------------------------------------------------------------------


def _as_grid(scores: list, n_groups: int, n_repeats: int) -> list[list]:
    return [scores[g * n_repeats : (g + 1) * n_repeats] for g in range(n_groups)]


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


@dataclass(frozen=True)
class _SliceLoss:
    """A perturbed slice's per-row loss minus the unperturbed rows' loss.

    Differences are taken slice by slice, so a column the model ignores gives
    exactly 0 (no rounding of a sum of equal losses)."""

    row_loss: Any  # _inference.PointwiseLoss
    baseline_losses: np.ndarray

    def __call__(self, estimator, X, y) -> np.ndarray:
        return self.row_loss.rows(estimator, X, y) - self.baseline_losses


class _LossCollector:
    """Sums each group's per-row loss differences over its repeats, in repeat
    order, so that both engines (and any n_jobs) add the same numbers in the
    same order. Does nothing when no pointwise loss is asked for."""

    def __init__(self, slice_loss, n_repeats: int):
        self.slice_loss = slice_loss
        self.n_repeats = n_repeats
        self.sums: dict[int, np.ndarray] = {}

    @classmethod
    def start(cls, row_loss, predictor, X_sub, y_sub, n_repeats: int):
        """The collector, with the unperturbed losses of the rows ``X_sub``
        as ``predictor`` (the estimator, or a cached stand-in) predicts them."""
        if row_loss is None:
            return cls(None, n_repeats)
        baseline_losses = row_loss.rows(predictor, X_sub, y_sub)
        return cls(_SliceLoss(row_loss, baseline_losses), n_repeats)

    def add(self, chunk, chunk_losses) -> None:
        """Loss differences of the (group, repeat) slices ``chunk``, in order."""
        if self.slice_loss is None:
            return
        for (group, _), losses in zip(chunk, chunk_losses):
            if group not in self.sums:
                self.sums[group] = np.zeros(len(losses))
            self.sums[group] += losses

    def add_group(self, group: int, loss_sum) -> None:
        """One group's differences already summed over its repeats, in order."""
        if self.slice_loss is not None:
            self.sums[group] = loss_sum

    def differences(self):
        """(n_groups, n_rows): the mean over the repeats of each row's loss
        difference."""
        if self.slice_loss is None:
            return None
        return np.stack([self.sums[group] for group in sorted(self.sums)]) / (
            self.n_repeats
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
