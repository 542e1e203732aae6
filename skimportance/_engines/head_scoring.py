"""A run's y and scorer for a model with several output heads.

One scorer per head (``scoring.per_head_scorer``), y's columns put in the
heads' order (``head_kinds.align_y_to_heads``), or only the head ``output=``
names. It sits above both modules it combines, so neither imports the other.
"""

from __future__ import annotations

from sklearn.metrics import get_scorer

from .head_kinds import align_y_to_heads, binary_head_classes
from .scoring import per_head_scorer

__all__ = ["scored_by_head"]


def scored_by_head(located, scorer, scoring, y, output):
    """(y, scorer) of a run: for a model with several output heads, y in the
    heads' order and one scorer per head (``scoring.per_head_scorer``), or
    only the head ``output`` names; otherwise unchanged."""
    if located is None or len(located.layout.outputs) < 2:
        if output is not None:
            raise ValueError(
                f"output={output!r} chooses one of a Keras model's several output "
                "heads; this estimator gives one."
            )
        return y, scorer
    if isinstance(scoring, (list, tuple, set, dict)):
        raise ValueError(
            "A model with several output heads is scored per head with one "
            f"metric; pass a single scoring metric, not {scoring!r}."
        )
    # Each head scored as the (regressor's) estimator.score would: R^2.
    head = scorer if scoring is not None else get_scorer("r2")
    y = align_y_to_heads(located.layout, y)
    classes = (
        {} if scoring is None else binary_head_classes(located.model, located.layout, y)
    )
    scorer = per_head_scorer(
        located.layout, scorer, y, head_scorer=head, classes=classes, output=output
    )
    return y, scorer
