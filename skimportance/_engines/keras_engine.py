"""The Keras engine: perturbed slices scored in batches, exactly or incrementally.

A run's (group, repeat) slices are scored in chunks by one of two slice
engines with the same interface (``chunks``, ``prepare``, ``score``, ``run``):

* :class:`ExactSlices` builds every perturbed row of a chunk, preprocesses
  them and runs the whole network on them in large batches;
* ``IncrementalSlices`` (``incremental``) adds each slice's rank-k change to
  the first Dense layer of the unperturbed rows and runs only the rest of the
  network.

Either way each slice is scored through scikit-learn's own scorer with a
cached-prediction stand-in. :func:`run_slices` runs the chunks in this process
(the network on one chunk while threads score the previous ones) or, under a
dask backend, on the cluster (``dask_backend``).
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn import config_context
from sklearn.utils.parallel import Parallel, delayed

from .._budget import MAX_ROWS_PER_CALL, rows_within_budget
from .._replace import stack_replaced
from .._validation import check_batch_size, check_model_input, values_already_checked
from .dask_backend import dask_client_for_chunks, run_on_dask
from .engine_scores import EngineScores
from .incremental import AUTO_FLOP_RATIO, IncrementalUnavailable, plan_incremental
from .scoring import ScoringContext, call_scorer
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
        per_chunk=max(1, _chunk_rows(run.X, X_model) // plan.n_rows),
        batch_size=batch_size,
        unperturbed_raw=raw_sub,
        slice_loss=losses.slice_loss,
    )
    del X_model, raw, raw_sub
    details = {}  # this run's own, filled as the engine decides
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
        # Decided here, where the memory budget is set, not where chunks run.
        self.batch_size = batch_size or self.located.rows_per_call

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
        # A shuffle only moves values the run checked before it started; new
        # values (conditional draws) are checked like any rows.
        moved_only = getattr(self.perturbation, "moves_rows_only", False)
        with values_already_checked() if moved_only else contextlib.nullcontext():
            X_model = _model_rows(self.located, X_chunk)
        raw = self.located.forward(X_model, self.batch_size)
        return chunk, X_chunk, raw

    def score(self, prepared) -> list:
        """[((group, repeat), score, loss differences or None)] of a prepared
        chunk."""
        chunk, X_chunk, raw = prepared
        n_rows = len(self.X_sub)
        scored = []
        # The baseline call already ran the scorer with full parameter
        # validation on the same y, sample_weight and prediction shapes;
        # repeating it for every slice costs more than the metric itself. Data
        # checks (NaN, shapes) stay on.
        with config_context(skip_parameter_validation=True):
            for s, slice_key in enumerate(chunk):
                rows = slice(s * n_rows, (s + 1) * n_rows)
                X_slice = (
                    X_chunk.iloc[rows] if hasattr(X_chunk, "iloc") else X_chunk[rows]
                )
                stand_in = self.context.stand_in(X_slice, raw[rows])
                scored.append((slice_key, *self.score_slice(stand_in, X_slice)))
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
