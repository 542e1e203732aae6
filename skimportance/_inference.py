"""Pointwise losses: each row's loss, for the tests across rows.

The importance of a feature measured by permutation or conditional
importance decomposes into per-row loss differences
``d_i = mean_r loss(y_i, f(x_i perturbed in repeat r)) - loss(y_i, f(x_i))``
(averaged over the repeats first); ``_stats.row_test_pvalues`` tests their
mean across the rows, as in Chamma, Engemann & Thirion (2023) and Williamson
et al. (2021). Those per-row losses need a *pointwise* loss:
:func:`resolve_loss` turns the ``loss`` argument of the methods into a
:class:`PointwiseLoss`, which the perturbation engines apply to the
predictions they already have. The tests themselves (across rows, across
folds with the Nadeau-Bengio correction, Benjamini-Hochberg) live in
``_stats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier

__all__ = ["LOSSES", "PointwiseLoss", "resolve_loss"]


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
