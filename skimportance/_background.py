"""The background: the rows that stand for "the data" when a method needs a
reference point or a distribution to compare a row against.

A reference is never computed from the rows being explained: for one row the
mean of the rows is the row itself, so every attribution against it is 0.0,
and with several rows a row's explanation would depend on which other rows
share the batch. Methods that need a reference take ``background`` (typically
the training rows) and, without one, refuse in words. These checks run before
any forward pass.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_background", "no_background_message"]


def no_background_message(caller: str, what: str) -> str:
    """Why ``caller`` refuses to run without a background."""
    who = f"{caller} {what}" if what else caller
    return (
        f"{who} needs a background: rows that stand for the data, "
        "typically the training rows (background=X_train). It is never computed "
        "from the rows being explained: for one row their mean is the row itself "
        "and every attribution would be 0.0, and a row's values would depend on "
        "which rows share its batch."
    )


def check_background(background, X, *, caller: str, what: str = "", missing=False):
    """``background`` checked against X: present, non-empty, the same columns,
    and no missing values unless ``missing`` (a probe's raw statistics skip
    NaN, and a Pipeline's imputer fills them before the model sees them).
    Returned unchanged (never copied or mutated)."""
    if background is None:
        raise ValueError(no_background_message(caller, what))
    if isinstance(background, str) or np.ndim(background) == 0:
        raise ValueError(
            f"background must be rows like X (a 2-D array-like), got "
            f"{type(background).__name__}."
        )
    if len(background) == 0:
        raise ValueError(
            f"{caller}: the background has no rows; pass rows that stand for "
            "the data, typically the training rows."
        )
    frame_x, frame_b = hasattr(X, "columns"), hasattr(background, "columns")
    if frame_x and frame_b:
        if list(background.columns) != list(X.columns):
            missing = [c for c in X.columns if c not in set(background.columns)]
            extra = [c for c in background.columns if c not in set(X.columns)]
            raise ValueError(
                f"{caller}: the background has other columns than X (missing "
                f"{missing}, extra {extra}, or another order); it must have "
                "X's columns, in X's order."
            )
    elif np.shape(background)[1:] != np.shape(X)[1:]:
        raise ValueError(
            f"{caller}: the background's rows have shape "
            f"{np.shape(background)[1:]}, X's {np.shape(X)[1:]}; they must match."
        )
    if not missing and _has_missing(background):
        raise ValueError(
            f"{caller}: the background contains NaN (missing values); a "
            "reference built from it would be undefined. Drop or impute those "
            "rows first."
        )
    return background


def _has_missing(rows) -> bool:
    import pandas as pd

    if hasattr(rows, "isna"):
        return bool(rows.isna().to_numpy().any())
    array = np.asarray(rows)
    if array.dtype.kind in "fc":
        return bool(np.isnan(array).any())
    if array.dtype.kind == "O":
        return bool(pd.isna(array).any())
    return False
