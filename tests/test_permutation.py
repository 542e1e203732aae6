"""permutation_importance: scikit-learn's numbers, grouped features, strict inputs.

Equality tests compare against ``sklearn.inspection.permutation_importance``
run on the very same fitted estimator; nothing here hard-codes an importance.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import Ridge
from sklearn.metrics import (
    make_scorer,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from sklearn.pipeline import make_pipeline

from skimportance import ImportanceResult, permutation_importance
from skimportance._model import LocatedModel

ATOL = 1e-5  # float32 rounding of the network, the contract's tolerance


def assert_matches_sklearn(ours, theirs):
    if "importances" in theirs:  # a single Bunch
        assert isinstance(ours, ImportanceResult)
        np.testing.assert_allclose(
            ours.importances, theirs.importances, rtol=0, atol=ATOL
        )
        np.testing.assert_allclose(
            ours.importances_mean, theirs.importances_mean, atol=ATOL
        )
        np.testing.assert_allclose(
            ours.importances_std, theirs.importances_std, atol=ATOL
        )
        return
    assert list(ours) == list(theirs)
    for name in theirs:
        assert_matches_sklearn(ours[name], theirs[name])


def both(estimator, X, y, **kwargs):
    """Run ours and scikit-learn's with the same arguments (and equal RNGs)."""
    ours = permutation_importance(estimator, X, y, **copy.deepcopy(kwargs))
    theirs = sklearn_permutation_importance(estimator, X, y, **kwargs)
    return ours, theirs


def dense_model(n_inputs, hidden=8, seed=0):
    """A small Keras MLP with seeded weights: no training needed."""
    import keras

    rng = np.random.default_rng(seed)
    model = keras.Sequential(
        [
            keras.Input((n_inputs,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def tiny():
    """(regressor, X, y): a 4-feature from_keras MLP, cheap for sklearn to loop over."""
    from skimportance import from_keras

    reg = from_keras(dense_model(4), task="regression")
    X = np.random.default_rng(1).normal(size=(120, 4))
    y = reg.predict(X) + np.random.default_rng(2).normal(scale=0.3, size=120)
    return reg, X, y


@pytest.fixture(scope="module")
def ridge(diabetes):
    X, y = diabetes
    return Ridge().fit(X, y)


@pytest.fixture
def no_forward(monkeypatch):
    """Fail loudly if any data reaches the Keras model."""

    def forward(self, X_model, batch_size=None):
        raise AssertionError("data reached the Keras model")

    monkeypatch.setattr(LocatedModel, "forward", forward)


# --- equality with scikit-learn ---------------------------------------------------


def test_regressor_pipeline_with_dataframe(diabetes_pipeline, diabetes):
    X, y = diabetes
    ours, theirs = both(diabetes_pipeline, X, y, n_repeats=2, random_state=0)
    assert_matches_sklearn(ours, theirs)
    assert ours.details["engine"] == "keras"
    assert ours.feature_names.tolist() == list(X.columns)
    assert ours.baseline_score == pytest.approx(diabetes_pipeline.score(X, y), abs=ATOL)


def test_regressor_with_numpy(friedman_regressor, friedman):
    X, y = friedman
    ours, theirs = both(
        friedman_regressor,
        X,
        y,
        scoring="neg_mean_absolute_error",
        n_repeats=2,
        random_state=np.random.RandomState(3),
    )
    assert_matches_sklearn(ours, theirs)
    assert ours.feature_names.tolist() == [f"x{i}" for i in range(10)]


def test_binary_classifier_multimetric(binary_classifier, breast_cancer):
    X, y = breast_cancer
    scoring = ["accuracy", "roc_auc", "neg_log_loss"]
    ours, theirs = both(
        binary_classifier, X, y, scoring=scoring, n_repeats=1, random_state=1
    )
    assert_matches_sklearn(ours, theirs)
    assert all(result.details["engine"] == "keras" for result in ours.values())


@pytest.mark.parametrize("scoring", [None, "neg_log_loss"])
def test_multiclass_classifier(multiclass_classifier, wine, scoring):
    X, y = wine
    ours, theirs = both(
        multiclass_classifier, X, y, scoring=scoring, n_repeats=1, random_state=2
    )
    assert_matches_sklearn(ours, theirs)


def test_sample_weight_with_zeros_and_default_score(multiclass_classifier, wine):
    # estimator.score of scikeras drops zero-weight rows: the cached path must too.
    X, y = wine
    weights = np.random.default_rng(0).integers(0, 3, size=len(y))
    ours, theirs = both(
        multiclass_classifier, X, y, sample_weight=weights, n_repeats=1, random_state=0
    )
    assert_matches_sklearn(ours, theirs)


def test_mixed_dataframe_with_missing_values(rng):
    # Categorical, string and integer columns, NaN imputed inside the Pipeline:
    # the raw columns are permuted, the preprocessing runs on every chunk.
    from conftest import make_regressor
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n = 200
    X = pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "text": rng.choice(["u", "v"], n).astype(object),
            "count": rng.integers(0, 5, n),
        }
    )
    X.loc[::7, "num"] = np.nan
    y = np.nan_to_num(X["num"]) + 2 * (X["cat"] == "a") + (X["text"] == "u")
    encode = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), ["num", "count"]),
        (OneHotEncoder(), ["cat", "text"]),
    )
    model = make_pipeline(encode, make_regressor(epochs=2)).fit(X, y)
    ours, theirs = both(model, X, y, n_repeats=2, max_samples=0.6, random_state=0)
    assert_matches_sklearn(ours, theirs)
    assert ours.details["engine"] == "keras"


