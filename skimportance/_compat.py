"""Version shims and reaches into other libraries' private APIs.

This is the ONLY module that knows about version differences, works around
bugs in the libraries we stand on, or touches a private name of scikit-learn,
scikeras, Keras, TensorFlow or matplotlib. Each shim says why it exists and
when it can go (the "Remove when" line), in the manner of Keras's
``wrappers/fixes.py``, so that removing one is a one-place change.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
from collections.abc import Iterator

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import ClassifierTags, RegressorTags, Tags
from sklearn.utils.fixes import parse_version

__all__ = [
    "MixinsBeforeBaseEstimator",
    "TF_LOG_LEVEL",
    "active_backend",
    "active_dask_client",
    "dask_backend_with_futures",
    "boxplot_horizontal",
    "check_parameters_as_sklearn",
    "fix_estimator_tags",
    "import_tensorflow_quietly",
    "keras_wrapper_decode",
    "layer_inputs",
    "loaded_module",
    "keras_seeds_from",
    "no_leaked_tf_state",
    "not_build_parameters",
    "quiet_tensorflow",
    "scikeras_model_input",
    "scorer_metric",
    "scorer_only_predicts",
]


def loaded_module(name: str):
    """Return module ``name`` if something already imported it, else None.

    Used for ``isinstance`` checks against classes from heavy libraries: if
    scikeras (or keras) was never imported, no object can be an instance of
    its classes, and we must not pay the TensorFlow import to find that out.
    """
    return sys.modules.get(name)


# --- TensorFlow's C++ start-up chatter ---------------------------------------
#
# The one log level the package, its tests and its benchmarks use: "3" hides
# TensorFlow's C++ INFO, WARNING and ERROR lines, among them "failed call to
# cuInit" on every machine without a GPU. TensorFlow 2.21 also writes
# "I0000 ... oneDNN / cuda" lines while it loads, before absl reads that
# level, so the import itself runs with the stderr file descriptor pointed at
# /dev/null (Python-level errors still surface: they are raised after it is
# restored). Remove when TensorFlow stops logging at import (not expected).

TF_LOG_LEVEL = "3"


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ logging unless the user chose a level.

    Must run before TensorFlow is imported to have any effect.
    """
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):  # unset or empty
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_LOG_LEVEL


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up lines on stderr.

    Nothing is hidden when TensorFlow is already loaded, or when the user
    asked for its INFO or WARNING lines (TF_CPP_MIN_LOG_LEVEL below 2).
    """
    quiet_tensorflow()
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") not in ("2", "3"):
        import tensorflow  # noqa: F401

        return
    with _stderr_descriptor_silenced():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _stderr_descriptor_silenced() -> Iterator[None]:
    """Point file descriptor 2 (what C++ code writes to) at /dev/null."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr descriptor (some embedded hosts)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# --- scikeras 0.13 on scikit-learn >= 1.6 ----------------------------------
#
# scikit-learn 1.6 replaced ``_estimator_type``/``_more_tags`` with
# ``__sklearn_tags__``. scikeras 0.13 puts ``ClassifierMixin`` to the RIGHT of
# ``BaseEstimator``, so ``BaseEstimator.__sklearn_tags__`` wins and the tags say
# "no estimator type": ``is_classifier`` is False, CV is not stratified and
# probability scorers refuse the estimator. Remove once scikeras ships tags
# (not expected: 0.13 is its last release).
#
# Two repairs. A subclass cannot re-order its parents' bases (C3 forbids a
# mixin before a parent that lists it after itself), but its metaclass
# computes the method resolution order: ``MixinsBeforeBaseEstimator`` moves the
# scikit-learn mixins just before ``BaseEstimator``, where scikit-learn wants
# them (``check_mixin_order``), so ``ClassifierMixin.__sklearn_tags__`` runs
# again. ``fix_estimator_tags`` then adds what scikeras meant by its ``_tags``
# (poor scores, multi-output targets) and the determinism of seeded fits.
#
# What neither can repair: ``BaseWrapper`` itself defines ``_more_tags`` and
# no ``__sklearn_tags__``, and ``check_estimator_tags_renamed`` walks every
# class of the MRO looking for exactly that; a subclass cannot remove a name
# from a parent's namespace (only patching scikeras's class could, which
# would change plain scikeras for every user of the process).


