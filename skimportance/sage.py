"""SAGE: Shapley additive global importance (Covert, Lundberg & Lee, 2020).

SAGE shares out the loss the model explains among the features, fairly in
Shapley's sense: a feature's value is the drop in loss when it joins a
coalition of the others, averaged over every order in which features can
join. A coalition's loss at row x is that of the prediction averaged over
background rows, the features outside the coalition taken from the
background (marginal imputation). So the values add up to the loss of the
mean prediction minus the model's loss (*efficiency*), and correlated
features share the credit instead of each losing it, as under permutation
importance.

The estimator is sage-importance's ``PermutationEstimator``: sample a row
and an order of the features, walk the order adding one feature at a time,
record each feature's drop in loss (here each order is also walked
backwards, an antithetic pair that cancels most of the order's noise); stop
when the largest standard error is
below ``convergence`` times the range of the values. The coalitions are
scored in large batches on the engines (``_engines.coalitions``), for a
Keras network as rank-k updates of its first Dense layer where it applies.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, check_scalar

from ._budget import budget_bytes, check_bookkeeping
from ._engines.coalitions import (
    AUTO_MIN_COLUMNS,
    ROWS_PER_CALL,
    ExactCoalitions,
    IncrementalCoalitions,
    IncrementalUnavailable,
)
from ._engines.keras_engine import ALGORITHMS, _model_rows
from ._engines.run import prepare_run
from ._engines.sage_walks import (
    Walk,
    end_losses,
    estimate,
    sample_walks,
    standard_errors,
)
from ._inference import resolve_loss
from ._result import ImportanceResult
from ._validation import (
    check_batch_size,
    check_choice,
    check_model_input,
    check_positive_int,
)

__all__ = ["sage_importance"]

IMPUTERS = ("marginal",)


def sage_importance(
    estimator,
    X,
    y,
    *,
    background=None,
    background_size: int | None = 100,
    imputer: str = "marginal",
    convergence: float = 0.025,
    max_permutations: int = 10_000,
    feature_groups=None,
    loss="auto",
    algorithm: str = "auto",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    random_state=None,
    verbose: int = 0,
) -> ImportanceResult:
    """SAGE values: each feature's fair share of the loss the model explains.

    Parameters
    ----------
    estimator : object
        A fitted estimator: a Keras wrapper, a Pipeline ending in one, or any
        fitted scikit-learn regressor, or classifier with ``predict_proba``.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        Rows to explain, as the estimator takes them (raw columns for a
        Pipeline).
    y : array-like of shape (n_samples,)
        True targets.
    background : ndarray or DataFrame, default=None
        Rows the features outside a coalition are drawn from (typically
        training rows), with the columns of ``X``. None draws them from
        ``X`` (``details["background"]`` says so).
    background_size : int or None, default=100
        At most this many background rows, drawn at random; None uses all.
        Each coalition costs one prediction per background row.
    imputer : {"marginal"}, default="marginal"
        How features outside a coalition are filled: from the background
        rows, independently of the coalition (marginal imputation).
    convergence : float, default=0.025
        Stop when the largest standard error is below this fraction of the
        range of the values (sage-importance's rule).
    max_permutations : int, default=10_000
        Stop after this many sampled (row, order) walks even if not
        converged (with a ``ConvergenceWarning``); each order is walked
        forwards and backwards, so the count is rounded up to even.
    feature_groups : list of lists, dict or None, default=None
        Columns that join coalitions together; columns in no group always
        keep the explained row's values.
    loss : {"auto", "squared_error", "absolute_error", "log_loss"} or callable
        The per-row loss of the averaged prediction. ``"auto"``: log loss for
        classifiers, squared error for regressors. A callable takes
        ``(y_true, averaged response)`` and returns one value per row.
    algorithm : {"auto", "exact", "incremental"}, default="auto"
        Keras only. ``"incremental"`` computes every group's share of the
        first Dense layer once and adds a rank-k update per joining group;
        ``"exact"`` runs the whole network on every combination; ``"auto"``
        is incremental where the network and preprocessing allow it and the
        network takes at least 32 columns (below, the first layer is too
        cheap to be worth saving). ``details["algorithm"]`` says which ran.
    batch_size : int or None, default=None
        Keras only: the most rows per network call; None lets the memory
        budget (``sklearn.set_config(working_memory=...)``) decide.
    n_jobs : int or None, default=None
        Chunks of coalitions scored in parallel threads through joblib.
    random_state : int, RandomState instance or None, default=None
        Seeds the background sample, the rows and the orders.
    verbose : int, default=0
        Show a progress bar when > 0.

    Returns
    -------
    ImportanceResult
        ``importances`` (n_features, n_permutations / 2): per sampled
        order, each feature's drop in loss averaged with the reversed
        order's (an antithetic pair: one independent draw), corrected with
        the pair's total as a control variate, so ``importances_mean`` are
        the SAGE values and :meth:`~ImportanceResult.ci` their intervals. ``details``:
        ``standard_errors``, ``n_permutations``, ``converged``,
        ``convergence_ratio``, ``efficiency_gap`` (sum of values minus the
        explained loss over all of X; 0 to rounding, by the control variate),
        ``uncorrected_efficiency_gap`` (the same for the plain means of the
        walks) and its standard error ``efficiency_se``,
        ``mean_prediction_loss``, ``model_loss``, ``background``, ``loss``,
        ``algorithm``.

    Raises
    ------
    ValueError
        y missing, a background with other columns, no rows, NaN or
        infinity, ``convergence`` not in (0, 1), an imputer other than
        ``"marginal"``, a loss that cannot average predictions, one row's
        coalitions over the memory budget. Raised before any prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skimportance import sage_importance
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = 3 * X[:, 0] + X[:, 1]
    >>> model = LinearRegression().fit(X, y)
    >>> result = sage_importance(model, X, y, random_state=0)
    >>> result.ranking().tolist()
    ['x0', 'x1', 'x2']
    >>> bool(abs(result.details["efficiency_gap"]) < 0.1)
    True
    """
    rng = check_random_state(random_state)
    check_choice("algorithm", algorithm, ALGORITHMS)
    if isinstance(imputer, str) and imputer == "conditional":
        raise ValueError(
            "imputer='conditional' is not supported by sage_importance: the "
            "conditional sampler draws one group given all the others, while SAGE "
            "needs the features outside every coalition given those inside. "
            "Supported: imputer='marginal'."
        )
    check_choice("imputer", imputer, IMPUTERS)
    convergence = check_scalar(
        convergence,
        "convergence",
        (float, int),
        min_val=0,
        max_val=1,
        include_boundaries="neither",
    )
    max_permutations = check_positive_int("max_permutations", max_permutations)
    if background_size is not None:
        background_size = check_positive_int("background_size", background_size)
    if y is None:
        raise ValueError(
            "sage_importance needs y, the true targets: SAGE shares out the "
            "model's loss."
        )
    run = prepare_run(
        estimator, X, y, caller="sage_importance", feature_groups=feature_groups
    )
    row_loss = _averaging_loss(loss, estimator, y)
    X, y = run.X, np.asarray(y)
    background, source = _background(background, X, background_size, rng)
    groups, d = run.groups, len(run.groups)
    check_bookkeeping("max_permutations", max_permutations, 8 * d * max_permutations)

    engine, chosen = _engine(run, background, row_loss, algorithm, batch_size)
    # A row's path of coalitions must fit in one chunk.
    per_sample = max(1, d - 1) * len(background)
    if per_sample * engine.bytes_per_row > budget_bytes() / 2:
        raise ValueError(
            f"One row's {max(1, d - 1)} coalitions x {len(background)} background "
            f"rows = {per_sample:,} combinations need about "
            f"{per_sample * engine.bytes_per_row / 2**20:,.0f} MiB, more than half "
            f"the memory budget of {budget_bytes() / 2**20:,.0f} MiB; lower "
            "background_size, group the features, or raise the budget with "
            "sklearn.set_config(working_memory=<MiB>)."
        )

    ends = end_losses(run, engine, background, row_loss, y, batch_size)
    loss_all, loss_empty, _ = ends
    walk = Walk(engine, row_loss, y, ends, d)
    samples, ratio = sample_walks(
        walk, rng, len(X), d, convergence, max_permutations, n_jobs, verbose
    )

    adjusted = estimate(samples, walk.explained)
    values, errors = adjusted.mean(axis=0), standard_errors(adjusted)
    n_samples = len(samples)  # antithetic pairs
    totals = samples.sum(axis=1)
    converged = ratio < convergence
    if not converged:
        warnings.warn(
            f"sage_importance did not converge within max_permutations="
            f"{max_permutations}: the largest standard error is {ratio:.3g} of the "
            f"values' range (target {convergence}).",
            ConvergenceWarning,
            stacklevel=2,
        )
    details = {
        "engine": run.engine,
        **chosen,
        "loss": row_loss.name,
        "background": source,
        "n_permutations": 2 * n_samples,
        "converged": bool(converged),
        "convergence_ratio": float(ratio),
        "standard_errors": errors,
        "mean_prediction_loss": float(loss_empty.mean()),
        "model_loss": float(loss_all.mean()),
        "efficiency_gap": float(values.sum() - walk.explained),
        # The plain means of the walks, before the control variate: their
        # sum misses the explained loss by sampling noise only.
        "uncorrected_efficiency_gap": float(totals.mean() - walk.explained),
        "efficiency_se": float(standard_errors(totals[:, np.newaxis])[0]),
    }
    if run.grouped:
        details["feature_groups"] = {
            name: [str(c) for c in run.column_names[cols]]
            for name, cols in zip(run.names, groups)
        }
    return ImportanceResult(adjusted.T, run.names, method="sage", details=details)


# --- checks -----------------------------------------------------------------------


def _averaging_loss(loss, estimator, y):
    """The pointwise loss, refused where averaged predictions make no sense."""
    row_loss = resolve_loss(loss, estimator, y)
    if row_loss is None or row_loss.name == "zero_one":
        raise ValueError(
            "sage_importance scores predictions averaged over background rows, "
            "which needs a loss of probabilities or real values: "
            "'squared_error', 'absolute_error', 'log_loss' (a classifier with "
            f"predict_proba) or a callable; got loss={loss!r}"
            + (" (a classifier without predict_proba)." if row_loss else ".")
        )
    return row_loss


def _background(background, X, size, rng):
    """(background rows, how they were chosen), checked against X."""
    if background is None:
        source, background = "X", X
    else:
        source = "given"
        if hasattr(X, "iloc") != hasattr(background, "iloc"):
            raise ValueError(
                "background must be of the same kind as X (both DataFrames or "
                f"both arrays); got {type(background).__name__} for "
                f"{type(X).__name__}."
            )
        if hasattr(X, "iloc"):
            if list(background.columns) != list(X.columns):
                raise ValueError(
                    "background must have the columns of X, in the same order; "
                    f"got {list(background.columns)} for {list(X.columns)}."
                )
        else:
            background = np.asarray(background)
            if background.ndim != 2 or background.shape[1] != X.shape[1]:
                raise ValueError(
                    f"background must have the {X.shape[1]} columns of X; got an "
                    f"array of shape {background.shape}."
                )
        if len(background) == 0:
            raise ValueError("background has no rows.")
        _check_finite(background)
    if size is not None and len(background) > size:
        rows = np.sort(rng.choice(len(background), size, replace=False))
        background = (
            background.iloc[rows] if hasattr(background, "iloc") else (background[rows])
        )
        source = f"{size} rows drawn from {source}"
    else:
        source = f"all {len(background)} rows of {source}"
    return background, source


def _check_finite(background):
    if hasattr(background, "iloc"):
        numbers = background.select_dtypes("number").to_numpy(dtype=float)
    else:
        try:
            numbers = np.asarray(background, dtype=float)
        except (TypeError, ValueError):
            return  # strings: the estimator's own checks speak for them
    if numbers.size and not np.isfinite(numbers).all():
        raise ValueError("background contains NaN or infinity.")


def _engine(run, background, row_loss, algorithm, batch_size):
    """(coalition engine, details saying which ran and why); the data are
    checked before any prediction."""
    method = row_loss.response_method
    located = run.located
    if located is None:
        if algorithm == "incremental":
            raise ValueError(
                "algorithm='incremental' does not apply: it needs a Keras model "
                f"inside the estimator, got {type(run.estimator).__name__}."
            )
        predict = getattr(run.estimator, method)
        bytes_per_row = 24.0 * run.X.shape[1]
        engine = ExactCoalitions(predict, run.X, background, run.groups, bytes_per_row)
        return engine, {"algorithm": "exact"}
    check_batch_size(located, batch_size)
    X_model = check_model_input(located, run.X, caller=run.caller)
    try:
        check_model_input(located, background, caller=run.caller)
    except ValueError as exc:
        raise ValueError(f"background: {exc}") from None
    wide = X_model.shape[1] >= AUTO_MIN_COLUMNS
    why_not = {}
    if algorithm == "incremental" or (algorithm == "auto" and wide):
        try:
            engine = IncrementalCoalitions.plan(
                located, run.X, background, run.groups, method
            )
            return engine, {"algorithm": "incremental"}
        except IncrementalUnavailable as exc:
            if algorithm == "incremental":
                raise ValueError(
                    f"algorithm='incremental' does not apply: {exc}."
                ) from exc
            why_not = {"incremental_unavailable": str(exc)}

    per_call = batch_size or min(ROWS_PER_CALL, located.rows_per_call)

    def predict(rows):
        raw = located.forward(_model_rows(located, rows), per_call)
        return located.decode(raw, method)

    bytes_per_row = 8.0 * (run.X.shape[1] + X_model.shape[1]) + located.bytes_per_row
    engine = ExactCoalitions(predict, run.X, background, run.groups, bytes_per_row)
    return engine, {"algorithm": "exact", **why_not}
