"""The incremental first-layer engine: wide inputs at a fraction of a forward pass.

When the network's first layer is Dense, replacing the columns of one group
changes its pre-activation by a rank-k term only::

    Z' = Z + (T(X')[:, M] - T(X)[:, M]) @ W[M, :]

where ``T`` is the preprocessing in front of the network, ``M`` the k model
columns that the group's raw columns become, ``W`` the Dense kernel. So the
first layer of the unperturbed rows is computed once, every (group, repeat)
slice adds its rank-k update, and only the rest of the network (the *tail*,
one compiled function) runs on the slice: k*H operations per row for the first
layer instead of F*H.

It applies when

* the network's first layer after its input is a plain ``Dense`` layer whose
  input goes nowhere else (BatchNormalization, activations and every later
  layer are the tail);
* the preprocessing is row-wise and column-separable *on this data*. It is
  verified, not assumed from the transformers' types (:func:`column_owners`):
  transforming the rows in two parts must give the same rows, every model
  column must follow the columns of at most one group (found by transforming
  copies of X in which halves of the groups are perturbed), and a perturbed
  slice transformed directly must equal the slice assembled from those parts.

Otherwise :class:`IncrementalUnavailable` says why, and ``algorithm="auto"``
runs the exact engine with unchanged numbers. The perturbation is consumed
only through ``Perturbation.values``, so any perturbation (a shuffle,
conditional residuals) runs on this engine.

The one-hot probe (``probe_importance(kind="delta")``) does not use it: it
promises ``model.predict(one_hot) - model.predict(zeros)`` bit for bit, which
a float32 rank-one update of the first layer does not reproduce, and it runs
only one row per input anyway.
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn import config_context

from .._budget import budget_bytes, rows_within_budget
from .._compat import scorer_only_predicts
from .network_split import IncrementalUnavailable, NetworkSplit, split_network
from .scoring import CacheMiss
from .separability import (
    ModelRows,
    column_owners,
    identity_owners,
    moved_columns,
    perturbed_copy,
    replaced,
)
from .slices import Slices

__all__ = [
    "AUTO_FLOP_RATIO",
    "FIXED_COST_FLOPS",
    "IncrementalSlices",
    "IncrementalUnavailable",
    "flop_estimate",
    "plan_incremental",
]

#: ``algorithm="auto"`` runs the incremental engine when its FLOP estimate is
#: at most this fraction of the exact engine's. Below it, the overheads the
#: estimate does not count (the separability checks, one scorer call per
#: slice, the compiled-call overhead) can eat the gain; measured in
#: benchmarks/bench_permutation.py, where auto is never slower than exact.
AUTO_FLOP_RATIO = 0.5

#: Fixed costs of an incremental run, in operations: compiling the tail for a
#: new input shape (0.1 to 0.2 s on 2 cores, at about 50 GFLOP/s) and the
#: separability checks' Python work. Small runs stay on the exact engine.
FIXED_COST_FLOPS = 10**10


# --- the cost model ----------------------------------------------------------------


def flop_estimate(
    split: NetworkSplit,
    *,
    n_rows: int,
    n_raw: int,
    widths,
    n_repeats: int,
) -> dict:
    """Estimated operations of each engine for one run.

    ``widths``: model columns per group (k). The exact engine builds every
    perturbed row (raw and model columns) and runs the whole network on it;
    the incremental one transforms a few perturbed copies of X (the checks,
    then one per repeat), computes the first layer once, runs a rank-k
    update plus the tail per perturbed row, and pays ``FIXED_COST_FLOPS``.
    """
    n_model, units = split.kernel.shape
    widths = np.asarray(widths, dtype=float)
    perturbed_rows = n_rows * len(widths) * n_repeats
    copy = n_rows * (n_raw + n_model)  # one transformed copy of X
    exact = (
        perturbed_rows * (2 * n_model * units + split.tail_flops)
        + copy * len(widths) * n_repeats
    )
    # The checks: six transformed copies of X, and two per bit of the group
    # number on a block of at most one row per model column.
    n_tests = 2 * (len(widths) - 1).bit_length()
    block = min(n_rows, n_model) / n_rows
    incremental = (
        n_rows * len(widths) * n_repeats * units
        + n_rows * n_repeats * units * 2 * float(widths.sum())
        + perturbed_rows * split.tail_flops
        + n_rows * 2 * n_model * units
        + copy * (6 + n_tests * block + n_repeats)
        + FIXED_COST_FLOPS
    )
    return {"exact": int(exact), "incremental": int(incremental)}


# --- choosing it -------------------------------------------------------------------


def plan_incremental(exact, *, rows_per_call: int, favourable, details: dict):
    """Incremental slices for the run ``exact`` describes, or None.

    ``favourable``: None to build them whatever the cost (``"incremental"``),
    else the largest ratio of FLOP estimates, incremental to exact, at which
    they are worth it (``"auto"``). The estimate is made twice: from the raw
    group widths before any check (so a clear loser pays nothing), then from
    the model columns each group really owns. Both land in ``details``.

    Raises
    ------
    IncrementalUnavailable
        The network or the preprocessing does not allow it, or its copies of
        X do not fit the memory budget.
    """
    located, X_sub, groups = exact.located, exact.X_sub, exact.groups
    split = split_network(located.model)
    n_rows, n_raw = X_sub.shape
    n_model = split.kernel.shape[0]

    def worth_it(widths) -> bool:
        estimate = flop_estimate(
            split, n_rows=n_rows, n_raw=n_raw, widths=widths, n_repeats=exact.n_repeats
        )
        details["flops"] = estimate
        return favourable is None or (
            estimate["incremental"] <= favourable * estimate["exact"]
        )

    if not worth_it([len(g) * n_model / n_raw for g in groups]):
        return None
    transform = ModelRows(located, n_raw, n_model)
    # The network takes X's own columns: no model-ready copy of X at all.
    owners = identity_owners(transform, X_sub, groups, exact.perturbation, n_model)
    base = first_moved = None
    if owners is None:
        # At once: the model rows of X and of one perturbed copy (float32),
        # which column moved (bool), and the perturbed copy of the raw rows.
        needed = n_rows * (9 * n_model + _raw_bytes_per_row(X_sub))
        if needed > budget_bytes():
            raise IncrementalUnavailable(
                f"it needs about {needed / 2**20:,.0f} MiB at once (two model-ready "
                "copies of X and a raw one), more than the memory budget of "
                f"{budget_bytes() / 2**20:,.0f} MiB; raise it with "
                "sklearn.set_config(working_memory=<MiB>)"
            )
        base = transform(X_sub)
        first = perturbed_copy(X_sub, groups, exact.perturbation, 0)
        owners, first_moved = column_owners(transform, X_sub, groups, first, base)
        del first
        if not worth_it([np.count_nonzero(owners == g) for g in range(len(groups))]):
            return None
    return IncrementalSlices(
        located=located,
        transform=transform,
        scorer=exact.scorer,
        X_sub=X_sub,
        y=exact.y,
        sample_weight=exact.sample_weight,
        perturbation=exact.perturbation,
        groups=groups,
        n_repeats=exact.n_repeats,
        base=base,
        owners=owners,
        first_moved=first_moved,
        kernel=split.kernel,
        bias=split.bias,
        rows_per_call=rows_per_call,
        unperturbed_raw=exact.unperturbed_raw,
        slice_loss=exact.slice_loss,
    )


def _many_values(perturbation, X_sub, all_groups, groups, repeat) -> list:
    """The new values of several groups: in one gather when the perturbation
    offers it (``many_values``), else group by group."""
    if hasattr(perturbation, "many_values"):
        return perturbation.many_values(X_sub, groups, repeat)
    return [perturbation.values(X_sub, g, repeat) for g in groups]


def _raw_bytes_per_row(X) -> float:
    if hasattr(X, "memory_usage"):
        return float(X.memory_usage(index=False, deep=True).sum()) / max(1, len(X))
    return float(X.itemsize * X.shape[1])


# --- the slices --------------------------------------------------------------------


class IncrementalSlices(Slices):
    """Scores of (group, repeat) slices through rank-k updates of the first layer.

    A chunk is one repeat and a few groups; :meth:`prepare` runs the network on
    it (rank-k updates and the compiled tail), :meth:`score` scores each slice
    through scikit-learn's scorer. Picklable: a dask worker receives it once
    and rebuilds the compiled tail and the scoring stand-ins itself.
    """

    def __init__(
        self,
        *,
        transform,
        base,
        owners,
        first_moved,
        kernel,
        bias,
        rows_per_call: int,
        **slices,
    ):
        super().__init__(**slices)
        self.transform = transform
        self.base = base  # None: the network takes X_sub's columns as they are
        self.owners = owners
        self.pre_activation = np.empty((len(self.X_sub), len(bias)), dtype=np.float32)
        step = transform.rows_per_block
        for start in range(0, len(self.X_sub), step):  # in blocks: no float64 X
            rows = slice(start, start + step)
            block = self.X_sub[rows] if base is None else base[rows]
            self.pre_activation[rows] = block.astype(np.float64) @ kernel + bias
        self.kernel = kernel.astype(np.float32)
        self.rows_per_call = rows_per_call
        self.placeholder = scorer_only_predicts(self.scorer)
        self.columns = [np.flatnonzero(owners == g) for g in range(len(self.groups))]
        self._init_local()
        if first_moved is not None:
            first_moved -= base  # in place: the change of repeat 0
            self._changes = {0: first_moved}

    def _init_local(self):
        self._lock = threading.Lock()
        self._context = None
        self._changes = {}
        self._tail = None
        self._tensors = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_lock", "_context", "_changes", "_tail", "_tensors"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_local()

    # -- work units ------------------------------------------------------------------
    @property
    def slices_per_call(self) -> int:
        """Slices per call of the tail: as many whole slices as fit."""
        per_call = max(1, self.rows_per_call // len(self.pre_activation))
        return min(per_call, len(self.groups))

    @property
    def slices_per_chunk(self) -> int:
        """Slices per chunk: whole calls of the tail, as many as let the
        chunk's changes and outputs (two float32 rows each) fill an eighth of
        the memory budget, up to 256. Their new values are gathered in one
        pass over the rows, not one per group (a column of a row-major X is
        one cache miss per row)."""
        per_call = self.slices_per_call
        fit = rows_within_budget(
            8 * len(self.pre_activation), share=1 / 8, max_rows=256
        )
        return min(len(self.groups), per_call * max(1, fit // per_call))

    def chunks(self):
        """(repeat, groups) chunks, repeat by repeat, groups of similar width
        together (a call pads every update to its widest group)."""
        per_chunk = self.slices_per_chunk
        by_width = sorted(range(len(self.groups)), key=lambda g: len(self.columns[g]))
        for repeat in range(self.n_repeats):
            for start in range(0, len(by_width), per_chunk):
                yield repeat, by_width[start : start + per_chunk]

    def prepare(self, chunk):
        """Raw network output of every slice of ``chunk``, shape (m, n, ...).

        Every call gets the same shape, so the compiled tail compiles once:
        the last call of a repeat is padded with empty slices, and the
        update's width with zero columns up to a power of two.
        """
        repeat, groups = chunk
        changes = self._group_changes(repeat, groups)
        if self._tail is None:
            self._tail = split_network(self.located.model).tail
        per_call = self.slices_per_call
        outputs = [
            self._call_tail(groups[start : start + per_call], changes)
            for start in range(0, len(groups), per_call)
        ]
        raw = np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]
        # Groups none of whose model columns moved (a constant column).
        still = {g for g in groups if not np.any(changes[g])}
        return chunk, raw, still

    def _call_tail(self, groups, changes) -> np.ndarray:
        """The tail's output for the slices of ``groups`` (at most one call's)."""
        n_rows, units = self.pre_activation.shape
        n_slices = self.slices_per_call
        widest = max(1, *(len(self.columns[g]) for g in groups))
        width = 1 << (widest - 1).bit_length()
        rows_per_block = max(1, self.rows_per_call // n_slices)
        outputs = []
        for start in range(0, n_rows, rows_per_block):
            rows = slice(start, min(start + rows_per_block, n_rows))
            n_block = rows.stop - rows.start
            d = np.zeros((n_slices, n_block, width), dtype=np.float32)
            w = np.zeros((n_slices, width, units), dtype=np.float32)
            for i, group in enumerate(groups):
                columns = self.columns[group]
                d[i, :, : len(columns)] = changes[group][rows]
                w[i, : len(columns)] = self.kernel[columns]
            raw = self._tail(self._first_layer(rows), d, w)
            raw = raw.reshape(n_slices, n_block, *raw.shape[1:])
            outputs.append(raw[: len(groups)])
        return np.concatenate(outputs, axis=1) if len(outputs) > 1 else outputs[0]

    def _first_layer(self, rows: slice):
        """The pre-activations of ``rows`` as a tensor, converted once: the
        conversion copies them, which cost a third of the run at 50,000 rows."""
        key = (rows.start, rows.stop)
        tensor = self._tensors.get(key)
        if tensor is None:
            import tensorflow as tf

            tensor = tf.constant(self.pre_activation[rows])
            self._tensors[key] = tensor
        return tensor

    def score(self, prepared) -> list:
        """[((group, repeat), score, loss differences or None)] of a prepared
        chunk."""
        (repeat, groups), raw, still = prepared
        raws = [self._slice_output(g, raw[i], g in still) for i, g in enumerate(groups)]
        batch = self.batch_scores(raws)
        if self.slice_loss is None and None not in batch:
            return [((g, repeat), score, None) for g, score in zip(groups, batch)]
        scored = []
        # The baseline call validated the scorer's parameters (see keras_engine).
        with config_context(skip_parameter_validation=True):
            for group, output, score in zip(groups, raws, batch):
                scored.append(
                    ((group, repeat), *self._score_slice(group, repeat, output, score))
                )
        return scored

    def run(self, chunk) -> list:
        return self.score(self.prepare(chunk))

    # -- helpers -----------------------------------------------------------------------
    def _group_changes(self, repeat: int, groups) -> dict:
        """{group: the change of its model columns, (n_rows, k) float32}."""
        if self.base is not None:
            change = self._change(repeat)
            return {g: change[:, self.columns[g]] for g in groups}
        # Model columns are raw columns, in ascending order within a group.
        columns = [np.sort(self.groups[g]) for g in groups]
        new = _many_values(self.perturbation, self.X_sub, self.groups, groups, repeat)
        old = self.X_sub[:, np.concatenate(columns)].astype(np.float32)
        changes, start = {}, 0
        for g, group_columns, values in zip(groups, columns, new):
            order = np.argsort(self.groups[g], kind="stable")
            stop = start + len(group_columns)
            changes[g] = values[:, order].astype(np.float32) - old[:, start:stop]
            start = stop
        return changes

    def _change(self, repeat: int) -> np.ndarray:
        """T(X with every group perturbed) - T(X) for ``repeat``; one cached."""
        with self._lock:
            change = self._changes.get(repeat)
            if change is None:
                self._changes = {}  # the last repeat's change goes first
                copy = perturbed_copy(
                    self.X_sub, self.groups, self.perturbation, repeat
                )
                change = self.transform(copy)
                del copy
                stray = moved_columns(change, self.base) & (self.owners < 0)
                change -= self.base
                if np.any(stray):
                    raise IncrementalUnavailable(
                        f"model column {int(np.flatnonzero(stray)[0])} moved at repeat "
                        f"{repeat} but with no group at repeat 0"
                    )
                self._changes = {repeat: change}  # one repeat at a time
            return change

    def _slice_output(self, group, raw, still: bool):
        """The network output a slice is scored on: ``raw`` from the tail,
        or the unperturbed output where the group cannot move it."""
        columns = self.columns[group]
        ignored = len(columns) == 0 or not np.any(self.kernel[columns])
        if (still or ignored) and self.unperturbed_raw is not None:
            # No model column moves (a constant column, one the preprocessing
            # drops), or none reaches the network (zero first-layer weights:
            # a zero update): the exact engine's own output, so that the importance
            # and every loss difference are exactly 0, as there, not the
            # tail's float32 rounding of them (which a t-test would weigh).
            return self.unperturbed_raw
        return raw

    def _score_slice(self, group, repeat, raw, score=None):
        """(score, loss differences or None) of one slice whose output is
        ``raw``; ``score`` when :meth:`batch_scores` already gave it."""
        if self.placeholder:
            # The scorer and the pointwise loss only call the stand-in, which
            # answers for X_sub from the cached output or raises CacheMiss:
            # the rows are never built.
            stand_in = self.context.stand_in(self.X_sub, raw, strict=True)
            try:
                return self.score_slice(stand_in, self.X_sub, score)
            except CacheMiss:
                pass
        rows = replaced(
            self.X_sub,
            self.groups,
            {group: self.perturbation.values(self.X_sub, group, repeat)},
        )
        return self.score_slice(self.context.stand_in(rows, raw), rows, score)
