"""Dask workers lost mid-run: the work is rerun, or the error says so.

The fault-injection run lives in ``fault_injection.py`` and runs in its own
process under a timeout: it kills one worker of a 2-process LocalCluster in
the middle of ``permutation_importance`` and of ``cross_validate_importance``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from skimportance._engines.dask_backend import WorkerLostError, raise_if_worker_lost


@pytest.mark.slow  # a subprocess running a dask cluster
def test_a_worker_killed_mid_run_changes_nothing_or_is_reported():
    pytest.importorskip("distributed")
    script = Path(__file__).with_name("fault_injection.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=400,  # a hang fails the test instead of stalling the suite
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for call in ("permutation_importance", "cross_validate_importance"):
        assert f"{call}, one worker killed:" in done.stdout
    assert "ALL OK" in done.stdout


@pytest.mark.parametrize("kind", ["KilledWorker", "FutureCancelledError"])
def test_worker_loss_exceptions_say_a_worker_was_lost(kind):
    distributed = pytest.importorskip("distributed")
    if kind == "KilledWorker":
        worker = SimpleNamespace(address="tcp://127.0.0.1:1234")
        exc = distributed.KilledWorker("chunk-3", worker, 1)
    else:
        exc = distributed.client.FutureCancelledError("chunk-3", "already forgotten")
    with pytest.raises(
        WorkerLostError, match="worker was lost during the_call"
    ) as info:
        with raise_if_worker_lost("the_call"):
            raise exc
    assert info.value.__cause__ is exc


def test_other_errors_pass_unchanged():
    with pytest.raises(ValueError, match="a scorer failed"):
        with raise_if_worker_lost("the_call"):
            raise ValueError("a scorer failed")
