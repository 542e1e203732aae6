"""Local attributions: why did the model say this for this row?

``local_importance`` gives one signed attribution per (explained row,
feature), on the user's raw columns (a one-hot encoded column gets one value)
or on feature groups, against a background: rows that stand for "the data",
typically the training rows. The background is required: a reference taken
from the rows being explained would be the row itself for one row (every
attribution 0.0) and would make a row's values depend on its batch.

* ``"shapley"``: interventional Shapley values, exact over every coalition up
  to ``EXACT_MAX_FEATURES`` features, else antithetic permutation sampling
  with a standard error per value (``_shapley``);
* ``"expected_gradients"``: integrated gradients averaged over the background
  rows (Erion et al. 2021), for Keras networks (``_expected_gradients``);
* ``"occlusion"``: ``f(x) - mean_b f(x with feature j from b)``.

The model function, the rows in its space and each feature's columns come from
``_local_model``; the result is a ``LocalResult`` (``_local_result``).
"""

from __future__ import annotations

import numpy as np

from ._background import check_background
from ._engines.coalitions import AUTO_MIN_COLUMNS
from ._engines.groups import resolve_feature_groups
from ._local_model import local_model
from ._local_result import LocalResult
from ._shapley import (
    EXACT_MAX_FEATURES,
    block_values,
    check_exact_budget,
    draw_permutations,
    exact_shapley,
    occluded,
    sampled_shapley,
)
from ._validation import check_choice, check_positive_int

__all__ = ["local_importance"]

METHODS = ("shapley", "expected_gradients", "occlusion")
ALGORITHMS = ("auto", "exact", "incremental")


def local_importance(
    estimator,
    X,
    *,
    background,
    method: str = "shapley",
    feature_groups=None,
    output=None,
    exact="auto",
    n_permutations: int = 64,
    n_steps: int = 50,
    random_state=None,
    algorithm: str = "auto",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = False,
):
    """One attribution per (row, feature): why each row got its prediction.

    Parameters
    ----------
    estimator : estimator or keras.Model
        Any fitted scikit-learn estimator (``predict_proba`` of a classifier,
        else ``predict``), a Keras wrapper, ``from_keras`` estimator, bare
        ``keras.Model``, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        The rows to explain, as the estimator takes them.
    background : array-like of shape (n_background, n_features)
        The rows that stand for the data, typically (a sample of) the training
        rows, with X's columns. Every attribution compares a row with them:
        the values of a row add up to its prediction minus the mean
        prediction on the background. Required, never taken from X, so a
        row's values are the same alone as in any batch. Cost grows linearly
        with its size; 50 to 200 rows are usual.
    method : {"shapley", "expected_gradients", "occlusion"}, default="shapley"
        ``"shapley"``: interventional Shapley values: the value of a set S
        of features at row x is the mean over background rows b of
        ``f(x on S, b elsewhere)``. ``"expected_gradients"``: integrated
        gradients from each background row, averaged (Keras networks whose
        inputs a gradient reaches). ``"occlusion"``: ``f(x)`` minus the mean
        over b of ``f(x with feature j from b)``; does not add up.
    feature_groups : list or dict, default=None
        Columns that count as one feature (a value per group), as in
        ``permutation_importance``; columns in no group count on their own,
        so the values still add up.
    output : int, label or None, default=None
        Which response column to explain (a class label, a head's name, a
        position). None: the single column, a binary classifier's positive
        class, else every column, one result each.
    exact : bool or "auto", default="auto"
        ``"shapley"``: all 2**p coalitions (p features or groups) or
        permutation sampling. "auto" is exact up to ``EXACT_MAX_FEATURES``
        (10) features: each explained row costs ``2**p * len(background)``
        forward rows, which past 10 features exceeds what the default sampler
        spends and doubles with every feature.
    n_permutations : int, default=64
        Sampled ``"shapley"``: the number of feature orders walked, half of
        them the reverses of the other half (antithetic); even, at least 4.
    n_steps : int, default=50
        ``"expected_gradients"``: quadrature points per (row, background row)
        path.
    random_state : int, RandomState instance or None, default=None
        Sampled ``"shapley"``: seeds the orders, drawn before any row is read.
    algorithm : {"auto", "exact", "incremental"}, default="auto"
        ``"shapley"`` and ``"occlusion"`` on a Keras network whose first
        layer is Dense (behind column-wise preprocessing):
        ``"incremental"`` computes each feature's share of that layer once
        for X and for the background, so a coalition is a sum of shares and
        only the rest of the network runs (the engine SAGE uses);
        ``"exact"`` builds every combined row and runs the whole network.
        The two agree to float32 rounding. "auto" is incremental from
        ``AUTO_MIN_COLUMNS`` (32) model columns on, where it is measured to
        be faster; ``details["algorithm"]`` says which ran.
    batch_size : int, default=None
        ``"expected_gradients"``: rows per gradient call; by default the
        memory budget (``working_memory``) decides, as it does for every
        forward pass.
    n_jobs : int, default=None
        Blocks of (row, coalition) forward passes run in parallel with
        joblib (``joblib.parallel_config(backend="dask")`` sends them to a
        dask cluster). None runs them in this process.
    verbose : bool, default=False
        A progress bar over the blocks of forward passes.

    Returns
    -------
    LocalResult or dict of str to LocalResult
        ``values`` (n_rows, n_features), ``base_value``, ``feature_names``,
        ``standard_errors`` when sampled, ``to_frame()``,
        ``global_importance()``, ``plot(row=...)``, ``to_shap()``. With
        several explained response columns (several heads, or every class),
        a dict keyed by the column's name.

    Raises
    ------
    ValueError
        No background, an empty one, one with other columns than X or with
        NaN; exact Shapley values whose 2**p coalitions exceed the memory
        budget; expected gradients through an input a gradient cannot reach.
        All before any forward pass.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skimportance import local_importance
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> model = LinearRegression().fit(X, X @ [3.0, -1.0, 0.0])
    >>> result = local_importance(model, X[:2], background=X)
    >>> bool(np.allclose(result.values, (X[:2] - X.mean(axis=0)) * [3, -1, 0]))
    True
    >>> prediction = model.predict(X[:2])
    >>> bool(np.allclose(result.values.sum(axis=1), prediction - result.base_value))
    True
    """
    method = check_choice("method", method, METHODS)
    n_steps = check_positive_int("n_steps", n_steps)
    n_permutations = check_positive_int("n_permutations", n_permutations)
    if n_permutations < 4 or n_permutations % 2:
        raise ValueError(
            f"n_permutations={n_permutations} must be even (each order walked "
            "with its reverse) and at least 4 (two pairs give a standard error)."
        )
    if not (exact == "auto" or isinstance(exact, bool)):
        raise ValueError(f"exact must be True, False or 'auto', got {exact!r}.")
    algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "incremental" and method == "expected_gradients":
        raise ValueError(
            "algorithm='incremental' combines forward passes of coalitions; "
            "method='expected_gradients' takes gradients instead."
        )
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if X is None:
        raise ValueError("local_importance needs X, the rows to explain.")
    check_background(background, X, caller="local_importance")

    def groups_of(raw_names):
        return _features(feature_groups, raw_names)

    model = local_model(estimator, X, background, output, groups_of)
    p, n_out = len(model.blocks), len(model.output_names)
    use_exact = method == "shapley" and (
        exact is True or (exact == "auto" and p <= EXACT_MAX_FEATURES)
    )
    if use_exact:
        check_exact_budget(p, n_out)
    if method == "expected_gradients":
        _check_differentiable(model)
    run_blocks = _runner(n_jobs, verbose)
    details = {"algorithm": "exact"}
    if method != "expected_gradients" and algorithm != "exact":
        wide = model.located is not None and model.n_columns >= AUTO_MIN_COLUMNS
        if algorithm == "incremental" or wide:
            why = model.use_incremental(required=algorithm == "incremental")
            if why is None:
                details["algorithm"] = "incremental"
            else:
                details["incremental_unavailable"] = why

    # The two ends of every walk, computed once for all rows.
    base = model(model.background).mean(axis=0)
    prediction = model(model.X)
    x_rows = np.arange(len(prediction))
    errors = None
    if method == "shapley":
        details["estimator"] = "exact" if use_exact else "permutation"
    if method == "shapley" and use_exact:
        values = exact_shapley(model, x_rows, prediction, base, run_blocks)
    elif method == "shapley":
        orders = draw_permutations(p, n_permutations, random_state)
        values, errors = sampled_shapley(
            model, x_rows, prediction, base, orders, run_blocks
        )
    elif method == "occlusion":
        values = occluded(model, x_rows, prediction, run_blocks)
    else:
        from ._expected_gradients import expected_gradients

        values = expected_gradients(model, n_steps, batch_size)
    results = {
        name: LocalResult(
            values[:, :, k],
            base[k],
            model.names,
            method=method,
            index=_index_of(X, len(prediction)),
            data=_data_of(X, feature_groups),
            standard_errors=None if errors is None else errors[:, :, k],
            output_name=name,
            details={**details, "prediction": prediction[:, k]},
        )
        for k, name in enumerate(model.output_names)
    }
    if len(results) == 1:
        return next(iter(results.values()))
    return results


