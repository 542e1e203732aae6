"""Find the Keras model inside an estimator and run it fast.

Every importance method starts here. ``locate_keras_model`` accepts

* our ``KerasClassifier``/``KerasRegressor`` and ``from_keras`` estimators,
* plain scikeras wrappers,
* ``keras.wrappers.SKLearnClassifier``/``SKLearnRegressor``,
* a bare ``keras.Model``,
* a ``Pipeline`` whose last step is one of the above,

and returns a :class:`LocatedModel`: the Keras model, the preprocessing in front
of it, one batched forward pass, and the decoders that turn raw network output
into exactly what the estimator's ``predict``/``predict_proba``/
``decision_function`` would return. Nothing here imports TensorFlow unless a
Keras model is actually found.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._budget import MAX_ROWS_PER_CALL, rows_within_budget
from ._compat import keras_wrapper_decode, loaded_module, scikeras_model_input
from ._layout import ModelLayout
from ._names import check_unique_names, column_sources

__all__ = [
    "LocatedModel",
    "feature_names_of",
    "has_keras_model",
    "locate_keras_model",
    "model_input_dtype",
]

RESPONSE_METHODS = ("predict", "predict_proba", "decision_function")


@dataclass(frozen=True)
class LocatedModel:
    """A Keras model found inside an estimator, with everything around it.

    Attributes
    ----------
    estimator : object
        What the user passed.
    final : object or None
        The wrapper holding the model (last step of a Pipeline), or None for a
        bare ``keras.Model``.
    model : keras.Model
        The Keras model.
    kind : {"scikeras", "keras_wrapper", "keras_model"}
        Which family the wrapper belongs to.
    preprocessor : Pipeline or None
        The Pipeline steps before the wrapper, fitted.
    """

    estimator: Any
    final: Any
    model: Any
    kind: str
    preprocessor: Any = None

    # -- inputs ---------------------------------------------------------------
    @cached_property
    def layout(self) -> ModelLayout:
        """The model's inputs and outputs, and their flat view."""
        return ModelLayout.from_model(self.model)

    @property
    def n_model_features(self) -> int:
        """Columns of the flat model space: every number the network takes."""
        return self.layout.n_features

    @property
    def nd_shape(self) -> tuple[int, ...] | None:
        """The per-row shape of a single N-D input (a sequence), else None."""
        inputs = self.layout.inputs
        if len(inputs) == 1 and len(inputs[0].shape) > 1:
            return inputs[0].shape
        return None

    def to_model_input(self, X) -> np.ndarray:
        """Apply the preprocessing and the wrapper's own input handling.

        Returns the exact numbers the wrapper would hand to ``model.predict``,
        in the flat model space (n_samples, n_model_features): several
        inputs side by side, an N-D input flattened. Flat rows of an N-D
        model are accepted too (the engines permute them that way).
        """
        X = self._restore_shape(X)
        if self.preprocessor is not None:
            X = self.preprocessor.transform(X)
        if self.kind == "scikeras":
            return self.layout.flatten(scikeras_model_input(self.final, X))
        if self.kind == "keras_wrapper":
            return validate_data(self.final, X, reset=False)
        X = check_array(X, dtype=("float32", "float64"), allow_nd=True)
        if self.layout.flat and X.ndim == 2 and X.shape[1] != self.n_model_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the Keras model takes "
                f"{self.n_model_features}."
            )
        return self.layout.flatten(X)

    def _restore_shape(self, X):
        """Flat rows (n, prod(shape)) of an N-D model back to (n, *shape)."""
        shape = self.nd_shape
        if shape is None or np.ndim(X) != 2 or np.shape(X)[1] != self.n_model_features:
            return X
        return np.asarray(X).reshape(len(X), *shape)

    def model_feature_names(self, X=None) -> np.ndarray:
        """Names of the flat model columns (after preprocessing).

        Raises a ValueError when two of them are equal: each names a row of
        the result.
        """
        n_features = self.n_model_features
        sources = [f"model input {j}" for j in range(n_features)]
        mapped = getattr(self.final, "input_columns_", None)
        if self.preprocessor is not None:
            try:
                names = np.asarray(
                    [str(n) for n in self.preprocessor.get_feature_names_out()],
                    dtype=object,
                )
            except (AttributeError, ValueError, TypeError):
                names = _default_names(n_features)
        elif mapped is not None:  # from_keras(..., inputs=...): mapped columns
            by_input = [mapped[spec.name] for spec in self.layout.inputs]
            names = np.asarray([n for names in by_input for n in names], dtype=object)
        elif not self.layout.flat:
            names = self.layout.default_names()
        else:
            names = feature_names_of(self.final, X, n_features)
            sources = column_sources(X, n_features)
        check_unique_names(names, sources, what="feature name")
        return names

    def scaling_layers(self) -> list[tuple[str, str]]:
        """(name, type) of the model's own input-scaling layers
        (``Normalization``, ``Rescaling``), nested models included."""
        import keras

        kinds = (keras.layers.Normalization, keras.layers.Rescaling)
        return [
            (layer.name, type(layer).__name__)
            for layer in _all_layers(self.model)
            if isinstance(layer, kinds)
        ]

    # -- the forward pass -----------------------------------------------------
    @cached_property
    def bytes_per_row(self) -> int:
        """Memory one row costs in a forward pass: its input and every layer's
        output, as float32 (a gradient pass holds about twice as much)."""
        # The walk over the layers costs a few ms, every call of every method:
        # remembered per model (its architecture does not change).
        values = _VALUES_PER_ROW.get(self.model)
        if values is None:
            values = _VALUES_PER_ROW[self.model] = _values_per_row(self.model)
        return 4 * values

    @cached_property
    def rows_per_call(self) -> int:
        """Default rows per forward pass: what fits the memory budget."""
        return rows_within_budget(self.bytes_per_row, max_rows=MAX_ROWS_PER_CALL)

    def forward(self, X_model, batch_size: int | None = None) -> np.ndarray:
        """Raw network output for model-ready rows, in large batches.

        ``batch_size`` rows per call of the network; by default as many as
        the memory budget allows (see ``_budget``). One compiled function per
        model (no retracing between calls of different lengths) and no
        progress output.
        """
        X_model = np.asarray(X_model)
        rows = batch_size or self.rows_per_call
        from ._forward import forward_function

        fn = forward_function(self.model, self.layout)
        outputs = [
            fn(self.layout.to_network(X_model[start : start + rows]))
            for start in range(0, len(X_model), rows)
        ]
        if not outputs:
            if len(self.layout.outputs) > 1:
                return np.empty((0, self.layout.n_outputs), dtype=np.float32)
            return np.empty((0, *self.model.outputs[0].shape[1:]), dtype=np.float32)
        return np.concatenate(outputs, axis=0)

    def raw_predict(self, X, batch_size: int | None = None) -> np.ndarray:
        """``forward(to_model_input(X))``."""
        return self.forward(self.to_model_input(X), batch_size=batch_size)

    # -- outputs ----------------------------------------------------------------
    @property
    def response_methods(self) -> tuple[str, ...]:
        """The prediction methods the user's estimator offers."""
        if self.kind == "keras_model":
            return ("predict",)
        return tuple(m for m in RESPONSE_METHODS if hasattr(self.estimator, m))

    def decode(self, raw: np.ndarray, method: str = "predict") -> np.ndarray:
        """Turn raw output into what ``estimator.<method>(X)`` returns."""
        if method not in self.response_methods:
            raise AttributeError(f"{type(self.estimator).__name__} has no {method}.")
        if self.kind == "scikeras":
            encoder = self.final.target_encoder_
            if method == "predict_proba":
                proba = encoder.inverse_transform(raw, return_proba=True)
                return np.reshape(proba, (len(raw), -1))
            return encoder.inverse_transform(raw)
        if self.kind == "keras_wrapper":
            if method == "decision_function":
                return raw
            return keras_wrapper_decode(self.final, raw)
        return raw[:, 0] if raw.ndim == 2 and raw.shape[1] == 1 else raw


