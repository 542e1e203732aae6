"""The joint-permutation excess of feature pairs, from per-row losses.

For a pair (a, b), permuting both (a with the plan's permutation, b with a
second, independent one) raises the loss by some amount; the *excess* is
that increase minus the increases of permuting a alone (same permutation)
and b alone (same permutation). Per row::

    e_i = l(a and b permuted) - l(a permuted) - l(b permuted) + l(unpermuted)

For an additive pair its expectation is 0; for a product interaction it is
negative: permuting one feature already breaks the product, so the pair adds
less than the two singles. Sharing the permutations between the pair and its
singles (common random numbers) keeps the per-row excess free of the
permutation noise the singles already carry. The excess is tested two-sided
across rows, like importance's one-sided test (``_inference``).

Every slot (a single under either permutation, a pair) is one "group" of a
perturbation run, so the engines of permutation importance (the batched
Keras one, the generic one, dask) score it unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.utils import check_random_state

from ._engines.plan import draw_permutation_plan
from ._engines.run import prepare_permutation_run
from ._inference import resolve_loss
from ._interaction_inputs import (
    check_finite,
    check_n_rows,
    check_not_constant,
    default_limit,
    resolve_features,
    sort_pairs,
)
from ._interaction_result import InteractionResult
from ._stats import two_sided_row_pvalues
from .permutation import JOINT_PERMUTATION

__all__ = ["pair_permutation"]


@dataclasses.dataclass(frozen=True)
class IndependentShuffles:
    """A slot's columns: those of its ``first`` features from the plan's
    permuted rows, those of its ``second`` features from the second plan's."""

    plan: object
    second: object
    groups: list
    slots: list  # (first features, second features) per slot
    moves_rows_only = True  # a shuffle: values the run already checked

    def columns(self, slot: int) -> np.ndarray:
        first, second = self.slots[slot]
        return np.concatenate([self.groups[f] for f in (*first, *second)])

    def values(self, X_sub, slot: int, repeat: int):
        first, second = self.slots[slot]
        orders = [self.plan.permutation(repeat)] * len(first) + [
            self.second.permutation(repeat)
        ] * len(second)
        parts = [(order, self.groups[f]) for order, f in zip(orders, (*first, *second))]
        if hasattr(X_sub, "iloc"):
            return [X_sub.iloc[:, j].array.take(o) for o, cols in parts for j in cols]
        return np.concatenate([X_sub[np.ix_(o, cols)] for o, cols in parts], axis=1)


