"""LOCO, leave-one-covariate-out: does the model *need* a feature?

Permutation importance asks whether a fitted model *uses* a column; LOCO
refits the model without it and asks whether the loss then rises (Lei et al.
2018; Williamson et al. 2021). "Without it" means the raw column is made
uninformative, set to one constant learnt on the training fold (its mean, or
its mode for a categorical column), so every Pipeline keeps its columns and
keeps working. Each fold's importance is the loss increase on its held-out
rows against the full model refitted on the same fold.

The refits of one fold run either one by one through joblib (any estimator;
``n_jobs`` and ``joblib.parallel_config(backend="dask")`` spread them) or, for
our Keras wrappers, fused into one Keras model that trains every copy at once
(``_engines.fused_refits``, which says when that is exact).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_array, check_consistent_length

from ._cv_result import CVImportanceResult
from ._engines.dask_backend import reported_worker_loss
from ._engines.fused_refits import (
    FusedRefitImpossible,
    FusedRefits,
    fused_obstacle,
)
from ._engines.groups import cluster_feature_groups, resolve_feature_groups
from ._engines.refit_data import check_refittable, masked, refit_constants
from ._engines.scoring import ScoringContext, call_scorer
from ._inference import resolve_loss
from ._model import feature_names_of, has_keras_model, locate_keras_model
from ._names import column_sources
from ._result import ImportanceResult
from ._validation import check_choice

__all__ = ["loco_importance"]

REFITS = ("auto", "fused", "sequential")


def loco_importance(
    estimator,
    X,
    y,
    *,
    cv=5,
    feature_groups=None,
    refit: str = "auto",
    scoring=None,
    loss="auto",
    random_state=None,
    n_jobs: int | None = None,
    groups=None,
    cluster_threshold: float = 0.7,
    verbose: int = 0,
) -> CVImportanceResult:
    """Leave-one-covariate-out importance: the loss increase when the model is
    refitted without a feature.

    For every cross-validation fold and every feature (or group), a clone of
    ``estimator`` is refitted on the training rows with that raw column set to
    a constant learnt on those rows (the mean of a numeric column, the mode of
    a categorical, object or bool one); the held-out rows, with the column set
    to the same constant, are scored against the full model refitted on the
    same fold. A Pipeline keeps working: its columns are all still there.

    Parameters
    ----------
    estimator : estimator
        The model to refit (fitted or not: only clones are fitted). Any
        scikit-learn estimator, a Keras wrapper with a build function, or a
        Pipeline ending in one. Not a ``from_keras`` model: it is trained
        already and has no recipe to train it again.
    X : array-like or DataFrame of shape (n_samples, n_features)
        All the rows: they are split into training and held-out folds.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn's ``cross_validate``: an int gives (stratified, for
        classifiers) K-fold; at least 2 folds.
    feature_groups : "auto", list of lists, dict or None, default=None
        Columns removed together, as in :func:`permutation_importance`;
        ``"auto"`` groups columns whose absolute Spearman correlation
        reaches ``cluster_threshold``.
    refit : {"auto", "fused", "sequential"}, default="auto"
        How the refits of a fold run. ``"fused"`` trains the full network
        and every reduced one as one Keras model (our ``KerasRegressor`` and
        ``KerasClassifier``, bare or last in a Pipeline); each copy follows
        the trajectory of its lone fit, so the numbers equal sequential
        refits to float32 rounding. It is refused, saying why, where that
        does not hold (callbacks such as early stopping, validation data,
        class weights, global gradient clipping, several inputs or
        outputs). ``"sequential"`` fits one clone after the other through
        joblib. ``"auto"`` fuses where it can and says in
        ``details["refit_reason"]`` why it did not.
    scoring : str or callable, default=None
        The score whose drop is the importance (one metric); None uses
        ``estimator.score``.
    loss : str, callable or None, default="auto"
        The pointwise loss of each held-out row, for the per-row loss
        differences of each fold (see :func:`permutation_importance`).
    random_state : int, RandomState or None, default=None
        One seed per fold is drawn from it and set on every clone of that
        fold (every parameter named ``random_state``, the Keras wrappers'
        among them), so all refits are reproducible and the full and reduced
        models of a fold start from the same seed. None leaves the
        estimator's own seeds.
    n_jobs : int, default=None
        Sequential refits run in parallel through joblib.
    groups : array-like, default=None
        Group labels for group-aware splitters (``GroupKFold``).
    cluster_threshold : float, default=0.7
        The |rho| at which ``feature_groups="auto"`` puts columns together.
    verbose : int, default=0
        Show a progress bar over the refits when > 0.

    Returns
    -------
    CVImportanceResult
        One ``ImportanceResult`` per fold (``importances`` of shape
        (n_features, 1): the score drop; ``loss_differences``: the per-row
        loss increase on the held-out rows), ``pvalues()``/``fdr()``
        (Nadeau-Bengio over folds) and ``ci(corrected=True)``;
        ``details["refit"]`` says which refits ran.

    Raises
    ------
    ValueError
        Before any fit: y missing, fewer than 2 folds, bad ``feature_groups``,
        ``refit="fused"`` where fusing is not exact, a ``from_keras`` model,
        X with NaN or infinity going straight into a Keras wrapper.
    TypeError
        An estimator scikit-learn cannot clone, or a bare ``keras.Model``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skimportance import loco_importance
    >>> X = np.random.RandomState(0).normal(size=(120, 3))
    >>> y = 3 * X[:, 0] + X[:, 1]
    >>> result = loco_importance(LinearRegression(), X, y, cv=3)
    >>> result.ranking().tolist()
    ['x0', 'x1', 'x2']
    >>> bool(result.pvalues()["x0"] < 0.05)
    True
    """
    refit = check_choice("refit", refit, REFITS)
    if y is None:
        raise ValueError("loco_importance needs y, the true targets, to score refits.")
    check_refittable(estimator)
    if not hasattr(X, "iloc"):
        X = check_array(X, ensure_all_finite=False, dtype=None)
    n_columns = X.shape[1]
    check_consistent_length(y, X)
    column_groups, names, clustering = _groups(
        estimator, X, feature_groups, cluster_threshold
    )
    splitter, splits = _splits(cv, estimator, X, y, groups)
    scorer = check_scoring(estimator, scoring=scoring)
    resolve_loss(loss, estimator, None)  # the name, now; the classes after a fit

    fused, reason = _refit_choice(refit, estimator)
    if has_keras_model(estimator) and not isinstance(estimator, Pipeline):
        _check_finite_for_keras(X)  # nothing between X and the network
    seeds = _fold_seeds(random_state, len(splits))
    folds = [
        _FoldData(X, y, train, test, refit_constants(X, train, n_columns))
        for train, test in splits
    ]
    templates = [_seeded(clone(estimator), seed) for seed in seeds]
    variants = [None, *column_groups]
    bar = _progress(verbose, len(folds) * len(variants))
    outcomes = None
    if fused:
        try:
            outcomes = []
            for template, fold in zip(templates, folds):
                outcomes.append(_fused_fold(template, fold, variants, scorer, loss))
                bar.update(len(variants))
        except FusedRefitImpossible as impossible:  # seen once a copy is built
            if refit == "fused":
                raise ValueError(
                    f"refit='fused' is not exact here: {impossible}."
                ) from None
            fused, reason, outcomes = False, str(impossible), None
            bar.reset()
    if outcomes is None:
        outcomes = _sequential_refits(
            templates, folds, variants, scorer, loss, n_jobs, bar
        )
    bar.close()
    details = {
        "refit": "fused" if fused else "sequential",
        "refit_reason": reason,
        "cv": repr(splitter),
        "constants": "mean of numeric columns, mode of the others, per training fold",
    }
    if clustering is not None:
        details["clustering"] = clustering
    return _result(outcomes, splits, names, details)


# --- checks and setup ---------------------------------------------------------------


def _groups(estimator, X, feature_groups, cluster_threshold):
    n_columns = X.shape[1]
    column_names = feature_names_of(estimator, X, n_columns)
    clustering = None
    if isinstance(feature_groups, str) and feature_groups == "auto":
        feature_groups, clustering = cluster_feature_groups(
            X, column_names, cluster_threshold
        )
    column_groups, names = resolve_feature_groups(
        feature_groups, column_names, column_sources(X, n_columns)
    )
    return column_groups, names, clustering


def _splits(cv, estimator, X, y, groups) -> tuple:
    """(the splitter, its list of (train, test) index pairs)."""
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv < 2:
        raise ValueError(
            f"cv={cv}: LOCO compares refits on held-out folds and needs at least "
            "2 folds (cv=2 or more)."
        )
    splitter = check_cv(cv, y, classifier=is_classifier(estimator))
    splits = list(splitter.split(X, y, groups))
    if len(splits) < 2:
        raise ValueError(
            f"cv gives {len(splits)} split; LOCO needs at least 2 folds to test "
            "across them."
        )
    return splitter, splits


def _refit_choice(refit: str, estimator) -> tuple[bool, str | None]:
    if refit == "sequential":
        return False, "refit='sequential'"
    reason = fused_obstacle(estimator)
    if reason is not None and refit == "fused":
        raise ValueError(f"refit='fused' is not exact here: {reason}.")
    return reason is None, reason


def _check_finite_for_keras(X) -> None:
    """A Keras wrapper fed X straight: refuse NaN and infinity before any fit,
    in the words permutation_importance uses."""
    from ._validation import check_values_survive_cast

    values = check_array(X, ensure_all_finite=True, dtype="numeric")
    check_values_survive_cast(values, np.float32, "X")


def _fold_seeds(random_state, n_folds: int) -> list:
    if random_state is None:
        return [None] * n_folds
    rng = check_random_state(random_state)
    return [int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=n_folds)]


def _seeded(estimator, seed):
    """``estimator`` with every ``random_state`` parameter set to ``seed``."""
    if seed is None:
        return estimator
    keys = [
        key
        for key in estimator.get_params()
        if key == "random_state" or key.endswith("__random_state")
    ]
    return estimator.set_params(**dict.fromkeys(keys, seed)) if keys else estimator


def _progress(verbose: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="LOCO refits", unit="fit", disable=verbose <= 0)


# --- one fold -----------------------------------------------------------------------


class _FoldData:
    """One fold's rows and constants; masked copies are made on demand."""

    def __init__(self, X, y, train, test, constants):
        self.X_train = _safe_indexing(X, train)
        self.X_test = _safe_indexing(X, test)
        self.y_train = _safe_indexing(y, train)
        self.y_test = _safe_indexing(y, test)
        self.constants = constants

    def masked_train(self, columns):
        return masked(self.X_train, columns, self.constants)

    def masked_test(self, columns):
        return masked(self.X_test, columns, self.constants)


