"""Conditional permutation importance (Chamma, Engemann & Thirion, NeurIPS 2023).

Marginal permutation importance shuffles a column on its own, which pairs its
values with unrelated values of the columns correlated with it: rows the
model never saw. A column with no effect of its own that merely correlates
with one that has can then look important (Strobl et al. 2008; Hooker,
Mentch & Zhou 2021). Conditional importance replaces the column by a draw
*given the other columns* instead: its prediction from them plus the
permuted residuals. Only the information the column adds to the others is
removed, and the rows stay on the data.

The run is checked, planned and scored by the shared engines of ``_engines.run``
(the same plan and batched Keras engine as permutation importance); the
conditional models come from ``_engines.conditional_draws``; the pointwise
losses from ``_inference`` and the p-values from ``_stats``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.utils import check_array, check_random_state

from ._engines.conditional_draws import (
    column_kinds,
    default_imputers,
    fit_conditional_draws,
    integer_domains,
    named_imputer,
)
from ._engines.plan import draw_permutation_plan
from ._engines.run import prepare_permutation_run
from ._inference import resolve_loss
from ._result import ImportanceResult
from ._validation import check_model_input

__all__ = ["MIN_FIT_ROWS", "conditional_importance"]

#: The fewest rows conditional models are fitted on. With one row every
#: conditional draw is the marginal shuffle; with a handful the models cannot
#: tell a conditional distribution from noise.
MIN_FIT_ROWS = 10


def conditional_importance(
    estimator,
    X,
    y,
    *,
    X_fit=None,
    imputer=None,
    categorical_imputer=None,
    n_repeats: int = 5,
    scoring=None,
    loss="auto",
    n_jobs: int | None = None,
    random_state=None,
    sample_weight=None,
    max_samples: float | int = 1.0,
    feature_groups=None,
    cluster_threshold: float = 0.7,
    batch_size: int | None = None,
    verbose: int = 0,
    algorithm: str = "auto",
    output=None,
) -> ImportanceResult | dict[str, ImportanceResult]:
    """Conditional permutation importance: what a column adds to the others.

    For each feature (or group) j, a regressor of X_j on the other columns is
    fitted on ``X_fit``; X_j is then replaced by its prediction plus the
    residuals of other rows, permuted, and the estimator is re-scored through
    scikit-learn's scorer, exactly as permutation importance does. Unlike a
    plain shuffle, this keeps the correlation between X_j and the other
    columns, so a column that only echoes a correlated one gets importance
    near 0. A categorical column is drawn from a classifier's predicted
    probabilities instead. The raw columns of a Pipeline are perturbed, and
    a Keras model inside is run in large batches on the plan that
    permutation importance uses.

    Parameters
    ----------
    estimator : object
        A fitted estimator: a Keras wrapper, a Pipeline ending in one, or any
        fitted scikit-learn estimator.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        Rows to compute the importances on (preferably held out), as the
        estimator takes them. Must hold no missing values: every column is
        predicted from the others.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    X_fit : ndarray or DataFrame, default=None
        Rows the conditional models are fitted on (e.g. the training data);
        None uses ``X``. Same columns as ``X``, at least
        :data:`MIN_FIT_ROWS` (10) rows, and in a categorical column only
        categories X's dtype has. Draws stay in each column's domain: a
        category of the column, or, for a column whose values in ``X`` and
        ``X_fit`` are all integers (codes, counts), an integer in their range
        (the draw rounded and clipped).
    imputer : "shared_ridge", "ridge_cv", regressor or None, default=None
        The model of a numeric column (or group) given the others; it sees
        the other columns standardised and categories one-hot encoded.
        None or ``"shared_ridge"``: ridge regressions with one penalty for
        every column, chosen from ``np.logspace(-3, 3, 13)`` by leave-one-out
        over all columns at once, all from one p x p factorisation (exactly
        ``Ridge(alpha=details["imputer_alpha"])`` fitted per column, at the
        cost of one fit). ``"ridge_cv"``: one ``RidgeCV`` over the same
        penalties per column, each with its own penalty (p fits). A
        regressor: a clone of it fitted per column (or group).
    categorical_imputer : classifier, default=None
        The model of a categorical column (pandas category, bool, strings)
        given the others; needs ``predict_proba``. None: ``LogisticRegression``.
    n_repeats : int, default=5
        Draws per feature (or group).
    scoring : str, callable, list, tuple, dict or None, default=None
        As in scikit-learn; None uses ``estimator.score``.
    loss : str, callable or None, default="auto"
        The pointwise loss whose per-row differences :meth:`ImportanceResult.pvalues`
        tests: ``"auto"`` (``"log_loss"`` for classifiers with
        ``predict_proba``, ``"zero_one"`` for other classifiers,
        ``"squared_error"`` for regressors), any of these names,
        ``"absolute_error"``, a callable ``loss(y_true, y_pred) -> one value
        per row`` (``y_pred`` from ``predict``), or None to record none.
    n_jobs : int or None, default=None
        Parallel jobs, through joblib: the conditional models are fitted in
        parallel, then the engines run as in permutation importance.
    random_state : int, RandomState instance or None, default=None
        Controls the permutations (the plan permutation importance draws for
        the same ``random_state``), the category draws and the conditional
        models' own seeds. The same value gives the same numbers for any
        ``n_jobs``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights used in scoring (not in the p-values).
    max_samples : int or float, default=1.0
        Rows drawn from ``X`` for the perturbed scores, as in permutation
        importance.
    feature_groups : "auto", list of lists, dict or None, default=None
        Columns drawn together (given the columns outside the group), as in
        :func:`skimportance.permutation_importance`. ``"auto"`` groups
        columns whose absolute Spearman correlation reaches
        ``cluster_threshold``. A categorical column must be a group alone.
    cluster_threshold : float, default=0.7
        With ``feature_groups="auto"``: the |rho| at which columns join one
        group (average linkage); the dendrogram is in
        ``result.details["clustering"]``.
    batch_size : int or None, default=None
        Keras engine only: the most rows per call of the network; None lets
        the memory budget (scikit-learn's ``working_memory``) decide.
    verbose : int, default=0
        Show a progress bar when > 0.
    algorithm : {"auto", "exact", "incremental"}, default="auto"
        The Keras engine, as in :func:`skimportance.permutation_importance`:
        the conditional draws replace a group's columns like a shuffle does,
        so the incremental first-layer engine runs them on wide inputs.
        ``details["algorithm"]`` says which ran.
    output : str or int, default=None
        For a Keras model with several output heads: the one head to score
        (its name, or y's column name when each head has one unit, or its
        position), giving one result instead of a dict of them. A head of
        one sigmoid unit is scored as a binary classifier by scorers needing
        probabilities or labels (``"roc_auc"``, ``"accuracy"``).

    Returns
    -------
    ImportanceResult or dict of str -> ImportanceResult
        As :func:`skimportance.permutation_importance`, with ``method``
        ``"conditional"`` and ``loss_differences`` for :meth:`~ImportanceResult.pvalues`
        and :meth:`~ImportanceResult.fdr`.

    Raises
    ------
    ValueError
        NaN or infinity in ``X`` or ``X_fit``, ``X_fit`` with other columns,
        a categorical column grouped with others, and every error of
        :func:`skimportance.permutation_importance`; raised before any
        conditional model is fitted or any data reaches the network.
    TypeError
        An ``imputer`` without ``fit``/``predict``, a ``categorical_imputer``
        without ``predict_proba``.

    See Also
    --------
    permutation_importance : The marginal version.
    hidimstat.CFI : The reference implementation, one ``predict`` per group.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skimportance import conditional_importance
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=1000)
    >>> echo = signal + 0.3 * rng.normal(size=1000)  # correlated, no effect
    >>> X = np.column_stack([signal, echo, rng.normal(size=1000)])
    >>> y = X @ [1.0, 0.0, 0.5] + rng.normal(size=1000)
    >>> X_train, X_test, y_train, y_test = X[:500], X[500:], y[:500], y[500:]
    >>> model = LinearRegression().fit(X_train, y_train)
    >>> result = conditional_importance(model, X_test, y_test, X_fit=X_train,
    ...                                 random_state=0)
    >>> result.ranking().tolist()  # x0 adds to x1 only what x1 misses of it
    ['x2', 'x0', 'x1']
    >>> result.fdr(0.05)["selected"].tolist()
    [True, False, True]
    """
    run, settings = prepare_permutation_run(
        estimator,
        X,
        y,
        caller="conditional_importance",
        scoring=scoring,
        n_repeats=n_repeats,
        n_jobs=n_jobs,
        random_state=random_state,
        sample_weight=sample_weight,
        max_samples=max_samples,
        feature_groups=feature_groups,
        cluster_threshold=cluster_threshold,
        batch_size=batch_size,
        algorithm=algorithm,
        output=output,
    )
    n_repeats, batch_size, algorithm = settings
    kinds = column_kinds(run.X)
    run = replace(run, X=_as_float_numbers(run.X, kinds))
    nd_shape = np.shape(X)[1:] if np.ndim(X) > 2 else None  # rows of a sequence
    X_fit = _checked_fit_rows(X_fit, run.X, kinds, nd_shape)
    _check_complete(run.X, kinds, "X")
    _check_groups(run, kinds)
    imputer, categorical_imputer = _checked_imputers(imputer, categorical_imputer)
    row_loss = resolve_loss(loss, estimator, y)
    if run.located is not None:  # the network's rows are usable: fail now, not later
        check_model_input(run.located, run.X, caller=run.caller)

    rng = check_random_state(random_state)
    plan = draw_permutation_plan(rng, run.X.shape[0], run.n_rows, n_repeats)
    (X_sub,) = plan.subsample(run.X)
    draws = fit_conditional_draws(
        plan,
        run.groups,
        kinds,
        X_fit,
        X_sub,
        imputer,
        categorical_imputer,
        seed=int(rng.randint(np.iinfo(np.int32).max)),
        n_jobs=n_jobs,
    )
    draws = replace(draws, domains=integer_domains(run.groups, kinds, run.X, X_fit))
    scored = run.scores(
        plan,
        draws,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="conditional importance",
        row_loss=row_loss,
        algorithm=algorithm,
    )
    details = {
        "imputer": repr(imputer),
        "imputer_alpha": draws.imputer_alpha,
        "categorical_imputer": repr(categorical_imputer),
        "n_fit": len(X_fit),
        "loss": None if row_loss is None else row_loss.name,
    }
    return run.results(scored, "conditional", details)


# --- checks -----------------------------------------------------------------------


def _as_float_numbers(X, kinds):
    """Numeric columns as float64 (a drawn value is rarely an integer), so that
    both engines write the same values; floats and everything else untouched."""
    if hasattr(X, "iloc"):
        casts = {
            X.columns[j]: np.float64
            for j, kind in enumerate(kinds)
            if kind == "numeric" and X.dtypes.iloc[j].kind not in "f"
        }
        return X.astype(casts) if casts else X
    if X.dtype.kind in "iu":
        return X.astype(np.float64)
    return X


def _checked_fit_rows(X_fit, X, kinds, nd_shape=None):
    if X_fit is None:
        _check_enough_rows(X, "X (the rows the conditional models are fitted on)")
        return X
    if nd_shape is not None or np.ndim(X_fit) > 2:
        # X's N-D rows were flattened (one group per feature block): so are X_fit's.
        if np.shape(X_fit)[1:] != nd_shape:
            raise ValueError(
                f"X_fit has rows of shape {np.shape(X_fit)[1:]}, but X has rows of "
                f"shape {nd_shape if nd_shape is not None else np.shape(X)[1:]}."
            )
        X_fit = np.asarray(X_fit).reshape(len(X_fit), -1)
    _check_enough_rows(X_fit, "X_fit")
    if hasattr(X, "iloc"):
        if not hasattr(X_fit, "iloc") or list(X_fit.columns) != list(X.columns):
            raise ValueError(
                "X_fit must have the columns of X, in the same order: "
                f"{list(X.columns)[:10]}{'...' if X.shape[1] > 10 else ''}."
            )
    else:
        X_fit = check_array(X_fit, ensure_all_finite="allow-nan", dtype=None)
        if X_fit.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_fit has {X_fit.shape[1]} features, but X has {X.shape[1]}."
            )
    X_fit = _as_float_numbers(X_fit, kinds)
    _check_complete(X_fit, kinds, "X_fit")
    _check_categories_known(X_fit, X, kinds)
    return X_fit


def _check_enough_rows(X, name: str) -> None:
    if len(X) < MIN_FIT_ROWS:
        raise ValueError(
            f"{name} has {len(X)} rows; conditional_importance fits its "
            f"conditional models on at least {MIN_FIT_ROWS}. Pass more rows "
            "as X_fit (e.g. the training data)."
        )


def _check_categories_known(X_fit, X, kinds) -> None:
    """A category drawn from X_fit must be one X's categorical dtype has: any
    other becomes a missing value on its way into X's column."""
    import pandas as pd

    if not hasattr(X, "iloc"):
        return
    for j, kind in enumerate(kinds):
        dtype = X.dtypes.iloc[j]
        if kind != "categorical" or not isinstance(dtype, pd.CategoricalDtype):
            continue
        unknown = pd.Index(pd.unique(X_fit.iloc[:, j])).difference(dtype.categories)
        if len(unknown):
            raise ValueError(
                f"X_fit's column {X.columns[j]!r} holds categories "
                f"{list(unknown)[:5]} that X's categorical dtype does not have; "
                "a draw of one would reach the model as a missing value. Add "
                "them to X's categories (Series.cat.set_categories) or leave "
                "those rows out of X_fit."
            )


