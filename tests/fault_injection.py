"""Kill dask workers in the middle of runs; run by test_distributed.py.

Runs in its own process (the test bounds it with a timeout, so a hang fails
the test instead of stalling the suite) against a 2-process LocalCluster:

``permutation_importance``, ``cross_validate_importance`` and the sequential
refits of ``loco_importance`` with a scorer
that kills the worker it first runs on: each call must finish with the
numbers of a clean run, or fail with an error saying that a worker was lost;
never a bare CancelledError, never a hang.

Then against a scheduler and two workers started without nannies (so that a
killed worker stays dead, as on a batch system): the same two calls must
survive one killed worker with a clean run's numbers, and with every worker
killed must raise ``WorkerLostError`` within the no-workers timeout (set to
``NO_WORKERS_TIMEOUT`` seconds here) plus a few seconds, never hang.

Prints one line per check and "ALL OK" at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dask
import joblib
import numpy as np
from distributed import Client, LocalCluster, get_worker
from sklearn.metrics import r2_score

from skimportance import (
    cross_validate_importance,
    from_keras,
    loco_importance,
    permutation_importance,
)
from skimportance._engines.dask_backend import WorkerLostError

MARKERS = Path(tempfile.mkdtemp())


def killing_r2(estimator, X, y):
    """r2, but its first call on a worker in run ``RUN`` kills that worker."""
    try:
        get_worker()
    except ValueError:
        pass  # in the client: just score
    else:
        if KILL_EVERY_WORKER:
            (MARKERS / f"death-{os.getpid()}").write_text(str(time.time()))
            os._exit(1)
        if RUN is not None:
            try:
                (MARKERS / RUN).touch(exist_ok=False)
            except FileExistsError:
                pass
            else:
                os._exit(1)  # die as a crashed worker does: no cleanup, no goodbye
    return r2_score(y, estimator.predict(X))


RUN = None  # read by killing_r2 where it runs (pickled by value with it)
KILL_EVERY_WORKER = False  # read by killing_r2: kill every worker it runs on
NO_WORKERS_TIMEOUT = 5  # seconds; the library's default is 60


def wait_for_workers(client, n_workers: int, timeout: float = 120) -> None:
    """Until the scheduler counts ``n_workers`` workers (restarted ones too)."""
    deadline = time.monotonic() + timeout
    while len(client.scheduler_info()["workers"]) < n_workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n_workers} workers after {timeout} s")
        time.sleep(0.2)


def problem():
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    network = from_keras(model, task="regression")
    X = rng.normal(size=(120, 6))
    y = network.predict(X) + rng.normal(scale=0.2, size=120)
    return network, X, y


def cv_model():
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_regressor

    return make_regressor(model__hidden=(4,), epochs=2, batch_size=32)


def runs(network, X, y):
    """The two calls, both scoring with ``killing_r2``."""

    def permutation():
        return permutation_importance(
            network,
            X,
            y,
            n_repeats=3,
            random_state=0,
            scoring=killing_r2,
            batch_size=240,
        ).importances

    def cross_validation():
        result = cross_validate_importance(
            cv_model(),
            X,
            y,
            cv=2,
            n_repeats=2,
            random_state=0,
            n_jobs=2,
            scoring=killing_r2,
        )
        return result.importances

    def loco():
        result = loco_importance(
            cv_model(),
            X,
            y,
            cv=2,
            feature_groups=[[0, 1], [2, 3], [4, 5]],
            refit="sequential",
            random_state=0,
            n_jobs=2,
            scoring=killing_r2,
        )
        return result.importances

    return {
        "permutation_importance": permutation,
        "cross_validate_importance": cross_validation,
        "loco_importance": loco,
    }


def main() -> None:
    """Both phases; ``fault_injection.py without-nannies`` runs the second only."""
    network, X, y = problem()
    if sys.argv[1:] != ["without-nannies"]:
        with_nannies(network, X, y)
    without_nannies(network, X, y)
    print("ALL OK")


def with_nannies(network, X, y) -> None:
    """One worker of a LocalCluster killed: rerun, or reported."""
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        joblib.parallel_config(backend="dask"),
    ):

        def elapsed():
            return f"({time.monotonic() - started:.0f} s)"

        global RUN
        calls = runs(network, X, y)
        clean = {name: call() for name, call in calls.items()}
        started = time.monotonic()
        for name, call in calls.items():
            wait_for_workers(client, 2)
            RUN = name
            try:
                importances = call()
            except WorkerLostError as exc:
                assert "worker was lost" in str(exc), exc
                outcome = "failed saying a worker was lost"
            else:
                np.testing.assert_allclose(importances, clean[name], rtol=0, atol=1e-6)
                outcome = "finished with the clean run's numbers"
            assert (MARKERS / RUN).exists(), "no worker was killed"
            print(f"{name}, one worker killed: {outcome} {elapsed()}", flush=True)


def start_scheduler(directory: Path) -> tuple[Path, subprocess.Popen]:
    """A scheduler process; (its scheduler file, the process)."""
    scheduler_file = directory / "scheduler.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        + ["--scheduler-file", str(scheduler_file), "--port", "0"]
        + ["--dashboard-address", ":0", "--no-show"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not scheduler_file.exists():
        assert time.monotonic() < deadline, "no scheduler after 120 s"
        time.sleep(0.2)
    return scheduler_file, process


def start_workers(scheduler_file: Path, n_workers: int) -> list:
    """``n_workers`` one-thread worker processes without nannies: a killed
    worker stays dead, as on a batch system."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker"]
            + ["--scheduler-file", str(scheduler_file), "--nthreads", "1"]
            + ["--no-nanny", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n_workers)
    ]


