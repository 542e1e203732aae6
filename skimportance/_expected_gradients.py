"""Expected gradients (Erion et al. 2021): integrated gradients from every
background row, averaged.

For an explained row x and each background row b, integrated gradients along
the straight line from b to x (Gauss-Legendre quadrature, as
``gradient_importance`` does); the attribution is their mean over b. The
attributions of a row add up to ``f(x) - mean_b f(b)``, up to the quadrature
error: the same total as interventional Shapley values. Erion et al. draw one
(b, point on the path) pair per sample; here every background row and every
quadrature node is used, so nothing is random.
"""

from __future__ import annotations

import numpy as np

__all__ = ["expected_gradients"]


def expected_gradients(model, n_steps: int, batch_size: int | None) -> np.ndarray:
    """Attributions (n_x, n_features, n_outputs) on ``model``'s feature blocks."""
    from ._budget import MAX_ROWS_PER_CALL, rows_within_budget
    from ._gradient_tape import GradientRunner

    located, outputs = model.located, model.outputs
    X = np.asarray(model.X, dtype=np.float64)
    B = np.asarray(model.background, dtype=np.float64)
    n_cols = X.shape[1]
    if batch_size is None:
        row_bytes = 2 * located.bytes_per_row + 8 * n_cols * (2 + len(outputs.columns))
        batch_size = rows_within_budget(row_bytes, max_rows=MAX_ROWS_PER_CALL)
    gradients = GradientRunner(located, outputs, batch_size)
    # As gradient_importance: refuse an input the output moves with but no
    # gradient reaches (a cast to integers, an Embedding lookup).
    from .gradient import _check_no_silent_zeros

    names = located.model_feature_names()
    rows = np.vstack([X, B])  # more than one row, to see the output move
    _check_no_silent_zeros(located, outputs, rows, gradients(rows), names)
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas, weights = (nodes + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
    # One gradient call holds n_steps points per (row, background row) pair.
    pairs_per_call = max(1, batch_size // n_steps)
    per_column = np.empty((len(X), n_cols, len(outputs.columns)))
    for i, x in enumerate(X):
        total = np.zeros((n_cols, len(outputs.columns)))
        for start in range(0, len(B), pairs_per_call):
            base = B[start : start + pairs_per_call]
            diff = x - base  # (n_b, n_cols)
            path = base + alphas[:, None, None] * diff[None]  # (steps, n_b, cols)
            grads = gradients(path.reshape(-1, n_cols), chunked=False)
            grads = grads.reshape(n_steps, len(base), n_cols, -1)
            average = np.tensordot(weights, grads, axes=(0, 0))  # (n_b, cols, out)
            total += (diff[:, :, None] * average).sum(axis=0)
        per_column[i] = total / len(B)
    return np.stack(
        [per_column[:, block].sum(axis=1) for block in model.blocks], axis=1
    )
