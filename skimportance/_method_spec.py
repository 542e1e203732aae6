"""What a registered importance method is: :class:`MethodSpec`, and a call of
one with its checked arguments: :class:`MethodCall`.

The table of methods itself, and the resolution of ``method=`` names into
calls, live in ``_methods``; this module knows no method by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._model import has_keras_model, locate_keras_model

if TYPE_CHECKING:
    from ._result import ImportanceResult

__all__ = ["RUN_PARAMETERS", "DATA_PARAMETERS", "MethodSpec", "MethodCall"]

#: Parameters every adapter that runs a method accepts by name. Each is passed
#: to the methods that take it; ``random_state`` is ignored by deterministic
#: methods (nothing to seed), any other one given to a method that does not
#: take it is an error.
RUN_PARAMETERS = ("random_state", "n_repeats", "scoring", "n_jobs", "batch_size")

#: Parameters the adapters pass themselves, never through ``method_params``.
DATA_PARAMETERS = frozenset({"estimator", "X", "y"})


@dataclass(frozen=True)
class MethodSpec:
    """One importance method: its function and what adapters need to know.

    Attributes
    ----------
    name : str
        The ``method=`` name every adapter accepts.
    function : callable
        The public function computing it, called as
        ``function(estimator, X=..., y=..., **fixed, **params)``.
    fixed : mapping
        Keyword arguments that select this method within its function
        (``{"method": "olden"}``); a user cannot override them.
    unused : tuple of str
        Parameters of ``function`` that this method ignores (a profile takes
        no ``probe``); refused like unknown ones.
    needs_y : bool
        Scores predictions against targets.
    signed : bool
        Its importances carry a direction (negative = pushes the output
        down), so selection ranks by magnitude, the Display orders it by
        magnitude and the command line says so. Unsigned methods that can go
        negative (permutation: worse than noise) are clipped at zero instead.
    reads : {"predictions", "weights", "gradients"}
        What of the model it uses: any model gives predictions; weights need
        a chain of Dense layers; gradients need a differentiable path.
    columns : tuple of str
        Which columns it can report: ``"raw"`` (the estimator's input columns,
        before any preprocessing; the default of every method) and/or
        ``"model"`` (those the Keras model sees, chosen with
        ``columns="model"``). ``resolve_methods`` refuses any other.
    keras_only : bool
        Needs a Keras model inside the estimator; the adapters that fit
        refuse an estimator without one before training
        (:meth:`MethodCall.check_estimator`).
    fit_data : str or None
        The keyword of ``function`` that takes training rows: those its own
        models are fitted on (conditional importance's ``X_fit``), or the
        background its reference point is taken from (occlusion's and
        integrated gradients' ``background``). Adapters that hold
        training data pass it through :meth:`MethodCall.with_training_data`:
        ``cross_validate_importance`` the training fold,
        ``ImportanceEstimator`` the rows it fitted the estimator on (SAGE
        takes them as its background too).
    row_tests : bool
        Its ``loss`` yields per-row loss differences (p-values); False where
        the loss scores something else (SAGE's averaged predictions).
    summary : str
        One line for tables and help texts (``skimportance --help``).
    """

    name: str
    function: Callable[..., Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    unused: tuple[str, ...] = ()
    needs_y: bool = False
    signed: bool = False
    reads: str = "predictions"
    columns: tuple[str, ...] = ("raw", "model")
    keras_only: bool = True
    fit_data: str | None = None
    row_tests: bool = True
    summary: str = ""

    @property
    def parameters(self) -> tuple[str, ...]:
        """The keyword arguments a user may give this method."""
        names = inspect.signature(self.function).parameters
        excluded = DATA_PARAMETERS | set(self.fixed) | set(self.unused)
        return tuple(name for name in names if name not in excluded)

    @property
    def needs_X(self) -> bool:
        """X is a required argument of the function."""
        parameter = inspect.signature(self.function).parameters.get("X")
        return parameter is not None and parameter.default is inspect.Parameter.empty

    @property
    def seeded(self) -> bool:
        """Takes a ``random_state`` (its numbers depend on random draws)."""
        return "random_state" in self.parameters

    @property
    def tested(self) -> bool:
        """Records per-row loss differences, so its results have p-values."""
        return self.row_tests and "loss" in self.parameters

    def selection_scores(self, importances_mean):
        """Non-negative scores for feature selection from mean importances."""
        import numpy as np

        if self.signed:
            return np.abs(importances_mean)
        return np.clip(importances_mean, 0.0, None)


@dataclass(frozen=True)
class MethodCall:
    """A method with its checked keyword arguments, ready to run.

    Calling it returns ``dict[str, ImportanceResult]``: one entry named after
    the method, or one per metric (``"permutation (r2)"``) when several
    scoring metrics were asked for. Adapters that need exactly one result use
    :meth:`single`.
    """

    spec: MethodSpec
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def seeded_with(self, random_state) -> MethodCall:
        """This call with ``random_state`` if the method is seeded and the
        user did not fix one; unchanged otherwise."""
        if not self.spec.seeded or self.params.get("random_state") is not None:
            return self
        return replace(self, params={**self.params, "random_state": random_state})

    @property
    def fits_on_training_data(self) -> bool:
        """The method fits models of its own and the user left their rows to
        the adapter (see ``MethodSpec.fit_data``)."""
        key = self.spec.fit_data
        return key is not None and self.params.get(key) is None

    def with_training_data(self, X_train) -> MethodCall:
        """This call with its models fitted on ``X_train``, if it fits any
        and the user did not choose their rows; unchanged otherwise."""
        if not self.fits_on_training_data:
            return self
        return replace(self, params={**self.params, self.spec.fit_data: X_train})

    def check_estimator(self, estimator) -> None:
        """Refuse an estimator this method cannot read, before any training:
        a ``keras_only`` method needs a Keras model inside it. The TypeError
        is the one the method would raise, naming what was found instead."""
        if self.spec.keras_only and not has_keras_model(estimator):
            locate_keras_model(estimator)  # raises: no Keras model inside

    def __call__(self, estimator, X=None, y=None) -> dict[str, ImportanceResult]:
        spec = self.spec
        if spec.needs_y and y is None:
            raise ValueError(f"Method {spec.name!r} needs y, the true targets.")
        if spec.needs_X and X is None:
            raise ValueError(f"Method {spec.name!r} needs X, the rows to explain.")
        data = {"X": X, "y": y}
        arguments = inspect.signature(spec.function).parameters
        data = {key: value for key, value in data.items() if key in arguments}
        result = spec.function(estimator, **data, **spec.fixed, **self.params)
        if isinstance(result, Mapping):  # several scoring metrics
            return {f"{spec.name} ({key})": r for key, r in result.items()}
        return {spec.name: result}

    def single(self, estimator, X=None, y=None, *, who: str) -> ImportanceResult:
        """Run and return the one result, or say why ``who`` needs only one."""
        results = self(estimator, X, y)
        if len(results) != 1:
            raise ValueError(
                f"{who} needs a single result; method {self.name!r} gave "
                f"{len(results)} ({', '.join(results)}). Pass a single metric in "
                "scoring, and for a model with several output heads choose one "
                "with output=."
            )
        return next(iter(results.values()))
