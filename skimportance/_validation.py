"""Argument checks shared by the importance methods.

Everything here runs before TensorFlow sees any data, so that a bad argument
fails with a ``ValueError``/``TypeError`` that names the problem instead of a
stack trace from deep inside a compiled graph.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers

import numpy as np
import sklearn
from sklearn.utils import check_scalar, gen_batches

from ._budget import check_within_budget, rows_within_budget

__all__ = [
    "SCALE_RATIO_LIMIT",
    "check_batch_size",
    "check_choice",
    "check_model_input",
    "check_values_survive_cast",
    "check_positive_int",
    "resolve_point",
    "scale_problem",
    "zero_baseline_problem",
]

#: Column standard deviations further apart than this factor make fixed-size
#: changes (a weight, a probe of 1, a gradient) incomparable between inputs.
SCALE_RATIO_LIMIT = 10.0


def check_choice(name: str, value, choices: tuple):
    """Return ``value`` if it is one of ``choices``, else raise a ValueError.

    Choices are strings, or None; anything else (arrays included) is refused.
    """
    if not any(
        value is choice or (isinstance(value, str) and value == choice)
        for choice in choices
    ):
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
    return value


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an int >= 1, else raise scikit-learn's TypeError or
    ValueError (``check_scalar``). A bool is refused: ``True`` is no count."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an instance of int, not bool.")
    return int(check_scalar(value, name, numbers.Integral, min_val=1))


def check_batch_size(located, batch_size: int | None, *, passes: int = 1) -> int | None:
    """Refuse a ``batch_size`` whose batch would not fit the memory budget.

    A batch of ``batch_size`` rows costs ``passes`` times what one row of a
    forward pass costs (a gradient pass keeps every activation and its
    gradient: 2). None (the budget decides) passes through.
    """
    if batch_size is None:
        return None
    batch_size = check_positive_int("batch_size", batch_size)
    nbytes = batch_size * passes * located.bytes_per_row
    check_within_budget("batch_size", batch_size, nbytes)
    return batch_size


def check_model_input(located, X, *, caller: str) -> np.ndarray:
    """The rows the Keras model would see for ``X``, checked to be usable.

    Applies the Pipeline's preprocessing and the wrapper's own input handling
    (``LocatedModel.to_model_input``), then insists on a non-empty 2-D array of
    finite numbers with as many columns as the model takes.
    """
    if X is None:
        raise ValueError(f"{caller} needs X, the rows to explain.")
    if isinstance(X, str) or np.ndim(X) == 0:
        raise ValueError(f"X must be a 2-D array-like, got {type(X).__name__}.")
    X_model = located.to_model_input(X)
    if hasattr(X_model, "toarray"):  # a sparse matrix from e.g. OneHotEncoder
        X_model = X_model.toarray()
    X_model = np.asarray(X_model)
    if X_model.dtype.kind not in "biuf":
        try:
            X_model = X_model.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "The inputs reaching the Keras model must be numbers; after "
                f"preprocessing X holds {X_model.dtype} values ({exc})."
            ) from None
    if X_model.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {X_model.shape}.")
    if X_model.shape[0] == 0:
        raise ValueError("X has no rows.")
    if X_model.shape[1] != located.n_model_features:
        raise ValueError(
            f"X gives {X_model.shape[1]} columns to the Keras model, which takes "
            f"{located.n_model_features}."
        )
    # By blocks of rows: a mask of all of X would cost a quarter of a float32
    # X again (334 MiB at 350,000 x 1,000), on top of the run's budget.
    for rows in gen_batches(
        len(X_model), rows_within_budget(X_model.shape[1], share=0.1)
    ):
        if not np.isfinite(X_model[rows]).all():
            raise ValueError(
                "X contains NaN or infinity (after any preprocessing); the Keras "
                "model cannot take it."
            )
    layout = located.layout
    for k, spec in enumerate(layout.inputs):  # each input in its own dtype
        what = "X" if len(layout.inputs) == 1 else f"X (model input {spec.name!r})"
        # A slice of columns, not an index array: a view, not a copy of X.
        columns = slice(layout.offsets[k], layout.offsets[k + 1])
        check_values_survive_cast(X_model[:, columns], spec.dtype, what)
    return X_model


def scale_problem(X_model: np.ndarray, names, what: str) -> str | None:
    """Say so when the inputs reaching the model are on different scales.

    ``what`` names the quantity that is only comparable between inputs on one
    scale (``"Connection weights"``, ``"Saliency (a gradient)"``...).
    Returns None when the column standard deviations agree within a factor
    of ``SCALE_RATIO_LIMIT``.
    """
    spread = np.asarray(X_model, dtype=np.float64).std(axis=0)
    varying = np.flatnonzero(spread > 0)
    if len(varying) < 2:
        return None
    low = varying[np.argmin(spread[varying])]
    high = varying[np.argmax(spread[varying])]
    if spread[high] <= SCALE_RATIO_LIMIT * spread[low]:
        return None
    return (
        "The inputs reaching the Keras model are on different scales: column "
        f"standard deviations range from {spread[low]:.3g} ({names[low]}) to "
        f"{spread[high]:.3g} ({names[high]}). {what} is only comparable between "
        "inputs on the same scale; standardise the inputs (e.g. a "
        "StandardScaler before the model in a Pipeline) or use permutation "
        "importance, a data-driven probe or integrated gradients."
    )


def zero_baseline_problem(located, caller: str) -> str | None:
    """Say so when an all-zeros baseline sits in front of in-model scaling."""
    layers = located.scaling_layers()
    if not layers:
        return None
    named = ", ".join(f"{name!r} ({kind})" for name, kind in layers)
    return (
        f"{caller}: baseline='zeros' is the all-zeros input of the Keras model, "
        f"which scales its own inputs (layer {named}): zero there is raw value "
        "0, usually far outside the data, so the numbers describe the model "
        "where it has never seen data. Leave baseline at its default (the data's "
        "centre) or pass baseline='mean'."
    )


#: Set by values_already_checked(): the rows being validated hold only
#: values that already passed these checks.
_VALUES_CHECKED = contextvars.ContextVar("skimportance_values_checked", default=False)


@contextlib.contextmanager
def values_already_checked():
    """Skip the value checks (finite, and unchanged by the network's dtype) of
    rows that only hold values which already passed them.

    The exact engine's shuffled chunks are such rows: a shuffle moves checked
    values between rows. Checking every chunk again cost a quarter of a wide
    run. scikit-learn's own finiteness checks skip too (``assume_finite``).
    """
    token = _VALUES_CHECKED.set(True)
    try:
        with sklearn.config_context(assume_finite=True):
            yield
    finally:
        _VALUES_CHECKED.reset(token)


def check_values_survive_cast(
    values, dtype, name: str, *, into: str = "the dtype the Keras model computes in"
) -> None:
    """Refuse values that change when cast to ``dtype``.

    The network computes in its input's dtype: 1e39 is finite in float64 but
    infinity in float32, and 2.5 is 2 in an integer input, so it would
    silently see other numbers than the user gave. NaN and infinities are
    left to the checks that name them. Skipped inside
    :func:`values_already_checked`.
    """
    if _VALUES_CHECKED.get():
        return
    values = np.asarray(values)
    dtype = np.dtype(dtype)
    if values.dtype == dtype or values.dtype.kind not in "biuf":
        return
    with np.errstate(over="ignore", invalid="ignore"):
        cast = values.astype(dtype)
        if dtype.kind == "f":
            changed = np.isfinite(values) & ~np.isfinite(cast)
        else:
            changed = np.isfinite(values) & (values != cast)
    if not changed.any():
        return
    example = values[changed].flat[0]
    if dtype.kind == "f":
        raise ValueError(
            f"{name} holds values that are finite in {values.dtype} but become "
            f"infinity in {dtype}, {into} (e.g. {example:g}; the largest "
            f"{dtype} is {np.finfo(dtype).max:g}). Rescale them, e.g. with a "
            "StandardScaler in a Pipeline."
        )
    raise ValueError(
        f"{name} holds values that change when cast to {dtype}, {into} (e.g. "
        f"{example:g} becomes {cast[changed].flat[0]})."
    )


def resolve_point(
    name: str,
    value,
    X_model: np.ndarray | None,
    n_features: int,
    *,
    statistics: tuple[str, ...],
    relative_to: np.ndarray | None = None,
) -> np.ndarray:
    """Turn a baseline/probe specification into one value per model input.

    ``value`` is a scalar (the same value for every input), an array of
    ``n_features`` values, or one of ``statistics`` computed from ``X_model``:
    ``"zeros"``, ``"mean"``, ``"median"``, or ``"std"`` (``relative_to`` plus
    one standard deviation of each column).
    """
    if isinstance(value, str):
        check_choice(name, value, statistics)
        if value == "zeros":
            return np.zeros(n_features)
        if X_model is None:
            raise ValueError(f"{name}={value!r} is computed from X; pass X.")
        if value == "mean":
            return X_model.mean(axis=0)
        if value == "median":
            return np.median(X_model, axis=0)
        return relative_to + X_model.std(axis=0)  # "std"
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, an array or a string, not bool.")
    if isinstance(value, numbers.Real):
        point = np.full(n_features, float(value))
    else:
        try:
            point = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number, an array of numbers or one of "
                f"{statistics}; got {type(value).__name__}."
            ) from None
        if point.ndim != 1 or len(point) != n_features:
            raise ValueError(
                f"{name} must have one value per input of the Keras model "
                f"({n_features}); got shape {point.shape}."
            )
    if not np.isfinite(point).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return point
