"""Validity benchmark: which importance methods recover the known truth?

Part 1, rankings: two simulated problems where the true importance of every
input is known:

* **Friedman #1** (``sklearn.datasets.make_friedman1``): ``y = 10 sin(pi x0 x1)
  + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise`` with five pure-noise inputs
  x5..x9. Truth: the total Sobol index of each input (its share of the
  response variance, interactions included), computed by Monte Carlo on the
  noiseless function; 0 for x5..x9.
* **Olden-2004-style**: after Olden, Joy & Death (2004), a linear response on
  correlated inputs with a strictly decreasing, known ranking of importances:
  ``y = X @ beta + noise`` with ``beta = (1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0)``,
  inputs standard normal with pairwise correlation 0.3, noise giving R^2 of
  about 0.9. Truth: ``|beta|``.

For each seed: fresh data, a Keras MLP (StandardScaler + 2 hidden ReLU layers)
trained on 1500 rows with early stopping, then every method on 500 held-out
rows. Scores: top-k recall of the informative inputs (k = 5 = their number)
and Spearman's rank correlation with the true importance, mean +- sd over
seeds. Signed methods (olden, probe) are ranked by absolute value.

Part 2, mixed tabular data (``validity_categorical.py``): numeric columns on
raw scales, an informative and a noise categorical one-hot encoded, and a
model with an in-model ``Normalization`` layer; every method on the raw
columns, with the rank of the noise categorical (or the method's refusal).

Part 3, inference (``validity_inference.py``): correlated Gaussian inputs,
and the type-I error, power and interval coverage of marginal permutation
and conditional importance, over at least 20 seeds.

Usage::

    python benchmarks/bench_validity.py                   # every part, ~8 min
    python benchmarks/bench_validity.py --part mixed      # part 2 only, ~1.5 min
    python benchmarks/bench_validity.py --part inference  # part 3 only, ~5 min
    python benchmarks/bench_validity.py --quick           # a smoke run, ~1 min

A full run of a part writes ``benchmarks/results/validity-<part>.md`` and
rebuilds ``docs/validity.md`` (and ``benchmarks/results/validity.md``) from
the latest result of each part; ``--quick`` writes only
``benchmarks/results/validity-quick.md``. ``--seeds`` sets the seeds of
parts 1 and 2, ``--inference-seeds`` those of part 3.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from skimportance._compat import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # without its start-up lines on stderr

import numpy as np  # noqa: E402
from _networks import early_stopped_regressor  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402
from validity_categorical import markdown as mixed_section  # noqa: E402
from validity_categorical import run as run_mixed  # noqa: E402
from validity_inference import FULL as INFERENCE_FULL  # noqa: E402
from validity_inference import QUICK as INFERENCE_QUICK  # noqa: E402
from validity_inference import run as run_inference  # noqa: E402
from validity_inference import section as inference_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# method label -> how to compute it; signed methods are ranked by |value|
METHODS = [
    "first_layer",
    "garson",
    "olden",
    "probe",
    "profile",
    "saliency",
    "integrated_gradients",
    "permutation",
    "conditional",
    "sage",
]
SIGNED = {"olden", "probe"}


@dataclass
class Config:
    seeds: int
    n_train: int
    n_test: int
    max_epochs: int
    patience: int


FULL = Config(seeds=5, n_train=1500, n_test=500, max_epochs=400, patience=30)
QUICK = Config(seeds=2, n_train=500, n_test=200, max_epochs=60, patience=10)


# --- data with known truth ----------------------------------------------------


def friedman1(n: int, rng: np.random.Generator):
    X, y = make_friedman1(
        n_samples=n, n_features=10, noise=1.0, random_state=rng.integers(2**31)
    )
    return X, y


def friedman1_truth(n_mc: int = 2**16, seed: int = 0) -> np.ndarray:
    """Total Sobol indices of the noiseless Friedman #1 function (Jansen)."""

    def f(X):
        return (
            10 * np.sin(np.pi * X[:, 0] * X[:, 1])
            + 20 * (X[:, 2] - 0.5) ** 2
            + 10 * X[:, 3]
            + 5 * X[:, 4]
        )

    rng = np.random.default_rng(seed)
    A, B = rng.uniform(size=(2, n_mc, 10))
    f_A = f(A)
    variance = np.var(np.concatenate([f_A, f(B)]))
    totals = np.empty(10)
    for i in range(10):
        AB = A.copy()
        AB[:, i] = B[:, i]
        totals[i] = np.mean((f_A - f(AB)) ** 2) / (2 * variance)
    return totals


OLDEN_BETA = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0])
OLDEN_CORRELATION = 0.3


