"""SAGE on a Keras MLP: skimportance vs sage-importance and hidimstat.

sage-importance 0.0.6 (``sage.PermutationEstimator`` with a
``sage.MarginalImputer``, Covert et al. 2020) is the reference implementation
of SAGE; hidimstat 0.4 has its own ``hidimstat.SAGE``. This script trains one
scikeras MLP (two hidden layers of 64, ReLU) on 2000 rows x 20 features, then
runs the three on the SAME fitted network, rows and background, and measures

* the wall time of each, and the ratio to ours;
* the agreement of the values: the largest difference to sage-importance's
  in units of the two standard errors combined, and Spearman's rho of the
  rankings (hidimstat estimates another quantity, see below).

sage-importance is given the bare ``keras.Model`` (its fastest path: one
``model(x)`` call per coalition step of 512 rows x background rows), its
default convergence threshold (0.025, as ours), the same 64 background rows
and the mean squared error. hidimstat's SAGE (given ``from_keras`` of the
same network, whose predict is one batched compiled pass) samples, per
feature, subsets of the other features and, per subset, scores the network
on copies of the explained rows with the features outside the subset
permuted among those rows (its background is X itself), averaging the *loss*
over the copies rather than scoring the averaged *prediction*; it has no
convergence rule. It runs
with ``n_subsets=10, n_permutations=5`` (its defaults, 50 and 50, would take
hours here), so its numbers are a rough estimate of a related quantity; the
table gives its time and its ranking's agreement.

Usage::

    python benchmarks/bench_sage.py            # about 5 minutes on 2 cores
    python benchmarks/bench_sage.py --quick    # 500 rows x 10 features

Prints a table and writes benchmarks/results/sage.md (the quick run:
sage-quick.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from skimportance._compat import import_tensorflow_quietly

import_tensorflow_quietly()  # without its start-up lines on stderr

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZE, QUICK_SIZE = (2000, 20), (500, 10)
BACKGROUND = 64
TIMINGS = 2  # ours: median of this many warm calls
HIDIMSTAT = {"n_subsets": 10, "n_permutations": 5}


def make_data(n_rows: int, n_features: int, seed: int = 0):
    """y = sin(2 x0) + x2^2 + 0.5 x3 + x4 x5 + noise; x1 echoes x0 (rho 0.95)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 1] = 0.95 * X[:, 0] + np.sqrt(1 - 0.95**2) * X[:, 1]
    y = np.sin(2 * X[:, 0]) + X[:, 2] ** 2 + 0.5 * X[:, 3] + X[:, 4] * X[:, 5]
    return X, y + 0.3 * rng.normal(size=n_rows)


def measure(n_rows: int, n_features: int, peers: bool = True) -> dict:
    import sage
    from hidimstat import SAGE
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_squared_error

    from skimportance import KerasRegressor, build_mlp, from_keras, sage_importance

    X, y = make_data(2 * n_rows, n_features)
    X_train, X_test, y_train, y_test = X[:n_rows], X[n_rows:], y[:n_rows], y[n_rows:]
    estimator = KerasRegressor(
        model=build_mlp,
        model__hidden=(64, 64),
        loss="mse",
        optimizer="adam",
        optimizer__learning_rate=0.003,
        epochs=40,
        batch_size=256,
        verbose=0,
        random_state=0,
    ).fit(X_train, y_train)
    score = estimator.score(X_test, y_test)
    background = X_train[np.random.default_rng(1).choice(n_rows, BACKGROUND, False)]

    def ours(**params):
        return sage_importance(
            estimator, X_test, y_test, background=background, random_state=0, **params
        )

    ours(max_permutations=128)  # warm-up: the compiled forward passes
    ours(max_permutations=128, algorithm="incremental")
    times = []
    for _ in range(TIMINGS):
        start = time.perf_counter()
        result = ours()
        times.append(time.perf_counter() - start)
    other = "exact" if result.details["algorithm"] == "incremental" else "incremental"
    start = time.perf_counter()
    other_result = ours(algorithm=other)
    other_time = time.perf_counter() - start

    network = estimator.model_
    # hidimstat calls estimator.predict: our wrapper of the same network
    # predicts through one batched compiled pass, scikeras's through Keras's
    # predict loop in batches of 256.
    fast_estimator = from_keras(network, task="regression")
    imputer = sage.MarginalImputer(network, background)
    reference = sage.PermutationEstimator(imputer, "mse", random_state=0)
    start = time.perf_counter()
    theirs = reference(X_test, y_test, bar=False, thresh=0.025, batch_size=512)
    sage_time = time.perf_counter() - start

    row = {
        "size": f"{n_rows}x{n_features}",
        "r2": score,
        "ours": statistics.median(times),
        "other": other_time,
        "other_engine": other,
        "engine": result.details["algorithm"],
        "walks": result.details["n_permutations"],
        "sage": sage_time,
        "z": _largest_z(result, theirs.values, theirs.std),
        "z_other": _largest_z(other_result, theirs.values, theirs.std),
        "rho_sage": spearmanr(result.importances_mean, theirs.values).statistic,
        "hidimstat": None,
        "rho_hidimstat": None,
    }
    if peers:
        start = time.perf_counter()
        their_sage = SAGE(
            fast_estimator, loss=mean_squared_error, random_state=0, **HIDIMSTAT
        ).fit(X_train, y_train)
        importances = their_sage.importance(X_test, y_test)
        row["hidimstat"] = time.perf_counter() - start
        row["rho_hidimstat"] = spearmanr(result.importances_mean, importances).statistic
    return row


