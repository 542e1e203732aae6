"""Local attributions: skimportance's Shapley values vs shap's, side by side.

The same model function (a fitted scikit-learn MLP's ``predict``), the same
background rows and the same explained rows go to both libraries:

* 8 features: our exact Shapley values (every coalition) against
  ``shap.ExactExplainer`` with ``shap.maskers.Independent(background,
  max_samples=len(background))``: the largest difference, and the time;
* 30 features: our antithetic permutation sampling against
  ``shap.PermutationExplainer`` given the same number of feature orders
  (shap walks each order forwards and backwards, as we do): the share of
  values whose difference lies within 2 and 3 combined standard errors
  (``sqrt(2)`` times ours, the two estimates being independent and alike),
  and the time.

Prints the table, the machine and the load average before and after, and
writes benchmarks/results/local.md. ``--quick`` explains fewer rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def make_model(n_features: int, seed: int = 0):
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, n_features))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + X[:, 3] ** 2 + 0.5 * X[:, 4]
    model = MLPRegressor(
        hidden_layer_sizes=(32, 32), max_iter=300, random_state=seed
    ).fit(X, y)
    return model, X


def make_network(n_features: int, seed: int = 0):
    """A Keras MLP with seeded weights as a fitted estimator, and a predict
    function for shap that feeds the network in large batches."""
    import keras

    from skimportance import from_keras

    keras.utils.set_random_seed(seed)
    network = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    X = np.random.default_rng(seed).normal(size=(600, n_features))
    estimator = from_keras(network, task="regression")

    def predict(rows):
        return network.predict(rows, batch_size=8192, verbose=0)[:, 0]

    return estimator, predict, X


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def models(n_features: int, family: str):
    """(what local_importance gets, the function shap gets, data)."""
    if family == "keras":
        return make_network(n_features)
    model, X = make_model(n_features)
    return model, model.predict, X


def exact_row(n_rows: int, n_background: int, family: str) -> dict:
    import shap

    from skimportance import local_importance

    model, predict, X = models(8, family)
    background, rows = X[:n_background], X[500 : 500 + n_rows]
    ours, t_ours = timed(lambda: local_importance(model, rows, background=background))
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.ExactExplainer(predict, masker)
    theirs, t_theirs = timed(lambda: explainer(rows, silent=True))
    efficiency = np.abs(
        ours.values.sum(axis=1) - (predict(rows) - ours.base_value)
    ).max()
    largest = np.abs(ours.values - theirs.values).max()
    return {
        "size": (
            f"{family}, 8 features, exact, {n_rows} rows x {n_background} background"
        ),
        "agreement": f"max abs(ours - shap) = {largest:.1e}",
        "efficiency": efficiency,
        "ours": t_ours,
        "shap": t_theirs,
    }


def sampled_row(n_rows, n_background, n_permutations, family: str) -> dict:
    import shap

    from skimportance import local_importance

    n_features = 30
    model, predict, X = models(n_features, family)
    background, rows = X[:n_background], X[500 : 500 + n_rows]
    ours, t_ours = timed(
        lambda: local_importance(
            model, rows, background=background, exact=False,
            n_permutations=n_permutations, random_state=0,
        )
    )  # fmt: skip
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.PermutationExplainer(predict, masker, seed=0)
    # shap walks npermutations = max_evals // (2 p + 1) orders both ways.
    max_evals = (n_permutations // 2) * (2 * n_features + 1)
    theirs, t_theirs = timed(lambda: explainer(rows, max_evals=max_evals, silent=True))
    z = np.abs(ours.values - theirs.values) / (np.sqrt(2) * ours.standard_errors)
    efficiency = np.abs(
        ours.values.sum(axis=1) - (predict(rows) - ours.base_value)
    ).max()
    return {
        "size": (
            f"{family}, 30 features, {n_permutations} orders, {n_rows} rows x "
            f"{n_background} background"
        ),
        "agreement": (
            f"{np.mean(z < 2):.0%} within 2 SE, {np.mean(z < 3):.0%} within 3 SE"
        ),
        "efficiency": efficiency,
        "ours": t_ours,
        "shap": t_theirs,
    }


def markdown(rows, quick: bool, load_before, load_after) -> str:
    import shap
    import sklearn

    lines = [
        "# Local attributions: skimportance vs shap",
        "",
        f"Generated by `python benchmarks/bench_local.py"
        f"{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} logical CPUs, no GPU; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, shap {shap.__version__}.",
        "",
        "1/5/15-min load average before: "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after: "
        + ", ".join(f"{v:.2f}" for v in load_after)
        + ".",
        "",
        "Models: sklearn, a scikit-learn `MLPRegressor(32, 32)` fitted on `y = "
        "sin(2 x0) + x1 x2 + x3^2 + 0.5 x4` (the other inputs noise), both "
        "libraries calling its `predict`; keras, a Keras MLP Dense(32, relu) -> "
        "Dense(32, relu) -> Dense(1) with seeded weights, shap calling "
        "`network.predict(rows, batch_size=8192)` and skimportance its "
        "`from_keras` estimator (our batched forward passes). Both get the same "
        "background and explained rows.",
        "",
        "| size | agreement with shap | efficiency, max abs error | "
        "shap (s) | skimportance (s) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['agreement']} | {r['efficiency']:.1e} | "
            f"{r['shap']:.2f} | {r['ours']:.2f} | {r['shap'] / r['ours']:.0f}x |"
        )
    lines += [
        "",
        "Times are wall-clock seconds of one call each, in the same process. "
        "Efficiency: each row's values minus (its prediction minus the mean "
        "prediction on the background). The sampled values of the two "
        "libraries come from different random orders; the standard errors "
        "are ours (across antithetic pairs), scaled by sqrt(2) for the "
        "difference of two independent estimates of the same precision. Our "
        "speed comes from stacking every (row, coalition, background row) "
        "triple into as few `predict` calls as the memory budget allows; "
        "shap evaluates the coalitions of one row in its own batches.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    args = parser.parse_args(argv)
    n_rows = 2 if args.quick else 5
    print(f"Machine: {platform.platform()}, {os.cpu_count()} logical CPUs")
    load_before = os.getloadavg()
    print("load average before:", ", ".join(f"{v:.2f}" for v in load_before))
    rows = [
        row
        for family in ("sklearn", "keras")
        for row in (
            exact_row(n_rows, 100, family),
            sampled_row(n_rows, 50, 32, family),
        )
    ]
    load_after = os.getloadavg()
    print("load average after:", ", ".join(f"{v:.2f}" for v in load_after))
    report = markdown(rows, args.quick, load_before, load_after)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "local-quick.md" if args.quick else "local.md"
    (RESULTS / name).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
