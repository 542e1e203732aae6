"""What ``skimportance explain`` and ``demo`` print and write: the table, JSON,
the figure and the HTML report. ``cli`` decides what to compute; this module
only shows it, reading what a method is from its registry spec."""

from __future__ import annotations

import json
import math

#: The false discovery rate of the table's stars and the JSON's ``selected``.
FDR_ALPHA = 0.05


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def signed_note(calls) -> str:
    """Which of the computed methods give signed importances, in words."""
    signed = [call.name for call in calls if call.spec.signed]
    if not signed:
        return ""
    if len(signed) == 1:
        return f" {signed[0]} is signed."
    return f" {', '.join(signed[:-1])} and {signed[-1]} are signed."


def reference_method(results, calls):
    """The method that orders the rows: the first that measures the held-out
    score (it needs y), else the first computed; a MethodCall."""
    computed = [call for call in calls if call.name in results]
    scored = [call for call in computed if call.spec.needs_y]
    return (scored or computed)[0]


def format_table(results, calls) -> str:
    """A features x methods table of mean importances, as text: a ``p``
    column after each method with p-values, a star on each mean selected at
    FDR 5%, and lines saying how rows are ordered and what the stars mean.

    Rows follow the most reliable method computed (see
    :func:`reference_method`); a signed method orders by magnitude.
    """
    import pandas as pd

    reference = reference_method(results, calls)
    columns, tested = {}, []
    for name, result in results.items():
        frame = result.to_frame(sort=False, alpha=FDR_ALPHA)
        mean = frame["importance_mean"].map(lambda v: f"{v:.4g}")
        if "pvalue" in frame:
            tested.append(name)
            mean = mean + frame["selected"].map({True: "*", False: " "})
            columns[name] = mean
            columns[f"{name} p"] = frame["pvalue"].map(lambda v: f"{v:.3g}")
        else:
            columns[name] = mean
    values = results[reference.name].importances_mean
    key = abs(values) if reference.spec.signed else values
    order = pd.Series(key, index=results[reference.name].feature_names)
    table = pd.DataFrame(columns).reindex(
        order.sort_values(ascending=False, kind="stable").index
    )
    table.index.name = "feature"
    how = "|value|" if reference.spec.signed else "value"
    lines = [
        table.to_string(),
        "",
        f"Rows ordered by {reference.name} ({reference.spec.summary}), by {how}, "
        "most important first.",
    ]
    if tested:
        test = results[tested[0]].test_name
        lines.append(
            f"p: one-sided p-value of importance <= 0 ({test}); * selected at "
            f"false discovery rate {FDR_ALPHA:g} (Benjamini-Hochberg)."
        )
    return "\n".join(lines)


def _plain(value):
    """JSON-safe: NaN and infinities as null, numpy scalars as Python ones."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(results, path: str, header: dict) -> None:
    """``header`` plus, per method, its ranking and its full ``to_frame()``
    (mean, std, the test's interval, p-value, q-value, FDR decision)."""
    payload = {**header, "fdr_alpha": FDR_ALPHA, "methods": {}}
    for name, result in results.items():
        frame = result.to_frame(alpha=FDR_ALPHA)
        payload["methods"][name] = {
            "test": result.test_name,
            "ranking": frame.index.tolist(),
            "importances": {
                feature: {key: _plain(v) for key, v in row.items()}
                for feature, row in frame.to_dict(orient="index").items()
            },
        }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, allow_nan=False)
    print(f"Importances written to {path}")


def save_figure(results, path: str) -> None:
    from .plotting import ImportanceDisplay

    display = ImportanceDisplay.from_result(results).plot(
        layout="grouped", significance=FDR_ALPHA
    )
    display.figure_.savefig(path, dpi=120, bbox_inches="tight")
    print(f"Figure written to {path}")


def check_output_paths(args) -> None:
    """Refuse an --out or --json path that cannot be written, before training."""
    from pathlib import Path

    for option in ("out", "json", "report"):
        path = getattr(args, option, None)
        if path is None:
            continue
        folder = Path(path).resolve().parent
        if not folder.is_dir():
            raise CommandError(f"--{option} {path}: folder {folder} does not exist")
        if Path(path).is_dir():
            raise CommandError(f"--{option} {path} is a folder, not a file")
        _try_to_write(option, Path(path), folder)
    if getattr(args, "out", None):
        from matplotlib.backend_bases import FigureCanvasBase

        suffix = Path(args.out).suffix.lstrip(".").lower()
        formats = FigureCanvasBase.get_supported_filetypes()
        if suffix not in formats:
            raise CommandError(
                f"--out {args.out}: unknown figure format {suffix!r}; use one of "
                f"{', '.join(sorted(formats))}"
            )


def _try_to_write(option: str, path, folder) -> None:
    """Create a file in ``folder`` and open ``path`` for appending, as the
    command will write them, before training: ``os.access`` says yes to root
    where nothing can be created (/sys, /proc, a read-only mount). Nothing
    is left behind and an existing file is not changed."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
        if path.exists():
            if not path.is_file():  # a FIFO or a device would block or worse
                raise CommandError(f"--{option} {path} is not a regular file")
            with open(path, "ab"):
                pass
    except OSError as exc:
        raise CommandError(
            f"--{option} {path}: cannot write there ({exc.strerror or exc})"
        ) from None
