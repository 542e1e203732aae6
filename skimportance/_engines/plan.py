"""Every random draw of a permutation-style run, and what perturbs a slice.

A :class:`PermutationPlan` holds scikit-learn's draws for a run (the rows of
``max_samples``, one row order per repeat), compactly; a :class:`Perturbation`
says what replaces a group's columns in one (group, repeat) slice:
:class:`ShuffledColumns` for permutation importance, conditional draws
(``conditional_draws``) for conditional importance. The engines
(``generic_engine``, ``keras_engine``, ``incremental``) consume both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.random import sample_without_replacement

from .._budget import check_bookkeeping

__all__ = [
    "PermutationPlan",
    "Perturbation",
    "ShuffledColumns",
    "check_plan_size",
    "draw_permutation_plan",
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
    check_bookkeeping("n_repeats", n_repeats, nbytes)


def _index_dtype(n_rows: int):
    return np.uint16 if n_rows <= 2**16 else np.uint32


# --- perturbations --------------------------------------------------------------


class Perturbation(Protocol):
    """What replaces a group's columns in one (group, repeat) slice.

    A perturbation whose new values are the same columns' values from other
    rows may say so with ``moves_rows_only = True``: the engines then do not
    check those values again (finite, unchanged by the network's dtype).
    Without it, perturbed rows are checked like any rows.
    """

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
    moves_rows_only = True  # a shuffle: values the run already checked

    def values(self, X_sub, group: int, repeat: int):
        order, columns = self.plan.permutation(repeat), self.groups[group]
        if hasattr(X_sub, "iloc"):
            return [X_sub.iloc[:, j].array.take(order) for j in columns]
        return X_sub[np.ix_(order, columns)]

    def many_values(self, X_sub, groups, repeat: int) -> list:
        """``values`` of several groups of an array, from one gather of their
        columns: a row's columns are read together, not one cache miss per
        row and column."""
        columns = [np.asarray(self.groups[g]) for g in groups]
        gathered = X_sub[np.ix_(self.plan.permutation(repeat), np.concatenate(columns))]
        bounds = np.cumsum([0] + [len(c) for c in columns])
        return [gathered[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