class MixinsBeforeBaseEstimator(type):
    """Metaclass: scikit-learn's mixins come before ``BaseEstimator`` in the MRO.

    The order C3 gives, with the classifier and regressor mixins, if they come
    after ``BaseEstimator``, moved to just before it. Methods the scikeras
    classes define still come first.
    """

    def mro(cls):
        order = super().mro()
        if BaseEstimator not in order:
            return order
        for mixin in (ClassifierMixin, RegressorMixin):
            if mixin in order and order.index(mixin) > order.index(BaseEstimator):
                order.remove(mixin)
                order.insert(order.index(BaseEstimator), mixin)
        return order


def fix_estimator_tags(tags: Tags, estimator_type: str, seeded: bool) -> Tags:
    """Return ``tags`` corrected for a classifier or regressor wrapper.

    ``seeded``: a ``random_state`` is set, which makes scikeras fits repeatable.
    """
    tags.estimator_type = estimator_type
    tags.target_tags.required = True
    tags.target_tags.single_output = True
    tags.target_tags.multi_output = True
    tags.non_deterministic = not seeded
    if estimator_type == "classifier":
        tags.classifier_tags = ClassifierTags(poor_score=True)
        tags.regressor_tags = None
    else:
        tags.regressor_tags = RegressorTags(poor_score=True)
        tags.classifier_tags = None
    return tags


# --- scikit-learn's own wording for the parameters of a drop-in -----------------
#
# ``permutation_importance`` is a drop-in for scikit-learn's, so code and tests
# written against scikit-learn's error messages must keep matching. scikit-learn
# validates through ``validate_params``, which records each function's
# constraints on the undecorated function as ``_skl_parameter_constraints``
# and checks them with ``validate_parameter_constraints``; both are private.
# Checking against scikit-learn's own constraints (not a copy) keeps the two in
# step when scikit-learn changes them. Remove when scikit-learn exposes
# parameter validation publicly (not announced).


def check_parameters_as_sklearn(sklearn_function, params: dict, caller: str) -> None:
    """Validate ``params`` with ``sklearn_function``'s constraints and wording.

    Raises scikit-learn's ``InvalidParameterError`` (a ValueError and a
    TypeError), naming ``caller`` exactly as scikit-learn names its function.
    Parameters scikit-learn does not constrain are left alone.
    """
    import inspect

    from sklearn.utils._param_validation import validate_parameter_constraints

    constraints = inspect.unwrap(sklearn_function)._skl_parameter_constraints
    validate_parameter_constraints(
        {name: constraints[name] for name in params if name in constraints},
        params,
        caller_name=caller,
    )


# --- scikeras 0.13: the rows its model sees -----------------------------------
#
# scikeras has no public "transform X as predict would" step: ``predict`` runs
# its private ``_validate_data`` (dtype and shape checks) and then the public
# ``feature_encoder_``. We need exactly those rows to feed the network
# ourselves. Remove when scikeras is dropped.


def scikeras_model_input(wrapper, X):
    """The array a fitted scikeras wrapper hands to ``model.predict`` for X."""
    X, _ = wrapper._validate_data(X=X, reset=False)
    return wrapper.feature_encoder_.transform(X)


# --- scikeras 0.13: every extra keyword is a model-building parameter ---------
#
# scikeras stores unknown constructor keywords in its private ``_user_params``
# and hands each of them to the model-building function, so our own wrapper
# parameters (``inputs``, ``feature_axis``) would reach the user's
# ``build_fn`` (or break a prebuilt model: "unexpected keyword argument").
# Hide them from that set while scikeras builds the model. Remove when
# scikeras is dropped.


@contextlib.contextmanager
def not_build_parameters(wrapper, names) -> Iterator[None]:
    """Keep ``names`` away from a scikeras wrapper's model-building call."""
    user = getattr(wrapper, "_user_params", None)
    if user is None:
        yield
        return
    wrapper._user_params = set(user) - set(names)
    try:
        yield
    finally:
        wrapper._user_params = user


