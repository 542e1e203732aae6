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
import weakref
from dataclasses import dataclass

import numpy as np
from sklearn import config_context

from ._budget import budget_bytes, rows_within_budget
from ._compat import scorer_only_predicts
from ._scoring import CacheMiss, ScoringContext, call_scorer

__all__ = [
    "AUTO_FLOP_RATIO",
    "IncrementalSlices",
    "IncrementalUnavailable",
    "ModelRows",
    "NetworkSplit",
    "column_owners",
    "flop_estimate",
    "plan_incremental",
    "split_network",
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


class IncrementalUnavailable(ValueError):
    """The incremental engine does not apply; the message says why."""


# --- the network: its first Dense layer and the tail -------------------------------


@dataclass(frozen=True)
class NetworkSplit:
    """A network cut after the matrix product of its first Dense layer.

    Attributes
    ----------
    kernel, bias : ndarray
        The first layer's weights, float64, shapes (F, H) and (H,).
    tail_flops : int
        Estimated operations per row of everything after that product.
    tail : callable
        ``tail(z, d, w)``: the network's raw output for the pre-activations
        ``z[None] + d @ w`` (shapes (n, H), (m, n, k), (m, k, H)), as
        (m * n, ...) rows: m slices of n rows, each with its own rank-k update.
        One compiled function per model, traced once.
    """

    kernel: np.ndarray
    bias: np.ndarray
    tail_flops: int
    tail: object

    @property
    def units(self) -> int:
        return self.kernel.shape[1]


def split_network(model) -> NetworkSplit:
    """Split ``model`` after its first Dense layer's product, or say why not.

    Raises
    ------
    IncrementalUnavailable
        The network does not start with a plain Dense layer fed by its only
        input, or is not a float32 TensorFlow network.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise IncrementalUnavailable("it needs Keras's TensorFlow backend")
    entry = _TAILS.get(model)
    if entry is None:
        entry = _build_tail(model)
        _TAILS[model] = entry
    dense, tail, tail_flops = entry
    kernel = np.asarray(dense.kernel, dtype=np.float64)
    bias = (
        np.asarray(dense.bias, dtype=np.float64)
        if dense.use_bias
        else np.zeros(kernel.shape[1])
    )
    return NetworkSplit(kernel, bias, tail_flops, tail)


# One compiled tail per model, dropped with the model.
_TAILS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _build_tail(model):
    import keras
    import tensorflow as tf

    dense = _first_dense(model)
    units = int(dense.units)

    def share_or_replace(layer):
        # Every later layer is shared (same weights); the first Dense gives way
        # to its activation alone, so the clone takes pre-activations.
        if layer is dense:
            return keras.layers.Activation(dense.activation)
        return layer

    try:
        rest = keras.models.clone_model(
            model,
            input_tensors=keras.Input((units,)),
            clone_function=share_or_replace,
        )
    except (ValueError, TypeError) as exc:  # e.g. a subclassed model
        raise IncrementalUnavailable(
            f"the layers after its first Dense layer cannot be rebuilt ({exc})"
        ) from exc
    spec_z = tf.TensorSpec((None, units), tf.float32)
    spec_d = tf.TensorSpec((None, None, None), tf.float32)
    spec_w = tf.TensorSpec((None, None, units), tf.float32)

    def compile_tail(xla: bool):
        # XLA fuses the update, the activations and the bias additions: about
        # half the time of the plain graph on the narrow layers of a tail. It
        # compiles once per input shape, which the chunks keep to one or two
        # per run (see IncrementalSlices.prepare).
        @tf.function(
            input_signature=[spec_z, spec_d, spec_w],
            reduce_retracing=True,
            jit_compile=xla,
        )
        def compiled(z, d, w):
            pre = tf.expand_dims(z, 0) + tf.linalg.matmul(d, w)
            return rest(tf.reshape(pre, (-1, units)), training=False)

        return compiled

    fused, plain = compile_tail(True), compile_tail(False)
    chosen = [fused]

    def tail(z, d, w):
        try:
            return chosen[0](z, d, w).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            if chosen[0] is plain:
                raise
            chosen[0] = plain  # a layer XLA cannot compile: the plain graph
            return plain(z, d, w).numpy()

    tail.compiled = fused  # lets tests count traces
    return dense, tail, _flops_per_row(rest)


def _first_dense(model):
    """The network's only entry layer, checked to be a plain float32 Dense."""
    import keras

    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or len(inputs[0].shape) != 2:
        raise IncrementalUnavailable("the network must take one 2-D input")
    if isinstance(model, keras.Sequential):
        consumers = model.layers[:1]
    else:
        consumers = [
            layer
            for layer, layer_inputs in _graph(model)
            if any(tensor is inputs[0] for tensor in layer_inputs)
        ]
    if len(consumers) != 1:
        raise IncrementalUnavailable(
            "the network's input must feed exactly one layer, a Dense layer"
        )
    (dense,) = consumers
    if type(dense) is not keras.layers.Dense:
        raise IncrementalUnavailable(
            f"the network's first layer is {type(dense).__name__}, not Dense"
        )
    if getattr(dense, "lora_enabled", False) or getattr(
        dense, "quantization_mode", None
    ):
        raise IncrementalUnavailable("its first Dense layer is LoRA or quantized")
    if dense.compute_dtype != "float32":
        raise IncrementalUnavailable(
            f"its first Dense layer computes in {dense.compute_dtype}, not float32"
        )
    return dense


def _graph(model) -> list:
    """(layer, input tensors) of every call in the model's graph, walking back
    from its outputs (the model's own tensors, so unpickled models too)."""
    from ._compat import layer_inputs

    calls, seen, pending = [], set(), list(model.outputs)
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        produced = layer_inputs(tensor)
        if produced is None:
            continue
        calls.append(produced)
        pending.extend(produced[1])
    return calls


def _flops_per_row(model) -> int:
    """Operations per row: 2 per kernel weight, 1 per other layer's output."""
    import math

    total = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            total += 2 * math.prod(kernel.shape)
            continue
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            continue
        total += math.prod(d or 1 for d in shape)
    return int(total)


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


# --- the preprocessing: which model columns each group owns ------------------------


class ModelRows:
    """``T``: the float32 rows the network takes for raw rows (picklable).

    Transforms in row blocks that fit an eighth of the memory budget, into
    one float32 array (or ``out``): the preprocessing's own float64 copies
    never exist for all rows at once. Only valid for row-wise preprocessing,
    which :func:`column_owners` checks first.
    """

    def __init__(self, located, n_raw: int, n_model: int):
        self.located = located
        self.rows_per_block = rows_within_budget(8 * (n_raw + 2 * n_model), share=1 / 8)

    def __call__(self, X, out=None) -> np.ndarray:
        for start in range(0, len(X), self.rows_per_block):
            rows = slice(start, min(start + self.rows_per_block, len(X)))
            block = self.one_call(_rows(X, rows))
            if out is None:
                out = np.empty((len(X), block.shape[1]), dtype=np.float32)
            out[rows] = block
        return out

    def one_call(self, X) -> np.ndarray:
        """All rows of ``X`` through the preprocessing in one call."""
        X_model = self.located.to_model_input(X)
        if hasattr(X_model, "toarray"):  # sparse, from e.g. OneHotEncoder
            X_model = X_model.toarray()
        return np.asarray(X_model, dtype=np.float32)


def perturbed_copy(X_sub, groups, perturbation, repeat: int, selected=None):
    """A copy of ``X_sub`` with the groups in ``selected`` (default: all)
    perturbed as in ``repeat``, built one group at a time."""
    selected = range(len(groups)) if selected is None else selected
    return replaced(
        X_sub, groups, {g: perturbation.values(X_sub, g, repeat) for g in selected}
    )


def replaced(X_sub, groups, values: dict):
    """A copy of ``X_sub`` with the columns of the groups in ``values`` replaced."""
    if hasattr(X_sub, "iloc"):
        import pandas as pd

        data = {j: X_sub.iloc[:, j].array for j in range(X_sub.shape[1])}
        for group, group_values in values.items():
            for j, column in zip(groups[group], group_values):
                data[j] = column
        frame = pd.DataFrame(data, index=X_sub.index, copy=False)
        frame.columns = X_sub.columns
        return frame
    out = np.array(X_sub, copy=True)
    for group, group_values in values.items():
        out[:, groups[group]] = group_values
    return out


def _columns_of(X, groups, group: int):
    """Group ``group``'s columns of X, as ``Perturbation.values`` gives them."""
    if hasattr(X, "iloc"):
        return [X.iloc[:, j].array for j in groups[group]]
    return X[:, groups[group]]


def column_owners(transform, X_sub, groups, all_perturbed, base):
    """The group each model column follows (-1: none moved), checked on the data.

    ``transform`` is a :class:`ModelRows`, ``base`` is ``transform(X_sub)``
    and ``all_perturbed`` X_sub with every group perturbed as in repeat 0.
    Owners are found by group testing: for every bit of the group number, a
    copy with the groups whose bit is set perturbed, and a copy with the
    others perturbed. A column that moves in exactly one copy of each pair
    belongs to the group those bits spell; one that moves in both depends on
    two groups. The tests run on a block of rows holding, for every model
    column that moves when all groups are perturbed, a row where it moves.

    Returns
    -------
    owners : ndarray of int, shape (n_model_columns,)
    all_moved : ndarray of float32
        ``transform(all_perturbed)``.

    Raises
    ------
    IncrementalUnavailable
        The preprocessing depends on the batch or mixes groups.
    """
    n_rows, n_groups = len(base), len(groups)
    if n_rows >= 2:  # row-wise: the rows do not depend on the rest of the batch
        half = n_rows // 2
        for rows in (slice(0, half), slice(half, None)):
            if not np.array_equal(transform(_rows(X_sub, rows)), base[rows]):
                raise IncrementalUnavailable(
                    "the preprocessing is not row-wise: transforming the rows "
                    "in two parts changes them"
                )

    all_moved = transform(all_perturbed)
    moving = all_moved != base
    moved_at_all = moving.any(axis=0)
    if not moved_at_all.any():  # nothing moves at repeat 0: nothing to own yet
        return np.full(base.shape[1], -1), all_moved
    block = np.unique(np.argmax(moving[:, moved_at_all], axis=0))
    del moving
    X_block, perturbed_block = _rows(X_sub, block), _rows(all_perturbed, block)
    base_block = base[block]

    def moved(selected) -> np.ndarray:
        values = {g: _columns_of(perturbed_block, groups, g) for g in selected}
        copy = replaced(X_block, groups, values)
        return np.any(transform.one_call(copy) != base_block, axis=0)

    n_bits = (n_groups - 1).bit_length()
    everyone = range(n_groups)
    inside = np.array(
        [moved([g for g in everyone if g >> t & 1]) for t in range(n_bits)]
    )
    outside = np.array(
        [moved([g for g in everyone if not g >> t & 1]) for t in range(n_bits)]
    )
    if n_bits == 0:
        owners = np.where(moved_at_all, 0, -1)
    else:
        either = inside | outside
        if np.any(inside & outside) or np.any(either.any(axis=0) != either.all(axis=0)):
            raise IncrementalUnavailable(
                "the preprocessing is not column-separable: a model column moves "
                "with the columns of more than one group"
            )
        bits = (inside * (1 << np.arange(n_bits))[:, np.newaxis]).sum(axis=0)
        owners = np.where(either.any(axis=0), bits, -1)
        if np.any(owners >= n_groups) or np.any(moved_at_all != (owners >= 0)):
            raise IncrementalUnavailable(
                "the preprocessing is not column-separable: perturbing all groups "
                "at once moves other model columns than perturbing them apart"
            )
    # Whole slices transformed directly against the same slices assembled
    # from parts, block by block.
    for group in sorted({0, n_groups - 1}):
        columns = owners == group
        for start in range(0, n_rows, transform.rows_per_block):
            rows = slice(start, min(start + transform.rows_per_block, n_rows))
            values = {group: _columns_of(_rows(all_perturbed, rows), groups, group)}
            direct = transform.one_call(replaced(_rows(X_sub, rows), groups, values))
            if not np.array_equal(
                direct, np.where(columns, all_moved[rows], base[rows])
            ):
                raise IncrementalUnavailable(
                    "the preprocessing is not column-separable: a perturbed slice "
                    "transformed directly differs from the slice assembled "
                    "column by column"
                )
    return owners, all_moved


def _rows(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _moved_columns(transformed: np.ndarray, base: np.ndarray) -> np.ndarray:
    return np.any(transformed != base, axis=0)


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
    # At once: the model rows of X and of one perturbed copy (float32), which
    # column moved (bool), and the perturbed copy of the raw rows.
    needed = n_rows * (9 * n_model + _raw_bytes_per_row(X_sub))
    if needed > budget_bytes():
        raise IncrementalUnavailable(
            f"it needs about {needed / 2**20:,.0f} MiB at once (two model-ready "
            "copies of X and a raw one), more than the memory budget of "
            f"{budget_bytes() / 2**20:,.0f} MiB; raise it with "
            "sklearn.set_config(working_memory=<MiB>)"
        )
    transform = ModelRows(located, n_raw, n_model)
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
    )


def _raw_bytes_per_row(X) -> float:
    if hasattr(X, "memory_usage"):
        return float(X.memory_usage(index=False, deep=True).sum()) / max(1, len(X))
    return float(X.itemsize * X.shape[1])


# --- the slices --------------------------------------------------------------------


class IncrementalSlices:
    """Scores of (group, repeat) slices through rank-k updates of the first layer.

    A chunk is one repeat and a few groups; :meth:`prepare` runs the network on
    it (rank-k updates and the compiled tail), :meth:`score` scores each slice
    through scikit-learn's scorer. Picklable: a dask worker receives it once
    and rebuilds the compiled tail and the scoring stand-ins itself.
    """

    def __init__(
        self,
        *,
        located,
        transform,
        scorer,
        X_sub,
        y,
        sample_weight,
        perturbation,
        groups,
        n_repeats: int,
        base,
        owners,
        first_moved,
        kernel,
        bias,
        rows_per_call: int,
    ):
        self.located = located
        self.transform = transform
        self.scorer = scorer
        self.X_sub, self.y, self.sample_weight = X_sub, y, sample_weight
        self.perturbation = perturbation
        self.groups = groups
        self.n_repeats = n_repeats
        self.base = base
        self.owners = owners
        self.pre_activation = (base.astype(np.float64) @ kernel + bias).astype(
            np.float32
        )
        self.kernel = kernel.astype(np.float32)
        self.rows_per_call = rows_per_call
        self.placeholder = scorer_only_predicts(scorer)
        self.columns = [np.flatnonzero(owners == g) for g in range(len(groups))]
        self._init_local()
        first_moved -= base  # in place: the change of repeat 0
        self._changes = {0: first_moved}

    def _init_local(self):
        self._lock = threading.Lock()
        self._context = None
        self._changes = {}
        self._tail = None

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_lock", "_context", "_changes", "_tail"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_local()

    @property
    def context(self) -> ScoringContext:
        if self._context is None:
            self._context = ScoringContext.from_located(self.located)
        return self._context

    # -- work units ------------------------------------------------------------------
    @property
    def slices_per_call(self) -> int:
        """Slices per call of the tail: as many whole slices as fit."""
        per_call = max(1, self.rows_per_call // len(self.base))
        return min(per_call, len(self.groups))

    def chunks(self):
        """(repeat, groups) chunks, repeat by repeat, groups of similar width
        together (a call pads every update to its widest group)."""
        per_call = self.slices_per_call
        by_width = sorted(range(len(self.groups)), key=lambda g: len(self.columns[g]))
        for repeat in range(self.n_repeats):
            for start in range(0, len(by_width), per_call):
                yield repeat, by_width[start : start + per_call]

    def prepare(self, chunk):
        """Raw network output of every slice of ``chunk``, shape (m, n, ...).

        Every call gets the same shape, so the compiled tail compiles once:
        the last chunk of a repeat is padded with empty slices, and the
        update's width with zero columns up to a power of two.
        """
        repeat, groups = chunk
        change = self._change(repeat)
        if self._tail is None:
            self._tail = split_network(self.located.model).tail
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
                d[i, :, : len(columns)] = change[rows][:, columns]
                w[i, : len(columns)] = self.kernel[columns]
            raw = self._tail(self.pre_activation[rows], d, w)
            raw = raw.reshape(n_slices, n_block, *raw.shape[1:])
            outputs.append(raw[: len(groups)])
        raw = np.concatenate(outputs, axis=1) if len(outputs) > 1 else outputs[0]
        return chunk, raw

    def score(self, prepared) -> list:
        """[((group, repeat), score)] of a prepared chunk."""
        (repeat, groups), raw = prepared
        scores = []
        # The baseline call validated the scorer's parameters (see _engine).
        with config_context(skip_parameter_validation=True):
            for i, group in enumerate(groups):
                scores.append(
                    ((group, repeat), self._score_slice(group, repeat, raw[i]))
                )
        return scores

    def run(self, chunk) -> list:
        return self.score(self.prepare(chunk))

    # -- helpers -----------------------------------------------------------------------
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
                stray = _moved_columns(change, self.base) & (self.owners < 0)
                change -= self.base
                if np.any(stray):
                    raise IncrementalUnavailable(
                        f"model column {int(np.flatnonzero(stray)[0])} moved at repeat "
                        f"{repeat} but with no group at repeat 0"
                    )
                self._changes = {repeat: change}  # one repeat at a time
            return change

    def _score_slice(self, group, repeat, raw):
        if self.placeholder:
            # The scorer only calls the stand-in, which answers for X_sub from
            # the cached output or raises CacheMiss: the rows are never built.
            stand_in = self.context.stand_in(self.X_sub, raw, strict=True)
            try:
                return call_scorer(
                    self.scorer, stand_in, self.X_sub, self.y, self.sample_weight
                )
            except CacheMiss:
                pass
        rows = replaced(
            self.X_sub,
            self.groups,
            {group: self.perturbation.values(self.X_sub, group, repeat)},
        )
        stand_in = self.context.stand_in(rows, raw)
        return call_scorer(self.scorer, stand_in, rows, self.y, self.sample_weight)