def _check_complete(X, kinds, name: str) -> None:
    """No NaN, infinity or missing category: every column is a model's input."""
    import pandas as pd

    for j, kind in enumerate(kinds):
        column = X.iloc[:, j] if hasattr(X, "iloc") else X[:, j]
        if kind == "numeric":
            bad = not np.isfinite(np.asarray(column, dtype=float)).all()
        else:
            bad = bool(pd.isna(pd.Series(column)).any())
        if bad:
            label = X.columns[j] if hasattr(X, "iloc") else f"x{j}"
            raise ValueError(
                f"{name} contains NaN or infinity (column {label!r}); "
                "conditional_importance predicts every column from the others, "
                "so the rows must be complete. Impute them first."
            )


def _check_groups(run, kinds) -> None:
    for name, columns in zip(run.names, run.groups):
        categorical = [j for j in columns if kinds[j] == "categorical"]
        if categorical and len(columns) > 1:
            raise ValueError(
                f"feature_groups: group {name!r} holds the categorical column "
                f"{run.column_names[categorical[0]]!r} and other columns; "
                "conditional_importance draws a categorical column from a "
                "classifier of its own, so give it a group of its own."
            )


def _checked_imputers(imputer, categorical_imputer):
    default, default_categorical = default_imputers()
    if isinstance(imputer, str):
        imputer = named_imputer(imputer)
    imputer = default if imputer is None else imputer
    categorical_imputer = (
        default_categorical if categorical_imputer is None else categorical_imputer
    )
    for name, model, needs in (
        ("imputer", imputer, ("fit", "predict", "get_params")),
        (
            "categorical_imputer",
            categorical_imputer,
            ("fit", "predict_proba", "get_params"),
        ),
    ):
        if isinstance(model, type(default)):  # the shared ridge: no estimator
            continue
        missing = [method for method in needs if not hasattr(model, method)]
        if missing:
            raise TypeError(
                f"{name} must be a scikit-learn estimator with "
                f"{', '.join(needs)}; {type(model).__name__} has no "
                f"{', '.join(missing)}."
            )
    return imputer, categorical_imputer
