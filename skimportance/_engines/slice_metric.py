"""Every slice of a chunk scored by one call of a regression metric.

Scoring a slice through scikit-learn's scorer checks y and the predictions
again for every slice (about 0.5 ms a call): at 2000 rows x 20 features x 5
repeats that is twice the forward pass itself. scikit-learn's column-wise
regression metrics score many outputs in one call
(``multioutput="raw_values"``), so a chunk's slices, stacked as the columns
of one Fortran-ordered array, are checked once and scored at once.

This is used only where it gives exactly the numbers of one scorer call per
slice: a single-output regressor scored by one of :data:`COLUMNWISE_METRICS`
(``r2``, the default of a regressor's ``score``, and the errors), each column
reduced on its own by the same NumPy sum (``tests/test_slice_metric.py``
compares both ways bit for bit). Any other scorer (a classifier's, a custom
callable, several metrics, several output heads) scores slice by slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import get_config
from sklearn.metrics import (
    explained_variance_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    median_absolute_error,
    r2_score,
    root_mean_squared_error,
)

from .._compat import scorer_metric

__all__ = ["COLUMNWISE_METRICS", "SliceMetric", "scored_by", "slice_metric"]

#: Metrics whose ``multioutput="raw_values"`` scores each column exactly as
#: a call on that column alone does. (``d2_absolute_error_score`` is not one:
#: its quantile differs in the last bits.)
COLUMNWISE_METRICS = frozenset(
    {
        r2_score,
        mean_squared_error,
        root_mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        median_absolute_error,
        explained_variance_score,
    }
)


@dataclass(frozen=True)
class SliceMetric:
    """A column-wise metric, what it compares the predictions with, and how.

    ``rows`` picks the predictions the metric sees (scikeras's ``score``
    drops rows of zero weight); ``sign`` is the scorer's (-1 for the
    ``neg_`` errors).
    """

    metric: Any
    y_true: np.ndarray  # 1-D
    sample_weight: Any
    kwargs: dict
    sign: int = 1
    rows: np.ndarray | None = None

    def scores(self, predictions: list) -> list | None:
        """The score of each slice's 1-D predictions, as floats; None when a
        slice's predictions are not one value per row (score slice by slice)."""
        n_rows = len(self.y_true) if self.rows is None else len(self.rows)
        if any(np.ndim(p) != 1 for p in predictions):
            return None
        stacked = np.empty(
            (n_rows, len(predictions)), dtype=np.result_type(*predictions), order="F"
        )
        for column, prediction in enumerate(predictions):
            stacked[:, column] = (
                prediction if self.rows is None else prediction[self.rows]
            )
        # Fortran order: NumPy then sums each column as it sums a lone 1-D
        # array (pairwise), so every score is bit-identical to its own call.
        y_true = np.asfortranarray(np.broadcast_to(self.y_true[:, None], stacked.shape))
        values = self.metric(
            y_true,
            stacked,
            sample_weight=self.sample_weight,
            multioutput="raw_values",
            **self.kwargs,
        )
        return (self.sign * values).tolist()


def slice_metric(scorer, context, y, sample_weight) -> SliceMetric | None:
    """The :class:`SliceMetric` equal to calling ``scorer`` on each slice, or
    None where there is none (score slice by slice).

    ``context`` is the run's ``scoring.ScoringContext``; ``y`` and
    ``sample_weight`` those every slice is scored against.
    """
    if (
        get_config().get("enable_metadata_routing", False)
        or "predict" not in context.cached
        or context.tags is None
        or context.tags.estimator_type != "regressor"
        or np.ndim(y) != 1
    ):
        return None
    found = scorer_metric(scorer)
    if found == "score":  # estimator.score
        final_score = context.final_score
        if final_score is None or not hasattr(final_score, "slice_metric"):
            return None
        return final_score.slice_metric(y, sample_weight)
    if found is None:
        return None
    metric, sign, kwargs = found
    return scored_by(metric, y, sample_weight, kwargs, sign=sign)


def scored_by(
    metric, y_true, sample_weight, kwargs, *, sign=1, rows=None
) -> SliceMetric | None:
    """A :class:`SliceMetric` for ``metric`` when it is column-wise and y is
    one column; None otherwise."""
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] == 1:
        y_true = y_true[:, 0]
    if metric not in COLUMNWISE_METRICS or "multioutput" in kwargs or y_true.ndim != 1:
        return None
    return SliceMetric(metric, y_true, sample_weight, dict(kwargs), sign, rows)
