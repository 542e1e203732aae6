"""The same random_state gives the same numbers sequentially, in parallel and on dask.

Both engines of ``permutation_importance`` and ``conditional_importance`` are
run with ``n_jobs=1``,
``n_jobs=2`` and ``joblib.parallel_config(backend="dask")`` on a real
``dask.distributed.LocalCluster`` of two worker processes (started once for
the module). The numbers must be identical, not merely close: the plan of
permutations is drawn up front, so how the work is spread cannot matter.
Seeded fits running in threads of one process must not disturb each other.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest
import sklearn
from conftest import make_regressor
from sklearn.linear_model import Ridge

from skimportance import (
    conditional_importance,
    cross_validate_importance,
    from_keras,
    permutation_importance,
)

N_ROWS, N_FEATURES = 60, 5


@pytest.fixture(scope="module")
def cases():
    """engine -> (estimator, X, y, extra permutation_importance arguments)."""
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    network = from_keras(model, task="regression")
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    y = network.predict(X) + rng.normal(scale=0.2, size=N_ROWS)
    return {
        # two (feature, repeat) slices per chunk: many chunks to spread out
        "keras": (network, X, y, {"batch_size": 2 * N_ROWS}),
        "generic": (Ridge().fit(X, y), X, y, {}),
    }


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.slow  # a dask cluster of two processes
@pytest.mark.parametrize("function", [permutation_importance, conditional_importance])
@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_same_numbers_for_any_n_jobs_and_the_dask_backend(
    engine, function, cases, dask_client
):
    from distributed import get_task_stream

    estimator, X, y, extra = cases[engine]

    def run(n_jobs):
        return function(
            estimator,
            X,
            y,
            n_repeats=3,
            max_samples=0.8,
            random_state=7,
            n_jobs=n_jobs,
            **extra,
        )

    sequential = run(1)
    assert sequential.details["engine"] == engine
    in_parallel = run(2)
    with get_task_stream(dask_client) as tasks, joblib.parallel_config(backend="dask"):
        on_dask = run(2)
    assert tasks.data, "no task ran on the dask cluster"

    for other in (in_parallel, on_dask):
        np.testing.assert_array_equal(other.importances, sequential.importances)
        np.testing.assert_array_equal(
            other.loss_differences, sequential.loss_differences
        )
        assert other.baseline_score == sequential.baseline_score


@pytest.mark.slow  # every case fitted twice
def test_seeded_fits_in_threads_equal_sequential_fits(cases):
    # Seeding is process-wide (seeds, op determinism, TF_DETERMINISTIC_OPS):
    # fits in threads used to interleave it, leaking the variable and
    # changing the numbers.
    _, X, y, _ = cases["generic"]

    def run(**kwargs):
        network = make_regressor(model__hidden=(3,), epochs=2, batch_size=16)
        return cross_validate_importance(
            network, X, y, cv=3, n_repeats=2, random_state=0, **kwargs
        )

    sequential = run()
    variable = os.environ.get("TF_DETERMINISTIC_OPS")
    with joblib.parallel_config(backend="threading"):
        threaded = run(n_jobs=3)

    assert os.environ.get("TF_DETERMINISTIC_OPS") == variable
    np.testing.assert_array_equal(threaded.importances, sequential.importances)
    np.testing.assert_array_equal(threaded.test_scores, sequential.test_scores)


def loads_per_worker(client) -> dict:
    """{worker: (runs unpickled, models unpickled)} so far."""
    from skimportance._engines import dask_backend as _distributed

    return client.run(lambda: (_distributed.LOADS, _distributed.MODEL_LOADS))


@pytest.mark.slow  # a dask cluster of two processes
@pytest.mark.parametrize("algorithm", ["exact", "incremental"])
def test_the_model_travels_to_each_worker_once(cases, dask_client, algorithm):
    from distributed import get_task_stream

    network, X, y, _ = cases["keras"]
    kwargs = dict(n_repeats=3, random_state=7, batch_size=N_ROWS, algorithm=algorithm)
    # A budget of one (feature, repeat) slice per chunk: 15 chunks to spread.
    with sklearn.config_context(working_memory=0.01):
        in_process = permutation_importance(network, X, y, **kwargs)
        before = loads_per_worker(dask_client)
        on_dask = []
        with (
            get_task_stream(dask_client) as tasks,
            joblib.parallel_config(backend="dask"),
        ):
            for _ in range(2):  # the second call finds the model on the workers
                on_dask.append(permutation_importance(network, X, y, **kwargs))
        after = loads_per_worker(dask_client)

    chunks = [t for t in tasks.data if t["key"].startswith("skimportance-chunk")]
    # Many chunks per call (the exact engine: one slice each, 15; the
    # incremental engine builds no copy of X, so more slices fit a chunk),
    # the same number in both calls: more chunks than workers to travel to.
    per_call, odd = divmod(len(chunks), 2)
    assert odd == 0 and per_call >= 3, len(chunks)
    if algorithm == "exact":
        assert per_call == N_FEATURES * 3
    runs, models = (
        [after[w][i] - before.get(w, (0, 0))[i] for w in after] for i in (0, 1)
    )
    assert all(n <= 2 for n in runs) and all(n <= 1 for n in models), (runs, models)
    for result in on_dask:
        assert result.details["algorithm"] == algorithm
        np.testing.assert_allclose(
            result.importances, in_process.importances, atol=1e-6
        )
    # TensorFlow got the worker's one thread, not one per core.
    threads = dask_client.run(lambda: os.environ.get("TF_NUM_INTRAOP_THREADS"))
    assert set(threads.values()) == {"1"}


@pytest.mark.slow  # a dask cluster of two processes
def test_a_changed_model_is_sent_again(cases, dask_client):
    network, X, y, _ = cases["keras"]
    model = network.model_
    weights = model.get_weights()
    try:
        with joblib.parallel_config(backend="dask"):
            before = permutation_importance(network, X, y, n_repeats=2, random_state=0)
            model.set_weights([2 * w for w in weights])
            changed = permutation_importance(network, X, y, n_repeats=2, random_state=0)
        expected = permutation_importance(network, X, y, n_repeats=2, random_state=0)
    finally:
        model.set_weights(weights)
    np.testing.assert_allclose(changed.importances, expected.importances, atol=1e-6)
    assert not np.allclose(changed.importances, before.importances)
