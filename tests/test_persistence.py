"""save/load: one versioned JSON format, exact round trips, pickle unchanged."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import skimportance
from skimportance import (
    CVImportanceResult,
    ImportanceResult,
    cross_validate_importance,
    permutation_importance,
)
from skimportance._persistence import FORMAT_VERSION, RESULT_TYPES


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:200], y.iloc[:200]


def assert_same(a, b, where="result"):
    """Equal array for array (NaN equal to NaN), recursively through details."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        if a.dtype.kind in "fc":
            assert np.array_equal(a, b, equal_nan=True), where
        else:
            assert np.array_equal(a, b), where
    elif isinstance(a, (ImportanceResult, CVImportanceResult)):
        assert type(a) is type(b)
        for key, value in a._to_payload().items():
            assert_same(value, b._to_payload()[key], f"{where}.{key}")
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b, exact=True)
    elif isinstance(a, (pd.DataFrame, pd.Series)):
        (pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame)
         else pd.testing.assert_series_equal)(a, b, check_exact=True)  # fmt: skip
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b and type(a) is type(b), where


def test_permutation_result_round_trips_exactly(diabetes, tmp_path):
    X, y = diabetes
    result = permutation_importance(
        Ridge().fit(X, y), X, y, n_repeats=3, random_state=0
    )
    assert result.loss_differences is not None
    loaded = skimportance.load(result.save(tmp_path / "perm.json"))
    assert_same(result, loaded)
    pd.testing.assert_frame_equal(result.to_frame(), loaded.to_frame())


def test_awkward_values_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    details = {
        "float32": rng.normal(size=(2, 3)).astype(np.float32),
        "specials": np.array([np.nan, np.inf, -np.inf, 5e-324, 1 / 3]),
        "ints": np.arange(4, dtype=np.int64),
        "flags": np.array([True, False]),
        "tuple": (1, "a", 2.5),
        "int_keys": {0: "zero", 1: np.float64(np.pi)},
        "frame": pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}, index=["r", "s"]),
        "series": pd.Series([0.1, 0.2], index=["p", "q"], name="s"),
        "nan": float("nan"),
        "nested": [{"deep": np.eye(2)}],
        "mixed": np.array([1.5, "a", None, 2], dtype=object),
        "index": pd.Index(["r1", "r2"], name="row"),
    }
    result = ImportanceResult(
        rng.normal(size=(2, 4)), ["a", "b"], method="permutation",
        baseline_score=0.1 + 0.2, details=details,
        loss_differences=rng.normal(size=(2, 7)),
    )  # fmt: skip
    path = result.save(tmp_path / "r.json")
    json.loads(path.read_text())  # standard JSON: no bare NaN or Infinity
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert_same(result, skimportance.load(path))


def test_cv_result_round_trips_and_says_what_is_not_saved(diabetes, tmp_path):
    X, y = diabetes
    cv = cross_validate_importance(
        Ridge(), X, y, cv=3, n_repeats=2, random_state=0, return_estimator=True
    )
    path = cv.save(tmp_path / "cv.json")
    document = json.loads(path.read_text())
    assert document["type"] == "cv_importance"
    assert document["not_saved"] == [f"estimators[{k}]" for k in range(3)]
    loaded = skimportance.load(path)
    assert loaded.estimators == [None, None, None]
    for fold, again in zip(cv.fold_results, loaded.fold_results):
        assert_same(fold, again)
    for name in ("test_scores", "n_train", "n_test", "importances"):
        assert_same(getattr(cv, name), getattr(loaded, name), name)
    pd.testing.assert_frame_equal(cv.to_frame(), loaded.to_frame())


def test_every_registered_type_is_public():
    assert {cls.__name__ for cls in RESULT_TYPES.values()} <= set(
        skimportance._RESULT_TYPES
    )


def test_newer_version_and_foreign_files_are_refused(tmp_path):
    result = ImportanceResult([1.0, 2.0], ["a", "b"], method="olden")
    path = result.save(tmp_path / "r.json")
    document = json.loads(path.read_text())
    document["version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="newer|version 2.*Upgrade"):
        skimportance.load(path)
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a skimportance result"):
        skimportance.load(tmp_path / "other.json")
    document["version"], document["type"] = FORMAT_VERSION, "nonsense"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="'nonsense'"):
        skimportance.load(path)


def test_pickle_still_works(diabetes):
    X, y = diabetes
    result = permutation_importance(Ridge().fit(X, y), X, y, n_repeats=2)
    assert_same(result, pickle.loads(pickle.dumps(result)))


def test_sage_result_round_trips(diabetes, tmp_path):
    from skimportance import sage_importance

    X, y = diabetes
    model = Ridge().fit(X[:150], y[:150])
    result = sage_importance(
        model, X[150:190], y[150:190], background=X[:30], random_state=0
    )
    assert_same(result, skimportance.load(result.save(tmp_path / "sage.json")))


def test_local_result_round_trips(diabetes, tmp_path):
    from skimportance import LocalResult, local_importance

    X, y = diabetes
    model = Ridge().fit(X, y)
    result = local_importance(model, X.iloc[:3], background=X.iloc[50:90])
    assert isinstance(result, LocalResult)
    loaded = skimportance.load(result.save(tmp_path / "local.json"))
    assert_same(result._to_payload(), loaded._to_payload())
    pd.testing.assert_frame_equal(result.to_frame(), loaded.to_frame())


@pytest.mark.parametrize("method", ["h2", "permutation"])
def test_interaction_result_round_trips(diabetes, tmp_path, method):
    from skimportance import InteractionResult, interaction_importance

    X, y = diabetes
    model = Ridge().fit(X, y)
    y_or_none = y.iloc[:60] if method == "permutation" else None  # h2 takes no y
    result = interaction_importance(
        model, X.iloc[:60], y_or_none, method=method, features=["bmi", "bp", "s5"],
        random_state=0,
    )  # fmt: skip
    loaded = skimportance.load(result.save(tmp_path / f"{method}.json"))
    assert isinstance(loaded, InteractionResult)
    assert_same(result._to_payload(), loaded._to_payload())
    pd.testing.assert_frame_equal(result.to_frame(), loaded.to_frame())
    if method == "permutation":  # the table carries the FDR decision
        assert {"pvalue", "qvalue", "selected"} <= set(loaded.to_frame().columns)
