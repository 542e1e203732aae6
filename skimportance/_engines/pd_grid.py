"""Partial dependence at the data points, for every feature set at once.

The H-statistic (``interactions``) needs, for a feature set ``S`` and rows
``x_1..x_n``, the grid ``G[s, t] = f(x_t with S := x_s[S])``: its row means
are the partial dependence ``PD_S(x_s)``, its column means the partial
dependence on the complement, ``PD_{-S}(x_t)``, and its diagonal ``f`` itself.
A grid has n * n rows, so it is built a block of ``s`` at a time, within the
memory budget, and reduced at once; only the means are kept.

Three engines build the same grids:

* :class:`ExactGrid`, with a Keras model inside: the block's raw rows through
  the preprocessing and batched forward passes;
* :class:`GenericGrid`, for any other estimator: ``predict`` (or
  ``predict_proba``) on the block's raw rows;
* :class:`IncrementalGrid`, where the network starts with a Dense layer and
  the preprocessing is column-separable (checked on the data, as for
  permutation importance): setting ``S`` changes the first layer's
  pre-activation by a rank-|S| term,
  ``z(x_t with S := x_s[S]) = z(x_t) + (T(x_s) - T(x_t))[M] @ W[M]`` (``M`` the
  model columns of ``S``), an outer sum of a term of row t and a term of row
  s. So the first layer is computed once, and only the rest of the network
  runs on the grid, with no preprocessing at all.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from .._budget import MAX_ROWS_PER_CALL, rows_within_budget
from .._replace import stack_replaced
from .network_split import split_network
from .separability import ModelRows, column_owners, perturbed_copy

__all__ = [
    "ExactGrid",
    "GenericGrid",
    "GridMeans",
    "IncrementalGrid",
    "grid_means",
    "incremental_grid",
]


@dataclass
class GridMeans:
    """The reductions of one set's grid, each of shape (n_rows, n_outputs)."""

    rows: np.ndarray  # PD_S at every row: the grid's row means
    columns: np.ndarray  # PD_{-S} at every row: its column means
    diagonal: np.ndarray  # f at every row


def grid_rows(X_sub, columns, block) -> object:
    """Raw rows of a block of the grid: for each ``s`` in ``block``, every row
    of ``X_sub`` with ``columns`` set to row ``s``'s values."""
    n = len(X_sub)

    def row_values(s):
        if hasattr(X_sub, "iloc"):
            repeated = np.full(n, s)
            return [X_sub.iloc[:, j].array.take(repeated) for j in columns]
        return np.broadcast_to(X_sub[s, columns], (n, len(columns)))

    changes = ([(columns, row_values(s))] for s in block)
    return stack_replaced(X_sub, len(block), changes)


class _Grid:
    """What every engine shares: blocks of ``s`` sized to the budget."""

    n_rows: int
    slices_per_block: int

    def blocks(self):
        step = self.slices_per_block
        for start in range(0, self.n_rows, step):
            yield np.arange(start, min(start + step, self.n_rows))

    def values(self, set_index: int, block) -> np.ndarray:  # (len(block), n, q)
        raise NotImplementedError