def _sequential_refits(templates, folds, variants, scorer, loss, n_jobs, bar):
    """Every (fold, variant) refit as one joblib task, in one Parallel call
    (so ``n_jobs`` and a dask cluster spread them all), regrouped per fold."""
    tasks = (
        delayed(_refit_and_score)(template, fold, columns, scorer, loss)
        for template, fold in zip(templates, folds)
        for columns in variants
    )
    scored = []
    # On a dask cluster, a watch ends the call once no worker is left.
    with reported_worker_loss("loco_importance"):
        for outcome in Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
            scored.append(outcome)
            bar.update(1)
    width = len(variants)
    return [scored[k : k + width] for k in range(0, len(scored), width)]


def _refit_and_score(template, fold: _FoldData, columns, scorer, loss):
    """Fit a clone of ``template`` without ``columns`` and score it (a joblib
    task: it travels with its fold's rows)."""
    model = clone(template).fit(fold.masked_train(columns), fold.y_train)
    X_test = fold.masked_test(columns)
    if has_keras_model(model):
        # One forward pass answers the scorer and the pointwise loss alike.
        located = locate_keras_model(model)
        raw = located.raw_predict(X_test)
        model = ScoringContext.from_located(located).stand_in(X_test, raw)
    return _score(model, X_test, fold, scorer, loss)


