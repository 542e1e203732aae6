"""``skimportance.report``: one self-contained HTML page of results.

The page is rendered by Jinja2 from ``templates/report.html.j2``; every figure
is drawn by the library's own Display and embedded as inline SVG, so the file
needs no network, no external CSS or JavaScript, and opens anywhere.

Importance results (``ImportanceResult``, ``CVImportanceResult``: anything
with ``importances_mean`` and ``feature_names``) share the importance table,
the side-by-side plot and the method-agreement heat map. Any other result
type (an interaction matrix, local explanations) gets a section of its own
from its ``to_frame()`` and ``plot()``: adding a result type needs no change
here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ._compare import named_results

__all__ = ["report"]


def report(
    results,
    path,
    *,
    title: str = "Which inputs matter?",
    data_summary: Mapping | None = None,
    score: str | None = None,
    skipped: Mapping[str, str] | None = None,
    level: float = 0.95,
    alpha: float = 0.05,
) -> Path:
    """Write an HTML report of importance (and other) results to ``path``.

    Parameters
    ----------
    results : result, list of results or dict of str to result
        ``ImportanceResult``/``CVImportanceResult`` (compared side by side) and
        any other result type with ``to_frame()`` and ``plot()``. A dict's
        keys name the results.
    path : str or path-like
        The HTML file to write.
    title : str, default="Which inputs matter?"
    data_summary : dict, default=None
        Shown first: e.g. ``{"rows": 300, "columns": {name: {...}}}``; the
        command line passes its table's summary.
    score : str, default=None
        The held-out score with the metric named, e.g. ``"held-out R^2: 0.91"``.
        Without it, each result's ``baseline_score`` is shown.
    skipped : dict of str to str, default=None
        Methods that could not answer, and why.
    level, alpha : float, default=0.95, 0.05
        The intervals' confidence level and the false discovery rate of the
        ``selected`` column and the plot's stars.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skimportance import ImportanceResult, report
    >>> result = ImportanceResult(np.array([[0.3, 0.5], [0.1, 0.0]]), ["a", "b"],
    ...                           method="permutation", baseline_score=0.8)
    >>> path = report(result, os.path.join(tempfile.mkdtemp(), "r.html"))
    >>> "<svg" in path.read_text()
    True
    """
    import jinja2

    from . import __version__

    importance, others = _split(_named(results))
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("skimportance", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    page = environment.get_template("report.html.j2").render(
        title=title,
        version=__version__,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        data=data_summary,
        score=score,
        skipped=dict(skipped or {}),
        level=level,
        alpha=alpha,
        importance=[
            _importance_section(n, r, level, alpha) for n, r in importance.items()
        ],
        comparison=_comparison_figures(importance, level, alpha),
        others=[_other_section(name, result) for name, result in others.items()],
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _is_importance(result) -> bool:
    return hasattr(result, "importances_mean") and hasattr(result, "feature_names")


def _named(results) -> dict:
    """{name: result}: a dict as given, else keyed by each result's method
    (repeats numbered as ``named_results`` does for importance results)."""
    if isinstance(results, Mapping):
        return dict(results)
    listed = list(results) if isinstance(results, Sequence) else [results]
    if all(_is_importance(r) for r in listed):
        return named_results(listed)
    named = {}
    for result in listed:
        base = str(getattr(result, "method", type(result).__name__))
        name, k = base, 1
        while name in named:
            k += 1
            name = f"{base} ({k})"
        named[name] = result
    return named


def _split(results: Mapping):
    """(importance results, other result types), both keyed by name."""
    importance = {k: r for k, r in results.items() if _is_importance(r)}
    others = {k: r for k, r in results.items() if not _is_importance(r)}
    return importance, others


def _importance_section(name, result, level, alpha) -> dict:
    from markupsafe import Markup

    frame = result.to_frame(level=level, alpha=alpha)
    table = frame.to_html(
        float_format=lambda v: f"{v:.4g}", classes="importance", border=0
    )
    return {
        "name": name,
        "method": result.method,
        "test": result.test_name,
        "baseline_score": getattr(result, "baseline_score", None),
        "table": Markup(table),
    }


def _comparison_figures(importance: Mapping, level, alpha) -> list[dict]:
    """The side-by-side bar plot and, for two or more, the agreement map."""
    if not importance:
        return []
    from .plotting import ImportanceDisplay

    display = ImportanceDisplay.from_result(dict(importance))
    figures = [{
        "caption": f"Importances with {level:.0%} intervals of each result's own "
        f"test; * selected at false discovery rate {alpha:g}.",
        "svg": _svg(display.plot(level=level, significance=alpha).figure_),
    }]  # fmt: skip
    if len(importance) > 1:
        import matplotlib.pyplot as plt

        side = 2.5 + 0.5 * len(importance)
        _, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
        display.plot_rank_agreement(ax=ax)
        figures.append({
            "caption": "Method agreement: Spearman rank correlation of the "
            "mean importances (1: same order).",
            "svg": _svg(display.figure_),
        })  # fmt: skip
    return figures


def _other_section(name, result) -> dict:
    from markupsafe import Markup

    frame = result.to_frame()
    return {
        "name": name,
        "kind": type(result).__name__,
        "table": Markup(
            frame.head(20).to_html(float_format=lambda v: f"{v:.4g}", border=0)
        ),  # fmt: skip
        "svg": _svg(_figure_of(result.plot())),
    }


def _figure_of(drawn):
    """The matplotlib Figure behind what a result's ``plot()`` returned (a
    Display with ``figure_``, an Axes, a Figure)."""
    for attribute in ("figure_", "figure"):
        figure = getattr(drawn, attribute, None)
        if figure is not None:
            return figure
    return drawn


def _svg(figure):
    """``figure`` as inline SVG markup (no XML prolog), then closed."""
    import matplotlib.pyplot as plt
    from markupsafe import Markup

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[re.search(r"<svg\b", text).start() :])
