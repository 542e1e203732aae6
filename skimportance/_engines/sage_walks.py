"""SAGE's estimate: sampled (row, order) walks through the coalitions.

sage-importance's ``PermutationEstimator`` rule: each sample is a row of X and
a uniformly drawn order of the feature groups; walking the order, each group's
drop in loss when it joins is recorded. The ends of every walk (the empty
coalition, the full one) are computed once for every row, so the drops of a
walk add up exactly to that row's explained loss. Samples come in fixed
rounds, checked for convergence between rounds.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from .keras_engine import _model_rows

__all__ = ["ROUND_SIZE", "Walk", "end_losses", "sample_walks"]

#: Samples (row, order) drawn per round; convergence is checked between
#: rounds. Fixed, so that the draws and the numbers do not depend on the
#: memory budget or on ``n_jobs``.
ROUND_SIZE = 128


def end_losses(run, engine, background, row_loss, y, batch_size):
    """Per-row losses of the full coalition (the model) and the empty one, and
    the shape of one row's response."""
    method = row_loss.response_method
    if run.located is None:
        response = getattr(run.estimator, method)(run.X)
    else:
        raw = run.located.forward(_model_rows(run.located, run.X), batch_size)
        response = run.located.decode(raw, method)
    response = np.asarray(response)
    shape = response.shape[1:]
    loss_all = _losses(row_loss, y, response)
    n, d = len(run.X), len(run.groups)
    everyone = np.concatenate(run.groups)
    if len(everyone) == run.X.shape[1]:
        # Every column moves: the empty coalition is the background's mean
        # prediction, the same for every row.
        mean = engine.mean_responses(np.zeros(1, int), np.zeros((1, d), bool))
        averaged = np.broadcast_to(mean.reshape(shape), (n, *shape))
    else:
        per_chunk = max(1, engine.rows_per_chunk // len(background))
        averaged = np.concatenate(
            [
                engine.mean_responses(rows, np.zeros((len(rows), d), bool))
                for rows in np.array_split(np.arange(n), -(-n // per_chunk))
            ]
        ).reshape(n, *shape)
    return loss_all, _losses(row_loss, y, averaged), shape


def _losses(row_loss, y, response) -> np.ndarray:
    values = np.asarray(row_loss.function(y, response), dtype=float)
    if values.shape != (len(y),):
        raise ValueError(
            f"The loss {row_loss.name!r} must return one value per row, shape "
            f"({len(y)},); got shape {values.shape}."
        )
    return values


class Walk:
    """Each sampled (row, order)'s drops in loss, feature by feature."""

    def __init__(self, engine, row_loss, y, ends, d):
        self.engine, self.row_loss, self.y = engine, row_loss, y
        loss_all, loss_empty, self.shape = ends
        self.loss_all, self.loss_empty, self.d = loss_all, loss_empty, d

    def __call__(self, rows, orders) -> np.ndarray:
        n_samples, d = len(rows), self.d
        losses = np.empty((n_samples, d + 1))
        losses[:, 0] = self.loss_empty[rows]
        losses[:, d] = self.loss_all[rows]
        if d > 1:
            responses = self.engine.path_responses(rows, orders)
            y_path = np.repeat(self.y[rows], d - 1, axis=0)
            flat = responses.reshape(n_samples * (d - 1), *self.shape)
            losses[:, 1:d] = _losses(self.row_loss, y_path, flat).reshape(
                n_samples, d - 1
            )
        drops = np.empty((n_samples, d))
        drops[np.arange(n_samples)[:, None], orders] = losses[:, :-1] - losses[:, 1:]
        return drops


def sample_walks(walk, rng, n_rows, d, convergence, max_permutations, n_jobs, verbose):
    """(samples (N, d), convergence ratio): rounds until converged or capped.

    Rows are visited in shuffled passes over X (each row once per pass), each
    with its own uniformly drawn order of the features.
    """
    from tqdm.auto import tqdm

    per_sample = max(1, d - 1) * walk.engine.n_background
    per_chunk = max(1, walk.engine.rows_per_chunk // per_sample)
    parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
    pending_rows = np.empty(0, dtype=int)
    collected, ratio = [], np.inf
    with tqdm(
        total=max_permutations, desc="SAGE", unit="perm", disable=not verbose
    ) as bar:
        n_done = 0
        while n_done < max_permutations:
            size = min(ROUND_SIZE, max_permutations - n_done)
            while len(pending_rows) < size:
                pending_rows = np.concatenate([pending_rows, rng.permutation(n_rows)])
            rows, pending_rows = pending_rows[:size], pending_rows[size:]
            orders = np.argsort(rng.random_sample((size, d)), axis=1)
            starts = range(0, size, per_chunk)
            tasks = (
                delayed(walk)(rows[s : s + per_chunk], orders[s : s + per_chunk])
                for s in starts
            )
            for drops in parallel(tasks):
                collected.append(drops)
                bar.update(len(drops))
            n_done += size
            samples = np.concatenate(collected)
            ratio = convergence_ratio(samples)
            bar.set_postfix(ratio=f"{ratio:.3g}")
            if ratio < convergence:
                break
    return samples, ratio


def convergence_ratio(samples: np.ndarray) -> float:
    """Largest standard error over the range of the values (their size for a
    single feature)."""
    if len(samples) < 2:
        return np.inf
    values = samples.mean(axis=0)
    errors = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    spread = values.max() - values.min() if len(values) > 1 else abs(values[0])
    return float(errors.max() / max(spread, 1e-12))
