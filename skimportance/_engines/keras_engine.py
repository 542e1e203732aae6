"""The Keras engine: perturbed slices scored in batches, exactly or incrementally.

A run's (group, repeat) slices are scored in chunks by one of two slice
engines with the same interface (``chunks``, ``prepare``, ``score``, ``run``):

* :class:`ExactSlices` builds every perturbed row of a chunk, preprocesses
  them and runs the whole network on them in large batches;
* ``IncrementalSlices`` (``incremental``) adds each slice's rank-k change to
  the first Dense layer of the unperturbed rows and runs only the rest of the
  network.

Either way each slice is scored through scikit-learn's own scorer with a
cached-prediction stand-in, or, for a regressor's column-wise metric, every
slice of a chunk by one call of that metric (``slice_metric``).
:func:`run_slices` runs the chunks in this process (the network on one chunk
while threads score the previous ones) or, under a dask backend, on the
cluster (``dask_backend``).
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn import config_context
from sklearn.utils.parallel import Parallel, delayed

from .._budget import MAX_ROWS_PER_CALL, rows_within_budget
from .._compat import scorer_only_predicts
from .._replace import stack_replaced
from .._validation import check_batch_size, check_model_input, values_already_checked
from .dask_backend import dask_client_for_chunks, run_on_dask
from .engine_scores import EngineScores
from .ignored import ignored_groups
from .incremental import AUTO_FLOP_RATIO, IncrementalUnavailable, plan_incremental
from .scoring import ScoringContext, call_scorer
from .separability import is_row_wise
from .slices import LossCollector, Slices

__all__ = ["ALGORITHMS", "ExactSlices", "keras_scores", "run_slices"]

#: ``algorithm=`` of the methods built on the engines.
ALGORITHMS = ("auto", "exact", "incremental")


def keras_scores(
    run, plan, perturbation, *, batch_size, n_jobs, bar, row_loss, algorithm
) -> EngineScores:
    """The run's :class:`EngineScores`, the slices scored in chunks.

    The loss differences are those of :class:`LossCollector` for ``row_loss``
    (None without one), computed from the predictions the slices already have.
    The details say which slice engine ran (``algorithm``), the FLOP
    estimates it was chosen on and why the incremental one did not apply.
    """
    located = run.located
    check_batch_size(located, batch_size)
    context = ScoringContext.from_located(located)
    X_model = check_model_input(located, run.X, caller=run.caller)
    raw = located.forward(X_model, batch_size=batch_size)
    baseline = call_scorer(
        run.scorer, context.stand_in(run.X, raw), run.X, run.y, run.sample_weight
    )

    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    raw_sub = raw if plan.rows is None else raw[plan.rows]
    details = {}  # this run's own, filled as the engine decides
    per_chunk = max(1, _chunk_rows(run.X, X_model) // plan.n_rows)
    if located.preprocessor is not None and not is_row_wise(
        lambda X: _model_rows(located, X), X_sub
    ):
        # A row's preprocessed values depend on the rows beside it (a rank, a
        # batch normalisation): each slice is transformed whole, alone, as
        # scikit-learn's permutation importance transforms it, and the
        # unperturbed rows the losses are compared with likewise.
        per_chunk = 1
        details["row_wise_preprocessing"] = False
        if plan.rows is not None:
            raw_sub = located.forward(_model_rows(located, X_sub), batch_size)
    losses = LossCollector.start(
        row_loss, context.stand_in(X_sub, raw_sub), X_sub, y_sub, plan.n_repeats
    )
    exact = ExactSlices(
        located=located,
        scorer=run.scorer,
        X_sub=X_sub,
        y=y_sub,
        sample_weight=weight_sub,
        perturbation=perturbation,
        groups=run.groups,
        n_repeats=plan.n_repeats,
        per_chunk=per_chunk,
        batch_size=batch_size,
        unperturbed_raw=raw_sub,
        slice_loss=losses.slice_loss,
    )
    del X_model, raw, raw_sub
    slices = _choose_slices(algorithm, exact, batch_size, details)
    try:
        scores = run_slices(slices, n_jobs, bar, losses, caller=run.caller)
    except IncrementalUnavailable as exc:  # found only at a later repeat
        _fall_back_to_exact(algorithm, details, exc)
        bar.reset()
        losses = LossCollector(losses.slice_loss, plan.n_repeats)
        scores = run_slices(exact, n_jobs, bar, losses, caller=run.caller)
    return EngineScores.from_flat(
        baseline, scores, plan.n_repeats, losses.differences(), details
    )


def _choose_slices(algorithm, exact, batch_size, details: dict):
    """The exact slices, or the incremental ones where they apply (and, for
    ``"auto"``, where the FLOP estimate says they are faster); ``details``
    notes the choice and why."""
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
        _fall_back_to_exact(algorithm, details, exc)
        return exact
    if incremental is None:  # auto: not expected to be faster
        return exact
    details["algorithm"] = "incremental"
    return incremental


def _fall_back_to_exact(algorithm, details: dict, exc: IncrementalUnavailable):
    """Why the incremental engine does not apply: an error where the user
    asked for it, else noted in ``details`` for the exact engine's run."""
    if algorithm == "incremental":
        raise ValueError(f"algorithm='incremental' does not apply: {exc}.") from exc
    details.update(algorithm="exact", incremental_unavailable=str(exc))


