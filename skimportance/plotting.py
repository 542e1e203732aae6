"""Plots of importance results: ``ImportanceDisplay``.

The Display only draws: statistics over results (alignment by feature, rank
agreement) live in ``_compare``, and importances are computed by the methods
of the one registry. matplotlib is imported only when something is drawn and
the methods only when ``ImportanceDisplay.from_estimator`` computes one, so
importing this module costs nothing but NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._compare import aligned_rows, named_results, rank_agreement
from ._compat import boxplot_horizontal
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
        method: str | Sequence[str] = "permutation",
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
            wrapper, a Pipeline ending in one, or, for ``"permutation"`` and
            ``"conditional"``, any fitted scikit-learn estimator).
        X : array-like of shape (n_samples, n_features) or None
            Data to compute the importances on, preferably held out. The weight
            methods use it only to check that the inputs are standardised, so
            it may be None for them.
        y : array-like of shape (n_samples,), default=None
            Targets; needed by the methods that score predictions
            (``"permutation"``, ``"conditional"``).
        method : str or list of str, default="permutation"
            Which registered method(s) to run, the names every skimportance
            adapter and the command line accept: ``"permutation"``,
            ``"conditional"``, ``"first_layer"``, ``"garson"``, ``"olden"``,
            ``"probe"``, ``"profile"``, ``"occlusion"``, ``"saliency"``,
            ``"input_x_gradient"``, ``"integrated_gradients"``. A list runs
            each one, for a side-by-side comparison. Several ``scoring``
            metrics give one result per metric, named
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
        from ._methods import resolve_methods

        _import_pyplot(f"{cls.__name__}.from_estimator")
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
        method is drawn in the same order.

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
        plt = _import_pyplot(f"{type(self).__name__}.plot")

        results = named_results(self.results)
        features, rows = aligned_rows(results)
        n_results = len(results)
        grouped = layout == "grouped" or n_results == 1
        if normalize is None:
            normalize = layout == "grouped" and n_results > 1
        order = _consensus_order(results, rows, top_n)
        n_rows = len(order)
        axes = _panels(
            plt, ax, 1 if grouped else n_results, n_rows, n_results if grouped else 1
        )
        height = 0.8 / n_results if grouped else 0.8
        offsets = (np.arange(n_results) - (n_results - 1) / 2) * height
        positions = np.arange(n_rows)

        self.bars_, self.errorbars_, self.boxes_ = [], [], []
        for i, (name, result) in enumerate(results.items()):
            panel = axes[0] if grouped else axes[i]
            at = positions + (offsets[i] if grouped else 0.0)
            scale = _largest_abs_mean(result) if normalize else 1.0
            result_rows = rows[name][order]
            if kind == "bar":
                xerr = _bar_errors(result, result_rows, errorbars, level)
                bars = panel.barh(
                    at,
                    result.importances_mean[result_rows] / scale,
                    height=height,
                    xerr=None if xerr is None else xerr / scale,
                    label=name,
                    **{
                        "color": f"C{i}",
                        "ecolor": "0.2",
                        "capsize": 3,
                        **(bar_kwargs or {}),
                    },
                )
                self.bars_.append(bars)
                self.errorbars_.append(bars.errorbar)
            else:
                draws = result.importances[result_rows] / scale
                self.boxes_.append(_draw_boxes(panel, at, draws, height, i, box_kwargs))

        _draw_feature_axes(axes, features[order], normalize)
        if grouped and n_results > 1:
            handles = (
                self.bars_ if kind == "bar" else [b["boxes"][0] for b in self.boxes_]
            )
            axes[0].legend(handles, list(results), title="method")
        else:
            for panel, name in zip(axes, results):
                panel.set_title(name)

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
        plt = _import_pyplot(f"{type(self).__name__}.plot_rank_agreement")
        if ax is None:
            size = 2.5 + 0.7 * len(agreement)
            _, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
        self.image_ = _draw_heatmap(ax, agreement, cmap, annotate, colorbar)
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
        clustering = _clustering_of(self.results)
        plt = _import_pyplot(f"{type(self).__name__}.plot_dendrogram")
        if ax is None:
            height = 1.5 + 0.3 * len(clustering["columns"])
            _, ax = plt.subplots(figsize=(6, height), layout="constrained")
        self.dendrogram_ = _draw_dendrogram(ax, clustering, dendrogram_kwargs)
        self.axes_ = np.array([ax], dtype=object)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


# -- drawing helpers ------------------------------------------------------------------
def _import_pyplot(caller: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` or `pip install 'skimportance[plot]'`."
        ) from exc
    return plt


def _largest_abs_mean(result) -> float:
    largest = float(np.max(np.abs(result.importances_mean)))
    return largest if largest > 0 else 1.0


def _consensus_order(results: dict, rows: dict, top_n: int | None) -> np.ndarray:
    """Feature positions, most important first by mean normalised importance."""
    consensus = np.mean(
        [
            result.importances_mean[rows[name]] / _largest_abs_mean(result)
            for name, result in results.items()
        ],
        axis=0,
    )
    return np.argsort(-consensus, kind="stable")[:top_n]


def _panels(plt, ax, n_panels: int, n_rows: int, bars_per_row: int) -> np.ndarray:
    """The Axes to draw in: the user's (checked) or a new row of panels."""
    if ax is None:
        height = 1.2 + 0.3 * n_rows * (1 + 0.4 * (bars_per_row - 1))
        _, axes = plt.subplots(
            1,
            n_panels,
            sharey=True,
            squeeze=False,
            layout="constrained",
            figsize=(1.5 + 4.0 * n_panels, max(2.5, height)),
        )
        return axes[0]
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if len(axes) != n_panels:
        raise ValueError(
            f"ax must hold {n_panels} Axes here (one per panel), got {len(axes)}. "
            "Pass one Axes per result, or use layout='grouped' to draw several "
            "results in one Axes."
        )
    return axes


