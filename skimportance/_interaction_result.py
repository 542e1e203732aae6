"""InteractionResult: the pairs of features that interact, strongest first.

Kept apart from the drawing code: :meth:`InteractionResult.plot` imports it
(and matplotlib) only when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._persistence import ResultIO, register_result

__all__ = ["InteractionResult"]


@register_result("interaction")
@dataclass
class InteractionResult(ResultIO):
    """Pairwise interactions, as :func:`skimportance.interaction_importance` finds them.

    Attributes
    ----------
    pairs : pandas.DataFrame
        One row per evaluated pair, strongest first (by ``h`` for ``"h2"``,
        by ``|interaction|`` for ``"permutation"``):
        ``feature_a``, ``feature_b``, ``interaction`` (H² for ``"h2"``, the
        signed joint-permutation excess for ``"permutation"``), ``std`` (over
        the repeats; NaN for ``"h2"``), ``pvalue`` (two-sided, across rows;
        NaN for ``"h2"``), and for ``"h2"`` also ``h`` (the unnormalised
        ``sqrt`` of H²'s numerator, Inglis et al. 2022).
    method : str
        ``"h2"`` or ``"permutation"``.
    feature_names : ndarray of str
        The features whose pairs were evaluated (after screening).
    total : pandas.Series or None
        ``"h2"``: each screened feature's total H² (its interaction with all
        the others together), strongest first. None for ``"permutation"``.
    details : dict
        How the run went: ``algorithm``, ``n_samples``, ``screened_from``...
    excess_differences : ndarray of shape (n_pairs, n_rows) or None
        ``"permutation"``: each pair's per-row loss excess (in the order of
        ``pairs``), which the p-values test.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import PolynomialFeatures
    >>> from skimportance import interaction_importance
    >>> X = np.random.RandomState(0).uniform(-1, 1, size=(60, 3))
    >>> y = 3 * X[:, 0] * X[:, 2] + X[:, 1]
    >>> model = make_pipeline(PolynomialFeatures(2), LinearRegression()).fit(X, y)
    >>> result = interaction_importance(model, X)
    >>> result.top(1)
    [('x0', 'x2')]
    >>> square = result.matrix()
    >>> bool(square.loc["x0", "x2"] == result.pairs["interaction"][0])
    True
    >>> result.total.index[:2].tolist()  # total H², strongest first
    ['x0', 'x2']
    """

    pairs: object
    method: str
    feature_names: np.ndarray
    total: object = None
    details: dict = field(default_factory=dict)
    excess_differences: np.ndarray | None = None

    def matrix(self, value: str = "interaction"):
        """A square DataFrame of ``value`` (a column of :attr:`pairs`), symmetric,
        NaN on the diagonal and for pairs not evaluated."""
        import pandas as pd

        if value not in self.pairs.columns or value.startswith("feature_"):
            raise ValueError(
                f"value must be one of the numeric columns of pairs "
                f"{[c for c in self.pairs.columns if not c.startswith('feature_')]}; "
                f"got {value!r}."
            )
        names = list(self.feature_names)
        square = pd.DataFrame(np.nan, index=names, columns=names)
        for a, b, v in zip(
            self.pairs["feature_a"], self.pairs["feature_b"], self.pairs[value]
        ):
            square.loc[a, b] = square.loc[b, a] = v
        square.index.name = square.columns.name = "feature"
        return square

    def pvalues(self):
        """The pairs' two-sided p-values (``"permutation"`` only), indexed by
        (feature_a, feature_b).

        Raises
        ------
        ValueError
            An ``"h2"`` result, or one run with ``loss=None``: no p-values.
        """
        if self.excess_differences is None:
            raise ValueError(
                f"This {self.method!r} interaction result has no p-values: only "
                "method='permutation' (with a pointwise loss) tests its pairs."
            )
        return self.pairs.set_index(["feature_a", "feature_b"])["pvalue"]

    def fdr(self, alpha: float = 0.05):
        """Pairs selected at false discovery rate ``alpha`` (Benjamini-Hochberg).

        Returns
        -------
        pandas.DataFrame
            Indexed by (feature_a, feature_b): ``pvalue``, ``qvalue`` and
            ``selected`` (``qvalue <= alpha``).
        """
        from ._stats import fdr_frame

        return fdr_frame(self.pvalues(), alpha)

    def to_frame(self, alpha: float = 0.05):
        """:attr:`pairs` indexed by (feature_a, feature_b), strongest first.

        With p-values (``"permutation"``), also ``qvalue`` and ``selected``:
        Benjamini-Hochberg at false discovery rate ``alpha``, as :meth:`fdr`.
        """
        frame = self.pairs.set_index(["feature_a", "feature_b"])
        if self.excess_differences is not None:
            decision = self.fdr(alpha)
            frame["qvalue"] = decision["qvalue"]
            frame["selected"] = decision["selected"]
        return frame

    @property
    def test_name(self) -> str | None:
        """The test behind ``pvalue``, for captions; None without one."""
        if self.excess_differences is None:
            return None
        return "two-sided, across rows"

    def top(self, k: int = 5) -> list[tuple[str, str]]:
        """The ``k`` strongest pairs, as (feature_a, feature_b) tuples."""
        head = self.pairs.head(k)
        return list(zip(head["feature_a"], head["feature_b"]))

    def plot(self, estimator=None, X=None, *, top: int = 2, ax=None, **kwargs):
        """A heat map of :meth:`matrix`, and the 2-D partial dependence of the
        ``top`` pairs when ``estimator`` and ``X`` are given (drawn by
        scikit-learn's ``PartialDependenceDisplay``). Needs matplotlib.

        Returns
        -------
        InteractionPlot
            With ``figure_``, ``ax_`` (the heat map), ``image_`` and
            ``dependence_`` (the PartialDependenceDisplay, or None).
        """
        from ._interaction_plot import InteractionPlot

        return InteractionPlot.draw(self, estimator, X, top=top, ax=ax, **kwargs)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"({a}, {b})={v:.4g}"
            for a, b, v in zip(
                self.pairs["feature_a"][:3],
                self.pairs["feature_b"][:3],
                self.pairs["interaction"][:3],
            )
        )
        more = ", ..." if len(self.pairs) > 3 else ""
        return (
            f"InteractionResult(method={self.method!r}, n_pairs={len(self.pairs)}, "
            f"strongest: {shown}{more})"
        )
