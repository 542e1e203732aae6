"""Probe importance: move one input at a time away from a baseline point.

The classic recipe (predict on all-zeros, then on zeros with one input set to
1, and compare) and its relatives:

* ``kind="delta"``: ``f(baseline with x_i := probe_i) - f(baseline)``;
* ``kind="profile"``: Lek's profile, sweeping ``x_i`` over the quantiles of X
  with the other inputs held at the baseline, scored by the range of the
  response;
* ``kind="occlusion"``: for every row of X, how much the response moves when
  ``x_i`` is replaced by the baseline value.

With X, the baseline is the data's centre by default (each column's mean, or
its most frequent value for a categorical column), not the all-zeros input,
which is meaningless when the scaling happens inside the model. The probes act
on the user's raw columns: a one-hot encoded column is probed by setting its
raw category, level by level, and the estimator's own preprocessing does the
encoding. Where the preprocessing keeps columns one-to-one (a scaler), the
same probes are computed in the space the Keras model sees, so numeric
baselines and probes (``baseline="zeros", probe=1.0``) keep their classic
meaning there. Probing one input at a time around one point says nothing
about interactions or about the rest of the input space; the validity
benchmark shows what that costs.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from ._background import check_background
from ._budget import check_within_budget
from ._columns import check_columns, column_map
from ._model import locate_keras_model
from ._outputs import one_result_per_head, resolve_outputs
from ._probing import (
    column_of,
    largest_change,
    occlusion_changes,
    probe_responses,
    profile_curves,
    raw_curves,
    raw_sweep,
)
from ._rawspace import RawSpace
from ._result import ImportanceResult
from ._validation import (
    check_batch_size,
    check_choice,
    check_model_input,
    check_positive_int,
    resolve_point,
    scale_problem,
    zero_baseline_problem,
)

__all__ = ["probe_importance"]

KINDS = ("delta", "profile", "occlusion")
DATA_BASELINES = ("mean", "median")


@one_result_per_head
def probe_importance(
    estimator,
    X=None,
    *,
    baseline=None,
    background=None,
    probe=None,
    kind: str = "delta",
    output=None,
    grid_resolution: int = 21,
    batch_size: int | None = None,
    columns: str = "raw",
) -> ImportanceResult:
    """Importance as the model's response to moving one input from a baseline.

    Parameters
    ----------
    estimator : estimator or keras.Model
        A fitted Keras wrapper, ``from_keras`` estimator, bare ``keras.Model``,
        or Pipeline ending in one.
    X : array-like of shape (n_samples, n_features), default=None
        Data, in the estimator's input space (before any preprocessing).
        Needed for the data-driven baselines, the ``"std"`` probe, and the
        ``"profile"`` and ``"occlusion"`` kinds.
    baseline : {"mean", "median", "zeros"}, float, array-like or None, \
