"""Permutation importance on a Keras MLP: each engine vs scikit-learn and the floor.

For each size (rows x features x repeats) this trains the same scikeras MLP
(two hidden layers of 64, ReLU) on synthetic regression data and measures

* scikit-learn's ``sklearn.inspection.permutation_importance`` (one
  ``predict`` per feature and repeat);
* ours with each engine: ``algorithm="exact"`` (a forward pass over every
  permuted row), ``"incremental"`` (rank-1 updates of the first Dense layer
  and the rest of the network) and ``"auto"`` (what it chose, and the FLOP
  estimates it chose by);
* the floor: ONE raw batched forward pass (``LocatedModel.forward``) over as
  many rows as the permutations need (features x repeats x rows), and each
  engine's time relative to it;
* the largest absolute difference between each engine's importances and
  scikit-learn's;
* peak memory of the auto call: RSS of the process sampled every millisecond
  by a psutil thread, minus the RSS just before it.

Two more parts:

* ``dask``: in-process against a 2-worker ``LocalCluster`` (processes, one
  thread each) on 10000x20x10, warm, and the number of times each worker
  unpickled the run (the model must travel to a worker once, not per chunk;
  asserted);
* ``cv``: ``cross_validate_importance`` with ``n_jobs=1`` against
  ``n_jobs=2`` (TensorFlow limited to one thread per worker process), the
  first call in a fresh process (worker start-up included) and the next one.

Every measurement runs in a fresh subprocess, so that memory freed by an
earlier size cannot hide growth. Warm-up calls come first (Keras builds its
predict function, we trace ours), so times are steady-state. The wrapper
predicts in batches of 256 rows.

Usage::

    python benchmarks/bench_permutation.py             # everything, about 10 minutes
    python benchmarks/bench_permutation.py --quick     # scikit-learn timed on 1 repeat
                                                       # at the big sizes (labelled "~")
    python benchmarks/bench_permutation.py --parts permutation --sizes 5000x200x5

Sizes whose permuted rows exceed ``HUGE_ROWS`` (20000x2000x1) are too slow to
run in full on 2 cores with scikit-learn or the exact engine: scikit-learn's
time is estimated from timing its ``predict`` on X (it makes 1 + features x
repeats such calls), the exact engine is timed on a tenth of the features and
scaled, the floor on a fraction of the rows and scaled; all labelled "~", and
the difference at that size compares the incremental engine with the exact one
on that tenth of the features.

Prints tables and writes benchmarks/results/permutation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from skimportance._compat import import_tensorflow_quietly

import_tensorflow_quietly()  # without its start-up lines on stderr

SIZES = [
    (500, 10, 5),
    (2000, 20, 5),
    (10_000, 20, 10),
    (5_000, 200, 5),
    (2_000, 1_000, 2),
    (20_000, 2_000, 1),
]
HUGE_ROWS = (
    10_000_000  # permuted rows (rows x features x repeats) beyond which we scale
)
DASK_SIZE = (10_000, 20, 10)
CV_EPOCHS = (10, 40)  # a short and a longer cross-validation
ENGINES = ("exact", "incremental", "auto")
RESULTS = Path(__file__).resolve().parent / "results" / "permutation.md"
FIT_BATCH = 256
TIMINGS = 7  # median of this many warm calls, for calls under LONG_CALL seconds
LONG_CALL = 5.0


# --- helpers ----------------------------------------------------------------------


class PeakRSS:
    """Peak resident set size growth during a ``with`` block, sampled by a thread."""

    def __init__(self, interval: float = 0.001):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.growth_mb = 0.0

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
        self.growth_mb = (self._peak - self._start) / 2**20
        return False


def timed(call):
    """(median wall time of warm calls, the first call's result): one call if
    it is long, else TIMINGS."""
    times, results = [], []
    for _ in range(TIMINGS):
        start = time.perf_counter()
        results.append(call())
        times.append(time.perf_counter() - start)
        if times[0] > LONG_CALL:
            break
    return statistics.median(times), results[0]


def seconds(call) -> float:
    return timed(call)[0]


def load_average() -> str:
    """Other processes compete for the CPU when this is near the CPU count."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def make_data(n_rows: int, n_features: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    y = (
        np.sin(2 * X[:, 0])
        + X[:, 1] ** 2
        + 0.5 * X[:, 2]
        + 0.1 * rng.normal(size=n_rows)
    )
    return X, y


