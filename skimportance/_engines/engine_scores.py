"""What every perturbation engine returns: :class:`EngineScores`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["EngineScores"]


@dataclass(frozen=True)
class EngineScores:
    """The scores of one run, and what the engine chose to compute them.

    Attributes
    ----------
    baseline : float or dict
        The unperturbed score (a dict keyed by metric for several metrics).
    scores : list of list
        ``scores[group][repeat]``: the score with that group perturbed in
        that repeat (each a dict for several metrics).
    loss_differences : ndarray of shape (n_groups, n_rows) or None
        Each row's pointwise loss averaged over the repeats minus its
        unperturbed loss; None without a pointwise loss or y.
    details : mapping, read-only
        What the engine chose and why (``algorithm``, ``flops``,
        ``incremental_unavailable``), reported in the results' details.
    """

    baseline: Any
    scores: list
    loss_differences: np.ndarray | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # A copy behind a read-only view: no one writes to an engine's report.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @classmethod
    def from_flat(
        cls, baseline, scores: list, n_repeats: int, loss_differences, details
    ) -> EngineScores:
        """From the slices' scores in one list, group by group."""
        grid = [scores[g : g + n_repeats] for g in range(0, len(scores), n_repeats)]
        return cls(baseline, grid, loss_differences, details)
