"""Which model columns each group of raw columns owns, checked on the data.

The incremental engine replaces the model columns a group's raw columns
become, and nothing else: that is only right when the preprocessing is
row-wise (a row's output does not depend on the rest of the batch) and
column-separable (every model column follows the raw columns of at most one
group). :func:`column_owners` checks both on the rows at hand, by
transforming perturbed copies, rather than trusting a list of transformer
types.
"""

from __future__ import annotations

import numpy as np

from .._budget import rows_within_budget
from .._replace import replace_columns
from .network_split import IncrementalUnavailable

__all__ = [
    "ModelRows",
    "column_owners",
    "is_row_wise",
    "identity_owners",
    "moved_columns",
    "perturbed_copy",
    "replaced",
]


class ModelRows:
    """``T``: the float32 rows the network takes for raw rows (picklable).

    Transforms in row blocks that fit an eighth of the memory budget, into
    one float32 array: the preprocessing's own float64 copies never exist for
    all rows at once. Only valid for row-wise preprocessing, which
    :func:`column_owners` checks first.
    """

    def __init__(self, located, n_raw: int, n_model: int):
        self.located = located
        self.rows_per_block = rows_within_budget(8 * (n_raw + 2 * n_model), share=1 / 8)

    def __call__(self, X) -> np.ndarray:
        if len(X) <= self.rows_per_block:
            return self.one_call(X)
        out = None
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


def identity_owners(transform, X_sub, groups, perturbation, n_model: int):
    """The group of each column when the network takes X's columns as they
    are (cast to float32), else None.

    Then model column j is raw column j, and the incremental engine needs no
    model-ready copy of X or of a perturbed X: a slice's change is its
    group's new values minus its old ones, built group by group. Checked on
    the data, in row blocks of the memory budget: every row of X, and a block
    of repeat 0's perturbed rows, must come out of the preprocessing as
    themselves.
    """
    if hasattr(X_sub, "iloc") or X_sub.dtype.kind != "f" or X_sub.shape[1] != n_model:
        return None
    n_rows, step = len(X_sub), transform.rows_per_block
    for start in range(0, n_rows, step):
        block = X_sub[start : start + step]
        if not np.array_equal(transform.one_call(block), block.astype(np.float32)):
            return None
    sample = slice(0, min(n_rows, step))
    perturbed = np.array(X_sub[sample])
    for start in range(0, len(groups), 64):  # 64 groups per gather of rows
        window = range(start, min(start + 64, len(groups)))
        if hasattr(perturbation, "many_values"):
            new = perturbation.many_values(X_sub, window, 0)
        else:
            new = [perturbation.values(X_sub, group, 0) for group in window]
        for group, values in zip(window, new):
            perturbed[:, groups[group]] = values[sample]
    if not np.array_equal(transform.one_call(perturbed), perturbed.astype(np.float32)):
        return None
    owners = np.full(n_model, -1)
    for group, columns in enumerate(groups):
        owners[columns] = group
    return owners


def perturbed_copy(X_sub, groups, perturbation, repeat: int):
    """A copy of ``X_sub`` with every group perturbed as in ``repeat``."""
    return replaced(
        X_sub,
        groups,
        {g: perturbation.values(X_sub, g, repeat) for g in range(len(groups))},
    )


def replaced(X_sub, groups, values: dict):
    """A copy of ``X_sub`` with the columns of the groups in ``values`` replaced."""
    return replace_columns(X_sub, [(groups[g], v) for g, v in values.items()])


def _columns_of(X, groups, group: int):
    """Group ``group``'s columns of X, as ``Perturbation.values`` gives them."""
    if hasattr(X, "iloc"):
        return [X.iloc[:, j].array for j in groups[group]]
    return X[:, groups[group]]


def is_row_wise(transform, X_sub, base=None) -> bool:
    """Whether ``transform`` gives every row of ``X_sub`` the numbers it gives
    it in the whole batch, checked on the data: its two halves transformed
    apart equal ``base``, ``transform(X_sub)``.

    A rank, a quantile or a batch normalisation inside a FunctionTransformer
    is not row-wise: a row's output depends on the rows beside it."""
    if len(X_sub) < 2:
        return True
    if base is None:
        base = transform(X_sub)
    half = len(X_sub) // 2
    return all(
        np.array_equal(transform(_rows(X_sub, rows)), base[rows])
        for rows in (slice(0, half), slice(half, None))
    )


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
    if not is_row_wise(transform, X_sub, base):
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


def moved_columns(transformed: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Which model columns differ from ``base`` in any row."""
    return np.any(transformed != base, axis=0)
