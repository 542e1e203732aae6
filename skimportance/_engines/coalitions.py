"""Coalition values for SAGE: predictions averaged over a background.

A *coalition* is a set of feature groups kept at the explained row's values;
every other group is *moved*, i.e. taken from a background row (marginal
imputation). The value of coalition S at row x is the model's prediction
averaged over the background rows b::

    f_S(x) = mean_b f(x_S, b_{not S})

SAGE walks through the coalitions of a permutation of the groups, one group
joining at a time, so the engines answer for *paths*: for s (row, order)
samples, the mean responses of the d - 1 proper coalitions S_1 ... S_{d-1}
along each order (S_0, all moved, and S_d, none moved, are the same for
every order and computed once by the caller).

Two engines give the same numbers:

* :class:`ExactCoalitions` builds every (row, coalition, background row)
  combination as a raw row, runs it through the estimator (for a Keras model,
  its preprocessing and batched forward pass) and averages;
* :class:`IncrementalCoalitions`, for a Keras network whose first layer is
  Dense behind column-separable preprocessing, computes each group's share
  of the first layer once, for the rows and for the background, so a
  group joining the coalition adds a rank-k update (its rows' share minus the
  background's) to the pre-activations; only the rest of the network runs
  on the combinations.
"""

from __future__ import annotations

import weakref

import numpy as np

from .._budget import budget_bytes, rows_within_budget
from .._validation import values_already_checked
from .network_split import IncrementalUnavailable, split_network
from .separability import ModelRows, column_owners, replaced

__all__ = [
    "AUTO_MIN_COLUMNS",
    "ROWS_PER_CALL",
    "ExactCoalitions",
    "IncrementalCoalitions",
    "IncrementalUnavailable",
    "path_masks",
]


def path_masks(orders: np.ndarray) -> np.ndarray:
    """Coalitions S_1 ... S_{d-1} along each order, shape (s, d - 1, d), bool.

    ``masks[i, k, g]``: group g is among the first k + 1 of ``orders[i]``.
    """
    n_samples, d = orders.shape
    rank = np.empty_like(orders)
    rank[np.arange(n_samples)[:, None], orders] = np.arange(d)
    return rank[:, None, :] <= np.arange(d - 1)[None, :, None]


