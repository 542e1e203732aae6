"""Plots of importance results: ``ImportanceDisplay``.

The Display only draws: statistics over results (alignment by feature, rank
agreement) live in ``_compare``, and importances are computed by the methods
of the one registry, which also says which results are signed (drawn in order
of magnitude). matplotlib is imported only when something is drawn, so
importing this module loads no plotting library and no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._compare import aligned_rows, named_results, rank_agreement
from ._drawing import (
    clustering_of,
    consensus_order,
    draw_dendrogram,
    draw_feature_axes,
    draw_heatmap,
    draw_importances,
    import_pyplot,
    panels,
)
from ._methods import DEFAULT_METHOD, is_signed, resolve_methods
from ._validation import check_choice, check_positive_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._result import ImportanceResult

__all__ = ["ImportanceDisplay"]

_KINDS = ("bar", "box")
_ERRORBARS = ("std", "ci", None)
_LAYOUTS = ("panels", "grouped")


class ImportanceDisplay:
    """Bar, box and rank-agreement plots of one or several importance results.

    Build it with ``from_result`` (results you already have) or
    ``from_estimator`` (computes them), then draw with ``plot`` or
    ``plot_rank_agreement``. Unlike scikit-learn's displays, the ``from_*``
    constructors do not draw: computing importances can be slow and one
    computation usually deserves several views (bars, boxes, agreement), so
    drawing is always an explicit ``.plot()`` call.

    Several results are compared either in one panel per method
    (``layout="panels"``, each on its own scale, features in one shared order)
    or as grouped bars in a single panel (``layout="grouped"``), where each
    method's importances are divided by its largest absolute mean importance
    so that the methods share one axis.

    Parameters
    ----------
    results : dict of str to ImportanceResult
        The results to plot, keyed by the name shown in titles and legends.
        A single ``ImportanceResult`` or a list of them is
        accepted too (keyed by their ``method``).

    Attributes
    ----------
    figure_ : matplotlib Figure
        The figure of the latest drawing.
    ax_ : matplotlib Axes
        The axes of the latest drawing; the first panel when there are several.
    axes_ : ndarray of matplotlib Axes
        Every panel of the latest drawing, left to right.
    features_ : ndarray of str
        The features drawn by ``plot``, most important first (top to bottom).
    bars_ : list of matplotlib BarContainer
        One per result for ``kind="bar"``; empty for ``kind="box"``.
    errorbars_ : list of matplotlib ErrorbarContainer or None
        One per result for ``kind="bar"``; None where no error bars are drawn.
    boxes_ : list of dict
        One per result for ``kind="box"`` (as returned by ``Axes.boxplot``);
        empty for ``kind="bar"``.
    agreement_ : pandas.DataFrame
        Set by ``plot_rank_agreement``: the matrix it draws.
    image_ : matplotlib AxesImage
        Set by ``plot_rank_agreement``.
    dendrogram_ : dict
        Set by ``plot_dendrogram``: what ``scipy.cluster.hierarchy.dendrogram``
        returned (``ivl`` holds the leaves in drawing order).

    See Also
    --------
    ImportanceResult.plot : Shortcut for ``from_result(result).plot(...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimportance import ImportanceDisplay, ImportanceResult
    >>> rng = np.random.default_rng(0)
    >>> perm = ImportanceResult(rng.normal([[3], [1], [2]], 0.2, (3, 5)),
    ...                         ["age", "bmi", "bp"], method="permutation")
    >>> olden = ImportanceResult([0.5, 0.1, 0.9], ["age", "bmi", "bp"],
    ...                          method="olden")
    >>> display = ImportanceDisplay.from_result(perm).plot(top_n=2)
    >>> display.features_.tolist()
    ['age', 'bp']
    >>> both = ImportanceDisplay.from_result([perm, olden])
    >>> both.plot(layout="grouped").axes_.shape
    (1,)
    >>> from skimportance import rank_agreement
    >>> rank_agreement([perm, olden]).round(2)
                 permutation  olden
    permutation          1.0    0.5
    olden                0.5    1.0
    """

    def __init__(self, results: Mapping[str, ImportanceResult]):
        self.results = results

    # -- constructors -------------------------------------------------------------
    @classmethod
    def from_result(
        cls,
        result: ImportanceResult
        | Mapping[str, ImportanceResult]
        | Sequence[ImportanceResult],
    ) -> ImportanceDisplay:
        """Make a display of results you already have (nothing is drawn yet).

        Parameters
        ----------
        result : ImportanceResult, dict of str to ImportanceResult, or list
            One result, or several to compare side by side. A dict's keys name
            the methods in the plots; a list is keyed by each result's
            ``method`` (repeated methods become ``"permutation (2)"``, ...).

        Returns
        -------
        ImportanceDisplay
            Call ``plot``, ``plot_rank_agreement`` or
            ``rank_agreement`` on it.

        Examples
        --------
        >>> from skimportance import ImportanceDisplay, ImportanceResult
        >>> result = ImportanceResult([[0.3], [0.1]], ["a", "b"], method="olden")
        >>> list(ImportanceDisplay.from_result(result).results)
        ['olden']
        """
        return cls(named_results(result))

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y=None,
        *,
        method: str | Sequence[str] = DEFAULT_METHOD,
        method_params: Mapping[str, Any] | None = None,
        random_state=None,
        n_repeats: int | None = None,
        scoring=None,
        n_jobs: int | None = None,
        batch_size: int | None = None,
    ) -> ImportanceDisplay:
        """Compute importances of a fitted estimator and make a display of them.

        Nothing is drawn yet; call ``plot`` on the result.

        Parameters
        ----------
        estimator : object
            A fitted estimator, as accepted by the importance functions (a Keras
            wrapper, a Pipeline ending in one, or, for the methods that need no
            Keras model, any fitted scikit-learn estimator).
        X : array-like of shape (n_samples, n_features) or None
            Data to compute the importances on, preferably held out. The weight
            methods use it only to check that the inputs are standardised, so
            it may be None for them.
        y : array-like of shape (n_samples,), default=None
            Targets; needed by the methods that score predictions against
            them (permutation importance, for one).
        method : str or list of str, default="permutation"
            Which registered method(s) to run, the names every skimportance
            adapter and the command line accept (``skimportance --help``
            lists them). A list runs each one, for a side-by-side comparison.
            Several ``scoring`` metrics give one result per metric, named
            ``"permutation (<metric>)"``.
        method_params : dict, default=None
            Further keyword arguments for the method's function, e.g.
            ``{"baseline": "mean"}``. With a list of methods, a dict from
            method name to such a dict, e.g. ``{"probe": {"baseline": "mean"}}``.
        random_state : int, RandomState or None, default=None
            Seeds the methods' random draws; deterministic methods ignore it.
        n_repeats, scoring, n_jobs, batch_size : default=None
            Passed to every chosen method that takes them (None: its default);
            an error if none of them does.

        Returns
        -------
        ImportanceDisplay

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.linear_model import Ridge
        >>> from skimportance import ImportanceDisplay
        >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
        >>> ridge = Ridge().fit(X, y)
        >>> display = ImportanceDisplay.from_estimator(
        ...     ridge, X, y, n_repeats=3, random_state=0)
        >>> display.plot(top_n=3).features_.tolist()
        ['bmi', 's5', 'bp']
        """
        import_pyplot(f"{cls.__name__}.from_estimator")
        if not isinstance(method, str) and not list(method):
            raise ValueError("method must name at least one importance method.")
        calls = resolve_methods(
            method,
            method_params,
            run_params={
                "random_state": random_state,
                "n_repeats": n_repeats,
                "scoring": scoring,
                "n_jobs": n_jobs,
                "batch_size": batch_size,
            },
        )
        if y is None:
            scored = [call.name for call in calls if call.spec.needs_y]
            if scored:
                raise ValueError(f"method {scored} needs the targets y.")
        results = {}
        for call in calls:
            results.update(call(estimator, X, y))
        return cls(results)

    # -- drawing ------------------------------------------------------------------
    def plot(
        self,
        kind: str = "bar",
        *,
        top_n: int | None = None,
        ax: Axes | Sequence[Axes] | None = None,
        errorbars: str | None = "std",
        level: float = 0.95,
        layout: str = "panels",
        normalize: bool | None = None,
        bar_kwargs: Mapping[str, Any] | None = None,
        box_kwargs: Mapping[str, Any] | None = None,
    ) -> ImportanceDisplay:
        """Draw the importances as horizontal bars or boxes.

        Features run top to bottom from most to least important. With several
        results they are ordered by their mean normalised importance across the
        methods (each method divided by its largest absolute mean), so every
        method is drawn in the same order. A signed method's results (a
        registry entry with ``signed=True``) count by magnitude.

        Parameters
        ----------
        kind : {"bar", "box"}, default="bar"
            ``"bar"``: the mean importance with error bars; ``"box"``: a box
            plot of the draws (permutation repeats, samples, folds...) per
            feature.
        top_n : int, default=None
            Draw only the ``top_n`` most important features (all if None).
        ax : matplotlib Axes or list of Axes, default=None
            Where to draw. One Axes, or with ``layout="panels"`` and several
            results one Axes per result. A new figure is made if None.
        errorbars : {"std", "ci"} or None, default="std"
            For ``kind="bar"``: the standard deviation of the draws, the
            ``level`` confidence interval of the mean from the result's
            ``ci``, or none. Results with a single draw (e.g. weight methods)
            get no error bars.
        level : float, default=0.95
            Confidence level for ``errorbars="ci"``.
        layout : {"panels", "grouped"}, default="panels"
            How several results are compared: one panel per result, or grouped
            bars (or boxes) in one panel. Ignored for a single result.
        normalize : bool, default=None
            Divide each result by its largest absolute mean importance. None
            means True for ``layout="grouped"`` with several results (the
            methods' scales are not comparable) and False otherwise.
        bar_kwargs : dict, default=None
            Passed to ``Axes.barh`` (e.g. ``color``, ``capsize``).
        box_kwargs : dict, default=None
            Passed to ``Axes.boxplot`` (e.g. ``showfliers``).

        Returns
        -------
        ImportanceDisplay
            ``self``, with ``figure_``, ``ax_``, ``axes_``, ``features_``,
            ``bars_``, ``errorbars_`` and ``boxes_`` set.

        Examples
        --------
        >>> from skimportance import ImportanceDisplay, ImportanceResult
        >>> result = ImportanceResult([[3.0, 2.0], [0.5, 0.7], [1.0, 1.4]],
        ...                           ["x0", "x1", "x2"], method="permutation")
        >>> display = ImportanceDisplay.from_result(result).plot(kind="box")
        >>> len(display.boxes_[0]["boxes"])
        3
        """
        check_choice("kind", kind, _KINDS)
        check_choice("errorbars", errorbars, _ERRORBARS)
        check_choice("layout", layout, _LAYOUTS)
        if top_n is not None:
            top_n = check_positive_int("top_n", top_n)
        if errorbars == "ci" and not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}.")
        plt = import_pyplot(f"{type(self).__name__}.plot")

        results = named_results(self.results)
        features, rows = aligned_rows(results)
        n_results = len(results)
        grouped = layout == "grouped" or n_results == 1
        if normalize is None:
            normalize = layout == "grouped" and n_results > 1
        signed = {name: is_signed(result.method) for name, result in results.items()}
        order = consensus_order(results, rows, top_n, signed)
        n_rows = len(order)
        axes = panels(
            plt, ax, 1 if grouped else n_results, n_rows, n_results if grouped else 1
        )
        self.bars_, self.errorbars_, self.boxes_ = draw_importances(
            axes, results, rows, order, kind=kind, grouped=grouped,
            normalize=normalize, errorbars=errorbars, level=level,
            bar_kwargs=bar_kwargs, box_kwargs=box_kwargs,
        )  # fmt: skip
        draw_feature_axes(axes, features[order], normalize)
        self.features_ = features[order]
        self.axes_ = axes
        self.ax_ = axes[0]
        self.figure_ = axes[0].figure
        return self

    def plot_rank_agreement(
        self,
        ax: Axes | None = None,
        *,
        cmap: str = "RdBu",
        annotate: bool = True,
        colorbar: bool = True,
    ) -> ImportanceDisplay:
        """Draw :func:`skimportance.rank_agreement` of the results as a heat map.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure is made if None.
        cmap : str or matplotlib Colormap, default="RdBu"
            Colour map, spanning -1 to 1.
        annotate : bool, default=True
            Write each correlation in its cell.
        colorbar : bool, default=True
            Add a colour bar.

        Returns
        -------
        ImportanceDisplay
            ``self``, with ``agreement_``, ``image_``, ``figure_``, ``ax_``
            and ``axes_`` set.

        Examples
        --------
        >>> from skimportance import ImportanceDisplay, ImportanceResult
        >>> a = ImportanceResult([3, 2, 1], ["x", "y", "z"], method="permutation")
        >>> b = ImportanceResult([2, 3, 1], ["x", "y", "z"], method="olden")
        >>> display = ImportanceDisplay.from_result([a, b]).plot_rank_agreement()
        >>> float(display.agreement_.loc["permutation", "olden"])
        0.5
        """
        agreement = rank_agreement(self.results)
        plt = import_pyplot(f"{type(self).__name__}.plot_rank_agreement")
        if ax is None:
            size = 2.5 + 0.7 * len(agreement)
            _, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
        self.image_ = draw_heatmap(ax, agreement, cmap, annotate, colorbar)
        self.agreement_ = agreement
        self.axes_ = np.array([ax], dtype=object)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def plot_dendrogram(
        self, ax: Axes | None = None, *, dendrogram_kwargs: Mapping | None = None
    ) -> ImportanceDisplay:
        """Draw the correlation clusters behind ``feature_groups="auto"``.

        The dendrogram of the hierarchical clustering on ``1 - |Spearman rho|``
        that chose the groups, with the cut at ``1 - cluster_threshold``:
        leaves joined left of the dashed line were measured as one group. It
        is read from the first result (or first fold of a cross-validated
        result) whose ``details`` hold a ``"clustering"``.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure is made if None.
        dendrogram_kwargs : dict, default=None
            Passed to ``scipy.cluster.hierarchy.dendrogram``.

        Returns
        -------
        ImportanceDisplay
            ``self``, with ``dendrogram_``, ``figure_``, ``ax_`` and ``axes_``
            set.

        Raises
        ------
        ValueError
            No result was computed with ``feature_groups="auto"``, or fewer
            than two numeric columns were clustered.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LinearRegression
        >>> from skimportance import ImportanceDisplay, permutation_importance
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(size=(300, 2))
        >>> X = np.column_stack([z[:, 0], z[:, 0] + 0.1 * rng.normal(size=300),
        ...                      z[:, 1]])
        >>> y = X.sum(axis=1)
        >>> result = permutation_importance(LinearRegression().fit(X, y), X, y,
        ...                                 feature_groups="auto", random_state=0)
        >>> result.feature_names.tolist()
        ['x0+x1', 'x2']
        >>> display = ImportanceDisplay.from_result(result).plot_dendrogram()
        >>> sorted(display.dendrogram_["ivl"])
        ['x0', 'x1', 'x2']
        """
        clustering = clustering_of(self.results)
        plt = import_pyplot(f"{type(self).__name__}.plot_dendrogram")
        if ax is None:
            height = 1.5 + 0.3 * len(clustering["columns"])
            _, ax = plt.subplots(figsize=(6, height), layout="constrained")
        self.dendrogram_ = draw_dendrogram(ax, clustering, dendrogram_kwargs)
        self.axes_ = np.array([ax], dtype=object)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