def olden2004(n: int, rng: np.random.Generator):
    p = len(OLDEN_BETA)
    cov = np.full((p, p), OLDEN_CORRELATION) + (1 - OLDEN_CORRELATION) * np.eye(p)
    X = rng.multivariate_normal(np.zeros(p), cov, size=n)
    signal_var = OLDEN_BETA @ cov @ OLDEN_BETA
    y = X @ OLDEN_BETA + rng.normal(scale=np.sqrt(signal_var / 9), size=n)
    return X, y


DATASETS = {
    "Friedman #1": (friedman1, friedman1_truth),
    "Olden-2004-style": (olden2004, lambda: np.abs(OLDEN_BETA)),
}


# --- model and methods ----------------------------------------------------------


def fit_model(X, y, seed: int, config: Config):
    return early_stopped_regressor(
        hidden=(64, 32),
        learning_rate=0.002,
        max_epochs=config.max_epochs,
        patience=config.patience,
        seed=seed,
    ).fit(X, y)


def permutation_function():
    """skimportance's permutation_importance if it works, else scikit-learn's."""
    from sklearn.linear_model import LinearRegression

    try:
        from skimportance import permutation_importance

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
        permutation_importance(LinearRegression().fit(X, y), X, y, n_repeats=2)
        return permutation_importance, "skimportance.permutation_importance"
    except Exception:  # not written yet, or broken: the contract says same numbers
        from sklearn.inspection import permutation_importance

        return permutation_importance, "sklearn.inspection.permutation_importance"


def all_importances(model, X_train, X_test, y_test, seed: int, permutation) -> dict:
    from skimportance import (
        conditional_importance,
        gradient_importance,
        probe_importance,
        sage_importance,
        weight_importance,
    )

    results = {}
    with warnings.catch_warnings():
        # The StandardScaler makes the inputs standardised; nothing to warn about.
        warnings.simplefilter("error", UserWarning)
        for method in ("first_layer", "garson", "olden"):
            results[method] = weight_importance(model, method=method).importances_mean
    # The classic probe in the network's (standardised) space: 0 is the
    # training mean, 1 one training standard deviation above it.
    results["probe"] = probe_importance(model).importances_mean
    results["profile"] = probe_importance(
        model, X_test, kind="profile"
    ).importances_mean
    results["saliency"] = gradient_importance(
        model, X_test, method="saliency"
    ).importances_mean
    results["integrated_gradients"] = gradient_importance(  # from the training mean
        model, X_test, method="integrated_gradients", background=X_train
    ).importances_mean
    results["permutation"] = permutation(
        model, X_test, y_test, n_repeats=5, random_state=seed
    ).importances_mean
    results["conditional"] = conditional_importance(
        model, X_test, y_test, X_fit=X_train, n_repeats=5, random_state=seed
    ).importances_mean
    results["sage"] = sage_importance(
        model, X_test, y_test, background=X_train, random_state=seed
    ).importances_mean
    return results


def scores(
    importance: np.ndarray, truth: np.ndarray, signed: bool
) -> tuple[float, float]:
    """(top-k recall of the informative inputs, Spearman correlation with truth)."""
    strength = np.abs(importance) if signed else importance
    informative = np.flatnonzero(truth > 0)
    top = np.argsort(-strength, kind="stable")[: len(informative)]
    recall = len(set(top) & set(informative)) / len(informative)
    return recall, float(spearmanr(strength, truth).statistic)


# --- running and reporting --------------------------------------------------------


def run(config: Config) -> tuple[dict, dict, str]:
    permutation, permutation_name = permutation_function()
    table: dict = {}
    fits: dict = {}
    for dataset, (make_data, make_truth) in DATASETS.items():
        truth = make_truth()
        for seed in range(config.seeds):
            rng = np.random.default_rng(seed)
            X, y = make_data(config.n_train + config.n_test, rng)
            y = (y - y[: config.n_train].mean()) / y[: config.n_train].std()
            X_train, X_test = X[: config.n_train], X[config.n_train :]
            y_train, y_test = y[: config.n_train], y[config.n_train :]
            started = time.perf_counter()
            model = fit_model(X_train, y_train, seed, config)
            fits.setdefault(dataset, []).append(model.score(X_test, y_test))
            importances = all_importances(
                model, X_train, X_test, y_test, seed, permutation
            )
            for method, importance in importances.items():
                table.setdefault((dataset, method), []).append(
                    scores(importance, truth, method in SIGNED)
                )
            print(
                f"{dataset}, seed {seed}: test R^2 {fits[dataset][-1]:.3f} "
                f"({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
            )
    return table, fits, permutation_name


def mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}"


