"""Chunks on a dask cluster: the model and the data travel to each worker once.

Under ``joblib.parallel_config(backend="dask")`` (with the default client, or
one given as ``parallel_config(backend="dask", client=...)``) the Keras
engine does not hand its chunks to joblib, which would pickle the model into
every task: the object that scores chunks (``ExactSlices`` or
``IncrementalSlices``: the model, the rows, the plan) is pickled once and
sent to the cluster as one future, and each task names only its chunk. A worker
unpickles that object once per call and keeps it for the tasks that follow;
the model inside it, pickled apart with a fingerprint of its weights and
preprocessing, is unpickled (and its forward function traced) only when the
worker does not hold that very model from an earlier call. Before its first
model, a worker limits TensorFlow to its own threads, so two worker processes
on two cores do not run four TensorFlow thread pools.

A worker lost mid-run: dask reruns its tasks on the workers left; the data
they need is held as the result of a task (:func:`recoverable`), not as
scattered data, so dask recomputes it if its last copy was lost, and the run
finishes with the same numbers. When it cannot (a task that keeps killing
workers, or no worker left at all: :mod:`.worker_watch`), the error says that
a worker was lost instead of surfacing as a bare ``CancelledError`` or
waiting for ever.

Nothing here imports dask until a dask backend is active.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import threading
import uuid

from .._compat import (
    active_backend,
    active_dask_client,
    dask_backend_with_futures,
    loaded_module,
)
from .worker_watch import watch_workers

__all__ = [
    "FoldWorkers",
    "WorkerLostError",
    "dask_client_for_chunks",
    "limit_tf_threads",
    "limit_worker_threads",
    "raise_if_worker_lost",
    "recoverable",
    "reported_worker_loss",
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
    ``[((group, repeat), score, loss differences)]`` to ``collect`` as it
    arrives."""
    from distributed import as_completed

    model, fingerprint, rest = _packed(slices)
    token = uuid.uuid4().hex
    payload = [recoverable(client, model), recoverable(client, rest)]
    futures = [
        client.submit(
            _run_chunk,
            *payload,
            fingerprint,
            token,
            chunk,
            key=f"skimportance-chunk-{token}-{i}",
            pure=False,
        )
        for i, chunk in enumerate(slices.chunks())
    ]
    try:
        with watch_workers(client, futures) as watch:
            with raise_if_worker_lost(caller, watch):
                for future in as_completed(futures):
                    collect(future.result())
    except BaseException:
        client.cancel(futures)
        raise


def _packed(slices) -> tuple[bytes, str, bytes]:
    """(the located model pickled, its fingerprint, the rest pickled apart).

    The rest refers to the estimator, its Keras model and preprocessing by
    name only, so that a worker that already holds a model with the same
    fingerprint (the same estimator, unchanged since an earlier call) reuses
    it, with its traced forward function, instead of unpickling it again.
    """
    import cloudpickle

    located = slices.located
    parts = {
        id(part): name
        for name, part in _model_parts(located).items()
        if part is not None
    }
    return (
        cloudpickle.dumps(located),
        _fingerprint(located),
        _dumps(slices, parts),
    )


def _model_parts(located) -> dict:
    return {
        "located": located,
        "estimator": located.estimator,
        "final": located.final,
        "model": located.model,
        "preprocessor": located.preprocessor,
    }


def _dumps(obj, names: dict) -> bytes:
    """cloudpickle ``obj``, writing the objects in ``names`` (by id) as names."""
    import cloudpickle

    class Pickler(cloudpickle.CloudPickler):
        def persistent_id(self, part):
            return names.get(id(part))

    buffer = io.BytesIO()
    Pickler(buffer).dump(obj)
    return buffer.getvalue()