# --- keras.wrappers (Keras 3): decoding raw network output ---------------------
#
# ``SKLearnClassifier.predict`` turns the network's one-hot output back into
# labels with its private ``_target_encoder``; there is no public decoder.
# Remove when Keras exposes one.


def keras_wrapper_decode(wrapper, raw):
    """What ``wrapper.predict`` returns for raw network output ``raw``."""
    return wrapper._target_encoder.inverse_transform(raw)


# --- Keras 3: walking a functional graph backwards -----------------------------
#
# Keras 3 has no public API giving the layer that produced a symbolic tensor
# and that layer's inputs; ``_keras_history`` and ``_inbound_nodes`` are what
# ``keras.Model`` itself uses. Remove when Keras exposes the node graph.


def layer_inputs(tensor):
    """``(layer, input_tensors)`` that produced symbolic ``tensor``, or None."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    layer = history.operation
    node = layer._inbound_nodes[history.node_index]
    return layer, list(node.input_tensors)


# --- matplotlib 3.10 renamed boxplot's orientation switch ----------------------
#
# ``vert=False`` is deprecated since 3.10 in favour of
# ``orientation="horizontal"``. Remove when matplotlib >= 3.10 is required.


def boxplot_horizontal() -> dict:
    """``Axes.boxplot``'s keyword for horizontal boxes on this matplotlib."""
    import matplotlib

    if parse_version(matplotlib.__version__) >= parse_version("3.10"):
        return {"orientation": "horizontal"}
    return {"vert": False}


# --- scikeras 0.13 seeded fits leak TensorFlow op determinism ---------------
#
# ``scikeras.utils.random_state.tensorflow_random_state`` sets the environment
# variable TF_DETERMINISTIC_OPS=1 *before* asking TensorFlow whether op
# determinism was already on. TensorFlow reads that variable lazily, the first
# time it is asked, so in a fresh process it answers "yes, already on" and
# scikeras never switches determinism off again. Every later unseeded random
# op in the process then raises "Random ops require a seed". We ask TensorFlow
# first (which latches the real setting) and restore it afterwards; TensorFlow
# offers the question only under its private ``tensorflow.python`` path.
#
# The seeding itself is process-wide too (Python, NumPy and TensorFlow seeds,
# op determinism, the environment variable), so two fits in threads of one
# process (joblib's threading backend, a dask cluster with processes=False)
# interleave their set-and-restore: the environment variable leaks, or
# scikeras's own restore raises KeyError, and seeded numbers stop being
# reproducible. A process-wide lock serialises these blocks. Remove once
# scikeras is fixed or dropped.

_TF_STATE_LOCK = threading.RLock()  # re-entrant: initialize may run inside fit


@contextlib.contextmanager
def no_leaked_tf_state() -> Iterator[None]:
    """Run a block alone and restore TensorFlow's process-wide determinism state."""
    from tensorflow.python.framework import config as tf_config

    with _TF_STATE_LOCK:
        env_before = os.environ.get("TF_DETERMINISTIC_OPS")
        was_enabled = tf_config.is_op_determinism_enabled()
        try:
            yield
        finally:
            if env_before is None:
                os.environ.pop("TF_DETERMINISTIC_OPS", None)
            else:
                os.environ["TF_DETERMINISTIC_OPS"] = env_before
            if tf_config.is_op_determinism_enabled() != was_enabled:
                if was_enabled:
                    tf_config.enable_op_determinism()
                else:
                    tf_config.disable_op_determinism()


# --- Keras 3 draws default seeds from Python's global random module ---------
#
# An initializer or layer created without a seed takes one from
# ``keras.src.random.seed_generator.make_default_seed``, which calls the
# global ``random`` module. scikeras seeds that module just before building
# the model, but any other thread of the process may draw from it in between:
# a dask worker's event loop does (choosing a peer to fetch data from), so a
# fold refitted on a worker after another worker died got other initial
# weights, and other importances. While a seeded model is built, Keras draws
# from a private ``random.Random(seed)``: the same sequence the seeded global
# module would give, which no other thread can advance. The lock of
# ``no_leaked_tf_state`` (held around every fit) serialises the swap. Remove
# when Keras stops seeding from the global module.