def two_metrics(estimator, X, y):
    prediction = estimator.predict(X)
    return {"r2": r2_score(y, prediction), "mae": -mean_absolute_error(y, prediction)}


@pytest.mark.parametrize(
    "scoring",
    [
        ["r2", "neg_mean_squared_error"],
        ("neg_median_absolute_error", "r2"),
        {"mse": make_scorer(mean_squared_error, greater_is_better=False), "r2": "r2"},
        two_metrics,
    ],
    ids=["list", "tuple", "dict", "callable-dict"],
)
def test_multimetric_scoring(tiny, scoring):
    reg, X, y = tiny
    ours, theirs = both(reg, X, y, scoring=scoring, n_repeats=2, random_state=0)
    assert_matches_sklearn(ours, theirs)


@pytest.mark.parametrize("max_samples", [0.5, 37, 120])
def test_max_samples(tiny, max_samples):
    reg, X, y = tiny
    ours, theirs = both(reg, X, y, max_samples=max_samples, n_repeats=2, random_state=4)
    assert_matches_sklearn(ours, theirs)


def test_sample_weight(tiny):
    reg, X, y = tiny
    weights = np.random.default_rng(5).uniform(0, 2, size=len(y))
    ours, theirs = both(
        reg, X, y, sample_weight=weights, max_samples=0.7, n_repeats=2, random_state=0
    )
    assert_matches_sklearn(ours, theirs)


def test_scorer_predicting_other_rows_is_served_by_the_estimator(tiny):
    # The stand-in answers from its cache only for the rows it was built for.
    reg, X, y = tiny

    def first_half_r2(estimator, X, y):
        half = len(y) // 2
        return r2_score(y[:half], estimator.predict(np.array(X)[:half]))

    ours, theirs = both(reg, X, y, scoring=first_half_r2, n_repeats=2, random_state=0)
    assert_matches_sklearn(ours, theirs)


