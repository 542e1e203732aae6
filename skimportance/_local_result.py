"""``LocalResult``: one attribution per (explained row, feature)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._result import ImportanceResult

__all__ = ["LocalResult"]


@dataclass
class LocalResult:
    """Local attributions: how much each feature moved each row's prediction.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_features)
        The signed attribution of each feature (raw column or group) to each
        explained row's response.
    base_value : float
        The reference the attributions start from: the mean response on the
        background. For Shapley values (and expected gradients, up to the
        quadrature error) each row's values add up to its prediction minus
        ``base_value``.
    feature_names : array-like of str
        One name per feature.
    method : str
        How the values were computed.
    index : array-like, default=None
        X's index (a DataFrame's), else 0 .. n_rows - 1.
    data : ndarray of shape (n_rows, n_features), default=None
        The explained rows' raw values, when every feature is one raw column
        (shap's plots print them); None with groups.
    standard_errors : ndarray of shape (n_rows, n_features), default=None
        Of sampled values (permutation sampling); None when exact.
    output_name : str, default=None
        The response column explained.
    details : dict
        ``"prediction"`` (each row's response), and method-specific extras.

    Examples
    --------
    >>> import numpy as np
    >>> from skimportance._local_result import LocalResult
    >>> result = LocalResult(np.array([[1.0, -2.0], [0.5, 0.0]]), 3.0,
    ...                      ["a", "b"], method="shapley")
    >>> result.to_frame().loc[0].tolist()
    [1.0, -2.0]
    >>> result.global_importance().importances_mean
    array([0.75, 1.  ])
    """

    values: np.ndarray
    base_value: float
    feature_names: np.ndarray
    method: str
    index: Any = None
    data: np.ndarray | None = None
    standard_errors: np.ndarray | None = None
    output_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2:
            raise ValueError(
                f"values must have shape (n_rows, n_features), got {self.values.shape}."
            )
        self.feature_names = np.asarray(
            [str(n) for n in self.feature_names], dtype=object
        )
        if len(self.feature_names) != self.values.shape[1]:
            raise ValueError(
                f"{len(self.feature_names)} feature names for "
                f"{self.values.shape[1]} features."
            )
        if self.index is None:
            self.index = np.arange(len(self.values))
        self.base_value = float(self.base_value)

    @property
    def n_rows(self) -> int:
        return self.values.shape[0]

    def to_frame(self):
        """The values as a DataFrame: X's index, one column per feature."""
        import pandas as pd

        return pd.DataFrame(
            self.values, index=self.index, columns=list(self.feature_names)
        )

    def global_importance(self) -> ImportanceResult:
        """Mean absolute value per feature over the explained rows, as an
        :class:`ImportanceResult` (one draw per row)."""
        return ImportanceResult(
            np.abs(self.values).T,
            self.feature_names,
            method=f"mean |{self.method}|",
            details={"signed": self.values.T.copy(), "base_value": self.base_value},
        )

    def plot(self, row: int = 0, *, label=None, top_n: int | None = None, ax=None):
        """One row's values as horizontal bars, largest magnitude on top.

        Parameters
        ----------
        row : int, default=0
            Position of the row among the explained rows.
        label : object, default=None
            The row's label in X's index instead of its position.
        top_n : int, default=None
            Only the ``top_n`` largest magnitudes.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib Axes
        """
        from ._drawing import import_pyplot

        plt = import_pyplot("LocalResult.plot")
        position = self._position(row, label)
        values = self.values[position]
        order = np.argsort(np.abs(values), kind="stable")
        if top_n is not None:
            order = order[-int(top_n) :]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1.2))
        colours = np.where(values[order] >= 0, "tab:red", "tab:blue")
        ax.barh(self.feature_names[order].astype(str), values[order], color=colours)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{self.method} value (base value {self.base_value:.4g})")
        ax.set_title(f"row {self.index[position]}")
        return ax

    def _position(self, row, label) -> int:
        if label is not None:
            matches = np.flatnonzero(np.asarray(self.index) == label)
            if len(matches) != 1:
                raise ValueError(
                    f"label={label!r} is not a (unique) label of X's index."
                )
            return int(matches[0])
        if not isinstance(row, (int, np.integer)) or isinstance(row, bool):
            raise TypeError(f"row must be an int position, got {type(row).__name__}.")
        if not -self.n_rows <= row < self.n_rows:
            raise ValueError(f"row={row} is out of range for {self.n_rows} rows.")
        return int(row) % self.n_rows

    def to_shap(self):
        """A ``shap.Explanation`` of these values, so shap's own plots
        (waterfall, beeswarm, bar) draw them; needs shap installed."""
        try:
            import shap
        except ImportError as exc:
            raise ImportError(
                "LocalResult.to_shap needs shap, which is not installed "
                "(`pip install shap`)."
            ) from exc
        return shap.Explanation(
            values=self.values,
            base_values=np.full(self.n_rows, self.base_value),
            data=self.data,
            feature_names=[str(name) for name in self.feature_names],
        )
