"""SAGE's estimate: sampled (row, order) walks through the coalitions.

sage-importance's ``PermutationEstimator`` rule: each sample is a row of X and
a uniformly drawn order of the feature groups; walking the order, each group's
drop in loss when it joins is recorded; each order is also walked backwards
(antithetic pairs, as Mitchell et al. 2022 recommend). The ends of every walk (the empty
coalition, the full one) are computed once for every row, so the drops of a
walk add up exactly to that row's explained loss. Samples come in fixed
rounds, checked for convergence between rounds.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from .keras_engine import _model_rows

__all__ = [
    "ROUND_SIZE",
    "Walk",
    "end_losses",
    "estimate",
    "sample_walks",
    "standard_errors",
]

#: Walks (row, order) drawn per round, in antithetic pairs; convergence is
#: checked between rounds. Fixed, so that the draws and the numbers do not depend on the
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
        self.explained = float(loss_empty.mean() - loss_all.mean())
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
    """(samples (n_pairs, d), convergence ratio): rounds until converged or
    capped at ``max_permutations`` walks (rounded up to pairs).

    Rows are visited in shuffled passes over X (each row once per pass), each
    with its own uniformly drawn order of the features, walked forwards and
    backwards (an antithetic pair, averaged into one sample). For an additive
    model under squared loss the pair's average does not depend on the order
    at all, so the pairs need far fewer samples than single walks to reach
    the same standard error; the estimate stays unbiased.
    """
    from tqdm.auto import tqdm

    per_sample = max(1, d - 1) * walk.engine.n_background
    # Whole antithetic pairs per chunk: one walk fits half the budget.
    per_chunk = 2 * max(1, walk.engine.rows_per_chunk // per_sample // 2)
    parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
    pending_rows = np.empty(0, dtype=int)
    collected, ratio = [], np.inf
    max_pairs = -(-max_permutations // 2)
    with tqdm(
        total=2 * max_pairs, desc="SAGE", unit="perm", disable=not verbose
    ) as bar:
        n_pairs = 0
        while n_pairs < max_pairs:
            size = min(ROUND_SIZE // 2, max_pairs - n_pairs)
            while len(pending_rows) < size:
                pending_rows = np.concatenate([pending_rows, rng.permutation(n_rows)])
            rows, pending_rows = pending_rows[:size], pending_rows[size:]
            orders = np.argsort(rng.random_sample((size, d)), axis=1)
            # Each order walked forwards and backwards at the same row.
            rows = np.repeat(rows, 2)
            orders = np.stack([orders, orders[:, ::-1]], axis=1).reshape(-1, d)
            tasks = (
                delayed(walk)(rows[s : s + per_chunk], orders[s : s + per_chunk])
                for s in range(0, len(rows), per_chunk)
            )
            for drops in parallel(tasks):
                collected.append(drops.reshape(-1, 2, d).mean(axis=1))
                bar.update(len(drops))
            n_pairs += size
            samples = np.concatenate(collected)
            ratio = convergence_ratio(samples, walk.explained)
            bar.set_postfix(ratio=f"{ratio:.3g}")
            if ratio < convergence:
                break
    return samples, ratio


def estimate(samples: np.ndarray, explained: float):
    """The samples corrected with their totals as a control variate.

    Every sample's drops add up to its row's explained loss, whose mean over
    all of X (``explained``) is known exactly. So each feature's mean is
    corrected by its regression on the totals' deviation from that mean
    (``beta_j = cov(s_j, total) / var(total)``): the share of the noise that
    comes from which rows were drawn goes, and as the betas sum to 1, the
    values add up to ``explained`` exactly (efficiency). The corrected
    samples' means are the values, their spread gives the standard errors.
    """
    n = len(samples)
    totals = samples.sum(axis=1)
    spread = totals.var(ddof=1) if n > 1 else 0.0
    adjusted = samples
    if spread > 1e-12 * max(1.0, float(np.mean(totals**2))):
        centred = totals - totals.mean()
        beta = centred @ (samples - samples.mean(axis=0)) / ((n - 1) * spread)
        adjusted = samples - np.outer(totals - explained, beta)
    return adjusted


def standard_errors(adjusted: np.ndarray) -> np.ndarray:
    if len(adjusted) < 2:
        return np.full(adjusted.shape[1], np.inf)
    return adjusted.std(axis=0, ddof=1) / np.sqrt(len(adjusted))


def convergence_ratio(samples: np.ndarray, explained: float) -> float:
    """Largest standard error over the range of the values (their size for a
    single feature)."""
    adjusted = estimate(samples, explained)
    values, errors = adjusted.mean(axis=0), standard_errors(adjusted)
    spread = values.max() - values.min() if len(values) > 1 else abs(values[0])
    return float(errors.max() / max(spread, 1e-12))
