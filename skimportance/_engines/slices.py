"""What every slice engine shares: the slices it scores, and their losses.

A *slice* is one (group, repeat): the rows ``X_sub`` with one group's columns
perturbed. :class:`Slices` holds what every engine scores a slice against
(the model, the scorer, y, weights, the perturbation, the groups) and scores
one slice from its cached predictions. The engines (``keras_engine``'s
exact slices, ``incremental``'s) differ only in how they get the
predictions.

Asked for a pointwise loss (``_inference.PointwiseLoss``), every engine
computes each perturbed slice's per-row loss from the predictions it already
has and hands it to a :class:`LossCollector`, which sums each group's
differences over its repeats in repeat order, whatever order the slices come
back in (threads, dask's ``as_completed``). So the exact, incremental and
generic engines, on any ``n_jobs`` or backend, add the same numbers in the
same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .scoring import ScoringContext, call_scorer
from .slice_metric import slice_metric

__all__ = ["HeadLosses", "LossCollector", "SliceLoss", "Slices"]


class HeadLosses:
    """A pointwise loss on each output head, and on all outputs together.

    ``rows`` gives shape (n_rows, n_scores): one column per head scorer of a
    ``scoring.MultiScorer``, in its order, the last over every output. So each
    head's p-values test that head's loss, not the sum over all heads (an
    input one head ignores has differences of exactly 0 there).
    """

    def __init__(self, row_loss, head_columns: list):
        self.row_loss = row_loss
        self.head_columns = head_columns  # an array of columns, or None: all
        self.name = row_loss.name
        self.response_method = row_loss.response_method

    @classmethod
    def for_scorer(cls, row_loss, multi_scorer):
        columns = [
            getattr(scorer, "columns", None) for scorer in multi_scorer.scorers.values()
        ]
        return cls(row_loss, columns)

    def rows(self, estimator, X, y) -> np.ndarray:
        response = np.asarray(getattr(estimator, self.response_method)(X))
        response = response.reshape(len(response), -1)
        y_all = np.asarray(y).reshape(len(response), -1)
        per_score = []
        for columns in self.head_columns:
            if columns is None:
                per_score.append(self.row_loss.rows(estimator, X, y))
                continue
            values = np.asarray(
                self.row_loss.function(y_all[:, columns], response[:, columns]),
                dtype=float,
            )
            if values.shape != (len(response),):
                raise ValueError(
                    f"The pointwise loss {self.name!r} must return one value per "
                    f"row, shape ({len(response)},); got shape {values.shape}."
                )
            per_score.append(values)
        return np.stack(per_score, axis=1)


@dataclass(frozen=True)
class SliceLoss:
    """A perturbed slice's per-row loss minus the unperturbed rows' loss.

    Differences are taken slice by slice, so a column the model ignores gives
    exactly 0 (no rounding of a sum of equal losses)."""

    row_loss: Any  # _inference.PointwiseLoss
    baseline_losses: np.ndarray

    def __call__(self, estimator, X, y) -> np.ndarray:
        return self.row_loss.rows(estimator, X, y) - self.baseline_losses


class LossCollector:
    """Sums each group's per-row loss differences over its repeats, in repeat
    order. Does nothing when no pointwise loss is asked for."""

    def __init__(self, slice_loss: SliceLoss | None, n_repeats: int):
        self.slice_loss = slice_loss
        self.n_repeats = n_repeats
        self.sums: dict[int, np.ndarray] = {}
        self._next_repeat: dict[int, int] = {}
        self._early: dict[tuple[int, int], np.ndarray] = {}  # arrived before their turn

    @classmethod
    def start(cls, row_loss, predictor, X_sub, y_sub, n_repeats: int):
        """The collector, with the unperturbed losses of the rows ``X_sub``
        as ``predictor`` (the estimator, or a cached stand-in) predicts them."""
        if row_loss is None:
            return cls(None, n_repeats)
        baseline_losses = row_loss.rows(predictor, X_sub, y_sub)
        return cls(SliceLoss(row_loss, baseline_losses), n_repeats)

    def add(self, group: int, repeat: int, losses) -> None:
        """The loss differences of slice (group, repeat), in any order."""
        if self.slice_loss is None:
            return
        self._early[group, repeat] = losses
        turn = self._next_repeat.get(group, 0)
        while (group, turn) in self._early:
            losses = self._early.pop((group, turn))
            self.sums[group] = losses if turn == 0 else self.sums[group] + losses
            turn += 1
        self._next_repeat[group] = turn

    def add_group(self, group: int, loss_sum) -> None:
        """One group's differences already summed over its repeats, in order."""
        if self.slice_loss is not None:
            self.sums[group] = loss_sum

    def differences(self):
        """(n_groups, n_rows): the mean over the repeats of each row's loss
        difference; (n_groups, n_rows, n_scores) for :class:`HeadLosses`."""
        if self.slice_loss is None:
            return None
        return np.stack([self.sums[group] for group in sorted(self.sums)]) / (
            self.n_repeats
        )


class Slices:
    """The (group, repeat) slices of one run, as every slice engine scores them.

    Subclasses add ``chunks``, ``prepare``, ``score`` and ``run``. Picklable:
    the scoring context (stand-ins' decoders) is rebuilt where it is used.
    """

    def __init__(
        self,
        *,
        located,
        scorer,
        X_sub,
        y,
        sample_weight,
        perturbation,
        groups,
        n_repeats: int,
        unperturbed_raw=None,
        slice_loss: SliceLoss | None = None,
    ):
        self.located = located
        self.scorer = scorer
        self.X_sub, self.y, self.sample_weight = X_sub, y, sample_weight
        self.perturbation = perturbation
        self.groups = groups
        self.n_repeats = n_repeats
        # The network's output on X_sub itself, which the baseline losses
        # came from: a slice that changes no model column is scored on it.
        self.unperturbed_raw = unperturbed_raw
        self.slice_loss = slice_loss  # per-row loss differences, for p-values
        self._context = None
        self._metric, self._metric_known = None, False  # ``batch_scores``

    def __getstate__(self):
        return {**self.__dict__, "_context": None, "_metric_known": False}

    @property
    def context(self) -> ScoringContext:
        if self._context is None:
            self._context = ScoringContext.from_located(self.located)
        return self._context

    def score_slice(self, stand_in, X_slice, score=None):
        """(score, loss differences or None) of one slice whose rows are
        ``X_slice`` and whose predictions ``stand_in`` holds; ``score``, when
        :meth:`batch_scores` gave it, is not computed again."""
        if score is None:
            score = call_scorer(
                self.scorer, stand_in, X_slice, self.y, self.sample_weight
            )
        if self.slice_loss is None:
            return score, None
        return score, self.slice_loss(stand_in, X_slice, self.y)

    def batch_scores(self, raws: list) -> list:
        """The score of each slice whose network output is in ``raws``, all
        from one call of the metric (``slice_metric``); [None, ...] where the
        scorer has no such metric, and each slice is scored alone."""
        if not self._metric_known:
            self._metric = slice_metric(
                self.scorer, self.context, self.y, self.sample_weight
            )
            self._metric_known = True
        scores = None
        if self._metric is not None and len(raws) > 1:
            decode = self.context.located.decode
            scores = self._metric.scores([decode(raw, "predict") for raw in raws])
        return [None] * len(raws) if scores is None else scores
