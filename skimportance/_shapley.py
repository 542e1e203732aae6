"""Coalitions of features and their values, for local attributions.

The value of a coalition S at an explained row x is interventional:
``v(S) = mean over background rows b of f(x_S, b_rest)``, the model on the
background rows with the features in S taken from x. ``v(empty)`` is the
mean prediction on the background and ``v(all)`` is ``f(x)``, whatever x.

* :func:`exact_shapley`: every coalition, weighted by the Shapley formula.
* :func:`sampled_shapley`: antithetic permutation sampling. Each permutation
  walks from the empty coalition to the full one, crediting each feature with
  the change it makes; its reverse is drawn with it, which cancels much of the
  variance. Every walk adds up to ``f(x) - v(empty)`` exactly, so the
  estimate is efficient by construction; the standard error is taken across
  the (permutation, reverse) pairs.
* :func:`occluded`: ``f(x) - v(all but j)`` for each feature j.

Masks are boolean arrays (n_masks, n_features); the values of many masks at
many rows come from :func:`coalition_values`, which stacks (row, mask,
background row) triples into as few forward passes as the memory budget
allows. The permutations are drawn before any row is read, so a row's values
are the same alone as in any batch.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from ._budget import MAX_ROWS_PER_CALL, budget_bytes, rows_within_budget

__all__ = [
    "EXACT_MAX_FEATURES",
    "check_exact_budget",
    "coalition_values",
    "exact_shapley",
    "occluded",
    "sampled_shapley",
]

#: Exact Shapley values up to this many features (or groups). Exact costs
#: 2**p coalitions, each ``len(background)`` forward rows, per explained row:
#: at p = 10 that is 1,024 coalitions, about what the default permutation
#: sampler spends (64 walks of p - 1 inner coalitions is 576 at p = 10 and
#: 1,856 at p = 30); past it exact work doubles with every feature while
#: sampling grows linearly.
EXACT_MAX_FEATURES = 10


def check_exact_budget(n_features: int, n_outputs: int) -> None:
    """Refuse exact Shapley values whose coalition table would not fit the
    memory budget (masks, Shapley weights and one row's values, per
    coalition), before anything is built."""
    n_coalitions = 2**n_features
    nbytes = float(n_coalitions) * (9 * n_features + 8 * n_outputs)
    budget = budget_bytes()
    if nbytes > budget:
        raise ValueError(
            f"Exact Shapley values over {n_features} features need all "
            f"2**{n_features} = {n_coalitions:,} coalitions, about "
            f"{nbytes / 2**20:,.0f} MiB at once, more than the memory budget of "
            f"{budget / 2**20:,.0f} MiB. Use exact=False (permutation sampling), "
            "fewer features (feature_groups), or raise the budget with "
            "sklearn.set_config(working_memory=<MiB>)."
        )


def all_masks(n_features: int) -> np.ndarray:
    """Every coalition but the empty and the full one, (2**p - 2, p)."""
    codes = np.arange(1, 2**n_features - 1, dtype=np.int64)
    return ((codes[:, np.newaxis] >> np.arange(n_features)) & 1).astype(bool)


def shapley_weights(masks: np.ndarray) -> np.ndarray:
    """(n_masks, p) weights W with phi = sum over masks of v(S) W[S] (the
    empty and full coalitions are added by the caller)."""
    p = masks.shape[1]
    size = masks.sum(axis=1)
    weight = np.array([factorial(s) * factorial(p - s - 1) for s in range(p)])
    weight = weight / factorial(p)
    inside = weight[np.clip(size - 1, 0, p - 1)][:, np.newaxis]
    outside = weight[np.clip(size, 0, p - 1)][:, np.newaxis]
    return np.where(masks, inside, -outside)


def coalition_values(model, x_rows, masks, run_blocks) -> np.ndarray:
    """v(S) for each explained row and mask, (n_x, n_masks, n_outputs).

    ``run_blocks(tasks)`` runs a list of (x positions, mask slice) tasks
    (serially or in parallel) through :func:`_block_values`.
    """
    n_b = len(model.background)
    rows_per_call = rows_within_budget(model.row_bytes, max_rows=MAX_ROWS_PER_CALL)
    masks_per_call = max(1, rows_per_call // n_b)
    if masks_per_call >= len(masks):
        x_per_call = max(1, masks_per_call // max(len(masks), 1))
        mask_step = len(masks)
    else:
        x_per_call, mask_step = 1, masks_per_call
    tasks = [
        (x_rows[start : start + x_per_call], slice(m, m + mask_step))
        for start in range(0, len(x_rows), x_per_call)
        for m in range(0, len(masks), mask_step)
    ]
    parts = run_blocks([(model, xs, masks[chosen]) for xs, chosen in tasks])
    values = np.empty((len(x_rows), len(masks), len(model.output_names)))
    for (xs, chosen), part in zip(tasks, parts):
        start = np.searchsorted(x_rows, xs[0]) if len(x_rows) else 0
        values[start : start + len(xs), chosen] = part
    return values


def block_values(model, xs, masks) -> np.ndarray:
    """v(S) for a few rows and masks, in one forward pass."""
    if model.engine is not None:
        return model.mean_responses(xs, masks)
    rows = model.hybrid_rows(xs, masks)
    response = model(rows)
    shape = (len(xs), len(masks), len(model.background), response.shape[1])
    return response.reshape(shape).mean(axis=2)


def exact_shapley(model, x_rows, prediction, base, run_blocks) -> np.ndarray:
    """Exact interventional Shapley values, (n_x, p, n_outputs)."""
    p = len(model.blocks)
    if p == 1:  # one player takes the whole difference
        return (prediction - base)[:, np.newaxis, :]
    masks = all_masks(p)
    weights = shapley_weights(masks)
    values = coalition_values(model, x_rows, masks, run_blocks)
    # The full coalition is f(x) (each feature's last step in), the empty one
    # the background's mean (each feature's first step out).
    last = factorial(p - 1) / factorial(p)
    phi = np.einsum("xmo,mp->xpo", values, weights)
    return phi + last * (prediction[:, np.newaxis, :] - base[np.newaxis, np.newaxis, :])


def draw_permutations(n_features: int, n_permutations: int, random_state) -> np.ndarray:
    """``n_permutations`` orders of the features, each followed by its reverse."""
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    forward = np.stack(
        [rng.permutation(n_features) for _ in range(n_permutations // 2)]
    )
    return np.stack([forward, forward[:, ::-1]], axis=1).reshape(-1, n_features)


def sampled_shapley(model, x_rows, prediction, base, orders, run_blocks):
    """Permutation-sampled Shapley values and their standard errors, both
    (n_x, p, n_outputs)."""
    n_orders, p = orders.shape
    # The inner prefixes of every walk: after 1 .. p-1 features.
    steps = np.arange(1, p)
    masks = np.zeros((n_orders, p - 1, p), dtype=bool)
    for k in steps:
        masks[np.arange(n_orders), k - 1 :, orders[:, k - 1]] = True
    values = coalition_values(model, x_rows, masks.reshape(-1, p), run_blocks)
    values = values.reshape(len(x_rows), n_orders, p - 1, -1)
    n_x, n_out = len(x_rows), values.shape[-1]
    start = np.broadcast_to(base, (n_x, n_orders, 1, n_out))
    end = np.broadcast_to(prediction[:, None, None, :], (n_x, n_orders, 1, n_out))
    walk = np.concatenate([start, values, end], axis=2)  # (n_x, orders, p+1, out)
    gains = np.diff(walk, axis=2)  # the k-th step credits orders[:, k]
    phi = np.empty_like(gains)
    rows = np.arange(n_orders)[:, np.newaxis]
    phi[:, rows, orders] = gains
    pairs = phi.reshape(n_x, n_orders // 2, 2, p, n_out).mean(axis=2)
    estimate = pairs.mean(axis=1)
    error = pairs.std(axis=1, ddof=1) / np.sqrt(pairs.shape[1])
    return estimate, error


def occluded(model, x_rows, prediction, run_blocks) -> np.ndarray:
    """``f(x) - mean_b f(x with feature j from b)``, (n_x, p, n_outputs)."""
    p = len(model.blocks)
    masks = ~np.eye(p, dtype=bool)
    values = coalition_values(model, x_rows, masks, run_blocks)
    return prediction[:, np.newaxis, :] - values
