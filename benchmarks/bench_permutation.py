"""Permutation importance on a Keras MLP: skimportance vs scikit-learn.

For each size (rows x features x repeats) this trains the same scikeras MLP
(two hidden layers of 64, ReLU) on synthetic regression data and measures

* scikit-learn's ``sklearn.inspection.permutation_importance`` (one
  ``predict`` per feature and repeat) and ours (batched), wall time of each
  and the ratio;
* the largest absolute difference between the two importance matrices;
* the floor: ONE raw batched forward pass (``LocatedModel.forward``) over
  as many rows as the permutations need (features x repeats x rows), and our
  time relative to it;
* peak memory: RSS of the process sampled every millisecond by a psutil thread
  during the call, minus the RSS just before it.

Every size runs in a fresh subprocess, so that memory freed by an earlier size
cannot hide growth. Both functions are warmed up first (Keras builds its
predict function, we trace ours), so times are steady-state. The wrapper
predicts in batches of 256 rows (scikeras passes ``batch_size`` to
``model.predict``); with Keras's default of 32, scikit-learn would be slower.

Usage::

    python benchmarks/bench_permutation.py            # scikit-learn timed for real
    python benchmarks/bench_permutation.py --quick    # scikit-learn timed on 1 repeat,
                                                      # extrapolated (labelled "~")

Prints a table and writes benchmarks/results/permutation.md.
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

from skimportance._compat import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow

SIZES = [(500, 10, 5), (2000, 20, 5), (10_000, 20, 10), (5_000, 200, 5)]
RESULTS = Path(__file__).resolve().parent / "results" / "permutation.md"
FIT_BATCH = 256
TIMINGS = 5  # ours and the floor: median of this many warm calls


# --- one size, in its own process ----------------------------------------------------


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


def forward_floor(estimator, X, total_rows: int) -> float:
    """Seconds of one raw batched forward pass over ``total_rows`` model-ready rows.

    A tiled block of rows is fed repeatedly, so 5000x200x5 does not need 4 GB
    of input; ``forward`` batches it exactly as our engine does.
    """
    import numpy as np

    from skimportance._model import locate_keras_model

    located = locate_keras_model(estimator)
    X_model = located.to_model_input(X)
    block = np.tile(X_model, (max(1, min(total_rows, 262_144) // len(X_model)), 1))
    located.forward(block[:100])

    def once():
        start = time.perf_counter()
        done = 0
        while done < total_rows:
            rows = min(len(block), total_rows - done)
            located.forward(block[:rows])
            done += rows
        return time.perf_counter() - start

    return statistics.median(once() for _ in range(TIMINGS))


def measure(n_rows: int, n_features: int, n_repeats: int, sklearn_repeats: int) -> dict:
    import numpy as np
    from sklearn.inspection import permutation_importance as sklearn_pi

    from skimportance import KerasRegressor, build_mlp, permutation_importance

    X, y = make_data(n_rows, n_features)
    estimator = KerasRegressor(
        model=build_mlp,
        model__hidden=(64, 64),
        loss="mse",
        optimizer="adam",
        epochs=3,
        batch_size=FIT_BATCH,
        verbose=0,  # no Keras progress bars in scikit-learn's predict calls
        random_state=0,
    ).fit(X, y)

    # Warm-ups: Keras's predict function and our traced forward pass.
    estimator.predict(X[:10])
    permutation_importance(estimator, X[:50], y[:50], n_repeats=1)

    def ours_once():
        start = time.perf_counter()
        result = permutation_importance(
            estimator, X, y, n_repeats=n_repeats, random_state=0
        )
        return result, time.perf_counter() - start

    # Memory first, before anything big has been allocated and freed.
    with PeakRSS() as ours_memory:
        ours, _ = ours_once()
    # Timed apart from that call: the 1 ms sampling thread competes for the GIL.
    ours_s = statistics.median(ours_once()[1] for _ in range(TIMINGS))

    floor_s = forward_floor(estimator, X, n_rows * n_features * n_repeats)

    start = time.perf_counter()
    theirs = sklearn_pi(estimator, X, y, n_repeats=sklearn_repeats, random_state=0)
    sklearn_s = time.perf_counter() - start
    # scikit-learn makes 1 + features x repeats predict calls of equal size.
    calls = lambda repeats: 1 + n_features * repeats  # noqa: E731
    sklearn_full_s = sklearn_s * calls(n_repeats) / calls(sklearn_repeats)
    # Our first k repeats are scikit-learn's k repeats: the draws are sequential.
    diff = float(
        np.abs(ours.importances[:, :sklearn_repeats] - theirs.importances).max()
    )

    return {
        "size": f"{n_rows}x{n_features}x{n_repeats}",
        "sklearn_s": sklearn_full_s,
        "sklearn_extrapolated": sklearn_repeats < n_repeats,
        "sklearn_repeats": sklearn_repeats,
        "ours_s": ours_s,
        "speedup": sklearn_full_s / ours_s,
        "max_abs_diff": diff,
        "floor_s": floor_s,
        "vs_floor": ours_s / floor_s,
        "ours_rss_mb": ours_memory.growth_mb,
    }


# --- the driver -----------------------------------------------------------------


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
        for name in ("numpy", "scikit-learn", "scikeras", "tensorflow", "keras")
    )
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU; "
        f"Python {platform.python_version()}, {packages}"
    )


def load_average() -> str:
    """Other processes compete for the CPU when this is near the CPU count."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def table(rows: list[dict]) -> str:
    header = (
        "| rows x features x repeats | scikit-learn (s) | skimportance (s) | speed-up "
        "| max abs diff | forward floor (s) | ours / floor "
        "| peak RSS growth, ours (MiB) |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        mark = "~" if r["sklearn_extrapolated"] else ""
        lines.append(
            f"| {r['size']} | {mark}{r['sklearn_s']:.2f} | {r['ours_s']:.3f} "
            f"| {mark}{r['speedup']:.0f}x | {r['max_abs_diff']:.1e} "
            f"| {r['floor_s']:.3f} | {r['vs_floor']:.2f}x | {r['ours_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def notes(rows: list[dict]) -> str:
    text = [
        "Times are wall-clock seconds of warm calls: for skimportance and the floor",
        f"the median of {TIMINGS} calls, for scikit-learn a single call. The floor is",
        "one raw batched forward pass over rows x features x repeats model-ready",
        "rows; `ours / floor` is the price of building the permuted rows,",
        "preprocessing them and scoring every slice. Peak RSS growth: process RSS",
        "sampled every 1 ms by a psutil thread during our first call (not one of",
        "the timed calls), minus RSS just before it; each size runs in a fresh",
        "process and this call is its first large allocation, so memory freed",
        "earlier cannot hide growth. Max abs diff compares the importances of the",
        "repeats both ran.",
    ]
    extrapolated = [r for r in rows if r["sklearn_extrapolated"]]
    if extrapolated:
        text += [
            "`~`: scikit-learn timed on "
            + ", ".join(
                f"{r['sklearn_repeats']} repeat at {r['size']}" for r in extrapolated
            )
            + " and scaled by its number of predict calls (1 + features x repeats);",
            "not measured in full.",
        ]
    return textwrap.fill(" ".join(text), width=88)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time scikit-learn on 1 repeat at the two big sizes and extrapolate",
    )
    parser.add_argument("--sizes", nargs="*", help="e.g. 2000x20x5 (default: all four)")
    parser.add_argument(
        "--no-write", action="store_true", help="do not write the results file"
    )
    parser.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(measure(*args.worker)))
        return

    sizes = (
        [tuple(int(v) for v in s.split("x")) for s in args.sizes]
        if args.sizes
        else SIZES
    )
    description = machine()
    load_before = load_average()
    print(f"{description}; load average {load_before}", flush=True)
    rows = []
    for n_rows, n_features, n_repeats in sizes:
        big = n_rows * n_features * n_repeats > 500_000
        sklearn_repeats = 1 if (args.quick and big) else n_repeats
        print(f"  {n_rows}x{n_features}x{n_repeats} ...", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                str(n_rows),
                str(n_features),
                str(n_repeats),
                str(sklearn_repeats),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"benchmark worker failed:\n{done.stderr[-4000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))

    report = table(rows)
    load = f"1/5/15-min load average before: {load_before}; after: {load_average()}"
    print()
    print(load)
    print(report)
    print()
    print(notes(rows))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            "# Permutation importance: skimportance vs scikit-learn\n\n"
            f"Generated by `python benchmarks/bench_permutation.py"
            f"{' --quick' if args.quick else ''}` on {time.strftime('%Y-%m-%d')}.\n\n"
            f"Machine: {description}.\n\n{load}.\n\n"
            "Model: scikeras `KerasRegressor`, Dense(64, relu) -> Dense(64, relu) -> "
            f"Dense(1), 3 epochs, batch_size={FIT_BATCH} (also used by its predict), "
            "synthetic regression data, default scoring (R^2), random_state=0.\n\n"
            f"{report}\n\n{notes(rows)}\n"
        )
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