def trained_mlp(X, y):
    from skimportance import KerasRegressor, build_mlp

    return KerasRegressor(
        model=build_mlp,
        model__hidden=(64, 64),
        loss="mse",
        optimizer="adam",
        epochs=3,
        batch_size=FIT_BATCH,
        verbose=0,  # no Keras progress bars in scikit-learn's predict calls
        random_state=0,
    ).fit(X, y)


def forward_floor(estimator, X, total_rows: int, max_rows: int | None = None) -> float:
    """Seconds of one raw batched forward pass over ``total_rows`` model-ready rows.

    A tiled block of rows is fed repeatedly, so 5000x200x5 does not need 4 GB
    of input; ``forward`` batches it exactly as our engines do. With
    ``max_rows``, only that many rows are run and the time is scaled.
    """
    import numpy as np

    from skimportance._model import locate_keras_model

    located = locate_keras_model(estimator)
    X_model = located.to_model_input(X)
    block = np.tile(X_model, (max(1, min(total_rows, 262_144) // len(X_model)), 1))
    located.forward(block[:100])
    rows_run = min(total_rows, max_rows or total_rows)

    def once():
        done = 0
        while done < rows_run:
            rows = min(len(block), rows_run - done)
            located.forward(block[:rows])
            done += rows

    return seconds(once) * total_rows / rows_run


# --- one size, in its own process -------------------------------------------------


def measure(n_rows: int, n_features: int, n_repeats: int, quick: bool) -> dict:
    import numpy as np
    from sklearn.inspection import permutation_importance as sklearn_pi

    from skimportance import permutation_importance

    X, y = make_data(n_rows, n_features)
    estimator = trained_mlp(X, y)
    huge = n_rows * n_features * n_repeats > HUGE_ROWS
    subset = max(1, n_features // 10) if huge else n_features  # exact engine's share

    # Warm-ups: Keras's predict function and our traced functions.
    estimator.predict(X[:10])
    for algorithm in ENGINES:
        permutation_importance(
            estimator, X[:50], y[:50], n_repeats=1, algorithm=algorithm
        )

    def ours(algorithm, groups=None):
        return permutation_importance(
            estimator,
            X,
            y,
            n_repeats=n_repeats,
            random_state=0,
            algorithm=algorithm,
            feature_groups=groups,
        )

    # Memory first, before anything big has been allocated and freed.
    with PeakRSS() as memory:
        auto = ours("auto")
    del auto.details["n_samples"]  # keep the details light
    row = {"size": f"{n_rows}x{n_features}x{n_repeats}", "huge": huge}
    row["auto_choice"] = auto.details["algorithm"]
    row["flops"] = auto.details.get("flops")
    row["auto_rss_mb"] = memory.growth_mb

    results = {}
    subset_groups = [[j] for j in range(subset)] if huge else None
    for algorithm in ENGINES:
        groups = subset_groups if algorithm == "exact" else None
        row[f"{algorithm}_s"], results[algorithm] = timed(
            lambda a=algorithm, g=groups: ours(a, g)
        )
    row["exact_s"] *= n_features / subset

    total_rows = n_rows * n_features * n_repeats
    row["floor_s"] = forward_floor(
        estimator, X, total_rows, max_rows=HUGE_ROWS // 4 if huge else None
    )

    # scikit-learn makes 1 + features x repeats predict calls of equal size.
    calls = lambda repeats: 1 + n_features * repeats  # noqa: E731
    if huge:  # estimated from the time of its predict on X
        row["sklearn_s"] = seconds(lambda: estimator.predict(X)) * calls(n_repeats)
        row["sklearn_note"] = "estimated"
        exact = results["exact"].importances
        incremental = results["incremental"].importances[:subset]
        row["diff"] = {"incremental vs exact": float(np.abs(incremental - exact).max())}
        return row
    big = total_rows > 500_000
    sklearn_repeats = 1 if (quick and big) else n_repeats
    start = time.perf_counter()
    theirs = sklearn_pi(estimator, X, y, n_repeats=sklearn_repeats, random_state=0)
    row["sklearn_s"] = (time.perf_counter() - start) * (
        calls(n_repeats) / calls(sklearn_repeats)
    )
    row["sklearn_note"] = "extrapolated" if sklearn_repeats < n_repeats else ""
    # Our first k repeats are scikit-learn's k repeats: the draws are sequential.
    row["diff"] = {
        algorithm: float(
            np.abs(
                results[algorithm].importances[:, :sklearn_repeats] - theirs.importances
            ).max()
        )
        for algorithm in ("exact", "incremental")
    }
    return row


def measure_dask(n_rows: int, n_features: int, n_repeats: int) -> dict:
    """In-process against a 2-worker LocalCluster; asserts the model travels once."""
    import joblib
    from distributed import Client, LocalCluster

    from skimportance import permutation_importance
    from skimportance._engines import dask_backend as _distributed

    X, y = make_data(n_rows, n_features)
    estimator = trained_mlp(X, y)

    def run():
        return permutation_importance(
            estimator, X, y, n_repeats=n_repeats, random_state=0
        )

    run()  # warm-up
    in_process = seconds(run)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        joblib.parallel_config(backend="dask"),
    ):
        run()  # warm-up: the workers import TensorFlow and receive the model
        before = client.run(lambda: (_distributed.LOADS, _distributed.MODEL_LOADS))
        calls = 0

        def on_cluster():
            nonlocal calls
            calls += 1
            return run()

        cluster_s = seconds(on_cluster)
        after = client.run(lambda: (_distributed.LOADS, _distributed.MODEL_LOADS))
    runs, models = (
        sorted(after[w][i] - before.get(w, (0, 0))[i] for w in after) for i in (0, 1)
    )
    # Each call's rows and plan reach a worker once, never per chunk; the
    # unchanged model stays on the workers from the warm-up on.
    assert all(n <= calls for n in runs) and not any(models), (runs, models, calls)
    return {
        "size": f"{n_rows}x{n_features}x{n_repeats}",
        "in_process_s": in_process,
        "cluster_s": cluster_s,
        "calls": calls,
        "runs": runs,
        "models": models,
    }


def measure_cv(n_jobs: int, epochs: int) -> dict:
    """cross_validate_importance in a fresh process: the first call, then another."""
    from skimportance import KerasRegressor, build_mlp, cross_validate_importance

    X, y = make_data(2000, 10)

    def run():
        network = KerasRegressor(
            model=build_mlp,
            model__hidden=(32, 32),
            loss="mse",
            optimizer="adam",
            epochs=epochs,
            batch_size=64,
            verbose=0,
            random_state=0,
        )
        start = time.perf_counter()
        cross_validate_importance(
            network, X, y, cv=4, n_repeats=5, random_state=0, n_jobs=n_jobs
        )
        return time.perf_counter() - start

    return {"n_jobs": n_jobs, "epochs": epochs, "first_s": run(), "next_s": run()}


# --- the driver -------------------------------------------------------------------


def machine() -> str:
    from importlib.metadata import version

    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("numpy", "scikit-learn", "scikeras", "tensorflow", "keras", "dask")
    )
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU; "
        f"Python {platform.python_version()}, {packages}"
    )


def in_subprocess(*worker_args) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *map(str, worker_args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"benchmark worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def permutation_table(rows: list[dict]) -> str:
    header = (
        "| rows x features x repeats | scikit-learn (s) | floor (s) | exact (s) "
        "| exact / floor | incremental (s) | incremental / floor "
        "| FLOPs incremental / exact | auto chose | auto (s) | auto / floor "
        "| auto / exact | max abs diff vs scikit-learn | peak RSS growth, auto (MiB) |"
    )
    lines = [header, "|" + "---|" * 14]
    for r in rows:
        approx = "~" if r["sklearn_note"] else ""
        huge = "~" if r["huge"] else ""
        flops = r["flops"]
        flop_ratio = f"{flops['incremental'] / flops['exact']:.2f}" if flops else "n/a"
        diff = ", ".join(f"{name} {value:.1e}" for name, value in r["diff"].items())
        lines.append(
            f"| {r['size']} | {approx}{r['sklearn_s']:.1f} | {huge}{r['floor_s']:.3f} "
            f"| {huge}{r['exact_s']:.3f} | {huge}{r['exact_s'] / r['floor_s']:.2f} "
            f"| {r['incremental_s']:.3f} "
            f"| {huge}{r['incremental_s'] / r['floor_s']:.3f} "
            f"| {flop_ratio} | {r['auto_choice']} | {r['auto_s']:.3f} "
            f"| {huge}{r['auto_s'] / r['floor_s']:.3f} "
            f"| {huge}{r['auto_s'] / r['exact_s']:.2f} | {diff} "
            f"| {r['auto_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def permutation_notes(rows: list[dict]) -> str:
    text = [
        "Times are wall-clock seconds of warm calls, the median of",
        f"{TIMINGS} calls (one call when it takes over {LONG_CALL:.0f} s);",
        "scikit-learn is timed once. The floor is one raw batched forward pass",
        "over rows x features x repeats model-ready rows: what the exact engine",
        "cannot beat. The",
        "incremental engine does less than that floor (the first layer once, then a",
        "rank-1 update and the rest of the network per permuted row); all engines",
        "still score every (feature, repeat) slice with scikit-learn's metric (R^2",
        "here: the slices of a chunk in one `r2_score` call, each column as its",
        "own call would score it, bit for bit).",
        "`FLOPs incremental / exact`: the estimate `auto` decides by (it runs",
        "incremental when that ratio is at most 0.5). Max abs diff: each engine's",
        "importances against scikit-learn's, over the repeats both ran. Peak RSS",
        "growth: process RSS sampled every 1 ms during the first auto call, minus",
        "RSS just before it, each size in a fresh process.",
    ]
    extrapolated = [r["size"] for r in rows if r["sklearn_note"] == "extrapolated"]
    if extrapolated:
        text += [
            f"`~` scikit-learn at {', '.join(extrapolated)}: timed on 1 repeat and",
            "scaled by its number of predict calls (1 + features x repeats).",
        ]
    huge = [r["size"] for r in rows if r["huge"]]
    if huge:
        text += [
            f"At {', '.join(huge)} (`~`): scikit-learn is estimated as its predict",
            "time on X times its 1 + features x repeats calls, the exact engine is",
            "timed on a tenth of the features and scaled, the floor on a quarter",
            f"of {HUGE_ROWS:,} rows and scaled, and the difference compares the",
            "incremental engine with the exact one on that tenth of the features.",
        ]
    return textwrap.fill(" ".join(text), width=88)


def dask_table(row: dict) -> str:
    return "\n".join(
        [
            "| rows x features x repeats | in-process (s) | 2-worker LocalCluster (s) "
            "| cluster / in-process | timed calls | runs unpickled per worker "
            "| models unpickled per worker |",
            "|---|---|---|---|---|---|---|",
            f"| {row['size']} | {row['in_process_s']:.3f} | {row['cluster_s']:.3f} "
            f"| {row['cluster_s'] / row['in_process_s']:.2f} | {row['calls']} "
            f"| {', '.join(map(str, row['runs']))} "
            f"| {', '.join(map(str, row['models']))} |",
        ]
    )


def cv_table(rows: list[dict]) -> str:
    lines = [
        "| epochs | n_jobs | first call, fresh process (s) | next call (s) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['epochs']} | {r['n_jobs']} | {r['first_s']:.2f} | {r['next_s']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time scikit-learn on 1 repeat at the big sizes and extrapolate",
    )
    parser.add_argument("--sizes", nargs="*", help="e.g. 2000x20x5 (default: all)")
    parser.add_argument(
        "--parts",
        nargs="*",
        choices=("permutation", "dask", "cv"),
        default=("permutation", "dask", "cv"),
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not write the results file"
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *values = args.worker
        if kind == "permutation":
            *size, quick = map(int, values)
            print(json.dumps(measure(*size, quick=bool(quick))))
        elif kind == "dask":
            print(json.dumps(measure_dask(*map(int, values))))
        else:
            print(json.dumps(measure_cv(*map(int, values))))
        return

    sizes = (
        [tuple(int(v) for v in s.split("x")) for s in args.sizes]
        if args.sizes
        else SIZES
    )
    description = machine()
    load_before = load_average()
    print(f"{description}; load average {load_before}", flush=True)
    sections = []
    if "permutation" in args.parts:
        rows = []
        for size in sizes:
            print(f"  {'x'.join(map(str, size))} ...", flush=True)
            rows.append(in_subprocess("permutation", *size, int(args.quick)))
            print(f"    load average {load_average()}", flush=True)
        sections.append(
            "## Engines against scikit-learn and the floor\n\n"
            "Model: scikeras `KerasRegressor`, Dense(64, relu) -> Dense(64, relu) -> "
            f"Dense(1), 3 epochs, batch_size={FIT_BATCH} (also used by its predict), "
            "synthetic regression data, default scoring (R^2), random_state=0.\n\n"
            f"{permutation_table(rows)}\n\n{permutation_notes(rows)}"
        )
    if "dask" in args.parts:
        print(f"  dask {'x'.join(map(str, DASK_SIZE))} ...", flush=True)
        row = in_subprocess("dask", *DASK_SIZE)
        sections.append(
            "## On a dask cluster\n\n"
            "The same model and data, default arguments, in this process and under "
            "`joblib.parallel_config(backend='dask')` on a `LocalCluster` of 2 worker "
            "processes with 1 thread each (TensorFlow limited to 1 thread per "
            "worker), both warm. The last columns count, over the timed calls, how "
            "often each worker unpickled a call's rows and plan (at most once per "
            "call, never per chunk) and the model (never again after the warm-up "
            "call, the estimator being unchanged); both asserted.\n\n" + dask_table(row)
        )
    if "cv" in args.parts:
        print("  cross_validate_importance n_jobs=1, 2 ...", flush=True)
        rows = [
            in_subprocess("cv", n_jobs, epochs)
            for epochs in CV_EPOCHS
            for n_jobs in (1, 2)
        ]
        sections.append(
            "## cross_validate_importance over 4 folds\n\n"
            "2000 rows x 10 features, `KerasRegressor` Dense(32) -> Dense(32) "
            "trained for 10 or 40 epochs, 5 repeats, in a fresh process each: the "
            "first call (with `n_jobs=2`, joblib's worker processes start and "
            "import TensorFlow, a fixed cost of a few seconds) and the next one. "
            "Each worker process gives TensorFlow cpu_count // n_jobs threads; the "
            "fitted folds are measured in threads of the calling process.\n\n"
            + cv_table(rows)
        )

    load = f"1/5/15-min load average before: {load_before}; after: {load_average()}"
    report = "\n\n".join(sections)
    print(f"\n{load}\n\n{report}")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        command = "python benchmarks/bench_permutation.py" + (
            " --quick" if args.quick else ""
        )
        RESULTS.write_text(
            "# Permutation importance: skimportance vs scikit-learn\n\n"
            f"Generated by `{command}` on {time.strftime('%Y-%m-%d')}.\n\n"
            f"Machine: {description}.\n\n{load}.\n\n{report}\n"
        )
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