def _fingerprint(located) -> str:
    """A digest of everything the located model computes with: the estimator
    (its preprocessing and wrapper, pickled without the Keras model), the
    network's architecture and every weight. Keras's own pickles carry a save
    date, so they cannot be compared; this can. A fresh token when the
    architecture cannot be written out: no reuse then."""
    import hashlib

    import numpy as np

    digest = hashlib.blake2b(_dumps(located, {id(located.model): "model"}))
    try:
        digest.update(located.model.to_json().encode())
    except (TypeError, ValueError, NotImplementedError):
        return uuid.uuid4().hex
    for weight in located.model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def recoverable(client, value):
    """A future of ``value`` that dask can recompute if a worker loses it.

    Unlike scattered data, which is gone with the last worker holding it, the
    task returning ``value`` is kept by the scheduler and run again. Each
    worker fetches the value once, from the worker that holds it, the first
    time one of its tasks needs it.
    """
    import warnings

    with warnings.catch_warnings():
        # The data is meant to travel inside this one task, once; dask's
        # advice to scatter it instead would make it unrecoverable.
        warnings.filterwarnings("ignore", message="Sending large graph")
        return client.submit(
            _identity, value, key=f"skimportance-data-{uuid.uuid4().hex}", pure=False
        )


def _identity(value):
    return value


@contextlib.contextmanager
def raise_if_worker_lost(caller: str, watch=None):
    """Turn dask's worker-loss exceptions into a :class:`WorkerLostError`;
    ``watch`` (:func:`watch_workers`) says whether the call's tasks were
    cancelled because no worker was left."""
    try:
        yield
    except BaseException as exc:
        if watch is not None and watch.starved:
            raise WorkerLostError(
                f"No dask worker was left during {caller}: none came back within "
                f"{watch.timeout:g} s (dask config skimportance.no-workers-timeout), "
                "so its work was cancelled. Restart the workers and rerun the call."
            ) from exc
        if not _is_worker_loss(exc):
            raise
        raise WorkerLostError(
            f"A dask worker was lost during {caller} (or the connection to it), "
            f"and dask could not rerun its work elsewhere ({type(exc).__name__}: "
            f"{exc}). Rerun the call; if workers keep dying, check their memory "
            "limits and logs."
        ) from exc


@contextlib.contextmanager
def reported_worker_loss(caller: str, client=None):
    """Around a call that joblib may spread on a dask cluster (``client``, by
    default the active backend's): a lost worker, or no worker left for
    :func:`~.worker_watch.no_workers_timeout` seconds, raises a
    :class:`WorkerLostError` instead of a bare ``CancelledError`` or a hang."""
    if client is None:
        client = dask_client_for_chunks()
    if client is None:
        with raise_if_worker_lost(caller):
            yield
        return
    with watch_workers(client) as watch, raise_if_worker_lost(caller, watch):
        yield


def _is_worker_loss(exc: BaseException) -> bool:
    import asyncio
    import concurrent.futures

    distributed = loaded_module("distributed")
    kinds = (asyncio.CancelledError, concurrent.futures.CancelledError)
    if distributed is not None:
        from distributed.comm import CommClosedError

        kinds += (distributed.KilledWorker, CommClosedError)
    return isinstance(exc, kinds)