@pytest.mark.parametrize("as_frame", [True, False])
def test_generic_estimator(diabetes, ridge, as_frame):
    X, y = diabetes
    estimator = ridge if as_frame else Ridge().fit(X.to_numpy(), y)
    X = X if as_frame else X.to_numpy()
    ours, theirs = both(
        estimator,
        X,
        y,
        n_repeats=3,
        max_samples=200,
        random_state=np.random.RandomState(7),
    )
    assert_matches_sklearn(ours, theirs)
    assert ours.details["engine"] == "generic"


def test_random_state_instance_is_consumed_like_sklearn(ridge, diabetes):
    X, y = diabetes
    ours_rng, their_rng = np.random.RandomState(11), np.random.RandomState(11)
    permutation_importance(ridge, X, y, n_repeats=1, random_state=ours_rng)
    sklearn_permutation_importance(ridge, X, y, n_repeats=1, random_state=their_rng)
    assert ours_rng.randint(10**9) == their_rng.randint(10**9)


def test_generic_path_never_imports_tensorflow():
    code = (
        "import sys\n"
        "import skimportance.permutation as p\n"
        "assert 'tensorflow' not in sys.modules, 'import pulled in tensorflow'\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "p.permutation_importance(Ridge().fit(X, y), X, y, n_repeats=2,\n"
        "                         feature_groups=[[0, 1], [2]])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'scikeras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- feature groups ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_singleton_groups_equal_ungrouped(tiny, engine):
    reg, X, y = tiny
    if engine == "generic":
        reg = Ridge().fit(X, y)
    plain = permutation_importance(reg, X, y, n_repeats=3, random_state=0)
    singletons = permutation_importance(
        reg, X, y, n_repeats=3, random_state=0, feature_groups=[[0], ["x1"], [2], [3]]
    )
    assert plain.details["engine"] == engine
    np.testing.assert_allclose(
        singletons.importances, plain.importances, rtol=0, atol=1e-7
    )
    assert singletons.feature_names.tolist() == plain.feature_names.tolist()


def test_group_names_and_columns(diabetes_pipeline, diabetes):
    X, y = diabetes
    named = permutation_importance(
        diabetes_pipeline,
        X,
        y,
        n_repeats=2,
        random_state=0,
        feature_groups={"body": ["bmi", "bp"], "serum": ["s1", "s2", "s3"], "age": [0]},
    )
    assert named.feature_names.tolist() == ["body", "serum", "age"]
    assert named.details["feature_groups"]["body"] == ["bmi", "bp"]
    joined = permutation_importance(
        diabetes_pipeline,
        X,
        y,
        n_repeats=2,
        random_state=0,
        feature_groups=[["bmi", "bp"], [4, 5, 6], ["age"]],
    )
    assert joined.feature_names.tolist() == ["bmi+bp", "s1+s2+s3", "age"]
    np.testing.assert_allclose(joined.importances, named.importances, rtol=0, atol=1e-7)


def test_redundant_pair_matters_far_more_jointly():
    # y depends on x through two identical columns: shuffling one leaves the
    # other to carry half the signal, shuffling both removes it.
    import keras

    from skimportance import from_keras

    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(2, 400))
    X = np.column_stack([x, x, z])
    y = 2 * x + 0.3 * z
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.array([[1.0], [1.0], [0.3]])])
    reg = from_keras(model, task="regression")
    alone = permutation_importance(reg, X, y, n_repeats=3, random_state=0)
    pair = permutation_importance(
        reg, X, y, n_repeats=3, random_state=0, feature_groups={"x": [0, 1], "z": [2]}
    )
    joint, single = pair.importances_mean[0], alone.importances_mean[:2].max()
    assert joint > 3 * single
    assert pair.importances_mean[1] == pytest.approx(
        alone.importances_mean[2], abs=1e-6
    )


