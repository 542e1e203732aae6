"""One name -> one importance function call.

Every sklearn-shaped adapter (ImportanceEstimator, ImportanceSelector,
cross-validated importance, the scorer, the Display, the CLI) accepts
``method="<name>"``; this module is the single place that turns such a name
into a call of the method family's public function.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "METHOD_NAMES",
    "check_method",
    "check_method_params",
    "compute_importance",
    "needs_y",
]

# name -> (module, function, fixed keyword arguments)
_METHODS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "permutation": ("permutation", "permutation_importance", {}),
    "first_layer": ("weights", "weight_importance", {"method": "first_layer"}),
    "garson": ("weights", "weight_importance", {"method": "garson"}),
    "olden": ("weights", "weight_importance", {"method": "olden"}),
    "probe": ("probe", "probe_importance", {}),
    "profile": ("probe", "probe_importance", {"kind": "profile"}),
    "saliency": ("gradient", "gradient_importance", {"method": "saliency"}),
    "input_x_gradient": (
        "gradient",
        "gradient_importance",
        {"method": "input_x_gradient"},
    ),
    "integrated_gradients": (
        "gradient",
        "gradient_importance",
        {"method": "integrated_gradients"},
    ),
}

METHOD_NAMES: tuple[str, ...] = tuple(_METHODS)


def check_method(method: str) -> str:
    """Return ``method`` if known, else raise a ValueError listing the names."""
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(
            f"Unknown importance method {method!r}; choose one of "
            f"{', '.join(METHOD_NAMES)}."
        )
    return method


def check_method_params(method: str, params: dict | None) -> dict:
    """Return ``params`` as a dict if the method's function accepts every key.

    Adapters call this before fitting anything, so that a misspelt keyword
    fails at once instead of after training.
    """
    import inspect

    module_name, function_name, fixed = _METHODS[check_method(method)]
    params = dict(params or {})
    function = getattr(import_module(f"skimportance.{module_name}"), function_name)
    accepted = set(inspect.signature(function).parameters) - {"estimator", "X", "y"}
    accepted -= set(fixed)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"method_params {unknown} are not accepted by method {method!r}; "
            f"it takes {sorted(accepted)}."
        )
    return params


def needs_y(method: str) -> bool:
    """Whether the method scores predictions against targets."""
    return check_method(method) == "permutation"


def compute_importance(estimator, X=None, y=None, *, method="permutation", **params):
    """Run importance method ``method`` on a fitted estimator.

    ``X``/``y`` are passed to the methods that use them: permutation needs
    both, gradients need X, probes use X for data-driven baselines, weight
    methods read only the weights (X, if the function accepts it, is used to
    check the input scale).
    """
    module_name, function_name, fixed = _METHODS[check_method(method)]
    function = getattr(import_module(f"skimportance.{module_name}"), function_name)
    kwargs = {**fixed, **params}
    if module_name == "permutation":
        if y is None:
            raise ValueError("Permutation importance needs y, the true targets.")
        return function(estimator, X, y, **kwargs)
    if module_name == "weights":
        if X is not None and _accepts(function, "X"):
            kwargs.setdefault("X", X)
        return function(estimator, **kwargs)
    if module_name == "gradient" and X is None:
        raise ValueError(f"Method {method!r} needs X, the rows to explain.")
    return function(estimator, X, **kwargs)


def _accepts(function, name: str) -> bool:
    import inspect

    return name in inspect.signature(function).parameters
