"""p-values for "importance <= 0", and Benjamini-Hochberg selection.

Two tests, each on the variation that matters for its question:

* **One result, one fitted model: across test rows.** The importance of a
  feature decomposes into per-row loss differences
  ``d_i = mean_r loss(y_i, f(x_i perturbed in repeat r)) - loss(y_i, f(x_i))``
  (averaged over the repeats first), and a one-sided t-test across the rows
  asks whether their mean exceeds 0, as in Chamma, Engemann & Thirion (2023)
  and Williamson et al. (2021). A t-test across the *repeats* would measure
  only the permutation noise: it rejects any non-zero reliance of the fitted
  model, however small, so it is not offered.
* **Cross-validated results: across folds,** with the Nadeau & Bengio (2003)
  correction for the overlap of the training sets (the same statistic as
  ``CVImportanceResult.ci(corrected=True)``).

The per-row losses need a *pointwise* loss: :func:`resolve_loss` turns the
``loss`` argument of the methods into a :class:`PointwiseLoss`, which the
perturbation engines apply to the predictions they already have.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier

__all__ = [
    "LOSSES",
    "PointwiseLoss",
    "benjamini_hochberg",
    "nadeau_bengio_pvalues",
    "resolve_loss",
    "row_test_pvalues",
]


# --- pointwise losses -------------------------------------------------------------


@dataclass(frozen=True)
class PointwiseLoss:
    """A loss with one value per row, computed from one response method.

    Attributes
    ----------
    name : str
        Shown in results' ``details["loss"]``.
    function : callable
        ``function(y_true, response) -> ndarray of shape (n_rows,)``.
    response_method : {"predict", "predict_proba"}
        What of the estimator ``response`` is.
    """

    name: str
    function: Callable
    response_method: str = "predict"

    def rows(self, estimator, X, y) -> np.ndarray:
        """The loss of every row of ``X``, checked to be one number per row.

        Not checked to be finite: a prediction scikit-learn's scorer would
        score as NaN gives a NaN p-value here, not an error."""
        response = getattr(estimator, self.response_method)(X)
        y = np.asarray(y)
        values = np.asarray(self.function(y, response), dtype=float)
        if values.shape != (len(y),):
            raise ValueError(
                f"The pointwise loss {self.name!r} must return one value per row, "
                f"shape ({len(y)},); got shape {values.shape}."
            )
        return values


def _squared_error(y, prediction):
    residual = np.reshape(y, (len(y), -1)) - np.reshape(prediction, (len(y), -1))
    return (residual.astype(float) ** 2).sum(axis=1)


def _absolute_error(y, prediction):
    residual = np.reshape(y, (len(y), -1)) - np.reshape(prediction, (len(y), -1))
    return np.abs(residual.astype(float)).sum(axis=1)


@dataclass(frozen=True)
class _LogLoss:
    """``-log p(y_i)`` with the probabilities clipped as scikit-learn's log_loss."""

    classes: np.ndarray

    def __call__(self, y, proba):
        proba = np.asarray(proba, dtype=float).reshape(len(y), -1)
        column = _class_positions(self.classes, y)
        eps = np.finfo(np.float64).eps
        return -np.log(np.clip(proba[np.arange(len(y)), column], eps, 1.0))


@dataclass(frozen=True)
class _ZeroOne:
    def __call__(self, y, prediction):
        return (np.asarray(y) != np.asarray(prediction)).astype(float)


def _class_positions(classes: np.ndarray, y) -> np.ndarray:
    positions = {label: k for k, label in enumerate(classes.tolist())}
    try:
        return np.array([positions[label] for label in np.asarray(y).tolist()])
    except KeyError as missing:
        raise ValueError(
            f"y holds the label {missing.args[0]!r}, which is not among the "
            f"estimator's classes_ {classes.tolist()}."
        ) from None


#: The names ``loss=`` accepts; "auto" picks log_loss for classifiers with
#: ``predict_proba`` (zero_one without), squared_error otherwise.
LOSSES = ("auto", "squared_error", "absolute_error", "log_loss", "zero_one")