#: (call, kill every worker?) run without nannies: cross-validation survives
#: one lost worker; both calls end in bounded time when every worker is lost.
WITHOUT_NANNIES = [
    ("cross_validate_importance", False),
    ("cross_validate_importance", True),
    ("permutation_importance", True),
    ("loco_importance", True),
]


def without_nannies(network, X, y) -> None:
    """One worker killed is survived; every worker killed is reported in time."""
    global RUN, KILL_EVERY_WORKER
    calls = runs(network, X, y)
    dask.config.set({"skimportance.no-workers-timeout": NO_WORKERS_TIMEOUT})
    scheduler_file, scheduler = start_scheduler(Path(tempfile.mkdtemp()))
    clean = {}
    try:
        with (
            Client(scheduler_file=str(scheduler_file)) as client,
            joblib.parallel_config(backend="dask"),
        ):
            for name, kill_all in WITHOUT_NANNIES:
                workers = start_workers(scheduler_file, 2)
                try:
                    wait_for_workers(client, 2)
                    RUN, KILL_EVERY_WORKER = None, False
                    if name not in clean and not kill_all:
                        clean[name] = calls[name]()
                    RUN, KILL_EVERY_WORKER = f"{name}-no-nanny", kill_all
                    started = time.monotonic()
                    outcome = (every_worker_killed if kill_all else one_worker_killed)(
                        calls[name], clean.get(name)
                    )
                    killed = "every worker" if kill_all else "one worker"
                    print(
                        f"{name}, no nannies, {killed} killed: {outcome} "
                        f"({time.monotonic() - started:.0f} s)",
                        flush=True,
                    )
                finally:
                    RUN, KILL_EVERY_WORKER = None, False
                    for worker in workers:
                        worker.kill()
                        worker.wait()
                deadline = time.monotonic() + 60
                while client.scheduler_info()["workers"]:
                    assert time.monotonic() < deadline, "killed workers still listed"
                    time.sleep(0.2)
    finally:
        scheduler.kill()
        scheduler.wait()


def one_worker_killed(call, clean) -> str:
    np.testing.assert_allclose(call(), clean, rtol=0, atol=1e-6)
    assert (MARKERS / RUN).exists(), "no worker was killed"
    return "finished with the clean run's numbers"


def every_worker_killed(call, clean) -> str:
    try:
        call()
    except WorkerLostError as exc:
        # dask's KilledWorker (a task that killed both workers) or the watch
        # (no worker left): both say so
        message = str(exc)
        assert "worker was lost" in message or "No dask worker" in message, exc
    else:
        raise AssertionError("no error with every worker killed")
    # Bounded from the moment the last worker died (a worker takes a while
    # to start its first task).
    deaths = [float(p.read_text()) for p in MARKERS.glob("death-*")]
    assert len(deaths) == 2, deaths
    after = time.time() - max(deaths)
    assert after < NO_WORKERS_TIMEOUT + 15, after
    for marker in MARKERS.glob("death-*"):
        marker.unlink()
    return f"raised WorkerLostError {after:.0f} s after the last one died"


if __name__ == "__main__":
    main()
