"""Permutation importance: scikit-learn's numbers, batched for Keras models.

The importance of a column is how much the score drops when it is shuffled.
The run is checked, planned and scored by the shared engines of
``_engines.run``: one plan of random draws (scikit-learn's own), consumed by the
batched Keras engine or by the generic engine (``_engines.generic_engine``) for
any other estimator, so
both return the numbers ``sklearn.inspection.permutation_importance`` returns
for the same ``random_state``.
"""

from __future__ import annotations

from ._engines.plan import ShuffledColumns, draw_permutation_plan
from ._engines.run import prepare_permutation_run
from ._inference import resolve_loss
from ._result import ImportanceResult

__all__ = ["permutation_importance"]


def permutation_importance(
    estimator,
    X,
    y,
    *,
    scoring=None,
    n_repeats: int = 5,
    n_jobs: int | None = None,
    random_state=None,
    sample_weight=None,
    max_samples: float | int = 1.0,
    feature_groups=None,
    batch_size: int | None = None,
    verbose: int = 0,
    loss="auto",
    cluster_threshold: float = 0.7,
    algorithm: str = "auto",
) -> ImportanceResult | dict[str, ImportanceResult]:
    """Permutation importance, a drop-in for scikit-learn's, fast for Keras.

    The importance of a feature is how much the score drops when that column
    of ``X`` is shuffled. Same arguments and same numbers as
    :func:`sklearn.inspection.permutation_importance` for the same
    ``random_state`` (to float32 rounding when a Keras model is inside). When
    a Keras model is inside ``estimator`` (a Keras wrapper or a Pipeline
    ending in one), all permuted rows go through the network in large batches
    instead of one ``predict`` call per feature and repeat.

    Parameters
    ----------
    estimator : object
        A fitted estimator: a Keras wrapper (ours, scikeras's or
        ``keras.wrappers``), a Pipeline ending in one, or any fitted
        scikit-learn estimator.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        Data to compute the importances on, as the estimator takes it: for a
        Pipeline, the raw columns are permuted, before any preprocessing.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        Targets (None for unsupervised scorers).
    scoring : str, callable, list, tuple, dict or None, default=None
        As in scikit-learn: None uses ``estimator.score``; a list, tuple, dict
        or a callable returning a dict gives several metrics at once.
    n_repeats : int, default=5
        Number of times each feature (or group) is permuted.
    n_jobs : int or None, default=None
        Parallel jobs, through joblib (so ``joblib.parallel_config`` applies).
        The generic engine runs features in parallel, the Keras engine scores
        chunks in worker threads while the next forward pass runs.
    random_state : int, RandomState instance or None, default=None
        Controls the permutations, exactly as in scikit-learn.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights used in scoring.
    max_samples : int or float, default=1.0
        Rows drawn (without replacement) from ``X`` for the permuted scores:
        an int is a count, a float a fraction of ``n_samples``. The baseline
        score always uses all of ``X``, as in scikit-learn.
    feature_groups : "auto", list of lists, dict or None, default=None
        Columns to permute together, with one shared row permutation per group
        (so one-hot rows stay valid): a list of lists of column positions or
        names, or a dict group name -> columns. Only the listed columns are
        evaluated. Groups of one column reproduce the ungrouped result.
        ``"auto"`` clusters the numeric columns hierarchically on their
        absolute Spearman correlation and groups those whose |rho| reaches
        ``cluster_threshold``; each group is named after its members (joined
        with ``"+"``) and the dendrogram is in ``result.details["clustering"]``
        (drawn by :meth:`ImportanceDisplay.plot_dendrogram`).
    batch_size : int or None, default=None
        Keras engine only: the most rows fed to the network in one call. None
        lets the memory budget decide; a given value whose batches would not
        fit the budget is refused. Memory is bounded by scikit-learn's
        ``working_memory`` (``sklearn.set_config``): the permuted rows are
        built in chunks that fit it, each holding whole (feature, repeat)
        slices, so at least one permuted copy of ``X``.
    verbose : int, default=0
        Show a progress bar when > 0.
    loss : str, callable or None, default="auto"
        The pointwise loss recorded per row for :meth:`ImportanceResult.pvalues`:
        ``"auto"`` (``"log_loss"`` for classifiers with ``predict_proba``,
        ``"zero_one"`` for other classifiers, ``"squared_error"`` for
        regressors; none for multi-output classifiers or without y), any of
        these names, ``"absolute_error"``, a callable
        ``loss(y_true, y_pred) -> one value per row``, or None to record
        none. The Keras engine computes it from the predictions it
        already has; the generic engine calls the estimator once more per
        (feature, repeat) for it, which ``loss=None`` saves. The importances
        themselves do not depend on it.
    cluster_threshold : float, default=0.7
        The |rho| at which ``feature_groups="auto"`` puts columns together.
    algorithm : {"auto", "exact", "incremental"}, default="auto"
        Keras engine only. ``"exact"`` runs the network on every permuted
        row. ``"incremental"`` computes the first Dense layer of the
        unpermuted rows once and adds, per feature and repeat, the rank-k
        change of the permuted group's k model columns, then runs only the
        rest of the network: far faster on wide inputs, equal to float32
        rounding. It needs a network whose first layer after the input is
        Dense, and preprocessing that is row-wise and column-separable on
        ``X`` (checked on the data; one-hot encoders and scalers in a
        ColumnTransformer are, PCA is not); otherwise it raises a ValueError
        saying why. ``"auto"`` runs the incremental engine where it applies
        and its FLOP estimate is well below the exact one, else the exact
        engine. ``details["algorithm"]`` says which ran, ``details["flops"]``
        the estimate.

    Returns
    -------
    ImportanceResult or dict of str -> ImportanceResult
        ``importances`` of shape (n_features or n_groups, n_repeats),
        ``importances_mean``, ``importances_std``, ``feature_names`` and
        ``baseline_score``; ``details["engine"]`` says which engine ran;
        ``loss_differences`` for :meth:`~ImportanceResult.pvalues`. For
        several metrics, a dict keyed like scikit-learn's.

    Raises
    ------
    ValueError
        Bad ``n_repeats``/``max_samples``/``batch_size``/``algorithm``, an
        ``n_repeats`` or ``batch_size`` whose work would not fit the memory
        budget, X with NaN going into a Keras model, X with the wrong number
        of columns, y or sample_weight of the wrong length, bad
        ``feature_groups``. Raised before any data reaches the network.
        Where scikit-learn refuses the same input, the
        error is scikit-learn's, in its words (``InvalidParameterError``
        "The 'max_samples' parameter of permutation_importance must be ...",
        "max_samples must be <= n_samples"), so code written against
        scikit-learn keeps matching. Stricter than scikit-learn: a bool is no
        count (``n_repeats=True`` raises a TypeError).
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.

    See Also
    --------
    sklearn.inspection.permutation_importance : The reference implementation.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from skimportance import from_keras, permutation_importance
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, use_bias=False)])
    >>> model.set_weights([np.array([[2.0], [1.0], [0.0]])])
    >>> reg = from_keras(model, task="regression")
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> y = X @ np.array([2.0, 1.0, 0.0])
    >>> result = permutation_importance(reg, X, y, n_repeats=3, random_state=0)
    >>> result.ranking().tolist()
    ['x0', 'x1', 'x2']
    >>> grouped = permutation_importance(reg, X, y, random_state=0,
    ...                                  feature_groups={"x0 and x1": [0, 1]})
    >>> grouped.feature_names.tolist()
    ['x0 and x1']
    """
    run, settings = prepare_permutation_run(
        estimator,
        X,
        y,
        caller="permutation_importance",
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
    )
    n_repeats, batch_size, algorithm = settings
    row_loss = resolve_loss(loss, estimator, y)
    n_samples = run.X.shape[0]
    plan = draw_permutation_plan(random_state, n_samples, run.n_rows, n_repeats)
    scored = run.scores(
        plan,
        ShuffledColumns(plan, run.groups),
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="permutation importance",
        row_loss=row_loss,
        algorithm=algorithm,
    )
    details = {"loss": None if row_loss is None else row_loss.name}
    return run.results(scored, "permutation", details)
