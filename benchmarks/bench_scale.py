"""The DALEX #348 workload: permutation importance of a Keras MLP on 350,000 x 1,000.

A user of DALEX reported that permutation importance of a Keras model on
350,000 rows and 1,000 features took one to two days. This script runs that
workload with skimportance: a scikeras MLP (two hidden layers of 64, ReLU)
on 350,000 x 1,000 float32 synthetic rows, ``permutation_importance`` with 5
repeats scored by R², and measures

* the wall time of the call, and which engine ``algorithm="auto"`` chose;
* the peak memory growth of the process during the call (RSS sampled every
  10 ms by a psutil thread, minus the RSS just before), against the memory
  budget (scikit-learn's ``working_memory``) and the size of X;
* the same call on a 2-worker dask ``LocalCluster`` (processes, one thread
  each) through ``joblib.parallel_config(backend="dask")``, and the largest
  difference between its importances and the in-process ones; at 20,000 x
  200 x 5 (the full size twice over does not fit the time of a session on
  2 shared cores);
* how the time grows with the rows (at 1,000 features) and with the
  features (at 10,000 rows), drawn in ``docs/scale.png``.

scikit-learn's ``permutation_importance`` on the same model is estimated, not
run (it would take hours): it makes 1 + features x repeats ``predict`` calls
on all the rows, so its time is that many times one timed ``predict`` on X.

The network is trained for one epoch only: the timing does not depend on
how good it is. The pointwise loss differences behind p-values
(``loss="auto"``) would hold features x rows float64 numbers (2.8 GB here),
so the call passes ``loss=None``: only the importances are computed.

Usage::

    python benchmarks/bench_scale.py          # the full workload, ~30 min on 2 cores
    python benchmarks/bench_scale.py --quick  # 20,000 x 200, a small scaling grid

Prints tables, writes benchmarks/results/scale.md (the quick run:
scale-quick.md) and the figure docs/scale.png (quick: not written).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from skimportance._compat import import_tensorflow_quietly

import_tensorflow_quietly()  # without its start-up lines on stderr

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
FIGURE = ROOT.parent / "docs" / "scale.png"
FULL = (350_000, 1_000, 5)
QUICK = (20_000, 200, 5)
DASK = (20_000, 200, 5)  # the cluster run: smaller (time on 2 shared cores)
QUICK_DASK = QUICK
# (rows, features): rows grow at 1,000 features (the full size is the last
# point), features at 10,000 rows.
SCALING = [(10_000, 1_000), (20_000, 1_000), (10_000, 100), (10_000, 300)]
QUICK_SCALING = [(5_000, 200), (10_000, 200), (20_000, 50), (20_000, 100)]


class PeakRSS:
    """Peak resident set size growth during a ``with`` block, sampled by a thread."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.growth_mib = 0.0

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self):
        self._start = self._peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.growth_mib = (self._peak - self._start) / 2**20
        return False