def model_input_dtype(model) -> np.dtype:
    """The NumPy dtype of a Keras model's (first) input: what rows are cast to."""
    import keras

    dtype = getattr(model.inputs[0], "dtype", None) or keras.backend.floatx()
    return np.dtype(str(dtype))


def has_keras_model(estimator) -> bool:
    """True when ``locate_keras_model`` would find a Keras model in ``estimator``."""
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    return _kind_of(final) is not None


def locate_keras_model(estimator) -> LocatedModel:
    """Find the Keras model inside ``estimator``.

    Raises
    ------
    TypeError
        No Keras model inside; the message names what was found.
    NotFittedError
        The estimator is not fitted.
    ValueError
        The model is not built, or a bare ``keras.Model`` has several inputs
        (wrap it with ``from_keras(..., inputs=...)`` to map X's columns).
    """
    preprocessor = None
    final = estimator
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        if len(estimator.steps) > 1:
            preprocessor = estimator[:-1]
    kind = _kind_of(final)
    if kind is None:
        where = " as the last step of the Pipeline" if final is not estimator else ""
        raise TypeError(
            "Expected a Keras model: a skimportance/scikeras KerasClassifier or "
            "KerasRegressor, keras.wrappers.SKLearnClassifier/SKLearnRegressor, "
            "a from_keras() estimator, a keras.Model or a Pipeline ending in one; "
            f"found {type(final).__name__}{where}."
        )
    if kind == "keras_model":
        model, final = final, None
        if preprocessor is not None:
            check_is_fitted(preprocessor)
    else:
        check_is_fitted(estimator)
        model = final.model_
    _check_built(model, bare=kind == "keras_model")
    return LocatedModel(estimator, final, model, kind, preprocessor)