def _features(feature_groups, raw_names):
    """Each feature's raw columns and its name: the groups, then every column
    in no group on its own (a Shapley value needs every column a player)."""
    raw_names = [str(name) for name in raw_names]
    if feature_groups is None:
        return [np.array([j]) for j in range(len(raw_names))], np.array(raw_names)
    groups, names = resolve_feature_groups(feature_groups, raw_names)
    grouped = set(np.concatenate(groups).tolist()) if groups else set()
    rest = [j for j in range(len(raw_names)) if j not in grouped]
    groups = list(groups) + [np.array([j]) for j in rest]
    names = list(names) + [raw_names[j] for j in rest]
    if len(set(names)) != len(names):
        raise ValueError(
            f"A group shares its name with an ungrouped column: {names}; rename "
            "the group."
        )
    return groups, np.array(names, dtype=object)


def _check_differentiable(model) -> None:
    """Expected gradients need a Keras network whose inputs a gradient reaches;
    refused as ``gradient_importance`` refuses."""
    if model.located is None:
        raise TypeError(
            "method='expected_gradients' needs a Keras model: gradients are "
            "taken through the network with TensorFlow. Use method='shapley', "
            "which only needs predictions."
        )
    from .gradient import _check_float_inputs

    _check_float_inputs(model.located)


def _runner(n_jobs, verbose: bool):
    """Run blocks of forward passes here, or in parallel through joblib."""

    def run(tasks):
        if n_jobs is None or n_jobs == 1 or len(tasks) == 1:
            from tqdm.auto import tqdm

            bar = tqdm(tasks, desc="coalitions", unit="block", disable=not verbose)
            return [block_values(*task) for task in bar]
        from joblib import Parallel, delayed

        return Parallel(n_jobs=n_jobs)(delayed(block_values)(*task) for task in tasks)

    return run


def _index_of(X, n_rows: int):
    return X.index.to_numpy() if hasattr(X, "index") else np.arange(n_rows)


def _data_of(X, feature_groups):
    """X's raw values for shap's plots, when each feature is one raw column."""
    if feature_groups is not None or np.ndim(X) != 2:
        return None
    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