@contextlib.contextmanager
def keras_seeds_from(seed) -> Iterator[None]:
    """Keras's default seeds from a private ``random.Random(seed)`` in the block;
    nothing changes when ``seed`` is None (an unseeded build)."""
    if seed is None:
        yield
        return
    from keras.src.random import seed_generator

    with _TF_STATE_LOCK:
        shared = seed_generator.python_random
        seed_generator.python_random = random.Random(seed)
        try:
            yield
        finally:
            seed_generator.python_random = shared


# --- scikit-learn scorers that only hand X to the estimator --------------------
#
# The incremental engine never builds the perturbed rows; it gives the scorer a
# placeholder X and a strict stand-in that answers from cached predictions. That
# is only sound for scorers that use X for nothing but calling the estimator:
# scikit-learn's own scorer objects (``get_scorer``/``make_scorer``, the
# passthrough to ``estimator.score``, and dicts/lists of those), whose classes
# are private. A user's callable may read X itself and gets real rows. The
# slice metric (``_engines/slice_metric.py``) reads which metric a scorer
# computes, to score many slices in one call. Remove when scikit-learn exposes
# its scorer classes publicly.


def scorer_only_predicts(scorer) -> bool:
    """True when ``scorer`` uses X only to call the estimator's methods."""
    from sklearn.metrics import _scorer

    if isinstance(scorer, _scorer._MultimetricScorer):
        return all(scorer_only_predicts(s) for s in scorer._scorers.values())
    return type(scorer) in (_scorer._Scorer, _scorer._PassthroughScorer)


def scorer_metric(scorer):
    """What ``scorer`` computes from ``predict``: ``"score"`` for the
    passthrough to ``estimator.score``, ``(metric, sign, kwargs)`` for a
    ``make_scorer``/``get_scorer`` scorer of ``predict``, else None."""
    from sklearn.metrics import _scorer

    if type(scorer) is _scorer._PassthroughScorer:
        return "score"
    if type(scorer) is _scorer._Scorer and scorer._response_method == "predict":
        return scorer._score_func, scorer._sign, scorer._kwargs
    return None


# --- joblib's active dask backend ----------------------------------------------
#
# Under ``joblib.parallel_config(backend="dask")`` the Keras engine sends its
# model and data to every worker once and names them in each chunk, which needs
# the backend's ``distributed.Client``. joblib has no public way to ask which
# backend is active: ``joblib.parallel.get_active_backend`` and the backend's
# ``client``/``submit_kwargs``/``backend_kwargs`` attributes are what joblib
# itself uses. Remove when joblib exposes the active backend.


def active_backend():
    """joblib's active backend object (``parallel_config``, else the default)."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    return backend


def active_dask_client():
    """The dask Client of joblib's active backend, or None for any other backend."""
    backend = active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return backend.client


# --- joblib's dask backend: data sent once, and recoverable -------------------
#
# joblib's dask backend looks each task argument up by ``id`` in its
# ``data_futures`` (filled by ``parallel_config(scatter=[...])``) and passes the
# future instead of the object. Scattered data, though, cannot be recomputed:
# a worker lost with the only copy takes it along, and every task that needs it
# is cancelled ("already forgotten"). We put our own futures there instead,
# futures of tasks that return the data, which dask recomputes if a copy is
# lost. ``data_futures`` is joblib-internal. Remove when joblib's dask backend
# accepts futures, or its scatter survives a lost worker.


@contextlib.contextmanager
def dask_backend_with_futures(client, futures: dict, submit_kwargs: dict):
    """joblib's dask backend passing ``futures[id(obj)]`` in place of ``obj``.

    The caller keeps the objects alive (their ids must not be reused) while
    the context is open.
    """
    from joblib import parallel_config

    with parallel_config(backend="dask", client=client, **submit_kwargs):
        active_backend().data_futures.update(futures)
        yield
