"""One memory budget for every method: scikit-learn's ``working_memory``.

Users already know the knob: ``sklearn.set_config(working_memory=512)`` or
``with sklearn.config_context(working_memory=512): ...`` (MiB, default 1024).
Every place that builds many rows at once (permuted copies of X, probe rows,
integrated-gradient paths, forward and gradient batches) asks this module how
many rows fit, given what one row costs, so that no method holds much more
than the budget at any time. ``batch_size`` keeps one meaning everywhere: the
most rows fed to the network in one call; by default the budget decides.
"""

from __future__ import annotations

from sklearn import get_config

__all__ = [
    "MAX_ROWS_PER_CALL",
    "BOOKKEEPING_FLOOR",
    "budget_bytes",
    "check_bookkeeping",
    "check_within_budget",
    "rows_within_budget",
]

#: Past this many rows per call the per-call overhead of the network has
#: long vanished, and larger batches only cost cache locality, so the budget
#: never asks for more (measured in benchmarks/bench_permutation.py).
MAX_ROWS_PER_CALL = 65_536


def budget_bytes() -> int:
    """The memory budget in bytes: scikit-learn's ``working_memory`` setting."""
    return int(get_config()["working_memory"] * 2**20)


def rows_within_budget(
    bytes_per_row: float, *, share: float = 1.0, max_rows: int | None = None
) -> int:
    """How many rows costing ``bytes_per_row`` fit in ``share`` of the budget.

    At least one row (a single row is the unit of work); at most ``max_rows``.
    """
    rows = int(share * budget_bytes() // max(1.0, float(bytes_per_row)))
    if max_rows is not None:
        rows = min(rows, max_rows)
    return max(1, rows)


def check_within_budget(name: str, value, nbytes: float) -> None:
    """Refuse a size-like parameter whose work would not fit in the budget.

    Raises
    ------
    ValueError
        Naming ``name``, its value, the estimated size and the budget.
    """
    budget = budget_bytes()
    if nbytes > budget:
        raise ValueError(
            f"{name}={value!r} needs about {_mib(nbytes)} MiB at once, more than "
            f"the memory budget of {_mib(budget)} MiB; lower {name}, or raise the "
            "budget with sklearn.set_config(working_memory=<MiB>)."
        )


#: A run always holds this much bookkeeping (its plan, its scores), whatever
#: the budget, as the budget always allows one row of work: it governs the
#: work that grows with the data, and a tiny budget set to force small chunks
#: must not refuse the run itself.
BOOKKEEPING_FLOOR = 2**20


def check_bookkeeping(name: str, value, nbytes: float) -> None:
    """Like :func:`check_within_budget`, for a run's fixed bookkeeping: never
    refused below ``BOOKKEEPING_FLOOR``."""
    if nbytes > BOOKKEEPING_FLOOR:
        check_within_budget(name, value, nbytes)


def _mib(nbytes: float) -> str:
    mib = nbytes / 2**20
    return f"{mib:,.0f}" if mib >= 10 else f"{mib:.3g}"
