"""The thresholds ``ImportanceSelector`` reads, checked before any training.

Two families: scikit-learn's ``SelectFromModel`` thresholds on the importances
(a number, ``"mean"``, ``"median"``, ``"1.5*mean"``), and thresholds on the
p-values of methods that test their importances (``"fdr:0.05"``,
``"pvalue:0.01"``). Both are read in any case; anything else is refused,
listing the accepted forms, before the estimator is trained (scikit-learn
would refuse it only after).
"""

from __future__ import annotations

from ._methods import REGISTRY
from ._stats import check_alpha

__all__ = ["PVALUE_VALIDATION_FRACTION", "model_threshold", "pvalue_rule"]

#: The share of rows held out to measure p-values on when a p-value
#: threshold is given without ``validation_fraction``.
PVALUE_VALIDATION_FRACTION = 0.25

#: The string thresholds, as error messages list them.
_THRESHOLD_FORMS = (
    "'fdr:<level>' (e.g. 'fdr:0.05'), 'pvalue:<level>' (e.g. 'pvalue:0.01'), "
    "'mean', 'median' or '<scale>*mean' / '<scale>*median' (e.g. '1.5*mean'), "
    "in any case"
)


def model_threshold(threshold):
    """A SelectFromModel threshold, lower-cased; refused in words (listing
    every accepted form) before any training when SelectFromModel would refuse
    it after."""
    if not isinstance(threshold, str):
        return threshold
    spelled = threshold.strip().lower()
    scale, star, reference = spelled.rpartition("*")
    try:
        if reference.strip() not in ("mean", "median"):
            raise ValueError
        if star:
            float(scale)
    except ValueError:
        raise ValueError(
            f"threshold={threshold!r} is not a threshold ImportanceSelector "
            f"reads; give a number or one of {_THRESHOLD_FORMS}."
        ) from None
    return spelled


def pvalue_rule(threshold, call) -> tuple[str, float] | None:
    """("fdr" or "pvalue", alpha) for a p-value threshold; None for the
    thresholds SelectFromModel reads. Every threshold is checked before any
    training."""
    if not isinstance(threshold, str):
        return None
    test, colon, value = threshold.strip().lower().partition(":")
    if not colon or test.strip() not in ("fdr", "pvalue"):
        model_threshold(threshold)
        return None
    try:
        alpha = check_alpha(float(value))
    except ValueError:
        raise ValueError(
            f"threshold={threshold!r}: give the level after the colon, a number "
            "in (0, 1), e.g. 'fdr:0.05' or 'pvalue:0.01'."
        ) from None
    if not call.spec.tested:
        raise ValueError(
            f"threshold={threshold!r} selects by p-values, which method "
            f"{call.name!r} does not give; use a method that tests its "
            f"importances: {', '.join(n for n, s in REGISTRY.items() if s.tested)}."
        )
    return test.strip(), alpha