def _largest_z(result, values, std) -> float:
    """Largest |difference| over the two standard errors combined."""
    error = np.hypot(result.details["standard_errors"], std)
    return float(np.max(np.abs(result.importances_mean - values) / error))


def markdown(row, quick: bool, load_before, load_after) -> str:
    import hidimstat
    import keras
    import sklearn
    import tensorflow as tf

    faster_peer = min(t for t in (row["sage"], row["hidimstat"]) if t is not None)
    hidimstat_cells = (
        ("n/a", "n/a")
        if row["hidimstat"] is None
        else (f"{row['hidimstat']:.1f}", f"{row['rho_hidimstat']:.2f}")
    )
    lines = [
        "# SAGE: skimportance vs sage-importance and hidimstat",
        "",
        f"Generated by `python benchmarks/bench_sage.py"
        f"{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} logical CPUs, no GPU; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, tensorflow {tf.__version__}, "
        f"keras {keras.__version__}, hidimstat {hidimstat.__version__}, "
        "sage-importance 0.0.6.",
        "",
        "1/5/15-min load average before: "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after: "
        + ", ".join(f"{v:.2f}" for v in load_after)
        + ".",
        "",
        "Model: scikeras `KerasRegressor`, Dense(64, relu) -> Dense(64, relu) -> "
        "Dense(1), 40 epochs. Data: `y = sin(2 x0) + x2^2 + 0.5 x3 + x4 x5 + "
        "noise`, x1 an echo of x0 (rho 0.95), the other inputs independent "
        f"noise. Explained: the held-out rows; background: {BACKGROUND} training "
        "rows, the same for skimportance and sage-importance; mean squared "
        "error; convergence threshold 0.025 for both.",
        "",
        "| rows x features | test R² | skimportance (s) | our engine | walks | "
        "skimportance, the other engine (s) | sage-importance (s) | "
        f"hidimstat SAGE, {HIDIMSTAT} (s) | speed-up vs the faster peer | "
        "largest difference to sage-importance, in combined standard errors "
        "(auto / other engine) | Spearman ρ vs sage-importance / hidimstat |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {row['size']} | {row['r2']:.2f} | {row['ours']:.2f} | {row['engine']} | "
        f"{row['walks']} | {row['other_engine']}: {row['other']:.2f} | "
        f"{row['sage']:.2f} | "
        f"{hidimstat_cells[0]} | {faster_peer / row['ours']:.1f}x | "
        f"{row['z']:.2f} / {row['z_other']:.2f} | {row['rho_sage']:.2f} / "
        f"{hidimstat_cells[1]} |",
        "",
        f"Times are wall-clock seconds: for skimportance the median of {TIMINGS} "
        "warm calls, for the peers one call (sage-importance's includes no "
        "compilation: a Keras model called eagerly). All on one process. Walks: "
        "the (row, order) pairs our estimate used before converging, each order "
        "walked forwards and backwards; the control variate (each walk's total "
        "is its row's explained loss, known exactly) and the antithetic pairs "
        "need fewer walks than sage-importance's independent ones for the same "
        "standard error on some models (on this one, whose SAGE values vary "
        "mostly between rows, hardly), and each coalition is scored in large "
        "compiled batches. At 20 inputs `algorithm='auto'` runs the exact "
        "engine: the first Dense layer is too cheap for the incremental one's "
        "rank-k updates to pay (the other engine column shows it). "
        "Differences to sage-importance below 2-3 combined standard errors are "
        "sampling noise. hidimstat scores the expected loss of imputed "
        "predictions, not the loss of the expected prediction, with far fewer "
        "samples than its defaults: compare its ranking, not its values.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 rows x 10 features")
    parser.add_argument(
        "--no-hidimstat", action="store_true", help="skip hidimstat (slow)"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    row = measure(*(QUICK_SIZE if args.quick else SIZE), peers=not args.no_hidimstat)
    print(
        f"{row['size']}: ours {row['ours']:.2f} s ({row['engine']}; "
        f"{row['other_engine']} {row['other']:.2f} s), sage-importance "
        f"{row['sage']:.2f} s, hidimstat {row['hidimstat']} s; z {row['z']:.2f}",
        file=sys.stderr,
    )
    report = markdown(row, args.quick, load_before, os.getloadavg())
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "sage-quick.md" if args.quick else "sage.md"
    (RESULTS / name).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
