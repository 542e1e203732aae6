"""The forward passes of probe importance, in blocks that fit the memory budget.

``probe`` decides what to probe (which space, baseline and probe values);
these helpers build the probed rows, a block of inputs at a time, and collect
the model's responses: one-at-a-time probes, profile sweeps over a grid,
occlusion of every row, and sweeps of raw columns through the estimator's own
preprocessing.
"""

from __future__ import annotations

import numpy as np

from ._budget import rows_within_budget

__all__ = [
    "column_of",
    "largest_change",
    "occlusion_changes",
    "probe_responses",
    "profile_curves",
    "raw_curves",
    "raw_sweep",
]


def column_of(space, base_row, j: int):
    """Column ``j`` of the one-row ``base_row``, as an array."""
    return base_row.iloc[:, j].array if space.frame else np.asarray(base_row)[:, j]


def raw_sweep(space, base_row, j: int, kind: str, grid_resolution: int):
    """The raw values column ``j`` takes: its categories, else one standard
    deviation above the baseline (delta) or its quantiles (profile)."""
    if space.categorical[j]:
        return space.levels(j)
    if kind == "delta":
        centre = float(np.asarray(column_of(space, base_row, j), dtype=float)[0])
        return np.array([centre + space.spread(j)])
    return space.quantiles(j, grid_resolution)


def raw_curves(respond, space, base_row, sweeps, mapping) -> list[np.ndarray]:
    """The response along each column's sweep, other columns at the baseline;
    as many columns per forward pass as the memory budget allows."""
    row_bytes = 8 * (mapping.n_raw + len(mapping.model_names))
    rows_per_block = rows_within_budget(row_bytes)
    curves, block, block_rows = [], [], 0

    def flush():
        if not block:
            return
        rows = space.concat(
            [
                space.with_column(space.repeat(base_row, len(values)), j, values)
                for j, values in block
            ]
        )
        response = respond(rows).astype(np.float64)
        start = 0
        for _, values in block:
            curves.append(response[start : start + len(values)])
            start += len(values)
        block.clear()

    for j, values in enumerate(sweeps):
        if block and block_rows + len(values) > rows_per_block:
            flush()
            block_rows = 0
        block.append((j, values))
        block_rows += len(values)
    flush()
    return curves


def largest_change(changes: np.ndarray) -> np.ndarray:
    """Per output, the signed change of largest magnitude over the probes."""
    position = np.argmax(np.abs(changes), axis=0)
    return changes[position, np.arange(changes.shape[1])]


def feature_blocks(n_features: int, rows_per_feature: int, width: int):
    """Slices of features whose rows (float64) together fit the memory budget."""
    step = rows_within_budget(8 * rows_per_feature * width)
    for start in range(0, n_features, step):
        yield slice(start, min(start + step, n_features))


def probe_responses(respond, base: np.ndarray, point: np.ndarray, blocks) -> np.ndarray:
    """Response at ``base`` with each block of inputs in turn set to ``point``."""
    n_blocks, width = len(blocks), len(base)
    results = []
    for chosen in feature_blocks(n_blocks, 1, width):
        indices = np.arange(n_blocks)[chosen]
        rows = np.tile(base, (len(indices), 1))
        for row, b in enumerate(indices):
            rows[row, blocks[b]] = point[blocks[b]]
        results.append(respond(rows))
    return np.concatenate(results, axis=0)


def profile_curves(respond, base: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Response along each input's grid, shape (n_features, n_points, n_outputs)."""
    n_features, n_points = grid.shape
    results = []
    for block in feature_blocks(n_features, n_points, n_features):
        features = np.arange(n_features)[block]
        rows = np.tile(base, (len(features), n_points, 1))
        rows[np.arange(len(features)), :, features] = grid[features]
        flat = respond(rows.reshape(-1, n_features))
        results.append(flat.reshape(len(features), n_points, -1))
    return np.concatenate(results, axis=0)


def occlusion_changes(respond, X_model: np.ndarray, base: np.ndarray, blocks):
    """``f(x) - f(x with block i := base)``, shape (n_samples, n_blocks, n_outputs)."""
    original = respond(X_model).astype(np.float64)
    changes = np.empty((len(X_model), len(blocks), original.shape[1]))
    # One block per pass: only one perturbed copy of X exists at a time.
    occluded = np.array(X_model, dtype=np.float64)
    for i, block in enumerate(blocks):
        occluded[:, block] = base[block]
        changes[:, i, :] = original - respond(occluded)
        occluded[:, block] = X_model[:, block]
    return changes