def _fused_fold(template, fold: _FoldData, variants, scorer, loss) -> list:
    """Every refit of one fold trained as one Keras model, then scored through
    stand-ins answering from the copies' raw outputs (``CachedEstimator``)."""
    refits = FusedRefits(template)
    fitted = refits.fit([fold.masked_train(c) for c in variants], fold.y_train)
    located = [locate_keras_model(model) for model in fitted]
    X_tests = [fold.masked_test(columns) for columns in variants]
    raw = refits.raw_outputs(
        [where.to_model_input(X) for where, X in zip(located, X_tests)]
    )
    return [
        _score(
            ScoringContext.from_located(where).stand_in(X, output),
            X,
            fold,
            scorer,
            loss,
        )
        for where, X, output in zip(located, X_tests, raw)
    ]


def _score(model, X_test, fold: _FoldData, scorer, loss):
    """(score, per-row losses or None) of ``model`` on the masked test rows."""
    score = call_scorer(scorer, model, X_test, fold.y_test)
    row_loss = resolve_loss(loss, model, fold.y_test)
    rows = None if row_loss is None else row_loss.rows(model, X_test, fold.y_test)
    return score, rows


def _result(outcomes, splits, names, details) -> CVImportanceResult:
    folds = []
    for outcome in outcomes:
        (full_score, full_rows), reduced = outcome[0], outcome[1:]
        scores = np.array([score for score, _ in reduced], dtype=float)
        differences = None
        if full_rows is not None:
            differences = np.array([rows - full_rows for _, rows in reduced])
        folds.append(
            ImportanceResult(
                (full_score - scores)[:, np.newaxis],
                names,
                method="loco",
                baseline_score=full_score,
                details=dict(details),
                loss_differences=differences,
            )
        )
    return CVImportanceResult(
        folds,
        test_scores=[outcome[0][0] for outcome in outcomes],
        n_train=[len(train) for train, _ in splits],
        n_test=[len(test) for _, test in splits],
        details=details,
    )