class RowRecorder(TransformerMixin, BaseEstimator):
    """Passes rows through and keeps a copy of every batch it is shown."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        self.seen_ = []
        return self

    def transform(self, X):
        self.seen_.append(np.array(X, dtype=float, copy=True))
        return np.asarray(X, dtype=float)


@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_one_hot_rows_stay_valid(engine):
    from skimportance import from_keras

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 3, size=150)
    X = np.column_stack([np.eye(3)[colour], rng.normal(size=(150, 2))])
    y = colour + X[:, 3]
    if engine == "keras":  # from_keras is fitted already: fit only the recorder
        pipeline = make_pipeline(
            RowRecorder().fit(X), from_keras(dense_model(5), task="regression")
        )
    else:
        pipeline = make_pipeline(RowRecorder(), Ridge()).fit(X, y)
    recorder = pipeline[0]

    def rows_seen():
        rows = np.concatenate(recorder.seen_)
        recorder.seen_.clear()
        return rows[:, :3]

    groups = {"colour": [0, 1, 2], "x3": [3], "x4": [4]}
    result = permutation_importance(
        pipeline, X, y, n_repeats=3, random_state=0, feature_groups=groups
    )
    assert result.details["engine"] == engine
    one_hot = rows_seen()
    assert len(one_hot) >= 3 * 3 * len(X)
    assert np.all(one_hot.sum(axis=1) == 1) and set(np.unique(one_hot)) == {0.0, 1.0}

    # Without the group, columns are shuffled apart: the check above has teeth.
    permutation_importance(pipeline, X, y, n_repeats=3, random_state=0)
    assert np.any(rows_seen().sum(axis=1) != 1)


# --- inputs, parallelism, chunking ---------------------------------------------------


@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_inputs_are_not_mutated(tiny, engine):
    reg, X, y = tiny
    if engine == "generic":
        reg = Ridge().fit(X, y)
    X_ro, y_ro = X.copy(), y.copy()
    weights = np.linspace(0.5, 1.5, len(y))
    for array in (X_ro, y_ro, weights):
        array.setflags(write=False)
    permutation_importance(
        reg,
        X_ro,
        y_ro,
        sample_weight=weights,
        n_repeats=2,
        max_samples=0.5,
        random_state=0,
    )
    np.testing.assert_array_equal(X_ro, X)
    np.testing.assert_array_equal(y_ro, y)


@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_dataframe_is_not_mutated(diabetes_pipeline, ridge, diabetes, engine):
    X, y = diabetes
    estimator = diabetes_pipeline if engine == "keras" else ridge
    X_before = X.copy()
    for groups in (None, {"body": ["bmi", "bp"]}):
        kwargs = dict(n_repeats=2, max_samples=0.5, feature_groups=groups)
        permutation_importance(estimator, X, y, random_state=0, **kwargs)
    pd.testing.assert_frame_equal(X, X_before)


@pytest.mark.parametrize("engine", ["keras", "generic"])
def test_n_jobs_give_the_same_numbers(diabetes_pipeline, ridge, diabetes, engine):
    X, y = diabetes
    estimator = diabetes_pipeline if engine == "keras" else ridge
    kwargs = dict(n_repeats=3, random_state=0, feature_groups=[[0, 1], [2], [3, 4, 5]])
    serial = permutation_importance(estimator, X, y, n_jobs=1, **kwargs)
    parallel = permutation_importance(estimator, X, y, n_jobs=2, **kwargs)
    assert serial.details["engine"] == engine
    np.testing.assert_array_equal(parallel.importances, serial.importances)


@pytest.mark.parametrize("batch_size", [50, 300, 10_000])
def test_chunking_does_not_change_the_numbers(tiny, batch_size):
    # 50: slices larger than a chunk; 300: two slices per chunk; 10_000: all at once.
    reg, X, y = tiny
    reference = permutation_importance(reg, X, y, n_repeats=3, random_state=0)
    chunked = permutation_importance(
        reg, X, y, n_repeats=3, random_state=0, batch_size=batch_size
    )
    np.testing.assert_allclose(
        chunked.importances, reference.importances, rtol=0, atol=ATOL
    )


def test_progress_bar_is_opt_in(tiny, capsys):
    reg, X, y = tiny
    quiet = permutation_importance(reg, X, y, n_repeats=2, random_state=0)
    assert capsys.readouterr().err == ""
    shown = permutation_importance(reg, X, y, n_repeats=2, random_state=0, verbose=1)
    assert "permutation importance" in capsys.readouterr().err
    np.testing.assert_array_equal(shown.importances, quiet.importances)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(n_repeats=0),
            ValueError,
            r"'n_repeats' parameter of permutation_importance must be an int in "
            r"the range \[1, inf\). Got 0 instead",
        ),
        (dict(n_repeats=True), TypeError, "n_repeats must be an instance of int"),
        (
            dict(max_samples=1.5),
            ValueError,
            r"'max_samples' parameter of permutation_importance must be .* or a "
            r"float in the range \(0.0, 1.0\]. Got 1.5 instead",
        ),
        (dict(max_samples=121), ValueError, "max_samples must be <= n_samples"),
        (dict(max_samples=0.001), ValueError, "Found array with 0 sample.*no row"),
        (dict(batch_size=0), ValueError, "batch_size == 0, must be >= 1"),
        (dict(feature_groups=[[0], []]), ValueError, r"group #1 \[\] is empty"),
        (
            dict(feature_groups={"a": [0, 1], "b": [1, 2]}),
            ValueError,
            "column 'x1' is in group 'a' and in group 'b'",
        ),
        (dict(feature_groups=[[0, 0]]), ValueError, "column 'x0' is twice in group"),
        (
            dict(feature_groups=[[0, 7]]),
            ValueError,
            r"group #0 \[0, 7\] refers to column 7, out of range",
        ),
        (
            dict(feature_groups={"g": ["x0", "nope"]}),
            ValueError,
            "group 'g' refers to unknown column 'nope'",
        ),
        (dict(feature_groups="x0"), TypeError, "feature_groups must be a list"),
    ],
)
def test_bad_arguments(tiny, no_forward, kwargs, error, match):
    reg, X, y = tiny
    with pytest.raises(error, match=match):
        permutation_importance(reg, X, y, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_repeats=0),
        dict(n_repeats=2.5),
        dict(max_samples=0),
        dict(max_samples=0.0),
        dict(max_samples=1.5),
        dict(max_samples=-1),
        dict(max_samples=121),
        dict(max_samples="all"),
        dict(scoring="r3"),
        dict(scoring=["r2", "r2"]),
        dict(n_jobs="2"),
        dict(random_state="seed"),
        # (with the default scoring the message would be the estimator's score's)
        dict(sample_weight=np.ones(5), scoring="r2"),
    ],
    ids=repr,
)
def test_refused_as_scikit_learn_refuses(tiny, no_forward, kwargs):
    # A drop-in: where scikit-learn refuses an input, the same error type and
    # the very same words, so code and tests written against it keep matching.
    reg, X, y = tiny
    with pytest.raises((ValueError, TypeError)) as theirs:
        sklearn_permutation_importance(reg, X, y, **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        permutation_importance(reg, X, y, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_bad_data(tiny, no_forward):
    reg, X, y = tiny
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        permutation_importance(reg, X_nan, y)
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 4 feat"):
        permutation_importance(reg, X[:, :3], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        permutation_importance(reg, X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        permutation_importance(reg, X, y, sample_weight=np.ones(5))


def test_unfitted_estimators(tiny, no_forward):
    from conftest import make_regressor

    _, X, y = tiny
    for estimator in (
        make_regressor(),
        clone(make_pipeline(RowRecorder(), Ridge())),
        Ridge(),
    ):
        with pytest.raises(NotFittedError):
            permutation_importance(estimator, X, y)


def test_bare_keras_model_asks_for_from_keras():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    X = np.zeros((4, 3))
    with pytest.raises(TypeError, match="wrap it first with skimportance.from_keras"):
        permutation_importance(model, X, np.zeros(4))
