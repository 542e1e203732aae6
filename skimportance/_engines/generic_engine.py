"""The generic engine: any fitted scikit-learn estimator, exactly like scikit-learn.

For an estimator with no Keras model inside, each group's perturbed copies of
``X`` go through the estimator's own scorer, one (group, repeat) slice at a
time, in parallel over the groups with joblib (so
``joblib.parallel_config(backend="dask")`` spreads them over a cluster), as
:func:`sklearn.inspection.permutation_importance` does. Asked for a pointwise
loss, it also returns each row's loss differences, from the same perturbed
copies.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from .._replace import replace_columns
from .engine_scores import EngineScores
from .scoring import call_scorer
from .slices import LossCollector

__all__ = ["generic_scores"]


def generic_scores(
    run, plan, perturbation, *, batch_size, n_jobs, bar, row_loss, algorithm
) -> EngineScores:
    """The run's :class:`EngineScores`, computed by calling the estimator.

    ``batch_size`` (the Keras engine's) is not used: the estimator predicts
    each perturbed copy in one call, as in scikit-learn.
    """
    if algorithm == "incremental":
        raise ValueError(
            "algorithm='incremental' does not apply: it needs a Keras "
            f"model inside the estimator, got {type(run.estimator).__name__}."
        )
    baseline = call_scorer(run.scorer, run.estimator, run.X, run.y, run.sample_weight)
    X_sub, y_sub, weight_sub = plan.subsample(run.X, run.y, run.sample_weight)
    losses = LossCollector.start(row_loss, run.estimator, X_sub, y_sub, plan.n_repeats)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    scores = []
    tasks = (
        delayed(_group_scores)(
            run.estimator,
            run.scorer,
            X_sub,
            y_sub,
            weight_sub,
            perturbation,
            group,
            columns,
            plan.n_repeats,
            losses.slice_loss,
        )
        for group, columns in enumerate(run.groups)
    )
    for group, (group_scores, group_losses) in enumerate(parallel(tasks)):
        losses.add_group(group, group_losses)
        scores.extend(group_scores)
        bar.update(len(group_scores))
    return EngineScores.from_flat(
        baseline, scores, plan.n_repeats, losses.differences(), {"algorithm": "exact"}
    )


def _group_scores(
    estimator,
    scorer,
    X_sub,
    y,
    sample_weight,
    perturbation,
    group,
    columns,
    n_repeats,
    slice_loss=None,
):
    """(scores, per-row loss differences summed over the repeats or None)."""
    scores = []
    loss_sum = None if slice_loss is None else np.zeros(len(X_sub))
    for repeat in range(n_repeats):
        # A fresh copy each time: X_sub may be shared between threads or be a
        # read-only memmap.
        values = perturbation.values(X_sub, group, repeat)
        X_perturbed = replace_columns(X_sub, [(columns, values)])
        scores.append(call_scorer(scorer, estimator, X_perturbed, y, sample_weight))
        if slice_loss is not None:  # summed over the repeats in order, as the
            loss_sum += slice_loss(estimator, X_perturbed, y)  # Keras engine does
    return scores, loss_sum