class ExactSlices(Slices):
    """Scores of (group, repeat) slices by a forward pass over their rows.

    A chunk is a list of whole slices; :meth:`prepare` builds their perturbed
    rows, preprocesses them and runs the network, :meth:`score` scores each
    slice through scikit-learn's scorer with a cached-prediction stand-in.
    Picklable: a dask worker receives it once and scores the chunks it is
    named.
    """

    def __init__(self, *, per_chunk: int, batch_size, **slices):
        super().__init__(**slices)
        self.per_chunk = per_chunk
        self.ignored = None  # groups the network ignores (``ignored``), found once
        # Decided here, where the memory budget is set, not where chunks run.
        self.batch_size = batch_size or self.located.rows_per_call
        self._source = None  # the rows chunks are built from (``rows_source``)

    def __getstate__(self):
        # A worker narrows its own copy: X_sub travels once, not twice.
        return {**super().__getstate__(), "_source": None}

    def rows_source(self):
        """The rows chunks are copied from: ``X_sub``, or ``X_sub`` already
        in the network's input dtype where the network then gets the very
        same rows (``narrowed_rows``)."""
        if self._source is None:
            self._source = narrowed_rows(
                self.located, self.X_sub, self.perturbation, self.scorer
            )
        return self._source

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
        X_chunk = _perturbed_rows(
            self.rows_source(), self.perturbation, self.groups, chunk
        )
        # A shuffle only moves values the run checked before it started; new
        # values (conditional draws) are checked like any rows.
        moved_only = getattr(self.perturbation, "moves_rows_only", False)
        with values_already_checked() if moved_only else contextlib.nullcontext():
            X_model = _model_rows(self.located, X_chunk)
        return chunk, X_chunk, self._forward(chunk, X_model)

    def _forward(self, chunk, X_model):
        """The network's output on the chunk's rows; a slice of a group the
        network ignores gets its unperturbed output, without a forward pass."""
        if self.ignored is None:
            self.ignored = ignored_groups(self.located, self.groups)
        still = {s for s, (group, _) in enumerate(chunk) if group in self.ignored}
        if not still or self.unperturbed_raw is None:
            return self.located.forward(X_model, self.batch_size)
        n_rows = len(self.X_sub)
        moving = [s for s in range(len(chunk)) if s not in still]
        outputs = dict.fromkeys(still, self.unperturbed_raw)
        if moving:
            rows = np.concatenate(
                [np.arange(s * n_rows, (s + 1) * n_rows) for s in moving]
            )
            raw = self.located.forward(X_model[rows], self.batch_size)
            for i, s in enumerate(moving):
                outputs[s] = raw[i * n_rows : (i + 1) * n_rows]
        return np.concatenate([outputs[s] for s in range(len(chunk))])

    def score(self, prepared) -> list:
        """[((group, repeat), score, loss differences or None)] of a prepared
        chunk."""
        chunk, X_chunk, raw = prepared
        n_rows = len(self.X_sub)
        rows = [slice(s * n_rows, (s + 1) * n_rows) for s in range(len(chunk))]
        batch = self.batch_scores([raw[r] for r in rows])
        if self.slice_loss is None and None not in batch:
            return list(zip(chunk, batch, [None] * len(chunk)))
        scored = []
        # The baseline call already ran the scorer with full parameter
        # validation on the same y, sample_weight and prediction shapes;
        # repeating it for every slice costs more than the metric itself. Data
        # checks (NaN, shapes) stay on.
        with config_context(skip_parameter_validation=True):
            for slice_key, r, score in zip(chunk, rows, batch):
                X_slice = X_chunk.iloc[r] if hasattr(X_chunk, "iloc") else X_chunk[r]
                stand_in = self.context.stand_in(X_slice, raw[r])
                scored.append((slice_key, *self.score_slice(stand_in, X_slice, score)))
        return scored

    def run(self, chunk) -> list:
        return self.score(self.prepare(chunk))


