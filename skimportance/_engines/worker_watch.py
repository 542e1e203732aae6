"""A call on a dask cluster that no worker is left to serve ends, in bounded time.

dask keeps a task whose workers are all gone waiting for a new worker, for
ever: with no nanny to restart them (``dask worker --no-nanny``, a batch
job's workers killed, a cluster scaled to zero), a call would never return.
:func:`watch_workers` polls the scheduler from a thread while a call waits on
the cluster; when it has seen no worker for ``skimportance.no-workers-timeout``
(dask config, 60 s by default) it cancels the call's tasks, and the call
raises :class:`~skimportance._engines.dask_backend.WorkerLostError` saying so.
Workers that keep dying while they run the call's tasks are dask's own
business: a task that was running on ``distributed.scheduler.allowed-failures``
+ 1 (by default 4) workers that died fails with ``KilledWorker``, which the
call reports as a lost worker too.

Nothing here imports dask until a dask backend is active.
"""

from __future__ import annotations

import contextlib
import threading
import time

__all__ = ["POLL_S", "no_workers_timeout", "watch_workers"]

#: How often the watch asks the scheduler for its workers, in seconds.
POLL_S = 1.0
#: The default of the ``skimportance.no-workers-timeout`` dask config key: long
#: enough for a nanny to restart a worker and import TensorFlow on a busy machine.
DEFAULT_TIMEOUT_S = 60.0


def no_workers_timeout() -> float:
    """Seconds without any worker after which a call gives up (dask config
    ``skimportance.no-workers-timeout``: seconds, or a string as ``"2 minutes"``)."""
    import dask
    from dask.utils import parse_timedelta

    value = dask.config.get("skimportance.no-workers-timeout", DEFAULT_TIMEOUT_S)
    return float(parse_timedelta(value, default="seconds"))


class _Watch:
    def __init__(self, client, futures):
        self.client = client
        self.futures = futures  # the call's futures, or None: those made meanwhile
        self.known = None if futures is not None else set(client.futures)
        self.timeout = no_workers_timeout()
        self.starved = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="skimportance-worker-watch", daemon=True
        )

    def _n_workers(self) -> int:
        try:
            return len(self.client.nthreads())
        except Exception:  # the scheduler itself is unreachable: no worker either
            return 0

    def _run(self) -> None:
        empty_since = None
        while not self._stop.wait(POLL_S):
            if self._n_workers():
                empty_since = None
                continue
            now = time.monotonic()
            if empty_since is None:
                empty_since = now
            elif now - empty_since >= self.timeout:
                self.starved = True
                self._cancel()
                return

    def _cancel(self) -> None:
        from distributed import Future

        futures = self.futures
        if futures is None:
            futures = [
                Future(key, self.client)
                for key in set(self.client.futures) - self.known
            ]
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def watch_workers(client, futures=None):
    """Cancel ``futures`` (by default, every future ``client`` makes inside the
    context) once the cluster has had no worker for :func:`no_workers_timeout`
    seconds; yields the watch, whose ``starved`` says whether it did."""
    watch = _Watch(client, futures)
    watch._thread.start()
    try:
        yield watch
    finally:
        watch.close()
