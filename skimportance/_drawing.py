"""How ``ImportanceDisplay`` draws: matplotlib helpers, one per element.

Each takes the Axes to draw in and the numbers to draw; ``plotting`` decides
what goes where. matplotlib is imported only by :func:`import_pyplot`, and
scipy only by :func:`draw_dendrogram`, when something is drawn.
"""

from __future__ import annotations

import numpy as np

from ._compare import named_results
from ._compat import boxplot_horizontal

__all__ = [
    "import_pyplot",
    "largest_abs_mean",
    "consensus_order",
    "panels",
    "bar_errors",
    "draw_boxes",
    "draw_importances",
    "draw_feature_axes",
    "draw_heatmap",
    "clustering_of",
    "draw_dendrogram",
]


def import_pyplot(caller: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` or `pip install 'skimportance[plot]'`."
        ) from exc
    return plt


def largest_abs_mean(result) -> float:
    largest = float(np.max(np.abs(result.importances_mean)))
    return largest if largest > 0 else 1.0


def consensus_order(
    results: dict, rows: dict, top_n: int | None, signed: dict
) -> np.ndarray:
    """Feature positions, most important first by mean normalised importance.

    A signed result (``signed[name]``: its method's spec says so) counts by
    magnitude: a strongly negative feature matters as much as a positive one.
    """
    consensus = np.mean(
        [
            (np.abs if signed[name] else np.asarray)(
                result.importances_mean[rows[name]]
            )
            / largest_abs_mean(result)
            for name, result in results.items()
        ],
        axis=0,
    )
    return np.argsort(-consensus, kind="stable")[:top_n]


def panels(plt, ax, n_panels: int, n_rows: int, bars_per_row: int) -> np.ndarray:
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


def bar_errors(result, rows, errorbars, level) -> np.ndarray | None:
    """Error bar half-widths (std) or (2, n) lower/upper distances (ci)."""
    if errorbars is None or result.importances.shape[1] < 2:
        return None  # one draw has no spread to show
    if errorbars == "std":
        return result.importances_std[rows]
    mean, lower, upper = result.ci(level).to_numpy()[rows].T
    return np.vstack([mean - lower, upper - mean])


def draw_boxes(panel, positions, draws, height, color, box_kwargs):
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


def draw_importances(
    axes, results, rows, order, *, kind, grouped, normalize, errorbars, level,
    bar_kwargs, box_kwargs,
):  # fmt: skip
    """Bars (``kind="bar"``) or boxes of every result in ``order``: grouped in
    one panel, or one panel each; then a legend or titles naming the results.

    Returns the lists (bars, error bars, boxes), one entry per result.
    """
    n_results, n_rows = len(results), len(order)
    height = 0.8 / n_results if grouped else 0.8
    offsets = (np.arange(n_results) - (n_results - 1) / 2) * height
    positions = np.arange(n_rows)
    bars_, errorbars_, boxes_ = [], [], []
    for i, (name, result) in enumerate(results.items()):
        panel = axes[0] if grouped else axes[i]
        at = positions + (offsets[i] if grouped else 0.0)
        scale = largest_abs_mean(result) if normalize else 1.0
        result_rows = rows[name][order]
        if kind == "bar":
            xerr = bar_errors(result, result_rows, errorbars, level)
            style = {"color": f"C{i}", "ecolor": "0.2", "capsize": 3}
            bars = panel.barh(
                at,
                result.importances_mean[result_rows] / scale,
                height=height,
                xerr=None if xerr is None else xerr / scale,
                label=name,
                **{**style, **(bar_kwargs or {})},
            )
            bars_.append(bars)
            errorbars_.append(bars.errorbar)
        else:
            draws = result.importances[result_rows] / scale
            boxes_.append(draw_boxes(panel, at, draws, height, i, box_kwargs))
    if grouped and n_results > 1:
        handles = bars_ if kind == "bar" else [b["boxes"][0] for b in boxes_]
        axes[0].legend(handles, list(results), title="method")
    else:
        for panel, name in zip(axes, results):
            panel.set_title(name)
    return bars_, errorbars_, boxes_


def draw_feature_axes(axes, features, normalize: bool) -> None:
    """Feature names on the y axis, most important on top, and a zero line."""
    xlabel = "Importance / largest |mean importance|" if normalize else "Importance"
    for panel in axes:
        panel.axvline(0.0, color="0.3", linewidth=0.8, zorder=0)
        panel.set_yticks(np.arange(len(features)), labels=features)
        panel.set_ylim(len(features) - 0.5, -0.5)
        panel.set_xlabel(xlabel)


def draw_heatmap(ax, agreement, cmap, annotate: bool, colorbar: bool):
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


def clustering_of(results) -> dict:
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


def draw_dendrogram(ax, clustering: dict, dendrogram_kwargs):
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