def _bar_errors(result, rows, errorbars, level) -> np.ndarray | None:
    """Error bar half-widths (std) or (2, n) lower/upper distances (ci)."""
    if errorbars is None or result.importances.shape[1] < 2:
        return None  # one draw has no spread to show
    if errorbars == "std":
        return result.importances_std[rows]
    mean, lower, upper = result.ci(level).to_numpy()[rows].T
    return np.vstack([mean - lower, upper - mean])


def _draw_boxes(panel, positions, draws, height, color, box_kwargs):
    """Horizontal box plots, one per row of ``draws``."""
    options = {
        "positions": positions,
        "widths": 0.8 * height,
        "patch_artist": True,
        "manage_ticks": False,
        "boxprops": {"facecolor": f"C{color}"},
        "medianprops": {"color": "black"},
        **boxplot_horizontal(),
    }
    return panel.boxplot(list(draws), **{**options, **(box_kwargs or {})})


def _draw_feature_axes(axes, features, normalize: bool) -> None:
    """Feature names on the y axis, most important on top, and a zero line."""
    xlabel = "Importance / largest |mean importance|" if normalize else "Importance"
    for panel in axes:
        panel.axvline(0.0, color="0.3", linewidth=0.8, zorder=0)
        panel.set_yticks(np.arange(len(features)), labels=features)
        panel.set_ylim(len(features) - 0.5, -0.5)
        panel.set_xlabel(xlabel)


def _draw_heatmap(ax, agreement, cmap, annotate: bool, colorbar: bool):
    """The agreement matrix as an image, annotated, with a colour bar."""
    values = agreement.to_numpy()
    image = ax.imshow(values, vmin=-1, vmax=1, cmap=cmap)
    ticks = np.arange(len(agreement))
    ax.set_xticks(ticks, labels=agreement.columns, rotation=45, ha="right")
    ax.set_yticks(ticks, labels=agreement.index)
    if annotate:
        for (i, j), value in np.ndenumerate(values):
            ax.text(
                j,
                i,
                "nan" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if abs(value) > 0.6 else "black",
            )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="Spearman rank correlation")
    ax.set_title("Rank agreement")
    return image


def _clustering_of(results) -> dict:
    """The first ``details["clustering"]`` among the results (or their folds)."""
    for result in named_results(results).values():
        for candidate in [result, *getattr(result, "fold_results", [])[:1]]:
            clustering = getattr(candidate, "details", {}).get("clustering")
            if clustering is not None:
                if len(clustering["linkage"]) == 0:
                    raise ValueError(
                        "Fewer than two numeric columns were clustered: there is "
                        "no dendrogram to draw."
                    )
                return clustering
    raise ValueError(
        "No result holds a clustering to draw: compute the importances with "
        "feature_groups='auto'."
    )


def _draw_dendrogram(ax, clustering: dict, dendrogram_kwargs):
    """The linkage as a dendrogram, leaves on the left, and the cut."""
    from scipy.cluster import hierarchy

    options = {
        "labels": clustering["columns"],
        "orientation": "right",
        "color_threshold": clustering["cut"],
        "above_threshold_color": "0.5",
        **(dendrogram_kwargs or {}),
    }
    tree = hierarchy.dendrogram(clustering["linkage"], ax=ax, **options)
    ax.axvline(clustering["cut"], color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlabel(
        f"1 - |{clustering['correlation'].capitalize()} rho| ({clustering['method']})"
    )
    ax.set_title(f"Feature groups: |rho| >= {clustering['threshold']:g} joined")
    return tree