class FoldWorkers:
    """Where cross-validation folds are fitted and measured.

    ``with FoldWorkers(...) as workers:`` wraps the run; ``workers.fitting()``
    wraps the fits, ``workers.measuring(row_indices)`` the measurements.

    * Under a dask backend: ``X``, ``y`` and the test rows are sent once, as
      futures dask can recompute (:func:`recoverable`), so a fold's task only
      names them and a lost worker does not take the only copy with it;
      TensorFlow is limited to each worker's threads; a lost worker that dask
      cannot recover from is reported as such.
    * Under joblib's default process backend (loky), with a Keras model: each
      worker process gives TensorFlow its share of the cores (cpu_count //
      n_jobs) for the fits, so two folds on two cores do not run four
      TensorFlow thread pools; the fitted folds come back to this process
      anyway, so they are measured here, in threads sharing one TensorFlow,
      instead of being pickled out to the workers again.
    """

    def __init__(self, estimator, X, y, *, n_jobs):
        from .._model import has_keras_model

        self.X, self.y = X, y
        self.keras = has_keras_model(estimator)
        self.client = dask_client_for_chunks()
        self.n_jobs = n_jobs
        self._futures = {}  # id(data) -> its future, for the folds' tasks

    def __enter__(self):
        if self.client is not None:
            if self.keras:
                limit_worker_threads(self.client)
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(
                reported_worker_loss("cross_validate_importance", self.client)
            )
        return self

    def __exit__(self, *exc_info):
        if self.client is not None:
            return self._stack.__exit__(*exc_info)
        return False

    def fitting(self):
        if self.client is not None:
            return self._on_dask()
        threads = self._loky_threads()
        if threads is None:
            return contextlib.nullcontext()
        from joblib import parallel_config

        return parallel_config(
            backend="loky", initializer=limit_tf_threads, initargs=(threads,)
        )

    def measuring(self, row_indices):
        """Around the folds' measurements; ``row_indices`` (the folds' test
        rows, and training rows where a method fits on them) travel once."""
        if self.client is not None:
            return self._on_dask(*row_indices)
        if self._loky_threads() is None:
            return contextlib.nullcontext()
        from joblib import parallel_config

        return parallel_config(backend="threading")

    def _on_dask(self, *arrays):
        for data in (self.X, self.y, *arrays):
            # None (no y) stays None: a future of it would stand in for
            # every None argument of every task.
            if data is not None and id(data) not in self._futures:
                self._futures[id(data)] = recoverable(self.client, data)
        submit_kwargs = dict(getattr(active_backend(), "submit_kwargs", {}))
        return dask_backend_with_futures(self.client, self._futures, submit_kwargs)

    def _loky_threads(self) -> int | None:
        """TensorFlow threads per loky worker, or None when we leave loky be:
        no Keras model, one job, or a backend the user configured."""
        from joblib import effective_n_jobs

        backend = active_backend()
        n_workers = effective_n_jobs(self.n_jobs)
        if (
            not self.keras
            or n_workers < 2
            or type(backend).__name__ != "LokyBackend"
            or getattr(backend, "backend_kwargs", None)
        ):
            return None
        return max(1, (os.cpu_count() or 1) // n_workers)


# --- on the workers -------------------------------------------------------------------

#: How many times this process unpickled a model (``MODEL_LOADS``) and a run's
#: slices (``LOADS``). A worker unpickles a run's slices once, and its model
#: once as long as the estimator does not change: never per chunk (the tests
#: and the benchmark read these).
LOADS = 0
MODEL_LOADS = 0
_MODELS: dict = {}
_SLICES: dict = {}
_LOAD_LOCK = threading.Lock()


def _run_chunk(model: bytes, rest: bytes, fingerprint: str, token: str, chunk):
    return _slices_of(model, rest, fingerprint, token).run(chunk)


def _slices_of(model: bytes, rest: bytes, fingerprint: str, token: str):
    global LOADS, MODEL_LOADS
    with _LOAD_LOCK:
        slices = _SLICES.get(token)
        if slices is not None:
            return slices
        located = _MODELS.get(fingerprint)
        if located is None:
            limit_tf_threads(_worker_threads())  # before the model wakes TensorFlow
            located = pickle.loads(model)
            MODEL_LOADS += 1
            _MODELS.clear()  # one model at a time per worker
            _MODELS[fingerprint] = located
        slices = _Unpickler(io.BytesIO(rest), _model_parts(located)).load()
        LOADS += 1
        _SLICES.clear()  # one run at a time per worker
        _SLICES[token] = slices
    return slices


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, parts: dict):
        super().__init__(file)
        self.parts = parts

    def persistent_load(self, name):
        return self.parts[name]


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
    """Size TensorFlow's thread pools in this process, before it is imported.

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``
    when its runtime starts. A value the user set is kept, and a process that
    has imported TensorFlow already (the client itself, with an in-process
    cluster) is left alone: its pools may be running.
    """
    if loaded_module("tensorflow") is not None:
        return
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, str(max(1, int(n_threads))))
