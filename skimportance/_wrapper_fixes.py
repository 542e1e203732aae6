"""What both Keras wrappers add to scikeras: the mixin ``SklearnFixes``.

``wrappers.KerasClassifier`` and ``wrappers.KerasRegressor`` put it left of
their scikeras base class; the module docstring of ``wrappers`` lists the
defects it mends, and ``_compat`` says why each one exists and when it can go.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from ._compat import (
    fix_estimator_tags,
    keras_seeds_from,
    no_leaked_tf_state,
    not_build_parameters,
)
from ._inputs import InputSplitter
from ._model import model_input_dtype
from ._validation import check_values_survive_cast
from ._wrapper_checks import dtype_of, relative_weights

__all__ = ["WRAPPER_PARAMS", "SklearnFixes", "check_dense_2d"]


#: Our own wrapper parameters, which are not model-building parameters.
WRAPPER_PARAMS = ("inputs", "feature_axis", "nd_feature_names")


class SklearnFixes:
    """Fixes shared by both wrappers. Must stay LEFT of the scikeras class."""

    _estimator_type_name: str

    # -- parameters: scikeras's **kwargs live apart from the attributes ----------
    # scikeras stores keyword parameters (model__hidden, optimizer__...) as
    # instance attributes, which scikit-learn's check_no_attributes_set_in_init
    # refuses: __init__ may only set the parameters it names. They live in a
    # private dict instead, and read, set and list like any parameter.

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # scikeras lists the keywords its signature does not name in _user_params.
        names = vars(self).get("_user_params", ())
        vars(self)["_extra_params"] = {name: vars(self).pop(name) for name in names}

    def __getattr__(self, name):
        extra = vars(self).get("_extra_params")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def __setattr__(self, name, value):
        extra = vars(self).get("_extra_params")
        if extra is not None and (name in extra or self._is_routed(name)):
            extra[name] = value
        else:
            super().__setattr__(name, value)

    def _is_routed(self, name: str) -> bool:
        prefix, sep, _ = name.partition("__")
        return bool(sep) and prefix in self._routing_prefixes

    def _get_param_names(self):
        return [*super()._get_param_names(), *vars(self).get("_extra_params", {})]

    def _build_keras_model(self):
        # scikeras's own seed (an int, or one drawn from a RandomState).
        seed = getattr(self, "_random_state", None)
        with not_build_parameters(self, WRAPPER_PARAMS), keras_seeds_from(seed):
            return super()._build_keras_model()

    # -- tags and representation ---------------------------------------------------
    def __sklearn_tags__(self):
        return fix_estimator_tags(
            super().__sklearn_tags__(),
            self._estimator_type_name,
            seeded=getattr(self, "random_state", None) is not None,
        )

    # scikeras prints every parameter, one per line; scikit-learn's repr shows
    # only the changed ones and keeps test ids and error messages readable.
    __repr__ = BaseEstimator.__repr__

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    # -- data ------------------------------------------------------------------------
    def _validate_data(self, X=None, y=None, reset=False, y_numeric=False):
        if X is not None:
            check_dense_2d(X)
            # Records/checks n_features_in_ and feature_names_in_ the sklearn
            # way; scikeras then converts and checks values (NaN, strings).
            validate_data(self, X, reset=reset, skip_check_array=True)
            if not reset:
                X = self._as_fitted_dtype(X)
        # What reaches the network is cast to the dtype it computes in; check
        # the values after that cast, not before.
        if y is not None and self._estimator_type_name == "regressor":
            check_values_survive_cast(y, self._target_dtype(), "y")
        X, y = super()._validate_data(X=X, y=y, reset=reset, y_numeric=y_numeric)
        if X is not None:
            check_values_survive_cast(X, self._network_dtype(), "X")
        return X, y

    def _as_fitted_dtype(self, X):
        """X in the dtype seen at fit, when it is any other real dtype.

        scikeras refuses every dtype that does not cast safely to the fitted
        one (float64 X for a model fitted on float32 X); scikit-learn's
        estimators take any real dtype. The values are checked to survive the
        cast; anything else (strings, NaN) is left to scikeras's own checks.
        """
        fitted = getattr(self, "X_dtype_", None)
        dtype = dtype_of(X)
        if (
            fitted is None
            or dtype is None
            or dtype.kind not in "biuf"
            or np.can_cast(dtype, fitted)
        ):
            return X
        values = np.asarray(X)
        if not np.isfinite(values).all():
            return X
        check_values_survive_cast(
            values, fitted, "X", into=f"the dtype this {type(self).__name__} was fit on"
        )
        return values.astype(fitted)

    def _network_dtype(self) -> np.dtype:
        model = getattr(self, "model_", None)
        if model is not None and len(getattr(model, "inputs", None) or ()) == 1:
            return model_input_dtype(model)
        import keras

        return np.dtype(keras.backend.floatx())

    def _target_dtype(self) -> np.dtype:
        """The dtype the loss compares y in: the (one) output's, which need not
        be the input's (integer codes in, real numbers out)."""
        import keras

        outputs = getattr(getattr(self, "model_", None), "outputs", None) or ()
        dtype = getattr(outputs[0], "dtype", None) if len(outputs) == 1 else None
        return np.dtype(str(dtype or keras.backend.floatx()))

    # -- training --------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, **kwargs):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        self._check_target(y, sample_weight)
        if sample_weight is not None:
            sample_weight = relative_weights(sample_weight)
        with no_leaked_tf_state():
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def partial_fit(self, X, y, *args, **kwargs):
        with no_leaked_tf_state():
            return super().partial_fit(X, y, *args, **kwargs)

    def initialize(self, X, y=None):
        with no_leaked_tf_state():
            return super().initialize(X, y)

    # -- several inputs: one table in, a dict of arrays to the model ------------
    @property
    def feature_encoder(self):
        """Splits X's columns into the model's named inputs when ``inputs`` is
        set (a dict {model input name: X's columns}); else scikeras's own."""
        inputs = getattr(self, "inputs", None)
        if inputs is None:
            return super().feature_encoder
        return InputSplitter(inputs, getattr(self, "feature_names_in_", None))

    @property
    def input_columns_(self) -> dict | None:
        """Model input name -> the names of X's columns feeding it (with
        ``inputs``), else None."""
        encoder = getattr(self, "feature_encoder_", None)
        positions = getattr(encoder, "positions_", None)
        if positions is None:
            return None
        names = getattr(self, "feature_names_in_", None)
        return {
            name: [str(names[j]) if names is not None else f"x{j}" for j in columns]
            for name, columns in positions.items()
        }

    def _check_target(self, y, sample_weight=None) -> None:
        """Refuse a target that leaves nothing to learn (see the subclasses)."""


def check_dense_2d(X) -> None:
    """Reject what scikeras would pass on to TensorFlow's cryptic errors."""
    if sp.issparse(X):
        raise TypeError(
            "Sparse input is not supported: TensorFlow fails on several sparse "
            "formats. Convert it with X.toarray()."
        )
    ndim = getattr(X, "ndim", None)
    if ndim is None:  # lists and other array-likes
        ndim = np.asarray(X, dtype=object).ndim
    if ndim == 1:
        raise ValueError(
            "Expected a 2-dimensional X, got a 1-dimensional one. Reshape your data "
            "with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )
