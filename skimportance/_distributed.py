"""Chunks on a dask cluster: the model and the data travel to each worker once.

Under ``joblib.parallel_config(backend="dask")`` (with the default client, or
one given as ``parallel_config(backend="dask", client=...)``) the Keras
engine does not hand its chunks to joblib, which would pickle the model into
every task: the object that scores chunks (``ExactSlices`` or
``IncrementalSlices``: the model, the rows, the plan) is pickled once and
broadcast to every worker, and each task names only its chunk. A worker
unpickles that object once, after limiting TensorFlow to the worker's own
threads (so two worker processes on two cores do not run four TensorFlow
pools), and keeps it for the tasks that follow.

A worker lost mid-run: dask reruns its tasks on the workers left, each of
which holds the broadcast copy, so the run finishes with the same numbers.
When it cannot (every copy lost, or a task that keeps killing workers), the
error says that a worker was lost instead of surfacing as a bare
``CancelledError``.

Nothing here imports dask until a dask backend is active.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import uuid

from ._compat import (
    active_backend,
    active_dask_client,
    dask_broadcast,
    loaded_module,
)

__all__ = [
    "WorkerLostError",
    "dask_client_for_chunks",
    "fold_workers",
    "limit_tf_threads",
    "limit_worker_threads",
    "raise_if_worker_lost",
    "run_on_dask",
]


class WorkerLostError(RuntimeError):
    """A dask worker died and the work it held could not be rerun."""


def dask_client_for_chunks():
    """The client to send chunks to, or None to run them in this process.

    None unless joblib's active backend is dask, and None inside a dask
    worker: a run nested in a worker's task (a fold of
    ``cross_validate_importance``) stays in that worker.
    """
    client = active_dask_client()
    if client is None or _in_dask_worker():
        return None
    return client


def _in_dask_worker() -> bool:
    distributed = loaded_module("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def run_on_dask(client, slices, collect, *, caller: str) -> None:
    """Run every chunk of ``slices`` on the cluster, handing each chunk's
    ``[((group, repeat), score)]`` to ``collect`` as it arrives."""
    import cloudpickle
    from distributed import as_completed

    limit_worker_threads(client)
    token = uuid.uuid4().hex
    # hash=False: a fresh key per run, never an older run's object.
    [payload] = client.scatter([cloudpickle.dumps(slices)], broadcast=True, hash=False)
    futures = [
        client.submit(
            _run_chunk,
            payload,
            token,
            chunk,
            key=f"skimportance-chunk-{token}-{i}",
            pure=False,
        )
        for i, chunk in enumerate(slices.chunks())
    ]
    try:
        with raise_if_worker_lost(caller):
            for future in as_completed(futures):
                collect(future.result())
    except BaseException:
        client.cancel(futures)
        raise


@contextlib.contextmanager
def raise_if_worker_lost(caller: str):
    """Turn dask's worker-loss exceptions into a :class:`WorkerLostError`."""
    try:
        yield
    except BaseException as exc:
        if not _is_worker_loss(exc):
            raise
        raise WorkerLostError(
            f"A dask worker was lost during {caller} (or the connection to it), "
            f"and dask could not rerun its work elsewhere ({type(exc).__name__}: "
            f"{exc}). Rerun the call; if workers keep dying, check their memory "
            "limits and logs."
        ) from exc


def _is_worker_loss(exc: BaseException) -> bool:
    import asyncio
    import concurrent.futures

    distributed = loaded_module("distributed")
    kinds = (asyncio.CancelledError, concurrent.futures.CancelledError)
    if distributed is not None:
        from distributed.comm import CommClosedError

        kinds += (distributed.KilledWorker, CommClosedError)
    return isinstance(exc, kinds)


@contextlib.contextmanager
def fold_workers(estimator, X, y, *, n_jobs):
    """Set up the workers that fit and measure cross-validation folds.

    * Under a dask backend: ``X`` and ``y`` are broadcast to every worker
      once (a fold's tasks only name them, and a lost worker does not take
      the only copy with it), TensorFlow is limited to each worker's threads,
      and a lost worker that dask cannot recover from is reported as such.
    * Under joblib's default process backend (loky), with a Keras model: each
      worker process gives TensorFlow its share of the cores
      (``cpu_count // n_jobs``) instead of all of them, so that two folds on
      two cores do not run four TensorFlow thread pools.

    Yields ``broadcast(*arrays)``: a context in which ``arrays`` (test
    indices) are broadcast along with X and y; a no-op off dask.
    """
    from joblib import effective_n_jobs, parallel_config

    from ._model import has_keras_model

    keras = has_keras_model(estimator)
    client = dask_client_for_chunks()
    if client is not None:
        submit_kwargs = dict(getattr(active_backend(), "submit_kwargs", {}))
        if keras:
            limit_worker_threads(client)

        def broadcast(*arrays):
            return dask_broadcast(client, [X, y, *arrays], submit_kwargs)

        with raise_if_worker_lost("cross_validate_importance"), broadcast():
            yield broadcast
        return

    backend = active_backend()
    n_workers = effective_n_jobs(n_jobs)
    if (
        keras
        and n_workers > 1
        and type(backend).__name__ == "LokyBackend"
        and not getattr(backend, "backend_kwargs", None)  # no user settings to keep
    ):
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        config = parallel_config(
            backend="loky", initializer=limit_tf_threads, initargs=(threads,)
        )
    else:
        config = contextlib.nullcontext()
    with config:
        yield lambda *arrays: contextlib.nullcontext()


# --- on the workers -------------------------------------------------------------------

#: How many times this process unpickled a run's slices: once per worker and
#: run when the model travels once (the tests and the benchmark read it).
LOADS = 0
_LOADED: dict = {}
_LOAD_LOCK = threading.Lock()


def _run_chunk(payload: bytes, token: str, chunk):
    return _slices_of(payload, token).run(chunk)


def _slices_of(payload: bytes, token: str):
    global LOADS
    with _LOAD_LOCK:
        slices = _LOADED.get(token)
        if slices is None:
            limit_tf_threads(_worker_threads())  # before the model wakes TensorFlow
            slices = pickle.loads(payload)
            LOADS += 1
            _LOADED.clear()  # one run at a time per worker: drop the last model
            _LOADED[token] = slices
    return slices


def _worker_threads() -> int:
    import distributed

    try:
        return distributed.get_worker().state.nthreads
    except ValueError:
        return os.cpu_count() or 1


def limit_worker_threads(client) -> None:
    """Limit TensorFlow on every worker of ``client`` to the worker's threads.

    Best effort: a worker that is restarting is skipped (it limits itself
    when it loads a run's slices).
    """
    try:
        client.run(_limit_on_worker, on_error="ignore")
    except OSError:  # distributed's CommClosedError: a worker went away meanwhile
        pass


def _limit_on_worker(dask_worker) -> None:
    limit_tf_threads(dask_worker.state.nthreads)


def limit_tf_threads(n_threads: int) -> None:
    """Size TensorFlow's thread pools in this process, if it has not started.

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``
    when its runtime starts; a value the user set is kept, and a runtime
    already running keeps its pools.
    """
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, str(max(1, int(n_threads))))
