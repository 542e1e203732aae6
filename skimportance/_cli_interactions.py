"""``skimportance explain --interactions [K]``: the strongest pairs of the
held-out rows, printed, and their heat map next to the figure."""

from __future__ import annotations

__all__ = ["print_interactions", "save_heat_map"]


def print_interactions(model, X_test, k: int, seed: int):
    """The interactions of the held-out rows (H²), their k strongest pairs
    printed; None, with the reason printed, where they cannot be measured."""
    from .interactions import interaction_importance

    try:
        result = interaction_importance(model, X_test, random_state=seed)
    except ValueError as exc:
        print(f"\ninteractions: not computed: {exc}")
        return None
    if isinstance(result, dict):  # several outputs: the first one
        result = next(iter(result.values()))
    top = result.pairs.head(k)
    width = max(len(f"{a} x {b}") for a, b in zip(top["feature_a"], top["feature_b"]))
    lines = [
        "",
        f"Strongest interactions (Friedman's H² on {result.details['n_samples']} "
        "held-out rows; h = its unnormalised form, on the prediction's scale):",
        f"{'pair':<{width}}  {'H2':>7}  {'h':>9}",
    ]
    for a, b, h2, h in zip(
        top["feature_a"], top["feature_b"], top["interaction"], top["h"]
    ):
        lines.append(f"{f'{a} x {b}':<{width}}  {h2:>7.3f}  {h:>9.4g}")
    print("\n".join(lines))
    return result


def save_heat_map(result, path: str) -> None:
    from pathlib import Path

    target = Path(path)
    target = target.with_name(f"{target.stem}-interactions{target.suffix}")
    drawn = result.plot()
    drawn.figure_.savefig(target, dpi=120, bbox_inches="tight")
    print(f"Interaction heat map written to {target}")
