"""Drawing an InteractionResult: a heat map of its pairs, and scikit-learn's
own two-way partial dependence of the strongest ones. Imports matplotlib."""

from __future__ import annotations

import numpy as np

__all__ = ["InteractionPlot"]


class InteractionPlot:
    """What :meth:`InteractionResult.plot` drew.

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes
        The heat map.
    image_ : matplotlib AxesImage
        Its image, whose array is ``result.matrix()``.
    dependence_ : sklearn.inspection.PartialDependenceDisplay or None
        The 2-D partial dependence of the top pairs, when an estimator and X
        were given.
    """

    def __init__(self, figure, ax, image, dependence):
        self.figure_, self.ax_, self.image_ = figure, ax, image
        self.dependence_ = dependence

    @classmethod
    def draw(cls, result, estimator=None, X=None, *, top=2, ax=None, cmap="viridis"):
        import matplotlib.pyplot as plt

        if (estimator is None) != (X is None):
            raise ValueError(
                "Pass both estimator and X to draw the partial dependence of the "
                "top pairs, or neither for the heat map alone."
            )
        pairs = result.top(top) if estimator is not None else []
        if ax is None:
            n_panels = 1 + len(pairs)
            figure, axes = plt.subplots(
                1, n_panels, figsize=(4.5 * n_panels, 4), squeeze=False
            )
            ax, pd_axes = axes[0, 0], list(axes[0, 1:])
        else:
            figure, pd_axes = ax.figure, None
        image = _draw_heatmap(ax, result, cmap)
        dependence = None
        if pairs:
            dependence = _draw_dependence(estimator, X, pairs, pd_axes, figure)
        return cls(figure, ax, image, dependence)


def _draw_heatmap(ax, result, cmap):
    matrix = result.matrix()
    # Signed values (the permutation excess) on a diverging map centred on 0.
    values = matrix.to_numpy(dtype=float)
    if result.method == "h2":
        image = ax.imshow(values, cmap=cmap, vmin=0)
    else:
        bound = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
        image = ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound)
    names = list(matrix.index)
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    label = "H²" if result.method == "h2" else "joint-permutation excess"
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_title("Pairwise interactions")
    return image


def _draw_dependence(estimator, X, pairs, axes, figure):
    """scikit-learn's PartialDependenceDisplay for the pairs (not redrawn)."""
    from sklearn.inspection import PartialDependenceDisplay

    features = [tuple(_column(X, name) for name in pair) for pair in pairs]
    return PartialDependenceDisplay.from_estimator(
        estimator,
        X,
        features,
        ax=axes if axes else None,
        kind="average",
    )


def _column(X, name):
    """A column as PartialDependenceDisplay takes it: its name in a frame,
    its position in an array (our default names are ``x<j>``)."""
    if hasattr(X, "columns"):
        if name not in list(X.columns):
            raise ValueError(
                f"The pair's feature {name!r} is not a column of X (a group of "
                "columns has no two-way partial dependence); plot without it."
            )
        return name
    if isinstance(name, str) and name.startswith("x") and name[1:].isdigit():
        return int(name[1:])
    raise ValueError(f"Cannot find the feature {name!r} among X's columns.")
