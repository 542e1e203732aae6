"""ImportanceResult: sklearn Bunch compatibility, frames, intervals."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from skimportance import ImportanceResult


@pytest.fixture
def result():
    draws = np.array([[0.1, 0.3, 0.2], [0.5, 0.7, 0.9], [0.0, 0.0, 0.0]])
    return ImportanceResult(
        draws, ["age", "bmi", "sex"], method="permutation", baseline_score=0.5
    )


def test_bunch_compatible_attributes(result):
    np.testing.assert_allclose(result.importances_mean, result.importances.mean(axis=1))
    np.testing.assert_allclose(result.importances_std, result.importances.std(axis=1))
    np.testing.assert_array_equal(result["importances_mean"], result.importances_mean)
    assert set(result.keys()) == {"importances", "importances_mean", "importances_std"}
    with pytest.raises(KeyError):
        result["nope"]


def test_to_frame_is_sorted_and_indexed_by_feature(result):
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["bmi", "age", "sex"]
    assert frame.index.name == "feature"
    assert list(frame.columns) == ["importance_mean", "importance_std"]
    assert list(result.to_frame(sort=False).index) == ["age", "bmi", "sex"]
    assert list(result.ranking()) == ["bmi", "age", "sex"]


def test_ci_is_a_student_t_interval(result):
    ci = result.ci(0.9)
    sem = stats.sem(result.importances, axis=1)
    half = stats.t.ppf(0.95, df=2) * sem
    np.testing.assert_allclose(ci["upper"] - ci["importance_mean"], half)
    np.testing.assert_allclose(ci["importance_mean"] - ci["lower"], half)
    wider = result.ci(0.99)
    assert np.all(wider["upper"] >= ci["upper"])
    with pytest.raises(ValueError, match="level"):
        result.ci(1.5)


def test_single_draw_and_one_dimensional_input():
    single = ImportanceResult(np.array([3.0, 1.0]), ["a", "b"], method="olden")
    assert single.importances.shape == (2, 1)
    ci = single.ci()
    np.testing.assert_array_equal(ci["lower"], ci["upper"])


def test_shape_errors():
    with pytest.raises(ValueError, match="2 feature names for 3 features"):
        ImportanceResult(np.zeros((3, 2)), ["a", "b"], method="x")
    with pytest.raises(ValueError, match="n_features, n_draws"):
        ImportanceResult(np.zeros((3, 2, 2)), ["a", "b", "c"], method="x")


def test_repr_names_the_top_features(result):
    text = repr(result)
    assert "permutation" in text and text.index("bmi") < text.index("age")