def make_data(n_rows: int, n_features: int, seed: int = 0):
    """float32 rows drawn in blocks (no float64 copy of X ever exists)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.empty((n_rows, n_features), dtype=np.float32)
    for start in range(0, n_rows, 50_000):
        block = X[start : start + 50_000]
        block[...] = rng.standard_normal(block.shape, dtype=np.float32)
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] - X[:, 3] * X[:, 4]
    return X, (y + 0.1 * rng.standard_normal(n_rows)).astype(np.float32)


def trained_mlp(X, y):
    from skimportance import KerasRegressor, build_mlp

    return KerasRegressor(
        model=build_mlp,
        model__hidden=(64, 64),
        loss="mse",
        optimizer="adam",
        epochs=1,
        batch_size=1024,
        verbose=0,
        random_state=0,
    ).fit(X, y)


def importance(estimator, X, y, n_repeats: int, verbose: int = 0):
    from skimportance import permutation_importance

    return permutation_importance(
        estimator,
        X,
        y,
        scoring="r2",
        n_repeats=n_repeats,
        random_state=0,
        loss=None,
        verbose=verbose,
    )


def measure(n_rows: int, n_features: int, n_repeats: int, dask: bool) -> dict:
    """The workload at one size, in this (fresh) process."""
    import numpy as np
    import sklearn

    X, y = make_data(n_rows, n_features)
    start = time.perf_counter()
    estimator = trained_mlp(X, y)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    estimator.predict(X)
    predict_s = time.perf_counter() - start
    with PeakRSS() as memory:
        start = time.perf_counter()
        result = importance(estimator, X, y, n_repeats, verbose=1)
        ours_s = time.perf_counter() - start
    row = {
        "size": f"{n_rows}x{n_features}x{n_repeats}",
        "rows": n_rows,
        "features": n_features,
        "train_s": train_s,
        "ours_s": ours_s,
        "sklearn_estimate_s": predict_s * (1 + n_features * n_repeats),
        "algorithm": result.details.get("algorithm"),
        "baseline_r2": float(result.baseline_score),
        "growth_mib": memory.growth_mib,
        "x_mib": X.nbytes / 2**20,
        "budget_mib": sklearn.get_config()["working_memory"],
        "top": [int(j) for j in np.argsort(-result.importances_mean)[:5]],
    }
    if dask:
        row.update(on_dask(estimator, X, y, n_repeats, result))
    return row


def on_dask(estimator, X, y, n_repeats: int, in_process) -> dict:
    import joblib
    import numpy as np
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        start = time.perf_counter()
        result = importance(estimator, X, y, n_repeats)
        dask_s = time.perf_counter() - start
    difference = np.max(np.abs(result.importances - in_process.importances))
    return {"dask_s": dask_s, "dask_max_difference": float(difference)}


# --- the driver -------------------------------------------------------------------


def machine() -> str:
    from importlib.metadata import version

    import psutil

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("numpy", "scikit-learn", "tensorflow", "keras", "dask")
    )
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU; "
        f"Python {platform.python_version()}, {packages}"
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def in_subprocess(*args) -> dict:
    """One size in a fresh process: memory freed by an earlier size cannot
    hide growth. Its progress bar goes to our stderr."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"benchmark worker failed with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def figure(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_rows, by_features) = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, fixed, label in (
        (by_rows, "rows", ("features", 1_000), "rows (1,000 features)"),
        (by_features, "features", ("rows", 10_000), "features (10,000 rows)"),
    ):
        line = sorted(
            (p for p in points if p[fixed[0]] == fixed[1]), key=lambda p: p[key]
        )
        ax.plot([p[key] for p in line], [p["ours_s"] for p in line], "o-")
        ax.set_xscale("log")  # both axes: a straight line of slope 1 is linear
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(lambda value, _: f"{value:,.0f}")
            axis.set_minor_formatter(lambda value, _: "")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds, 5 repeats")
        ax.grid(alpha=0.3)
    fig.suptitle("permutation_importance of a 64-64 MLP, 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def markdown(main_row, dask_row, points, quick: bool, loads) -> str:
    r = main_row
    speed_up = r["sklearn_estimate_s"] / r["ours_s"]
    scaled = "~" if r["measured_repeats"] < 5 else ""
    lines = [
        "# The DALEX #348 workload: permutation importance at scale",
        "",
        f"Generated by `python benchmarks/bench_scale.py{' --quick' if quick else ''}` "
        f"on {time.strftime('%Y-%m-%d')}. Machine: {machine()}.",
        "",
        f"1/5/15-min load average before: {loads[0]}; after: {loads[1]}.",
        "",
        "| rows x features x repeats | engine | ours (s) | scikit-learn, estimated (s) "
        "| speed-up | peak memory growth (MiB) | X (MiB) | working_memory (MiB) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r['size']} | {r['algorithm']} | {scaled}{r['ours_s']:.1f} | "
        f"~{r['sklearn_estimate_s']:.0f} | ~{speed_up:.0f}x "
        f"| {r['growth_mib']:.0f} | {r['x_mib']:.0f} | {r['budget_mib']} |",
        "",
        *(
            [
                f"~: {r['measured_repeats']} of the 5 repeats were run at this size "
                "and the time scaled (each repeat scores the same slices; the "
                "fixed costs are counted 5 times, so this overestimates).",
                "",
            ]
            if scaled
            else []
        ),
        f"Baseline R² {r['baseline_r2']:.3f} (one epoch of training, "
        f"{r['train_s']:.0f} s); top 5 features by importance: {r['top']} (the "
        "signal is in features 0 to 4).",
        "",
        *dask_lines(dask_row),
        "## How the time grows",
        "",
        "| rows | features | engine | ours (s) | peak memory growth (MiB) |",
        "|---|---|---|---|---|",
    ]
    for p in sorted(points, key=lambda p: (p["features"], p["rows"])):
        lines.append(
            f"| {p['rows']:,} | {p['features']:,} | {p['algorithm']} | "
            f"{p['ours_s']:.1f} | {p['growth_mib']:.0f} |"
        )
    lines += [
        "",
        "Times are wall-clock seconds of one call each (its fixed costs "
        "included), each size in a fresh process. scikit-learn's time is "
        "estimated as (1 + features x repeats) x one timed `predict` on X.",
        "",
    ]
    return "\n".join(lines)


def dask_lines(row) -> list[str]:
    if row is None:
        return []
    return [
        "## On a 2-worker dask cluster",
        "",
        "| rows x features x repeats | in-process (s) | LocalCluster, 2 processes "
        "(s) | largest difference of the importances |",
        "|---|---|---|---|",
        f"| {row['size']} | {row['ours_s']:.1f} | {row['dask_s']:.1f} | "
        f"{row['dask_max_difference']:.1e} |",
        "",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--no-dask", action="store_true", help="skip the cluster run")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats actually run at the full size (default: all 5); the "
        "table then scales the time to 5 (the repeats cost alike), marked ~",
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        n_rows, n_features, n_repeats, dask = map(int, args.worker)
        print(json.dumps(measure(n_rows, n_features, n_repeats, bool(dask))))
        return 0
    size = QUICK if args.quick else FULL
    before = load()
    points = [
        in_subprocess(n, p, size[2], 0)
        for n, p in (QUICK_SCALING if args.quick else SCALING)
    ]
    measured = min(size[2], args.repeats or size[2])
    main_row = in_subprocess(size[0], size[1], measured, 0)
    main_row["measured_repeats"] = measured
    if measured < size[2]:  # every repeat runs the same slices: time is linear
        for key in ("ours_s", "sklearn_estimate_s"):
            main_row[key] *= size[2] / measured
        main_row["size"] = "x".join(map(str, size))
    points.append(main_row)
    dask_row = None
    if not args.no_dask:
        dask_row = in_subprocess(*(QUICK_DASK if args.quick else DASK), 1)
    after = load()
    report = markdown(main_row, dask_row, points, args.quick, (before, after))
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("scale-quick.md" if args.quick else "scale.md")).write_text(
        report, encoding="utf-8"
    )
    if not args.quick:
        figure(points, FIGURE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
