"""TensorFlow's "triggered tf.function retracing" warning, where we cause it.

Each fit of a wrapper builds a new Keras model, whose train and predict
functions are traced once each. TensorFlow counts the traces of functions
that share their Python code together, across models, so a few fits in a row
(the folds of a cross-validation, RFECV's steps, a grid search, the CLI's
``--cv``) read as "5 out of the last 5 calls ... triggered tf.function
retracing", although no function was traced twice. The wrappers fit and
predict with that one message filtered out of TensorFlow's logger; every other
message passes, and the filter is gone when no fit or prediction runs. Remove
if Keras stops sharing one code object between its models' step functions.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

__all__ = ["retracing_warnings_silenced"]

_MESSAGE = "triggered tf.function retracing"
_lock = threading.Lock()
_users = 0


class _RetracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _MESSAGE not in record.getMessage()


_FILTER = _RetracingFilter()


@contextlib.contextmanager
def retracing_warnings_silenced() -> Iterator[None]:
    """TensorFlow's retracing warning filtered out while the block runs (in
    any thread: the filter stays while any thread is inside such a block)."""
    global _users
    logger = logging.getLogger("tensorflow")
    with _lock:
        _users += 1
        if _users == 1:
            logger.addFilter(_FILTER)
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                logger.removeFilter(_FILTER)