def ranking_section(table, fits, permutation_name, config: Config) -> list[str]:
    truths = {name: make_truth() for name, (_, make_truth) in DATASETS.items()}
    lines = [
        "## Part 1: rankings against the known truth",
        "",
        "Two simulated problems where the true importance of every input is "
        "known. For each seed: fresh data, a Keras MLP (StandardScaler, then "
        "Dense 64 and 32 ReLU units) trained with Adam on "
        f"{config.n_train} rows (the last 20% for early stopping), and every "
        f"method on {config.n_test} held-out "
        "rows. **Recall@5**: the share of the five informative inputs among "
        "the method's top five. **Spearman ρ**: rank correlation between the "
        "method's importances and the true importances. Mean ± sd over "
        f"{config.seeds} seeds; higher is better for both. A random ranking "
        "scores ρ ≈ 0 and recall@5 = 5/(number of inputs): 0.50 on Friedman "
        "#1, 0.62 on the Olden-style problem.",
        "",
        "- *Friedman #1*: `10 sin(π x0 x1) + 20 (x2 − 0.5)² + 10 x3 + 5 x4 + "
        "noise`, five noise inputs x5..x9; truth = total Sobol index of each "
        "input (" + ", ".join(f"{v:.2f}" for v in truths["Friedman #1"]) + ").",
        "- *Olden-2004-style*: linear response on standard normal inputs with "
        f"pairwise correlation {OLDEN_CORRELATION}, coefficients "
        f"{tuple(OLDEN_BETA.tolist())}, R² ≈ 0.9; truth = |coefficient|.",
        "",
        "Methods with their defaults: weights read from the network; `probe` "
        "= the one-hot probe (0 and 1 in the standardised space: the mean, "
        "and one standard deviation above it); `profile` = Lek's profile over "
        "the test rows; gradients over the test rows (integrated gradients "
        "from the test rows' mean, the default baseline); `permutation` = "
        f"`{permutation_name}` on the test rows, 5 repeats, R²; "
        "`conditional` = `conditional_importance`, the same, with its "
        "conditional models fitted on the training rows; `sage` = "
        "`sage_importance` on the test rows, 100 training rows as background, "
        "to its default convergence (0.025). Olden and the "
        "probe are signed and are ranked by their absolute values.",
        "",
    ]
    for dataset in DATASETS:
        r2 = mean_sd(fits[dataset])
        lines += [
            f"### {dataset} (test R² {r2})",
            "",
            "| method | recall@5 | Spearman ρ |",
            "|---|---|---|",
        ]
        for method in METHODS:
            recall, rho = zip(*table[(dataset, method)])
            lines.append(f"| {method} | {mean_sd(recall)} | {mean_sd(rho)} |")
        lines.append("")
    lines += ["### Reading the table", ""] + interpretation(table) + [""]
    return lines


def run_footer(command: str, seconds: float) -> list[str]:
    """How one part was run: command, machine, libraries, time, load."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        "```console",
        f"$ {command}",
        "```",
        "",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}",
        f"- libraries: {library_versions()}",
        f"- wall time: {seconds / 60:.1f} min; 1/5/15-min load average at the "
        f"end: {load}",
        "",
    ]


def document(parts: dict[str, str]) -> str:
    """docs/validity.md: the title, each part's section and how it was run."""
    header = [
        "# Validity: which importance methods recover the truth?",
        "",
        "<!-- Written by benchmarks/bench_validity.py; do not edit by hand. -->",
        "",
        "Part 1 asks whether each method *ranks* the inputs as the known truth "
        "does; part 2 whether it still does on mixed tabular data (raw scales, "
        "categorical columns, scaling inside the model), or refuses; part 3 "
        "whether the p-values and intervals of permutation and conditional "
        "importance are *valid* when inputs are correlated.",
        "",
    ]
    return "\n".join(header) + "\n".join(parts[name] for name in PARTS)