class GenericGrid(_Grid):
    """Grids through the estimator's own response method (any estimator)."""

    def __init__(self, estimator, response, X_sub, sets):
        self.estimator, self.response = estimator, response
        self.X_sub, self.sets, self.n_rows = X_sub, sets, len(X_sub)
        # A grid row costs its raw values and a few float64 copies in the
        # estimator: kept well inside the budget.
        per_row = 8 * (4 * X_sub.shape[1] + 8)
        rows = rows_within_budget(per_row, share=0.25, max_rows=MAX_ROWS_PER_CALL)
        self.slices_per_block = max(1, rows // self.n_rows)

    def values(self, set_index, block):
        rows = grid_rows(self.X_sub, self.sets[set_index], block)
        out = self.response(self.estimator, rows)
        return out.reshape(len(block), self.n_rows, -1)


class ExactGrid(_Grid):
    """Grids through the preprocessing and the whole network, batched."""

    def __init__(self, located, response, X_sub, sets, batch_size=None):
        self.located, self.response = located, response
        self.X_sub, self.sets, self.n_rows = X_sub, sets, len(X_sub)
        self.batch_size = batch_size or located.rows_per_call
        per_row = 8 * (X_sub.shape[1] + located.n_model_features) + (
            located.bytes_per_row
        )
        rows = rows_within_budget(per_row, share=0.5, max_rows=MAX_ROWS_PER_CALL)
        self.slices_per_block = max(1, rows // self.n_rows)

    def values(self, set_index, block):
        rows = grid_rows(self.X_sub, self.sets[set_index], block)
        X_model = self.located.to_model_input(rows)
        if hasattr(X_model, "toarray"):  # sparse, from e.g. OneHotEncoder
            X_model = X_model.toarray()
        raw = self.located.forward(X_model, self.batch_size)
        return self.response(raw).reshape(len(block), self.n_rows, -1)


class IncrementalGrid(_Grid):
    """Grids as rank-|S| updates of the first Dense layer, then the tail."""

    def __init__(self, located, response, base, owners, split, batch_size=None):
        self.located, self.response = located, response
        self.base, self.n_rows, self.owners = base, len(base), owners
        self.pre_activation = base.astype(np.float64) @ split.kernel + split.bias
        self.kernel64 = split.kernel
        self.outer_tail = split.outer_tail
        self.columns = []
        # Blocks of equal size (the last one is padded to it), as large as a
        # call of the network allows.
        most = max(
            1, min((batch_size or located.rows_per_call) // self.n_rows, self.n_rows)
        )
        n_blocks = -(-self.n_rows // most)
        self.slices_per_block = -(-self.n_rows // n_blocks)

    def with_sets(self, sets) -> IncrementalGrid:
        """This grid for ``sets`` (tuples of features, positions in the groups
        the owners were found for)."""
        grid = copy.copy(self)
        # The model columns each set moves: those its features own.
        grid.columns = [np.flatnonzero(np.isin(self.owners, s)) for s in sets]
        return grid

    def values(self, set_index, block):
        # z(x_t with S := x_s[S]) = z_t - T(x_t)[M] W[M] + T(x_s)[M] W[M]: an
        # outer sum of a row term and a slice term, so no rank-k product per
        # grid row at all.
        columns = self.columns[set_index]
        moved = self.base[:, columns].astype(np.float64) @ self.kernel64[columns]
        rows = (self.pre_activation - moved).astype(np.float32)
        # Every call has the same shape (padded slices), so the compiled tail
        # compiles once per run.
        slices = np.zeros((self.slices_per_block, rows.shape[1]), dtype=np.float32)
        slices[: len(block)] = moved[block]
        raw = self.outer_tail(rows, slices)[: len(block) * self.n_rows]
        return self.response(raw).reshape(len(block), self.n_rows, -1)


def grid_means(engine, n_sets: int, *, n_jobs=None, bar=None) -> list[GridMeans]:
    """Every set's :class:`GridMeans`, block by block.

    Blocks run in threads (the network and NumPy release the GIL), built as
    joblib asks for them, so only a few exist at once.
    """
    n = engine.n_rows
    tasks = [(k, block) for k in range(n_sets) for block in engine.blocks()]
    row_means = [[None] * n for _ in range(n_sets)]
    column_sums = [None] * n_sets
    diagonal = [[None] * n for _ in range(n_sets)]

    def run(k, block):
        return k, block, engine.values(k, block)

    parallel = Parallel(n_jobs=n_jobs, backend="threading", return_as="generator")
    for k, block, values in parallel(delayed(run)(k, b) for k, b in tasks):
        values = values.astype(np.float64)
        for i, s in enumerate(block):
            row_means[k][s] = values[i].mean(axis=0)
            diagonal[k][s] = values[i, s]
        # Summed block after block in block order (the generator keeps the
        # order), so the means do not depend on n_jobs.
        partial = values.sum(axis=0)
        column_sums[k] = partial if column_sums[k] is None else column_sums[k] + partial
        if bar is not None:
            bar.update(len(block))
    return [
        GridMeans(np.stack(row_means[k]), column_sums[k] / n, np.stack(diagonal[k]))
        for k in range(n_sets)
    ]


@dataclass(frozen=True)
class _Rolled:
    """Every group's columns taken from the next row: a perturbation that
    moves every model column that varies over the rows at all."""

    moves_rows_only = True

    groups: list

    def values(self, X_sub, group, repeat):
        order = np.roll(np.arange(len(X_sub)), 1)
        if hasattr(X_sub, "iloc"):
            return [X_sub.iloc[:, j].array.take(order) for j in self.groups[group]]
        return X_sub[np.ix_(order, self.groups[group])]


def incremental_grid(located, response, X_sub, groups, batch_size=None):
    """An :class:`IncrementalGrid` (give it its sets with ``with_sets``), or
    :class:`IncrementalUnavailable` saying why the network or the
    preprocessing does not allow one. ``groups``: each feature's raw columns.
    """
    split = split_network(located.model)
    n_model = split.kernel.shape[0]
    transform = ModelRows(located, X_sub.shape[1], n_model)
    base = transform(X_sub)
    moved = perturbed_copy(X_sub, groups, _Rolled(groups), 0)
    owners, _ = column_owners(transform, X_sub, groups, moved, base)
    return IncrementalGrid(located, response, base, owners, split, batch_size)