def feature_names_of(estimator, X, n_features: int) -> np.ndarray:
    """Column names: X's DataFrame columns, else ``feature_names_in_``, else x0.."""
    columns = getattr(X, "columns", None)
    if columns is not None:
        return np.asarray([str(c) for c in columns], dtype=object)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) == n_features:
        return np.asarray(names, dtype=object)
    return _default_names(n_features)


def _default_names(n_features: int) -> np.ndarray:
    return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)


def _kind_of(obj) -> str | None:
    scikeras = loaded_module("scikeras.wrappers")
    if scikeras is not None and isinstance(obj, scikeras.BaseWrapper):
        return "scikeras"
    keras = loaded_module("keras")
    if keras is None:
        return None
    wrappers = keras.wrappers
    if isinstance(obj, (wrappers.SKLearnClassifier, wrappers.SKLearnRegressor)):
        return "keras_wrapper"
    if isinstance(obj, keras.Model):
        return "keras_model"
    return None


def _all_layers(model) -> list:
    """Every layer of ``model``, nested models flattened, in order."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
        else:
            found.append(layer)
    return found


_VALUES_PER_ROW: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _values_per_row(model) -> int:
    """Numbers one row produces through ``model``: inputs and layer outputs."""
    import keras

    total = sum(_width(tensor) for tensor in model.inputs)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _values_per_row(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer used at several places
            continue
        total += sum(_width(tensor) for tensor in keras.tree.flatten(outputs))
    return total


def _width(tensor) -> int:
    """Values per row of a symbolic tensor (unknown dimensions count as 1)."""
    return math.prod(d or 1 for d in tuple(tensor.shape)[1:])


def _check_built(model, bare: bool) -> None:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "The Keras model is not built: give it an Input layer or call it on "
            "data once."
        )
    if bare and len(inputs) > 1:
        names = [str(tensor.name) for tensor in inputs]
        raise ValueError(
            f"This Keras model has several inputs {names}, which one table X "
            "cannot feed as it is: wrap it with skimportance.from_keras(model, "
            "task=..., inputs={input name: X's columns}) to map X's columns to "
            "them."
        )
