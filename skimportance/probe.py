"""Probe importance: move one input at a time away from a baseline point.

The classic recipe (predict on all-zeros, then on zeros with one input set to
1, and compare) and its relatives:

* ``kind="delta"``: ``f(baseline with x_i := probe_i) - f(baseline)``;
* ``kind="profile"``: Lek's profile, sweeping ``x_i`` over the quantiles of X
  with the other inputs held at the baseline, scored by the range of the
  response;
* ``kind="occlusion"``: for every row of X, how much the response moves when
  ``x_i`` is replaced by the baseline value.

All three work in the space the Keras model sees: after the Pipeline's
preprocessing, so with a StandardScaler in front, "zeros" is the training mean
and a probe of 1 is one training standard deviation. Probing one input at a
time around one point says nothing about interactions or about the rest of
the input space; the validity benchmark shows what that costs.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ._budget import check_within_budget, rows_within_budget
from ._model import locate_keras_model
from ._result import ImportanceResult
from ._validation import (
    check_batch_size,
    check_choice,
    check_model_input,
    check_positive_int,
    resolve_outputs,
    resolve_point,
)

__all__ = ["probe_importance"]

KINDS = ("delta", "profile", "occlusion")


def probe_importance(
    estimator,
    X=None,
    *,
    baseline="zeros",
    probe=1.0,
    kind: str = "delta",
    output=None,
    grid_resolution: int = 21,
    batch_size: int | None = None,
) -> ImportanceResult:
    """Importance as the model's response to moving one input from a baseline.

    Parameters
    ----------
    estimator : estimator or keras.Model
        A fitted Keras wrapper, ``from_keras`` estimator, bare ``keras.Model``,
        or Pipeline ending in one.
    X : array-like of shape (n_samples, n_features), default=None
        Data, in the estimator's input space (before any preprocessing).
        Needed for the ``"mean"``/``"median"`` baselines, the ``"std"`` probe,
        and the ``"profile"`` and ``"occlusion"`` kinds.
    baseline : {"zeros", "mean", "median"}, float or array-like, default="zeros"
        The reference point, in the space the Keras model sees (after
        preprocessing): zeros, the column means or medians of the transformed
        X, one value for every input, or one value per model input.
    probe : float, "std" or array-like, default=1.0
        ``kind="delta"`` only: the value each input is set to in turn. A
        number sets every input to that value; ``"std"`` sets input i to
        ``baseline_i`` plus the standard deviation of column i of the
        transformed X; an array gives one value per model input. Ignored by
        the other kinds.
    kind : {"delta", "profile", "occlusion"}, default="delta"
        ``"delta"``: ``f(baseline with x_i := probe_i) - f(baseline)``,
        signed. ``baseline="zeros", probe=1.0`` is exactly
        ``model.predict(one_hot_i) - model.predict(zeros)``.

        ``"profile"``: Lek's profile. Sweep ``x_i`` over ``grid_resolution``
        quantiles of the transformed X (from its minimum to its maximum) with
        the other inputs held at the baseline; the importance is the range
        (max - min) of the response along the sweep. The curves are kept.

        ``"occlusion"``: for every row x of X, ``f(x) - f(x with x_i :=
        baseline_i)``; the importance is the mean absolute change, one draw
        per row.
    output : int, label or None, default=None
        Which response column to explain: class probabilities for a
        classifier (a single sigmoid unit ``p`` counts as ``[1 - p, p]``),
        else the units of the output layer. ``None``: the single column, the
        positive class of a binary classifier, or with several columns the
        mean absolute value over all of them (``details["per_output"]`` keeps
        each column's value).
    grid_resolution : int, default=21
        ``kind="profile"``: number of quantiles swept per input. Checked
        against the memory budget before anything is built.
    batch_size : int, default=None
        The most rows fed to the network in one call, for ``"profile"`` and
        ``"occlusion"``; by default the memory budget (scikit-learn's
        ``working_memory``) decides, as it does for how many probed rows are
        built at once. A given value whose batches would not fit the budget
        is refused. ``"delta"`` runs one row per pass, to match
        ``model.predict`` on each probe row exactly.

    Returns
    -------
    ImportanceResult
        Importances of the model's inputs (named through the Pipeline's
        ``get_feature_names_out``): one column for ``"delta"`` and
        ``"profile"``, one column per row of X for ``"occlusion"``.
        ``details`` holds ``"baseline"``, ``"baseline_output"`` (the response
        at the baseline), ``"output_names"``, ``"explained_outputs"`` and, by
        kind, ``"probe"`` and ``"per_output"`` (n_features, n_outputs);
        ``"grid"`` (n_features, grid_resolution), ``"curves"`` (n_features,
        grid_resolution, n_outputs) and ``"per_output"`` (the ranges);
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
    >>> profile = probe_importance(model, X, kind="profile", baseline="mean")
    >>> profile.details["curves"].shape
    (3, 21, 1)
    """
    kind = check_choice("kind", kind, KINDS)
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
    base = resolve_point(
        "baseline",
        baseline,
        X_model,
        n_features,
        statistics=("zeros", "mean", "median"),
    )
    if kind == "delta":  # checked here, before any row reaches the network
        point = resolve_point(
            "probe", probe, X_model, n_features, statistics=("std",), relative_to=base
        )

    def respond(rows: np.ndarray, rows_per_pass: int | None = batch_size) -> np.ndarray:
        return outputs.response(located.forward(rows, batch_size=rows_per_pass))

    base_output = respond(base[np.newaxis, :])[0]
    details = {
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
        probed = _probe_responses(partial(respond, rows_per_pass=1), base, point)
        per_output = (probed - base_output).astype(np.float64)
        importances = outputs.combine(per_output)[:, np.newaxis]
        details.update(probe=point, per_output=per_output)
    elif kind == "profile":
        grid = np.quantile(X_model, np.linspace(0, 1, grid_resolution), axis=0).T
        curves = _profile_curves(respond, base, grid).astype(np.float64)
        per_output = curves.max(axis=1) - curves.min(axis=1)
        importances = outputs.combine(per_output)[:, np.newaxis]
        details.update(grid=grid, curves=curves, per_output=per_output)
    else:
        changes = _occlusion_changes(respond, X_model, base)
        importances = np.abs(outputs.combine(changes)).T
        details.update(attributions=changes)

    method = "probe" if kind == "delta" else kind
    return ImportanceResult(importances, names, method=method, details=details)


def _feature_blocks(n_features: int, rows_per_feature: int, width: int):
    """Slices of features whose rows (float64) together fit the memory budget."""
    step = rows_within_budget(8 * rows_per_feature * width)
    for start in range(0, n_features, step):
        yield slice(start, min(start + step, n_features))


def _probe_responses(respond, base: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Response at ``base`` with each input in turn set to ``point``."""
    n_features = len(base)
    results = []
    for block in _feature_blocks(n_features, 1, n_features):
        features = np.arange(n_features)[block]
        rows = np.tile(base, (len(features), 1))
        rows[np.arange(len(features)), features] = point[features]
        results.append(respond(rows))
    return np.concatenate(results, axis=0)


def _profile_curves(respond, base: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Response along each input's grid, shape (n_features, n_points, n_outputs)."""
    n_features, n_points = grid.shape
    results = []
    for block in _feature_blocks(n_features, n_points, n_features):
        features = np.arange(n_features)[block]
        rows = np.tile(base, (len(features), n_points, 1))
        rows[np.arange(len(features)), :, features] = grid[features]
        flat = respond(rows.reshape(-1, n_features))
        results.append(flat.reshape(len(features), n_points, -1))
    return np.concatenate(results, axis=0)


def _occlusion_changes(respond, X_model: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``f(x) - f(x with x_i := base_i)``, shape (n_samples, n_features, n_outputs)."""
    n_samples, n_features = X_model.shape
    original = respond(X_model).astype(np.float64)
    changes = np.empty((n_samples, n_features, original.shape[1]))
    # One feature per pass: only one perturbed copy of X exists at a time.
    occluded = np.array(X_model, dtype=np.float64)
    for i in range(n_features):
        occluded[:, i] = base[i]
        changes[:, i, :] = original - respond(occluded)
        occluded[:, i] = X_model[:, i]
    return changes