def pair_permutation(
    estimator,
    X,
    y,
    *,
    features,
    max_features,
    max_samples,
    n_repeats,
    random_state,
    scoring,
    n_jobs,
    batch_size,
    feature_groups,
    algorithm,
    output,
    loss,
    verbose,
):
    """``interaction_importance(method="permutation")``; checked arguments
    are the caller's, everything else is checked here before any work."""
    if output is not None:
        raise ValueError(
            "output= applies to method='h2'; method='permutation' scores the "
            "estimator (every head of a multi-head network, as a dict of results)."
        )
    if algorithm == "incremental":
        raise ValueError(
            "algorithm='incremental' applies to method='h2': the slots of "
            "method='permutation' share columns, which the incremental engine "
            "cannot update apart; use 'auto' or 'exact'."
        )
    check_n_rows(X)
    run, settings = prepare_permutation_run(
        estimator,
        X,
        y,
        caller="interaction_importance",
        scoring=scoring,
        n_repeats=n_repeats,
        n_jobs=n_jobs,
        random_state=random_state,
        sample_weight=None,
        max_samples=max_samples,
        feature_groups=feature_groups,
        cluster_threshold=0.7,
        batch_size=batch_size,
        algorithm="exact",
    )
    n_repeats, batch_size, _ = settings
    check_finite(run.X, run.column_names, estimator)
    candidates, pairs = resolve_features(features, run.names)
    rng = check_random_state(random_state)
    plan = draw_permutation_plan(rng, len(run.X), run.n_rows, n_repeats)
    second = draw_permutation_plan(rng, run.n_rows, run.n_rows, n_repeats)
    (X_sub,) = plan.subsample(run.X)
    check_n_rows(X_sub, "rows used (max_samples)")
    involved = sorted(set(candidates) | {f for pair in pairs for f in pair})
    check_not_constant(X_sub, run.groups, run.names, involved)
    row_loss = resolve_loss(loss, estimator, y)

    def scores(slots, desc):
        perturbation = IndependentShuffles(plan, second, run.groups, slots)
        slot_run = dataclasses.replace(
            run,
            groups=[perturbation.columns(k) for k in range(len(slots))],
            names=np.asarray([f"slot {k}" for k in range(len(slots))], dtype=object),
        )
        return slot_run.scores(
            plan,
            perturbation,
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=verbose,
            desc=desc,
            row_loss=row_loss,
            algorithm="exact",
        )

    details = {"n_samples": run.n_rows, "engine": run.engine}
    if not pairs:
        kept = candidates
        limit = default_limit(len(candidates), max_features)
        if limit < len(candidates):
            screen = scores([((f,), ()) for f in candidates], "screening")
            importance = _first(screen.baseline) - _first_grid(screen.scores).mean(
                axis=1
            )
            order = np.argsort(-importance, kind="stable")[:limit]
            kept = sorted(candidates[i] for i in order)
            details["screened_from"] = len(candidates)
        pairs = [(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :]]
    singles = sorted({f for pair in pairs for f in pair})
    slots = [((f,), ()) for f in singles] + [((), (f,)) for f in singles]
    slots += [((a,), (b,)) for a, b in pairs]
    scored = scores(slots, "interactions")
    baseline, grid = scored.baseline, scored.scores
    differences = scored.loss_differences
    details.update(scored.details, loss=None if row_loss is None else row_loss.name)
    first = {f: k for k, f in enumerate(singles)}
    second_of = {f: len(singles) + k for k, f in enumerate(singles)}
    terms = [
        (2 * len(singles) + p, first[a], second_of[b]) for p, (a, b) in enumerate(pairs)
    ]
    excess_rows = None
    if differences is not None:
        excess_rows = np.stack(
            [differences[p] - differences[i] - differences[j] for p, i, j in terms]
        )
    names = run.names[singles]

    def result(base, slot_scores):
        importances = base - np.asarray(slot_scores, dtype=float)
        excess = np.stack(
            [importances[p] - importances[i] - importances[j] for p, i, j in terms]
        )
        return _result(run.names, pairs, excess, excess_rows, names, details, base)

    if isinstance(baseline, dict):  # several metrics or heads, keyed like scikit-learn
        return {
            key: result(baseline[key], [[s[key] for s in row] for row in grid])
            for key in baseline
        }
    return result(baseline, grid)


def _result(all_names, pairs, excess, excess_rows, names, details, baseline):
    import pandas as pd

    pvalues = (
        np.full(len(pairs), np.nan)
        if excess_rows is None
        else two_sided_row_pvalues(excess_rows)
    )
    frame = pd.DataFrame(
        {
            "feature_a": [all_names[a] for a, _ in pairs],
            "feature_b": [all_names[b] for _, b in pairs],
            "interaction": excess.mean(axis=1),
            "std": excess.std(axis=1),
            "pvalue": pvalues,
        }
    )
    order = np.argsort(-np.abs(frame["interaction"].to_numpy()), kind="stable")
    frame = sort_pairs(frame)
    return InteractionResult(
        frame,
        JOINT_PERMUTATION,
        names,
        details={**details, "baseline_score": float(baseline)},
        excess_differences=None if excess_rows is None else excess_rows[order],
    )


def _first(baseline):
    return next(iter(baseline.values())) if isinstance(baseline, dict) else baseline


def _first_grid(grid) -> np.ndarray:
    return np.asarray(
        [
            [s if not isinstance(s, dict) else next(iter(s.values())) for s in row]
            for row in grid
        ],
        dtype=float,
    )
