"""The one registry of importance methods, and the one way adapters call them.

Every scikit-learn-shaped adapter (``ImportanceEstimator``,
``ImportanceSelector``, ``cross_validate_importance``, ``importance_scorer``,
``ImportanceDisplay.from_estimator`` and the command line) accepts
``method="<name>"``, ``method_params`` and the same run parameters
(``RUN_PARAMETERS``), and turns them into calls through
:func:`resolve_methods` alone. None of them knows a method by its name: what
they need to know (does it need y, is it seeded, is it signed) is declared by
the method's :class:`MethodSpec`.

Adding a method means one ``MethodSpec`` in ``REGISTRY``, its own module and
its tests; no adapter changes. No method name is written outside this module
and the method's own: adapters take their defaults from ``DEFAULT_METHOD``,
``EXPLAIN_METHODS`` and ``DEMO_METHODS`` below (tests/test_registry_speaks.py
checks it). What a spec declares is defined in ``_method_spec``. The method
modules are imported statically here, and none of them imports TensorFlow at
import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sklearn.metrics import check_scoring

from ._method_spec import DATA_PARAMETERS, RUN_PARAMETERS, MethodCall, MethodSpec
from ._validation import check_positive_int
from .conditional import conditional_importance
from .gradient import gradient_importance
from .permutation import permutation_importance
from .probe import probe_importance
from .sage import sage_importance
from .weights import weight_importance

__all__ = [
    "DEFAULT_METHOD",
    "DEMO_METHODS",
    "EXPLAIN_METHODS",
    "METHOD_NAMES",
    "REGISTRY",
    "RUN_PARAMETERS",
    "MethodCall",
    "check_scoring_argument",
    "MethodSpec",
    "get_spec",
    "is_signed",
    "resolve_methods",
]

REGISTRY: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "permutation",
            permutation_importance,
            needs_y=True,
            columns=("raw",),
            keras_only=False,
            summary="drop in score when the column is shuffled",
        ),
        MethodSpec(
            "conditional",
            conditional_importance,
            needs_y=True,
            columns=("raw",),
            keras_only=False,
            fit_data="X_fit",
            summary="drop in score when the column is drawn given the others",
        ),
        MethodSpec(
            "sage",
            sage_importance,
            needs_y=True,
            columns=("raw",),
            keras_only=False,
            fit_data="background",
            row_tests=False,
            summary="Shapley share of the explained loss (SAGE, marginal imputation)",
        ),
        MethodSpec(
            "first_layer",
            weight_importance,
            {"method": "first_layer"},
            reads="weights",
            summary="sum of |first-layer weights| (naive; for comparison)",
        ),
        MethodSpec(
            "garson",
            weight_importance,
            {"method": "garson"},
            reads="weights",
            summary="Garson's share of |connection weights|",
        ),
        MethodSpec(
            "olden",
            weight_importance,
            {"method": "olden"},
            signed=True,
            reads="weights",
            summary="Olden's signed product of connection weights",
        ),
        MethodSpec(
            "probe",
            probe_importance,
            {"kind": "delta"},
            unused=("grid_resolution",),
            signed=True,
            summary="change of the output when one input moves from a baseline",
        ),
        MethodSpec(
            "profile",
            probe_importance,
            {"kind": "profile"},
            unused=("probe",),
            summary="range of the output along one input's quantiles (Lek)",
        ),
        MethodSpec(
            "occlusion",
            probe_importance,
            {"kind": "occlusion"},
            unused=("probe", "grid_resolution"),
            fit_data="background",
            summary="mean |change| of the output when one input is set to a baseline",
        ),
        MethodSpec(
            "saliency",
            gradient_importance,
            {"method": "saliency"},
            unused=("baseline", "background", "n_steps"),
            reads="gradients",
            summary="mean |gradient| of the output",
        ),
        MethodSpec(
            "input_x_gradient",
            gradient_importance,
            {"method": "input_x_gradient"},
            unused=("baseline", "background", "n_steps"),
            reads="gradients",
            summary="mean |input x gradient|",
        ),
        MethodSpec(
            "integrated_gradients",
            gradient_importance,
            {"method": "integrated_gradients"},
            reads="gradients",
            fit_data="background",
            summary="mean |integrated gradients| from a baseline",
        ),
    )
}

METHOD_NAMES: tuple[str, ...] = tuple(REGISTRY)

#: The method an adapter runs when none is named: it works for any fitted
#: estimator, measures what the held-out score depends on and has p-values.
DEFAULT_METHOD = "permutation"

#: What ``skimportance explain`` compares unless ``--methods`` says otherwise:
#: one method per family that reports on a CSV's raw columns quickly.
EXPLAIN_METHODS: tuple[str, ...] = ("permutation", "olden", "probe", "saliency")

#: What ``skimportance demo`` compares: the families side by side, with the
#: naive first-layer sum for contrast.
DEMO_METHODS: tuple[str, ...] = (
    "permutation",
    "olden",
    "garson",
    "first_layer",
    "probe",
    "saliency",
    "integrated_gradients",
)


def is_signed(method) -> bool:
    """Results named ``method`` carry a direction, so they rank by magnitude;
    False for a name outside the registry."""
    spec = REGISTRY.get(method) if isinstance(method, str) else None
    return spec is not None and spec.signed


def get_spec(method) -> MethodSpec:
    """The registry entry of ``method``, else a ValueError listing the names."""
    if not isinstance(method, str) or method not in REGISTRY:
        raise ValueError(
            f"Unknown importance method {method!r}; choose one of "
            f"{', '.join(REGISTRY)}."
        )
    return REGISTRY[method]


def resolve_methods(
    method: str | Iterable[str],
    method_params: Mapping | None = None,
    *,
    run_params: Mapping[str, Any] | None = None,
    adapter_uses: Iterable[str] = (),
    single_metric: str | None = None,
) -> list[MethodCall]:
    """Check ``method``/``method_params``/run parameters and build the calls.

    Every adapter calls this before fitting or predicting anything, so that a
    misspelt name or keyword fails at once.

    Parameters
    ----------
    method : str or iterable of str
        One registered name, or several distinct ones.
    method_params : dict, default=None
        Keyword arguments for the method; with several methods, a dict
        method name -> keyword arguments.
    run_params : dict, default=None
        The adapter's values of ``RUN_PARAMETERS``; None means "the method's
        default". Each is passed to every method that takes it.
    adapter_uses : iterable of str
        Run parameters the adapter uses itself (``scoring`` for the fold
        score of cross-validation), so no method has to take them.
    single_metric : str, default=None
        The adapter's name when it needs exactly one result per method (a
        selector, a scorer, a fold score): then ``scoring`` must name one
        metric.

    Returns
    -------
    list of MethodCall
        One per method, in order.

    Raises
    ------
    ValueError
        An unknown or repeated method, a keyword the method does not take
        (naming the method and what it takes), a run parameter none of the
        methods takes, a keyword given both ways with different values, or a
        ``scoring`` scikit-learn refuses (an unknown name, a metric function
        instead of a scorer) or that names several metrics where
        ``single_metric`` asks for one. So a bad scorer fails here, before
        any fit, not as NaN scores after every candidate has trained.
    """
    several = not isinstance(method, str)
    names = list(method) if several else [method]
    specs = [get_spec(name) for name in names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"method must list distinct method names, got {method!r}.")
    params_of = _params_by_method(names, method_params, several)
    for spec in specs:
        _check_accepted(spec, params_of[spec.name], "method_params")

    run_params = _checked_run_params(run_params or {})
    if "scoring" in run_params:
        check_scoring_argument(run_params["scoring"], single_metric=single_metric)
    for spec in specs:  # a scoring given in method_params is checked the same way
        scoring = params_of[spec.name].get("scoring")
        if scoring is not None:
            check_scoring_argument(scoring, single_metric=single_metric)
    adapter_uses = set(adapter_uses)
    for key, value in run_params.items():
        takers = [spec for spec in specs if key in spec.parameters]
        if not takers and key != "random_state" and key not in adapter_uses:
            what = " or ".join(repr(name) for name in names)
            accepted = sorted({p for spec in specs for p in spec.parameters})
            raise ValueError(
                f"{key} is not taken by method {what}; it takes {accepted}."
            )
        for spec in takers:
            params = params_of[spec.name]
            if key in params and not _same(params[key], value):
                if key in adapter_uses:
                    continue  # method_params refine what the adapter uses
                raise ValueError(
                    f"{key} is given twice, as {value!r} and in method_params "
                    f"as {params[key]!r}; give it once."
                )
            params.setdefault(key, value)
    return [MethodCall(spec, params_of[spec.name]) for spec in specs]


def check_scoring_argument(scoring, *, single_metric: str | None = None) -> None:
    """Check ``scoring`` the way scikit-learn will use it, before any fit.

    scikit-learn's ``check_scoring`` refuses unknown names, metric functions
    passed as scorers and bad multi-metric lists or dicts. With
    ``single_metric`` (the adapter's name), several metrics are refused too.
    A callable is only called later; what it returns is checked then
    (``_engines.scoring.call_scorer``).
    """
    if scoring is None:
        return
    check_scoring(None, scoring=scoring)
    if single_metric is None or not isinstance(scoring, (list, tuple, set, dict)):
        return
    if len(scoring) != 1:
        metrics = ", ".join(repr(name) for name in scoring)
        raise ValueError(
            f"{single_metric} needs a single metric, but scoring names "
            f"{len(scoring)} ({metrics}). Pass one of them, e.g. "
            f"scoring={next(iter(scoring))!r}."
        )


def _checked_run_params(run_params: Mapping[str, Any]) -> dict[str, Any]:
    """The run parameters that are set, with counts checked now, not mid-run."""
    unknown = sorted(set(run_params) - set(RUN_PARAMETERS))
    if unknown:  # a programming error in an adapter
        raise TypeError(f"{unknown} are not run parameters {RUN_PARAMETERS}.")
    checked = {key: value for key, value in run_params.items() if value is not None}
    for key in ("n_repeats", "batch_size"):
        if key in checked:
            checked[key] = check_positive_int(key, checked[key])
    return checked


def _params_by_method(names, method_params, several: bool) -> dict[str, dict]:
    if method_params is not None and not isinstance(method_params, Mapping):
        raise TypeError(
            f"method_params must be a dict, got {type(method_params).__name__}."
        )
    if not several:
        return {names[0]: dict(method_params or {})}
    method_params = dict(method_params or {})
    stray = sorted(map(str, set(method_params) - set(names)))
    if stray:
        raise ValueError(
            "With several methods, method_params maps method names to keyword "
            f"arguments; {stray} are not among the methods {names}."
        )
    return {name: dict(method_params.get(name) or {}) for name in names}


def _check_accepted(spec: MethodSpec, params: Mapping, where: str) -> None:
    accepted = set(spec.parameters)
    reserved = sorted(set(params) & (DATA_PARAMETERS | {"method"}))
    if reserved:
        raise ValueError(
            f"{where} for method {spec.name!r} must not contain {reserved}: "
            "the adapter passes them itself."
        )
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"{where} {unknown} are not accepted by method {spec.name!r}; "
            f"it takes {sorted(accepted)}."
        )
    columns = params.get("columns")
    if columns is not None and (
        not isinstance(columns, str) or columns not in spec.columns
    ):
        raise ValueError(
            f"Method {spec.name!r} reports on columns {' or '.join(spec.columns)}; "
            f"got columns={columns!r}."
        )


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays, objects without a truth value
        return a is b
