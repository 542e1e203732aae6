"""Validity on mixed tabular data: categoricals, raw scales, in-model scaling.

The problem users actually bring: numeric columns on their own raw scales
(dollars, years, rates), an informative categorical column, a categorical
column with NO effect, one-hot encoded by a ``ColumnTransformer``, and a Keras
model that standardises its own inputs with a ``Normalization`` layer (so the
all-zeros input is raw 0, far outside the data).

    y = (income - 50 000) / 15 000 + 0.8 ((age - 49) / 18)^2
        + 0.5 (rate - 0.05) / 0.01 + grade effect + noise

``noise_amount`` (numeric) and ``city`` (5 levels) have no effect. The terms
are independent, so each column's true importance is its share of the
response's variance (its total Sobol index). Every method runs with its
defaults on the raw columns; a method that cannot answer on them refuses,
and the refusal is reported.

Run from ``bench_validity.py``; scores per method: top-4 recall of the
informative columns, Spearman's rho with the truth, and the rank of the
noise categorical ``city`` among the 6 columns (6 = last, best).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.stats import spearmanr

GRADES = np.array(["A", "B", "C", "D"])
GRADE_EFFECT = np.array([-1.0, -0.3, 0.4, 0.9])
CITIES = np.array(["Lyon", "Nantes", "Paris", "Rennes", "Lille"])
COLUMNS = ["income", "age", "rate", "noise_amount", "grade", "city"]
NOISE_CATEGORICAL = "city"
METHODS = [
    "permutation",
    "conditional",
    "probe",
    "profile",
    "occlusion",
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "first_layer",
    "garson",
    "olden",
]


def make_data(n: int, rng: np.random.Generator):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, n),
            "age": rng.uniform(18, 80, n),
            "rate": rng.normal(0.05, 0.01, n),
            "noise_amount": rng.normal(100, 30, n),
            "grade": rng.choice(GRADES, n),
            "city": rng.choice(CITIES, n),
        }
    )
    y = _signal(frame) + rng.normal(0, 0.3, n)
    return frame, y


def _signal(frame) -> np.ndarray:
    grade = GRADE_EFFECT[np.searchsorted(GRADES, frame["grade"].to_numpy())]
    return (
        (frame["income"].to_numpy() - 50_000) / 15_000
        + 0.8 * ((frame["age"].to_numpy() - 49) / 18) ** 2
        + 0.5 * (frame["rate"].to_numpy() - 0.05) / 0.01
        + grade
    )


def truth(n_mc: int = 200_000, seed: int = 0) -> np.ndarray:
    """Each column's share of the noiseless response's variance."""
    frame, _ = make_data(n_mc, np.random.default_rng(seed))
    terms = {
        "income": (frame["income"] - 50_000) / 15_000,
        "age": 0.8 * ((frame["age"] - 49) / 18) ** 2,
        "rate": 0.5 * (frame["rate"] - 0.05) / 0.01,
        "grade": GRADE_EFFECT[np.searchsorted(GRADES, frame["grade"].to_numpy())],
    }
    variances = {name: float(np.var(term)) for name, term in terms.items()}
    total = sum(variances.values())
    return np.array([variances.get(column, 0.0) / total for column in COLUMNS])


def fit_model(X, y, seed: int, max_epochs: int, patience: int):
    """One-hot encoding in a ColumnTransformer, then a Keras MLP whose first
    layer is a Normalization layer adapted on the training rows."""
    import keras
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from skimportance import from_keras

    encode = ColumnTransformer(
        [("cat", OneHotEncoder(sparse_output=False), ["grade", "city"])],
        remainder="passthrough",
    ).fit(X)
    Z = encode.transform(X).astype("float32")
    keras.utils.set_random_seed(seed)
    normalise = keras.layers.Normalization()
    normalise.adapt(Z)
    model = keras.Sequential(
        [
            keras.Input((Z.shape[1],)),
            normalise,
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    model.fit(
        Z,
        y,
        epochs=max_epochs,
        batch_size=64,
        validation_split=0.2,
        callbacks=[stop],
        verbose=0,
    )
    return make_pipeline(encode, from_keras(model, task="regression"))


def importances(model, X_train, X_test, y_test, seed: int) -> dict:
    """Every method with its defaults, on the raw columns: mean importances,
    or the refusal's message. Conditional importance fits its models on the
    training rows."""
    from skimportance._methods import resolve_methods

    results = {}
    calls = resolve_methods(METHODS, run_params={"random_state": seed})
    for call in (c.with_training_data(X_train) for c in calls):
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # scale warnings: counted apart
            try:
                result = call.single(model, X_test, y_test, who="benchmark")
            except ValueError as refusal:
                results[call.name] = str(refusal)
                continue
        strength = result.importances_mean
        if call.spec.signed:
            strength = np.abs(strength)
        results[call.name] = strength
    return results


def scores(strength: np.ndarray, true: np.ndarray) -> tuple[float, float, int]:
    """(top-k recall, Spearman rho, rank of the noise categorical; 1 = first)."""
    informative = np.flatnonzero(true > 0)
    top = np.argsort(-strength, kind="stable")[: len(informative)]
    recall = len(set(top) & set(informative)) / len(informative)
    rho = float(spearmanr(strength, true).statistic)
    order = list(np.argsort(-strength, kind="stable"))
    rank = order.index(COLUMNS.index(NOISE_CATEGORICAL)) + 1
    return recall, rho, rank


def run(seeds: int, n_train: int, n_test: int, max_epochs: int, patience: int, log):
    true = truth()
    table, fits, refusals = {}, [], {}
    for seed in range(seeds):
        started = time.perf_counter()
        X, y = make_data(n_train + n_test, np.random.default_rng(1000 + seed))
        X_train, X_test = X.iloc[:n_train], X.iloc[n_train:]
        y_train, y_test = y[:n_train], y[n_train:]
        model = fit_model(X_train, y_train, seed, max_epochs, patience)
        fits.append(model.score(X_test, y_test))
        for method, result in importances(model, X_train, X_test, y_test, seed).items():
            if isinstance(result, str):
                refusals[method] = result
            else:
                table.setdefault(method, []).append(scores(result, true))
        log(
            f"mixed tabular, seed {seed}: test R^2 {fits[-1]:.3f} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return {"table": table, "fits": fits, "refusals": refusals, "truth": true}


def markdown(outcome: dict, mean_sd) -> list[str]:
    """The section of docs/validity.md for this problem."""
    table, refusals, true = outcome["table"], outcome["refusals"], outcome["truth"]
    n_columns = len(COLUMNS)
    lines = [
        f"## Part 2: mixed tabular data, categoricals and in-model scaling "
        f"(test R² {mean_sd(outcome['fits'])})",
        "",
        "Numeric columns on their raw scales (`income` in dollars, `age` in "
        "years, `rate` as a fraction, `noise_amount` with no effect), an "
        "informative categorical `grade` (4 levels) and a noise categorical "
        "`city` (5 levels, no effect), one-hot encoded by a `ColumnTransformer`; "
        "the Keras model standardises its own inputs with a `Normalization` "
        "layer. Every method runs with its defaults and reports on the six raw "
        "columns. Truth = each column's share of the response variance ("
        + ", ".join(f"{c} {v:.2f}" for c, v in zip(COLUMNS, true))
        + "). **city rank**: where the noise categorical lands among the "
        f"{n_columns} columns (1 = most important; {n_columns} = last is right; "
        f"the top half is ranks 1-{n_columns // 2}).",
        "",
        "| method | recall@4 | Spearman ρ | city rank | city in top half |",
        "|---|---|---|---|---|",
    ]
    for method in METHODS:
        if method in refusals:
            lines.append(f"| {method} | refused | refused | — | — |")
            continue
        recall, rho, rank = zip(*table[method])
        top_half = np.mean(np.asarray(rank) <= n_columns // 2)
        lines.append(
            f"| {method} | {mean_sd(recall)} | {mean_sd(rho)} | {mean_sd(rank)} "
            f"| {top_half:.0%} of seeds |"
        )
    lines += ["", "Refusals, in the methods' own words:", ""]
    lines += [f"- `{method}`: {message}" for method, message in refusals.items()]
    worst = [
        m
        for m in METHODS
        if m in table and np.mean([s[2] for s in table[m]]) <= n_columns // 2
    ]
    lines += [
        "",
        "- "
        + (
            "No method that answers ranks the noise categorical in the top half "
            "on average."
            if not worst
            else "Ranked the noise categorical in the top half on average: "
            + ", ".join(worst)
            + "."
        ),
        "",
    ]
    return lines