def resolve_loss(loss, estimator, y=None) -> PointwiseLoss | None:
    """The pointwise loss named by ``loss`` for ``estimator``; None for None.

    ``"auto"`` never makes a run fail that scikit-learn's permutation
    importance would complete: it is None without ``y`` and for multi-output
    classification, ``zero_one`` for a classifier whose probabilities cannot
    be read for every label of ``y``.

    Raises
    ------
    ValueError
        An unknown name, or a classification loss for an estimator without
        ``classes_`` (or ``log_loss`` without ``predict_proba``).
    TypeError
        ``loss`` is neither a name, a callable nor None.
    """
    if loss is None:
        return None
    if callable(loss):
        return PointwiseLoss(getattr(loss, "__name__", repr(loss)), loss)
    if not isinstance(loss, str) or loss not in LOSSES:
        if not isinstance(loss, str):
            raise TypeError(
                "loss must be a name, a callable loss(y_true, y_pred) -> one value "
                f"per row, or None; got {type(loss).__name__}."
            )
        raise ValueError(
            f"loss must be one of {', '.join(map(repr, LOSSES))} or a callable; "
            f"got {loss!r}."
        )
    if loss == "auto":
        loss = _automatic_loss(estimator, y)
        if loss is None:
            return None
    if loss == "squared_error":
        return PointwiseLoss(loss, _squared_error)
    if loss == "absolute_error":
        return PointwiseLoss(loss, _absolute_error)
    if loss == "zero_one":
        return PointwiseLoss(loss, _ZeroOne())
    classes = getattr(estimator, "classes_", None)
    if classes is None or not hasattr(estimator, "predict_proba"):
        raise ValueError(
            f"loss='log_loss' needs a classifier with classes_ and predict_proba; "
            f"{type(estimator).__name__} has not both."
        )
    return PointwiseLoss(loss, _LogLoss(np.asarray(classes)), "predict_proba")


def _automatic_loss(estimator, y) -> str | None:
    if y is None:
        return None
    if not is_classifier(estimator):
        return "squared_error"
    y = np.asarray(y)
    if y.ndim != 1:
        return None  # multi-output classification: no one loss per row
    classes = getattr(estimator, "classes_", None)
    readable = (
        hasattr(estimator, "predict_proba")
        and classes is not None
        and np.ndim(classes) == 1
        and bool(np.isin(y, np.asarray(classes)).all())
    )
    return "log_loss" if readable else "zero_one"


# --- tests ------------------------------------------------------------------------


def row_test_pvalues(
    differences: np.ndarray, *, alternative: str = "greater"
) -> np.ndarray:
    """t-test across rows of the mean loss difference, per feature.

    ``differences`` has shape (n_features, n_rows). ``alternative="greater"``
    (importance) tests "mean <= 0" one-sided; ``"two-sided"`` (a signed
    quantity, such as the interaction excess) tests "mean == 0". A feature
    whose every row has the same difference has no spread to test: p = 1
    when that difference is <= 0 (two-sided: == 0), else 0.
    """
    from scipy import stats

    differences = np.asarray(differences, dtype=float)
    n_rows = differences.shape[1]
    mean = differences.mean(axis=1)
    effect = mean != 0 if alternative == "two-sided" else mean > 0
    if n_rows < 2:
        return np.where(effect, np.nan, 1.0)
    sd = differences.std(axis=1, ddof=1)
    constant = sd <= 1e-12 * np.maximum(1.0, np.abs(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(n_rows))
    if alternative == "two-sided":
        pvalues = 2 * stats.t.sf(np.abs(t), df=n_rows - 1)
    else:
        pvalues = stats.t.sf(t, df=n_rows - 1)
    return np.where(constant, np.where(effect, 0.0, 1.0), pvalues)


def nadeau_bengio_pvalues(
    fold_values: np.ndarray, n_train: np.ndarray, n_test: np.ndarray
) -> np.ndarray:
    """One-sided corrected t-test over folds of "mean importance <= 0".

    ``t = mean / sqrt((1/k + n_test/n_train) * var)`` with k - 1 degrees of
    freedom over the k fold values (Nadeau & Bengio 2003), per feature.
    NaN folds (failed fits) give NaN.
    """
    from scipy import stats

    fold_values = np.asarray(fold_values, dtype=float)
    k = fold_values.shape[1]
    if k < 2:
        raise ValueError(
            "A test across folds needs at least 2 folds; this result has one."
        )
    mean = fold_values.mean(axis=1)
    variance = fold_values.var(axis=1, ddof=1)
    factor = 1.0 / k + float(np.mean(np.asarray(n_test) / np.asarray(n_train)))
    scale = np.sqrt(factor * variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        pvalues = stats.t.sf(mean / scale, df=k - 1)
    constant = np.isfinite(mean) & (scale <= 1e-12 * np.maximum(1.0, np.abs(mean)))
    return np.where(constant, np.where(mean > 0, 0.0, 1.0), pvalues)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN.

    A feature is selected at false discovery rate ``alpha`` when its q-value
    is at most ``alpha``. Computed by :func:`scipy.stats.false_discovery_control`
    over the finite p-values.
    """
    from scipy.stats import false_discovery_control

    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(pvalues, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = false_discovery_control(pvalues[finite], method="bh")
    return adjusted


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), else a ValueError naming it."""
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0 < alpha < 1
    ):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}.")
    return float(alpha)