class ExactCoalitions:
    """Mean responses by building every combination's raw row.

    Parameters
    ----------
    predict : callable
        ``predict(rows) -> responses`` for raw rows (a DataFrame when X is
        one): the estimator's response method, or the Keras model's
        preprocessing, forward pass and decoding.
    X, background : ndarray or DataFrame
        The explained rows and the background rows, same columns.
    groups : list of ndarray
        Raw column positions of each group; columns in no group always keep
        the explained row's values.
    bytes_per_row : float
        What one combination row costs while it is predicted.
    """

    def __init__(self, predict, X, background, groups, bytes_per_row: float):
        self.predict = predict
        self.X = X
        self.background = background
        self.groups = groups
        self.n_background = len(background)
        n_columns = X.shape[1]
        # Group of each column; columns in no group get an extra, always-kept one.
        self.column_group = np.full(n_columns, len(groups))
        for g, columns in enumerate(groups):
            self.column_group[columns] = g
        self.bytes_per_row = bytes_per_row
        if hasattr(X, "iloc"):
            import pandas as pd

            # One array per column holding the rows then the background, so a
            # combination row is one `take` per column, whatever its dtype.
            self._stacked = [
                pd.concat(
                    [X.iloc[:, j], background.iloc[:, j]], ignore_index=True
                ).array
                for j in range(n_columns)
            ]

    @property
    def rows_per_chunk(self) -> int:
        """Combination rows that fit half the memory budget."""
        return rows_within_budget(self.bytes_per_row, share=0.5)

    def mean_responses(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Mean over the background of the responses, one per (row, mask).

        ``rows`` (k,) positions in X, ``masks`` (k, d) the groups kept.
        """
        kept = np.concatenate([masks, np.ones((len(masks), 1), bool)], axis=1)
        kept = kept[:, self.column_group]  # (k, n_columns)
        combined = self._combine(kept, rows)
        # Only values of X and of the (checked) background are combined.
        with values_already_checked():
            responses = np.asarray(self.predict(combined))
        responses = responses.reshape(len(rows), self.n_background, -1)
        return responses.astype(np.float64).mean(axis=1)

    def path_responses(self, rows: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """Mean responses of S_1 ... S_{d-1} along each order, (s, d - 1, out)."""
        masks = path_masks(orders)
        n_samples, n_steps, d = masks.shape
        out = self.mean_responses(
            np.repeat(rows, n_steps), masks.reshape(n_samples * n_steps, d)
        )
        return out.reshape(n_samples, n_steps, -1)

    def _combine(self, kept, rows):
        """The (row, coalition, background row) combinations, background row
        fastest: kept columns from the row, the others from the background."""
        m = self.n_background
        if not hasattr(self.X, "iloc"):
            # Broadcast (k, 1, F) against (1, m, F): one pass over the output.
            combined = np.where(
                kept[:, np.newaxis, :],
                self.X[rows][:, np.newaxis, :],
                self.background[np.newaxis],
            )
            return combined.reshape(len(rows) * m, -1)
        import pandas as pd

        kept = np.repeat(kept, m, axis=0)
        row_of = np.repeat(rows, m)
        background_of = len(self.X) + np.tile(np.arange(m), len(rows))
        data = {
            j: stacked.take(np.where(kept[:, j], row_of, background_of))
            for j, stacked in enumerate(self._stacked)
        }
        frame = pd.DataFrame(data, copy=False)
        frame.columns = self.X.columns
        return frame


class IncrementalCoalitions:
    """Mean responses by rank-k updates of the first Dense layer.

    With ``T`` the preprocessing, ``W`` the first kernel and ``M_g`` the model
    columns group g owns, the first layer of a combination (row x, coalition
    S, background row b) is::

        z = c + sum_{g in S} T(x)[M_g] W[M_g] + sum_{g not in S} T(b)[M_g] W[M_g]

    (``c``: the bias and the model columns no group moves). Each group's
    share is computed once for the rows and for the background; along a
    path, a joining group adds its row share minus its background share, a
    cumulative sum. Build it with :meth:`plan`, which checks the network and
    the preprocessing on the data.
    """

    def __init__(
        self, located, tail, shares_X, shares_background, constant, response_method
    ):
        self.located = located
        self.response_method = response_method
        self.tail = tail
        self.shares_X = shares_X  # (d, n, H) float32
        self.shares_background = shares_background  # (d, m, H) float32
        self.constant = constant  # (n, H) float32: bias + unowned columns
        self.n_background = shares_background.shape[1]
        self.background_sum = shares_background.sum(axis=0)  # (m, H)
        self.units = constant.shape[1]
        self._shape = None

    @classmethod
    def plan(cls, located, X, background, groups, response_method="predict"):
        """The incremental engine for this run, or IncrementalUnavailable."""
        split = split_network(located.model)
        n_model, units = split.kernel.shape
        n, m, d = len(X), len(background), len(groups)
        needed = 4 * units * (d + 1) * (n + m) + 8 * n_model * (n + m)
        if needed > budget_bytes() / 2:
            raise IncrementalUnavailable(
                f"its first-layer shares need about {needed / 2**20:,.0f} MiB, more "
                "than half the memory budget"
            )
        transform = ModelRows(located, X.shape[1], n_model)
        base = transform(X)
        # X with every group taken from the background (row i from background
        # row i mod m): owners found as for the permutation engine.
        wrapped = _rows(background, np.arange(n) % m)
        composite = replaced(
            X,
            groups,
            {g: _columns(wrapped, columns) for g, columns in enumerate(groups)},
        )
        owners, _ = column_owners(transform, X, groups, composite, base)
        base_background = transform(background)
        unowned = owners < 0
        if np.any(base[:, unowned] != base[:1, unowned]) or np.any(
            base_background[:, unowned] != base[:1, unowned]
        ):
            raise IncrementalUnavailable(
                "a model column that no group moves is not constant over the "
                "rows and the background"
            )
        kernel = split.kernel
        shares_X = np.empty((d, n, units), dtype=np.float32)
        shares_background = np.empty((d, m, units), dtype=np.float32)
        for g in range(d):
            columns = owners == g
            shares_X[g] = base[:, columns].astype(np.float64) @ kernel[columns]
            shares_background[g] = (
                base_background[:, columns].astype(np.float64) @ kernel[columns]
            )
        constant = split.bias + base[:, unowned].astype(np.float64) @ kernel[unowned]
        constant = constant.astype(np.float32)
        return cls(
            located, split.tail, shares_X, shares_background, constant, response_method
        )

    @property
    def bytes_per_row(self) -> float:
        """One combination: its pre-activations (built and summed) and the
        rest of the network's activations."""
        return 12 * self.units + self.located.bytes_per_row

    @property
    def rows_per_chunk(self) -> int:
        return rows_within_budget(self.bytes_per_row, share=0.5)

    def mean_responses(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """As :meth:`ExactCoalitions.mean_responses`."""
        kept = masks.astype(np.float32)
        own = np.einsum("kg,gkh->kh", kept, self.shares_X[:, rows])
        moved = np.einsum(
            "kg,gbh->kbh", 1.0 - kept, self.shares_background
        )  # (k, m, H)
        z = (self.constant[rows] + own)[:, None, :] + moved
        return self._mean(z)

    def path_responses(self, rows: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """As :meth:`ExactCoalitions.path_responses`, by cumulative updates."""
        n_samples, d = orders.shape
        steps = orders[:, : d - 1]  # (s, d - 1): the group joining at each step
        joined = self.shares_X[steps, rows[:, None]]  # (s, d - 1, H)
        left = self.shares_background[steps]  # (s, d - 1, m, H)
        updates = joined[:, :, None, :] - left
        np.cumsum(updates, axis=1, out=updates)
        updates += (self.constant[rows][:, None, :] + self.background_sum)[:, None]
        out = self._mean(updates.reshape(n_samples * (d - 1), self.n_background, -1))
        return out.reshape(n_samples, d - 1, -1)

    def _mean(self, z: np.ndarray) -> np.ndarray:
        """Mean response over the background of pre-activations (k, m, H)."""
        k, m, units = z.shape
        flat = z.reshape(k * m, units)
        rest = _rest_function(self.located.model, self.tail)
        # Blocks that stay in cache: past a few thousand rows a call of these
        # narrow layers is slower per row, not faster.
        per_call = min(ROWS_PER_CALL, self.located.rows_per_call)
        raw = [
            rest(np.ascontiguousarray(flat[start : start + per_call], np.float32))
            for start in range(0, len(flat), per_call)
        ]
        raw = np.concatenate(raw) if len(raw) > 1 else raw[0]
        responses = np.asarray(self.located.decode(raw, self.response_method))
        return responses.reshape(k, m, -1).astype(np.float64).mean(axis=1)


#: Rows per network call (measured on 2 cores: 16k rows of a 64-64 MLP run
#: 3-4x faster per row than 64k, whose activations leave the cache).
ROWS_PER_CALL = 16_384

#: ``algorithm="auto"`` runs the incremental engine from this many model
#: columns on. Building a combination's pre-activations costs a few passes
#: over H numbers in numpy, a first Dense layer 2 F H operations in one BLAS
#: call; measured on 2 cores with a 64-64 MLP and 64 background rows: at 10
#: columns the exact engine is twice as fast, at 100 the incremental one
#: three times.
AUTO_MIN_COLUMNS = 32

# One compiled rest of the network per model, dropped with the model.
_RESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _rest_function(model, tail):
    """``rest(z) -> raw output`` for first-layer pre-activations ``z``.

    No rank-k update to add, so not the engines' tail (whose batched update
    and XLA compilation cost more than the layers here): a plain compiled
    function; for a Sequential network the layers called in turn, which
    runs several times faster than the cloned functional model.
    """
    rest = _RESTS.get(model)
    if rest is not None:
        return rest
    import keras
    import tensorflow as tf

    units = model.layers[0].units if isinstance(model, keras.Sequential) else None
    if units is not None:
        first, later = model.layers[0], model.layers[1:]

        def call(z):
            x = first.activation(z)
            for layer in later:
                x = layer(x, training=False)
            return x

    else:
        units = int(tail.rest.inputs[0].shape[-1])

        def call(z):
            return tail.rest(z, training=False)

    compiled = tf.function(
        call,
        input_signature=[tf.TensorSpec((None, units), tf.float32)],
        reduce_retracing=True,
    )

    def rest(z):
        return compiled(z).numpy()

    _RESTS[model] = rest
    return rest


def _rows(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _columns(X, columns):
    if hasattr(X, "iloc"):
        return [X.iloc[:, j].array for j in columns]
    return X[:, columns]
