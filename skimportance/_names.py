"""Every name a result carries is unique: one check, used wherever names are made.

Results are looked up by name: a scorer's dict keys become ``cv_results_``
columns, ``to_frame`` indexes by feature, the Display aligns results by
feature name. Two things given the same name would silently overwrite each
other, so a collision is a ``ValueError`` that names both sources (two
columns, two groups, a dict key and another, the base score and a feature).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["check_unique_names", "column_sources"]


def check_unique_names(
    names: Iterable[str], sources: Sequence[str] | None = None, *, what: str = "name"
) -> None:
    """Raise a ValueError if two of ``names`` are equal, naming both sources.

    Parameters
    ----------
    names : iterable of str
        The names, in order.
    sources : sequence of str, default=None
        Where each name comes from ("column 0 ('a')", "group #1 ['a+b']"); by
        default its position.
    what : str, default="name"
        What the names are, for the message ("feature name", "result name").
    """
    seen: dict[str, str] = {}
    for position, name in enumerate(names):
        source = sources[position] if sources is not None else f"position {position}"
        if name in seen:
            raise ValueError(
                f"{what} {name!r} is given twice, by {seen[name]} and by {source}; "
                "results are looked up by name, so one would silently replace the "
                "other. Rename one of them."
            )
        seen[name] = source


def column_sources(X, n_columns: int) -> list[str]:
    """``"column j"`` for each column of X, with its label when X has labels."""
    columns = getattr(X, "columns", None)
    if columns is None or len(columns) != n_columns:
        return [f"column {j}" for j in range(n_columns)]
    return [f"column {j} ({label!r})" for j, label in enumerate(columns)]