default=None
        The reference point. None means ``"mean"`` when X is given, else
        ``"zeros"``. ``"mean"``/``"median"``: the centre of the data (the
        ``background``, or X for ``"delta"`` and ``"profile"``), each
        numeric column's mean or median and each categorical column's most
        frequent value, taken on the raw columns. ``"zeros"``, a number or one
        value per model input: a point in the space the Keras model sees
        (after preprocessing); with one-hot encoded raw columns such a point
        has no raw meaning, so use it with ``columns="model"``. A zero baseline
        in front of a model that scales its own inputs (a ``Normalization`` or
        ``Rescaling`` layer) is raw value 0, usually far from the data: that
        warns, naming the layer.
    background : array-like of shape (n_background, n_features), default=None
        The rows that stand for the data, typically the training rows, with
        X's columns: the data-driven baseline, the ``"std"`` probe and the
        profile's quantiles are taken on them. Required by
        ``kind="occlusion"`` with a data-driven baseline, whose rows X are
        explained one by one: their reference is never computed from
        themselves (for one row it would be the row itself, and every change
        0.0), so a row's changes are the same alone as in any batch.
        ``"delta"`` and ``"profile"`` explain no row: without a background
        they take their statistics from X, which then needs at least two
        rows.
    probe : float, "std", array-like or None, default=None
        ``kind="delta"`` only: the value each input is set to in turn. None
        means ``"std"`` with a data-driven baseline, else 1.0. ``"std"`` sets
        input i to ``baseline_i`` plus its standard deviation in X; a
        categorical raw column is set to each of its categories in turn and
        reports the largest change. A number sets every input to that value,
        an array gives one value per model input (model space).
    kind : {"delta", "profile", "occlusion"}, default="delta"
        ``"delta"``: ``f(baseline with x_i := probe_i) - f(baseline)``,
        signed. ``baseline="zeros", probe=1.0`` is exactly
        ``model.predict(one_hot_i) - model.predict(zeros)``.

        ``"profile"``: Lek's profile. Sweep ``x_i`` over ``grid_resolution``
        quantiles of X (from its minimum to its maximum; a categorical column
        over its categories) with the other inputs held at the baseline; the
        importance is the range (max - min) of the response along the sweep.
        The curves are kept.

        ``"occlusion"``: for every row x of X, ``f(x) - f(x with x_i :=
        baseline_i)``, the baseline being explicit or the ``background``'s
        centre; the importance is the mean absolute change, one draw per row.
    output : int, label or None, default=None
        Which response column to explain: class probabilities for a
        classifier (a single sigmoid unit ``p`` counts as ``[1 - p, p]``),
        else the units of the output layer. ``None``: the single column, the
        positive class of a binary classifier, or with several columns the
        mean absolute value over all of them (``details["per_output"]`` keeps
        each column's value).
    grid_resolution : int, default=21
        ``kind="profile"``: number of quantiles swept per numeric input.
        Checked against the memory budget before anything is built.
    batch_size : int, default=None
        The most rows fed to the network in one call, for ``"profile"`` and
        ``"occlusion"``; by default the memory budget (scikit-learn's
        ``working_memory``) decides, as it does for how many probed rows are
        built at once. A given value whose batches would not fit the budget
        is refused. ``"delta"`` in the model's space runs one row per pass,
        to match ``model.predict`` on each probe row exactly.
    columns : {"raw", "model"}, default="raw"
        Report on the estimator's input columns (one row per column of X,
        whatever the preprocessing makes of it) or on the columns the Keras
        model sees (after preprocessing, e.g. one per one-hot indicator).

    Returns
    -------
    ImportanceResult
        One column of importances for ``"delta"`` and ``"profile"``, one per
        row of X for ``"occlusion"``. ``details`` holds ``"space"`` (where the
        probes were set: ``"raw"`` or ``"model"``), ``"baseline"``,
        ``"baseline_output"`` (the response at the baseline),
        ``"output_names"``, ``"explained_outputs"`` and, by kind,
        ``"probe"`` and ``"per_output"`` (n_features, n_outputs);
        ``"grid"``, ``"curves"`` and ``"per_output"`` (the ranges);
        ``"attributions"`` (n_samples, n_features, n_outputs), the signed
        changes ``f(x) - f(occluded x)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import probe_importance
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.set_weights([np.array([[2.0], [-1.0], [0.5]]), np.array([1.0])])
    >>> probe_importance(model).importances_mean
    array([ 2. , -1. ,  0.5])
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> profile = probe_importance(model, X, kind="profile")
    >>> profile.details["curves"].shape
    (3, 21, 1)
    """
    kind = check_choice("kind", kind, KINDS)
    columns = check_columns(columns)
    grid_resolution = check_positive_int("grid_resolution", grid_resolution)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    located = locate_keras_model(estimator)
    outputs = resolve_outputs(located, output)
    n_features = located.n_model_features
    if kind == "profile":
        # Before anything is built: the grid, one input's swept rows and the
        # curves each hold grid_resolution values per input.
        check_within_budget(
            "grid_resolution",
            grid_resolution,
            8 * grid_resolution * n_features * (2 + len(outputs.names)),
        )

    names = located.model_feature_names(X)  # distinct, checked before X is read
    X_model = None
    if X is not None:
        X_model = check_model_input(located, X, caller="probe_importance")
    elif kind != "delta":
        raise ValueError(f"kind={kind!r} needs X.")
    batch_size = check_batch_size(located, batch_size)
    if baseline is None:
        baseline = "mean" if X is not None else "zeros"
    data_driven = isinstance(baseline, str) and baseline in DATA_BASELINES
    if probe is None:
        probe = "std" if data_driven else 1.0
    reference, reference_model = _reference_data(
        located, X, X_model, background, kind, data_driven, probe
    )

    mapping = column_map(located, X, X_model) if columns == "raw" else None
    if mapping is not None and mapping.nd:  # features of an N-D input
        return _model_probes(
            located, outputs, X, X_model, reference_model, kind, baseline, probe,
            grid_resolution, batch_size, mapping.raw_names, blocks=mapping.blocks,
        )  # fmt: skip
    # Raw values where the model's own columns have no raw meaning: one-hot
    # blocks, and integer codes when probing from the data's centre.
    coded = mapping is not None and mapping.coded.any() and data_driven
    if mapping is not None and (not mapping.one_to_one or coded):
        mapping.check_separable("probe_importance")
        _check_raw_probe(mapping, baseline, probe, data_driven)
        if X is None:
            raise ValueError(
                "Probes on one-hot encoded raw columns set raw values, which "
                "needs X; pass X, or use columns='model'."
            )
        return _raw_probes(
            located, outputs, RawSpace(reference, mapping), mapping, X, kind,
            baseline, grid_resolution, batch_size,
        )  # fmt: skip

    names = mapping.raw_names if mapping is not None else names
    return _model_probes(
        located, outputs, X, X_model, reference_model, kind, baseline, probe,
        grid_resolution, batch_size, names,
    )  # fmt: skip


def _reference_data(located, X, X_model, background, kind, data_driven, probe):
    """The rows statistics are taken on (raw, and as the model sees them):
    the background; for ``"delta"`` and ``"profile"``, which explain no row,
    X when no background is given. Checked before any forward pass."""
    statistics = (
        data_driven or kind == "profile" or (isinstance(probe, str) and probe == "std")
    )
    if background is not None:
        if X is None:
            raise ValueError("background describes the data of X; pass X too.")
        check_background(background, X, caller="probe_importance", missing=True)
        return background, check_model_input(
            located, background, caller="probe_importance(background)"
        )
    if kind == "occlusion" and data_driven:
        check_background(
            background,
            X,
            caller="probe_importance(kind='occlusion')",
            what="with a data-driven baseline ('mean', 'median')",
            missing=True,
        )
    if statistics and X is not None and len(X_model) < 2:
        raise ValueError(
            f"probe_importance(kind={kind!r}) takes the data's centre and spread "
            "from X, which has one row: its spread is zero and its centre the row "
            "itself, so every probe would read 0.0. Pass background=X_train (the "
            "rows that stand for the data)."
        )
    return X, X_model


def _check_raw_probe(mapping, baseline, probe, data_driven: bool) -> None:
    encoded = ", ".join(
        [f"{name!r} ({width} columns)" for name, width in mapping.encoded().items()]
        + [f"{name!r} (integer codes)" for name in mapping.raw_names[mapping.coded]]
    )
    if not data_driven:
        raise ValueError(
            f"baseline={baseline!r} is a point in the Keras model's input space, "
            f"which has no raw meaning for the encoded columns {encoded}. Use a "
            "data-driven baseline ('mean' or 'median', on the raw columns), or "
            "columns='model' to probe the encoded columns themselves."
        )
    if not (isinstance(probe, str) and probe == "std"):
        raise ValueError(
            f"probe={probe!r} is a value in the Keras model's input space, which "
            f"has no raw meaning for the encoded columns {encoded}. On raw "
            "columns the probe is 'std' (numeric columns move by one standard "
            "deviation, categorical ones take each category in turn); use "
            "columns='model' for model-space probes."
        )


# --- probes in the space the Keras model sees --------------------------------------


def _model_probes(
    located, outputs, X, X_model, reference, kind, baseline, probe, grid_resolution,
    batch_size, names, blocks=None,
):  # fmt: skip
    """Probes in the space the Keras model sees: one model column at a time, or
    one block of them (a channel of an N-D input) when ``blocks`` is given."""
    n_features = located.n_model_features
    if blocks is None:
        blocks = [np.array([j]) for j in range(n_features)]
    elif kind == "profile":
        raise ValueError(
            "kind='profile' sweeps one input along its values; a feature of an "
            "N-D input is many values at once. Use kind='delta' or 'occlusion'."
        )
    base = resolve_point(
        "baseline",
        baseline,
        reference,
        n_features,
        statistics=("zeros", "mean", "median"),
    )
    if kind == "delta":  # checked here, before any row reaches the network
        point = resolve_point(
            "probe", probe, reference, n_features, statistics=("std",), relative_to=base
        )
    _warn_about_scale(located, baseline, probe, kind, X, X_model)

    def respond(rows: np.ndarray, rows_per_pass: int | None = batch_size) -> np.ndarray:
        return outputs.response(located.forward(rows, batch_size=rows_per_pass))

    base_output = respond(base[np.newaxis, :])[0]
    details = {
        "space": "model",
        "baseline": base,
        "baseline_output": base_output.astype(np.float64),
        "output_names": list(outputs.names),
        "explained_outputs": outputs.explained,
    }

    if kind == "delta":
        # One row per forward pass and the subtraction in the network's dtype:
        # bit for bit what model.predict(one_hot_i) - model.predict(zeros)
        # gives. (A batched matrix product rounds rows differently by their
        # position in the batch.)
        probed = probe_responses(partial(respond, rows_per_pass=1), base, point, blocks)
        per_output = (probed - base_output).astype(np.float64)
        importances = outputs.combine(per_output)[:, np.newaxis]
        details.update(probe=point, per_output=per_output)
    elif kind == "profile":
        grid = np.quantile(reference, np.linspace(0, 1, grid_resolution), axis=0).T
        curves = profile_curves(respond, base, grid).astype(np.float64)
        per_output = curves.max(axis=1) - curves.min(axis=1)
        importances = outputs.combine(per_output)[:, np.newaxis]
        details.update(grid=grid, curves=curves, per_output=per_output)
    else:
        changes = occlusion_changes(respond, X_model, base, blocks)
        importances = np.abs(outputs.combine(changes)).T
        details.update(attributions=changes)

    return ImportanceResult(
        importances, names, method=_method_name(kind), details=details
    )


def _method_name(kind: str) -> str:
    return "probe" if kind == "delta" else kind


def _warn_about_scale(located, baseline, probe, kind, X, X_model) -> None:
    """A zero baseline before in-model scaling, or fixed-size probes on inputs
    of different scales: the numbers would mislead, so say so."""
    if isinstance(baseline, str) and baseline == "zeros":
        problem = zero_baseline_problem(located, "probe_importance")
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=5)
    fixed_probe = kind == "delta" and not (isinstance(probe, str) and probe == "std")
    if fixed_probe and X_model is not None:
        problem = scale_problem(
            X_model, located.model_feature_names(X), "A fixed probe value"
        )
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=5)


# --- probes on the raw columns -------------------------------------------------------


def _raw_probes(
    located, outputs, space, mapping, X, kind, baseline, grid_resolution, batch_size
):
    """Probes that set raw values and categories; the estimator's own
    preprocessing encodes them."""

    def respond(rows) -> np.ndarray:
        X_model = located.to_model_input(rows)
        X_model = X_model.toarray() if hasattr(X_model, "toarray") else X_model
        return outputs.response(located.forward(X_model, batch_size=batch_size))

    base_row = space.baseline(baseline)
    base_output = respond(base_row)[0].astype(np.float64)
    details = {
        "space": "raw",
        "baseline": base_row,
        "baseline_output": base_output,
        "output_names": list(outputs.names),
        "explained_outputs": outputs.explained,
        "categorical": [str(n) for n in mapping.raw_names[space.categorical]],
    }
    n_raw = mapping.n_raw
    if kind == "occlusion":
        original = respond(X).astype(np.float64)
        changes = np.stack(
            [
                original
                - respond(space.with_column(X, j, column_of(space, base_row, j)))
                for j in range(n_raw)
            ],
            axis=1,
        )
        details.update(attributions=changes)
        importances = np.abs(outputs.combine(changes)).T
        return ImportanceResult(
            importances, mapping.raw_names, method="occlusion", details=details
        )

    sweeps = [
        raw_sweep(space, base_row, j, kind, grid_resolution) for j in range(n_raw)
    ]
    curves = raw_curves(respond, space, base_row, sweeps, mapping)
    if kind == "delta":
        per_output = np.stack([largest_change(curve - base_output) for curve in curves])
        details.update(probe=sweeps, per_output=per_output)
    else:
        per_output = np.stack([c.max(axis=0) - c.min(axis=0) for c in curves])
        details.update(grid=sweeps, curves=curves, per_output=per_output)
    importances = outputs.combine(per_output)[:, np.newaxis]
    return ImportanceResult(
        importances, mapping.raw_names, method=_method_name(kind), details=details
    )
