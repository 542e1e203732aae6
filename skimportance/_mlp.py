"""``build_mlp``: the one small Keras MLP builder of the project.

The command line, the tests, the estimator checks and the benchmarks all train
a plain Dense network through scikeras; they share this builder instead of
each writing its own.
"""

from __future__ import annotations

__all__ = ["build_mlp"]


def build_mlp(meta, hidden=(32,), activation="relu", binary_sigmoid=False):
    """A Dense network sized from scikeras's ``meta``, for ``model=build_mlp``.

    Parameters
    ----------
    meta : dict
        What scikeras passes to a model builder: ``n_features_in_`` and, for
        a classifier, ``n_classes_`` and ``target_type_``; for a regressor
        ``y_ndim_`` and ``n_outputs_``.
    hidden : tuple of int, default=(32,)
        Units of each hidden Dense layer (route it as ``model__hidden``).
    activation : str, default="relu"
        Activation of the hidden layers (``model__activation``).
    binary_sigmoid : bool, default=False
        For a binary target, one sigmoid unit (train with
        ``binary_crossentropy``) instead of a two-unit softmax.

    Returns
    -------
    keras.Sequential
        Input, the hidden layers, and an output layer: a softmax over the
        classes for a classifier (train with
        ``sparse_categorical_crossentropy``), else one linear unit per target
        column.

    Examples
    --------
    >>> from skimportance import KerasRegressor, build_mlp
    >>> reg = KerasRegressor(build_mlp, model__hidden=(16, 16), loss="mse",
    ...                      epochs=2, verbose=0, random_state=0)
    >>> reg.get_params()["model__hidden"]
    (16, 16)
    """
    import keras

    if "n_classes_" in meta:
        if binary_sigmoid and meta.get("target_type_") == "binary":
            n_out, output_activation = 1, "sigmoid"
        else:
            n_out, output_activation = meta["n_classes_"], "softmax"
    else:  # a regressor: y may look "multiclass" to scikeras
        n_out = 1 if meta["y_ndim_"] == 1 else meta["n_outputs_"]
        output_activation = None
    layers = [keras.Input((meta["n_features_in_"],))]
    layers += [keras.layers.Dense(units, activation=activation) for units in hidden]
    layers.append(keras.layers.Dense(n_out, activation=output_activation))
    return keras.Sequential(layers)