def interpretation(table) -> list[str]:
    """Sentences drawn from the numbers, so a rerun cannot contradict them."""

    def mean(dataset, method, k):
        return float(np.mean([s[k] for s in table[(dataset, method)]]))

    text = []
    for dataset in DATASETS:
        by_rho = sorted(METHODS, key=lambda m: -mean(dataset, m, 1))
        perfect = [m for m in METHODS if mean(dataset, m, 0) == 1.0]
        text.append(
            f"- **{dataset}**: best rank agreement {by_rho[0]} "
            f"(ρ = {mean(dataset, by_rho[0], 1):.2f}), then {by_rho[1]} "
            f"({mean(dataset, by_rho[1], 1):.2f}); worst {by_rho[-1]} "
            f"({mean(dataset, by_rho[-1], 1):.2f}). "
            + (
                "Always found all five informative inputs: " + ", ".join(perfect) + "."
                if perfect
                else "No method always found all five informative inputs."
            )
        )
    olden = "Olden-2004-style"
    overall = {m: np.mean([mean(d, m, 1) for d in DATASETS]) for m in METHODS}
    order = sorted(METHODS, key=lambda m: -overall[m])
    place = order.index("first_layer") + 1
    text += [
        f"- Averaged over both problems, the first-layer recipe has ρ = "
        f"{overall['first_layer']:.2f} (rank {place} of {len(METHODS)}); the "
        f"best method, {order[0]}, has {overall[order[0]]:.2f}, the probe "
        f"{overall['probe']:.2f} (rank {order.index('probe') + 1}).",
        "- Weight methods on the Olden-style problem: Olden's connection "
        f"weights ρ = {mean(olden, 'olden', 1):.2f}, Garson "
        f"{mean(olden, 'garson', 1):.2f}, first-layer sum "
        f"{mean(olden, 'first_layer', 1):.2f}"
        + (
            ", the ordering Olden, Joy & Death (2004) reported."
            if mean(olden, "olden", 1) > mean(olden, "garson", 1)
            else "."
        ),
        "- Recall separates signal from noise inputs; ρ also asks for the "
        "order among the informative ones, which is harder (Friedman's x0, x1 "
        "and x2, x4 are close in truth). Methods that look at data "
        "(permutation, gradients, profile) see the response where the data "
        "are; the probe sees it at one point, and weight methods not at all.",
        "- For a perfect model on independent inputs, the drop in R² when "
        "x_i is permuted is proportional to its total Sobol index "
        "(E[(f(x) − f(x with x_i permuted))²] = 2 Var(f) S_Ti), so "
        "permutation targets the Friedman truth directly. On the correlated "
        "Olden-style inputs the permuted rows leave the data's distribution, "
        "and every method has to split credit between correlated columns.",
    ]
    return text


def library_versions() -> str:
    import keras
    import sklearn
    import tensorflow as tf

    return (
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )


PARTS = ("ranking", "mixed", "inference")


def run_part(part: str, args) -> str:
    """One part's markdown section, with how it was run."""
    started = time.perf_counter()
    if part == "ranking":
        config = QUICK if args.quick else FULL
        if args.seeds is not None:
            config = replace(config, seeds=args.seeds)
        table, fits, permutation_name = run(config)
        lines = ranking_section(table, fits, permutation_name, config)
        flags = f" --seeds {args.seeds}" if args.seeds is not None else ""
    elif part == "mixed":
        config = QUICK if args.quick else FULL
        if args.seeds is not None:
            config = replace(config, seeds=args.seeds)
        outcome = run_mixed(
            config.seeds,
            config.n_train,
            config.n_test,
            config.max_epochs,
            config.patience,
            log=lambda message: print(message, file=sys.stderr),
        )
        lines = mixed_section(outcome, mean_sd)
        flags = f" --seeds {args.seeds}" if args.seeds is not None else ""
    else:
        config = INFERENCE_QUICK if args.quick else INFERENCE_FULL
        if args.inference_seeds is not None:
            config = replace(config, seeds=args.inference_seeds)
        lines = inference_section(run_inference(config), config)
        flags = (
            f" --inference-seeds {args.inference_seeds}"
            if args.inference_seeds is not None
            else ""
        )
    command = "python benchmarks/bench_validity.py --part " + part + flags
    if args.quick:
        command += " --quick"
    seconds = time.perf_counter() - started
    return "\n".join(lines + ["**Run**", ""] + run_footer(command, seconds))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    parser.add_argument("--seeds", type=int, default=None, help="seeds of part 1")
    parser.add_argument(
        "--inference-seeds", type=int, default=None, help="seeds of part 2"
    )
    args = parser.parse_args(argv)
    parts = PARTS if args.part == "all" else (args.part,)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)

    sections = {part: run_part(part, args) for part in parts}
    if args.quick:
        report = "\n".join(sections.values())
        (results / "validity-quick.md").write_text(report, encoding="utf-8")
        print(report)
        return 0
    for part, text in sections.items():
        (results / f"validity-{part}.md").write_text(text, encoding="utf-8")
    missing = [p for p in PARTS if not (results / f"validity-{p}.md").exists()]
    if missing:
        print(f"Run --part {missing[0]} too to rebuild docs/validity.md.")
        return 0
    report = document(
        {p: (results / f"validity-{p}.md").read_text(encoding="utf-8") for p in PARTS}
    )
    print(report)
    (results / "validity.md").write_text(report, encoding="utf-8")
    (ROOT / "docs" / "validity.md").write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