def run_slices(slices, n_jobs, bar, losses, *, caller: str) -> list:
    """Scores of every slice, group by group, in this process or on dask.

    In this process the network runs on one chunk while worker threads score
    the previous ones (chunks are built lazily, as joblib asks for work, so
    only a few exist at once). Under ``joblib.parallel_config(backend="dask")``
    the chunks run on the cluster, which receives ``slices`` once. Each
    slice's loss differences go to the :class:`LossCollector` ``losses``.
    """
    n_repeats = slices.n_repeats
    scores = [None] * (len(slices.groups) * n_repeats)

    def collect(scored):
        for (group, repeat), score, slice_loss in scored:
            scores[group * n_repeats + repeat] = score
            losses.add(group, repeat, slice_loss)
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
    with its group's columns perturbed. Only these rows are materialised, and
    each slice's new values only while its copy is written."""
    changes = (
        [(groups[group], perturbation.values(X_sub, group, repeat))]
        for group, repeat in chunk
    )
    return stack_replaced(X_sub, len(chunk), changes)


def narrowed_rows(located, X_sub, perturbation, scorer):
    """``X_sub`` cast once to the network's input dtype (float64 to float32),
    where that changes nothing the run computes; else ``X_sub`` itself.

    Copying float64 rows for every slice and casting each chunk to float32
    cost a fifth of a 2000 x 20 x 5 run. Cast once instead when

    * the perturbation only moves values between rows (a permutation: the
      cast of a moved value is the moved cast value);
    * the scorer uses X only to call the estimator (so it never reads the
      narrower values);
    * the network's rows are X's own columns, and the wrapper's input handling
      gives the network bit for bit the same rows from the cast copy
      (checked on the data: a feature encoder could compute in float64).
    """
    layout = located.layout
    if not (
        isinstance(X_sub, np.ndarray)
        and X_sub.dtype.kind == "f"
        and located.preprocessor is None
        and layout.flat
        and layout.inputs[0].dtype in ("float16", "float32")
        and getattr(perturbation, "moves_rows_only", False)
        and scorer_only_predicts(scorer)
    ):
        return X_sub
    dtype = np.dtype(layout.inputs[0].dtype)
    if dtype.itemsize >= X_sub.dtype.itemsize:
        return X_sub
    narrowed = X_sub.astype(dtype)
    with values_already_checked():
        wide, narrow = _model_rows(located, X_sub), _model_rows(located, narrowed)
    same = np.array_equal(
        np.asarray(wide, dtype=dtype), np.asarray(narrow, dtype=dtype), equal_nan=True
    )
    return narrowed if same else X_sub


def _model_rows(located, X) -> np.ndarray:
    """The rows the network takes; dense, as the batched forward pass needs."""
    X_model = located.to_model_input(X)
    # A sparse matrix (e.g. from a one-hot encoder in a Pipeline) is densified
    # here, chunk by chunk, which the chunk size already accounts for.
    return X_model.toarray() if hasattr(X_model, "toarray") else X_model


def _chunk_rows(X, X_model) -> int:
    """Perturbed rows per chunk: two chunks (one scored while the next is
    built) of raw rows and their preprocessed copies fit the memory budget.
    One-hot encoding in a Pipeline can make the model rows the wider ones."""
    bytes_per_row = 8 * (X.shape[1] + X_model.shape[1])  # as float64
    return rows_within_budget(bytes_per_row, share=0.5, max_rows=MAX_ROWS_PER_CALL)
