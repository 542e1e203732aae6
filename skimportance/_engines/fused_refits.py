"""Fused refits: a Keras network and its reduced copies trained as one model.

LOCO refits the estimator once per feature (or group) on the same training
rows, each time with one raw column made constant. For our Keras wrappers
(bare, or the last step of a Pipeline) all those refits of one fold train
together: one copy of the user's network per variant, each built by the
wrapper's own build function under the same seed (so its initial weights are
those of a lone fit), each fed its own masked input, their losses summed and
one optimizer stepping over all copies' weights. A plain Dense network is
stacked (``stacked_dense``: one network with a copy axis, traced once); any
other is nested (the copies side by side in one functional model).

Why that equals the lone fits: the copies share no weight, so the gradient of
the summed loss with respect to a copy's weights is the gradient of that
copy's own loss; the optimizers Keras offers update each variable from its own
gradient and state (Adam's moments, momentum), and all copies take the same
steps on the same rows, because the one ``fit`` draws the one shuffle a lone
``fit`` under the same seed draws (scikeras seeds Python, NumPy and TensorFlow
the same way around both). Where any of that does not hold, ``fused_obstacle``
or ``FusedRefits`` says why and LOCO refits sequentially:

* callbacks (early stopping among them) see the summed loss, not a copy's;
* ``validation_split``/``validation_data`` only serve callbacks and the
  history, which a fused fit records summed;
* ``class_weight`` is refused by Keras for a model with several outputs;
* ``global_clipnorm`` scales every copy's gradient by the norm of all of them;
* models with several inputs or outputs (``inputs=``, several heads) are not
  fused (one input and one output per copy is what is built here);
* a prebuilt ``keras.Model`` (``from_keras``) is one model, not a recipe.

Layers that draw random numbers in training (Dropout, GaussianNoise) draw them
from a seed generator each copy builds under the same seed, so each copy
draws the mask its lone fit draws; ``tests/test_loco.py`` checks it.
BatchNormalization normalises each copy over the same batch rows, as alone.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline

from .._compat import loaded_module

__all__ = ["FusedRefitImpossible", "FusedRefits", "fused_obstacle", "keras_wrapper_of"]


class FusedRefitImpossible(ValueError):
    """The refits of this estimator cannot be fused; the message says why."""


def keras_wrapper_of(estimator):
    """Our KerasRegressor/KerasClassifier, bare or last in a Pipeline, else None.

    Only ours: scikeras's own wrappers build and fit the same way, but ours
    are the ones whose build seeds are private to the build (``_compat``).
    """
    wrappers = loaded_module("skimportance.wrappers")
    if wrappers is None:  # no instance of them can exist
        return None
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    ours = (wrappers.KerasClassifier, wrappers.KerasRegressor)
    return final if isinstance(final, ours) else None


def fused_obstacle(estimator) -> str | None:
    """Why the refits of ``estimator`` cannot be fused, from its parameters;
    None when they can (some obstacles only show once a copy is built)."""
    wrapper = keras_wrapper_of(estimator)
    if wrapper is None:
        return (
            f"{type(estimator).__name__} is not a skimportance KerasRegressor or "
            "KerasClassifier (nor a Pipeline ending in one)"
        )
    params = wrapper.get_params()
    callbacks = [
        key for key in ("callbacks", "fit__callbacks") if params.get(key) is not None
    ]
    if callbacks:
        return (
            f"the estimator has callbacks ({callbacks[0]}): early stopping and "
            "other callbacks would watch the summed loss of all copies, not "
            "each copy's own"
        )
    for key in ("validation_split", "fit__validation_split"):
        if params.get(key):
            return (
                f"{key}={params[key]}: the validation rows serve callbacks and the "
                "history, which a fused fit records summed over the copies"
            )
    if params.get("fit__validation_data") is not None:
        return "fit__validation_data serves callbacks, which see summed losses"
    if params.get("class_weight") is not None or params.get("fit__class_weight"):
        return "class_weight: Keras refuses class weights for several outputs"
    return None


def _seed_of(wrapper):
    return getattr(wrapper, "_random_state", None)


class FusedRefits:
    """Build, train and hand back the refits of one fold as fitted estimators.

    Parameters
    ----------
    estimator : estimator
        The seeded template (a wrapper or a Pipeline ending in one); each
        variant gets its own clone.
    """

    def __init__(self, estimator):
        reason = fused_obstacle(estimator)
        if reason is not None:
            raise FusedRefitImpossible(reason)
        self.estimator = estimator

    def fit(self, X_variants, y) -> list:
        """One fitted clone per variant of the training rows, trained together."""
        from scikeras.utils.random_state import tensorflow_random_state
        from scikeras.wrappers import route_params

        from .._compat import no_leaked_tf_state

        fitted, inputs, targets = [], [], []
        for X in X_variants:
            estimator = clone(self.estimator)
            wrapper = keras_wrapper_of(estimator)
            if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
                # Each variant's preprocessing learns from its own masked rows,
                # as it would in a lone Pipeline.fit.
                X = estimator[:-1].fit_transform(X, y)
            x, target = _initialized(wrapper, X, y)
            fitted.append(estimator)
            inputs.append(x)
            targets.append(target)
        wrappers = [keras_wrapper_of(estimator) for estimator in fitted]
        models = [wrapper.model_ for wrapper in wrappers]
        _check_models(models, inputs)

        fused, x = _fused_network(models, inputs)
        self.stacked_ = not isinstance(x, list)
        if self.stacked_:
            from .stacked_dense import stacked_targets, summed_loss

            loss = summed_loss(models[0].loss, len(models))
            targets = stacked_targets(targets)
        else:
            loss = [model.loss for model in models]
        optimizer = models[0].optimizer
        fused.compile(
            optimizer=type(optimizer).from_config(optimizer.get_config()),
            loss=loss,
        )
        first = wrappers[0]
        # What scikeras's _fit_keras_model passes to keras.Model.fit.
        fit_args = route_params(
            first.get_params(), destination="fit", pass_filter=first._fit_kwargs
        )
        fit_args = {k: v for k, v in fit_args.items() if not k.startswith("callbacks")}
        fit_args["epochs"] = getattr(first, "fit__epochs", first.epochs)
        fit_args["initial_epoch"] = 0
        if fit_args.get("batch_size") == -1:
            fit_args["batch_size"] = len(inputs[0])
        seed = _seed_of(first)
        with no_leaked_tf_state():
            if seed is not None:
                with tensorflow_random_state(seed):
                    fused.fit(x=x, y=targets, **fit_args)
            else:
                fused.fit(x=x, y=targets, **fit_args)
        self.fused_model_ = fused
        if self.stacked_:
            from .stacked_dense import write_back

            write_back(fused, models)
        return fitted

    def raw_outputs(self, X_model_variants, rows: int = 4096) -> list:
        """Each copy's raw network output on its own model-ready rows.

        One eager call of the fused model per chunk of rows: no copy
        compiles a predict function of its own (tracing one per copy costs
        more than the forward pass on held-out folds of this size).
        """
        import keras

        n_rows = len(X_model_variants[0])
        if self.stacked_:
            stacked = np.stack(X_model_variants, axis=1)
            batches = (
                stacked[start : start + rows] for start in range(0, n_rows, rows)
            )
        else:
            batches = (
                [X[start : start + rows] for X in X_model_variants]
                for start in range(0, n_rows, rows)
            )
        chunks = [
            self.fused_model_(
                keras.tree.map_structure(keras.ops.convert_to_tensor, batch),
                training=False,
            )
            for batch in batches
        ]
        if self.stacked_:  # one (rows, k, n_out) output
            outputs = np.concatenate([keras.ops.convert_to_numpy(c) for c in chunks])
            return [outputs[:, k] for k in range(len(X_model_variants))]
        return [
            np.concatenate([keras.ops.convert_to_numpy(chunk[k]) for chunk in chunks])
            for k in range(len(X_model_variants))
        ]


def _fused_network(models, inputs):
    """(one Keras model training every copy, what to feed it).

    A plain Dense network is stacked (``stacked_dense``: one network with a
    copy axis, traced once); any other single-input network is nested: one
    copy per variant side by side in one functional model, the very objects
    the wrappers hold, so training it trains each wrapper's ``model_``.
    """
    import keras

    from .stacked_dense import stackable, stacked_network

    if all(stackable(model) for model in models):
        return stacked_network(models), np.stack(inputs, axis=1)
    entries = [
        keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
        for model in models
    ]
    outputs = [model(entry) for model, entry in zip(models, entries)]
    return keras.Model(entries, outputs), list(inputs)


def _initialized(wrapper, X, y):
    """The wrapper built as its ``fit`` builds it (scikeras's ``_fit`` up to
    the call of ``keras.Model.fit``): checked target, model built under its
    seed and compiled, encoders fitted. Returns what ``fit`` would feed Keras.
    """
    from .._compat import no_leaked_tf_state

    wrapper._check_target(y)
    if is_classifier(wrapper):
        wrapper.classes_ = None  # as scikeras's KerasClassifier.fit starts
    with no_leaked_tf_state():
        X, y = wrapper._initialize(X, y)
        wrapper._ensure_compiled_model()
    target = wrapper.target_encoder_.transform(y)
    x = wrapper.feature_encoder_.transform(X)
    wrapper._check_model_compatibility(target)
    return x, target


def _check_models(models, inputs) -> None:
    """Obstacles that only show once the copies are built."""
    model = models[0]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or isinstance(inputs[0], dict):
        raise FusedRefitImpossible(
            f"the network has {len(model.inputs)} input(s) and {len(model.outputs)} "
            "output(s); fused refits take networks with one of each"
        )
    if getattr(model.optimizer, "global_clipnorm", None):
        raise FusedRefitImpossible(
            "the optimizer clips by global_clipnorm, which couples the copies: "
            "each copy's step would depend on the others' gradients"
        )
