"""Validity of LOCO's p-values on correlated inputs (part 4 of bench_validity.py).

Run ``bench_validity.py --part loco``, not this module. The design of part 3
(``validity_inference.py``): ten standard normal inputs, x0..x3 a block with
pairwise correlation 0.85, x4 and x5 a pair with correlation 0.9, x6..x9
independent; ``y = x0 + x1 + x4 + noise`` (R^2 = 0.8). Signals x0, x1, x4;
correlated nulls x2, x3, x5; independent nulls x6..x9.

For each seed, ``loco_importance`` refits a Keras MLP (StandardScaler, Dense
32 and 16 ReLU units, Adam, a fixed number of epochs: no early stopping, so
the refits are fused) on each training fold, once in full and once per input
set to its training mean. Reported over seeds:

* type-I error and power of the test across held-out rows (each fold's
  ``pvalues()``) and of the Nadeau-Bengio test over folds (the result's
  ``pvalues()``);
* coverage of ``ci(0.95, corrected=True)``.

The true LOCO importance, in units of the default score (R^2), for the Bayes
model ``x @ beta``: refitted without x_j, the best prediction is
``E[y | x_-j]``, whose squared error is larger by ``beta_j^2 Var(x_j | x_-j)``;
divided by ``Var(y)``. 0 for every null, correlated or not: a correlated null
adds nothing to the other inputs.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from validity_inference import (
    BETA,
    CORRELATED_NULLS,
    INDEPENDENT_NULLS,
    N_INPUTS,
    R2,
    SIGNALS,
    covariance,
    make_data,
)


@dataclass
class LocoConfig:
    seeds: int
    n_rows: int = 1500
    folds: int = 3
    epochs: int = 40


FULL = LocoConfig(seeds=10)
QUICK = LocoConfig(seeds=2, n_rows=600, epochs=10)


def true_loco() -> np.ndarray:
    cov = covariance()
    variance_y = (BETA @ cov @ BETA) / R2
    truth = np.empty(N_INPUTS)
    for j in range(N_INPUTS):
        rest = [k for k in range(N_INPUTS) if k != j]
        c = cov[j, rest]
        conditional = cov[j, j] - c @ np.linalg.solve(cov[np.ix_(rest, rest)], c)
        truth[j] = BETA[j] ** 2 * conditional / variance_y
    return truth


def make_network(seed: int, config: LocoConfig):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skimportance import KerasRegressor, build_mlp

    return make_pipeline(
        StandardScaler(),
        KerasRegressor(
            build_mlp,
            model__hidden=(32, 16),
            loss="mse",
            optimizer="adam",
            optimizer__learning_rate=0.003,
            epochs=config.epochs,
            batch_size=64,
            verbose=0,
            random_state=seed,
        ),
    )


def run(config: LocoConfig) -> dict:
    from sklearn.model_selection import KFold

    from skimportance import loco_importance

    rows, folds, lower, upper, scores, refits = [], [], [], [], [], set()
    for seed in range(config.seeds):
        started = time.perf_counter()
        X, y = make_data(config.n_rows, np.random.default_rng(2000 + seed))
        y = (y - y.mean()) / y.std()
        result = loco_importance(
            make_network(seed, config),
            X,
            y,
            cv=KFold(config.folds, shuffle=True, random_state=seed),
            random_state=seed,
        )
        rows.extend(fold.pvalues().to_numpy() for fold in result.fold_results)
        folds.append(result.pvalues().to_numpy())
        interval = result.ci(0.95, corrected=True)
        lower.append(interval["lower"].to_numpy())
        upper.append(interval["upper"].to_numpy())
        scores.extend(result.test_scores)
        refits.add(result.details["refit"])
        print(
            f"LOCO, seed {seed}: fold R^2 {np.mean(result.test_scores):.3f} "
            f"({time.perf_counter() - started:.1f} s, {result.details['refit']})",
            file=sys.stderr,
        )
    return {
        "rows": np.array(rows),
        "folds": np.array(folds),
        "lower": np.array(lower),
        "upper": np.array(upper),
        "scores": np.array(scores),
        "refits": sorted(refits),
    }


def _rate(pvalues: np.ndarray, columns) -> str:
    rejected = pvalues[:, columns] < 0.05
    return f"{rejected.mean():.2f} ({rejected.sum()}/{rejected.size})"


def _coverage(outcome, truth, columns) -> str:
    lower, upper = outcome["lower"][:, columns], outcome["upper"][:, columns]
    held = (lower <= truth[columns]) & (truth[columns] <= upper)
    return f"{held.mean():.2f} ({held.sum()}/{held.size})"


def section(outcome: dict, config: LocoConfig) -> list[str]:
    truth = true_loco()
    scores = outcome["scores"]
    lines = [
        "## Part 5: LOCO on the correlated inputs of part 3",
        "",
        "The design of part 3. For each of "
        f"{config.seeds} seeds: {config.n_rows} fresh rows, `loco_importance` "
        f"with {config.folds} folds: a Keras MLP (StandardScaler, Dense 32 and "
        f"16 ReLU units, Adam, {config.epochs} epochs, no early stopping) "
        "refitted on each training fold in full and once per input set to its "
        "training mean (refits: " + ", ".join(outcome["refits"]) + "). Held-out "
        f"R² {scores.mean():.2f} ± {scores.std(ddof=1):.2f} (the Bayes model: "
        f"{R2}). The true LOCO importance of the Bayes model is "
        "`beta_j² Var(x_j | other inputs)/Var(y)`: signals "
        + ", ".join(f"{truth[j]:.3f}" for j in SIGNALS)
        + ", every null 0 (a correlated null adds nothing to the others).",
        "",
        "| test | type-I error, correlated nulls | type-I error, independent "
        "nulls | power, signals |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("rows", f"across held-out rows (each fold; {config.folds} per seed)"),
        ("folds", "over folds (Nadeau-Bengio)"),
    ):
        pvalues = outcome[key]
        lines.append(
            f"| {label} | {_rate(pvalues, CORRELATED_NULLS)} | "
            f"{_rate(pvalues, INDEPENDENT_NULLS)} | {_rate(pvalues, SIGNALS)} |"
        )
    lines += [
        "",
        "**Coverage** of `ci(0.95, corrected=True)` (the interval over folds) "
        "for the true LOCO importance:",
        "",
        "| signals | correlated nulls | independent nulls |",
        "|---|---|---|",
        "| "
        + " | ".join(
            _coverage(outcome, truth, columns)
            for columns in (SIGNALS, CORRELATED_NULLS, INDEPENDENT_NULLS)
        )
        + " |",
        "",
        "### Reading the tables",
        "",
        *interpretation(outcome),
        "",
    ]
    return lines


def interpretation(outcome) -> list[str]:
    """Sentences drawn from the numbers, so a rerun cannot contradict them."""

    def rate(key, columns):
        return float(np.mean(outcome[key][:, columns] < 0.05))

    correlated_rows = rate("rows", CORRELATED_NULLS)
    correlated_folds = rate("folds", CORRELATED_NULLS)
    return [
        f"- A correlated null is called significant {correlated_rows:.0%} of the "
        f"time across held-out rows and {correlated_folds:.0%} over folds "
        f"(independent nulls: {rate('rows', INDEPENDENT_NULLS):.0%} and "
        f"{rate('folds', INDEPENDENT_NULLS):.0%})"
        + (
            ", near or below the nominal 5%, unlike marginal permutation in "
            "part 3: LOCO asks what a model trained without the input loses, "
            "and a network trained without x2 learns the signal from x0, x1 "
            "and x3 instead."
            if max(correlated_rows, correlated_folds) <= 0.1
            else ": above the nominal 5%. Two networks trained on the same "
            "fold differ by more than the input they differ in, and the test "
            "across one fold's rows counts that difference as the input's."
        ),
        f"- Power on the signals: {rate('rows', SIGNALS):.0%} across rows, "
        f"{rate('folds', SIGNALS):.0%} over folds. The test over folds has "
        "few degrees of freedom (2 for 3 folds) and a wide corrected "
        "variance, so it is conservative; the test across rows counts one "
        "fold's refits as fixed, so it does not see the variation of the "
        "refits between folds.",
    ]
