"""The statistics module equals scipy.stats and the textbook formulas."""

import numpy as np
import pytest
from scipy import stats

from skimportance import CVImportanceResult, ImportanceResult
from skimportance._stats import (
    benjamini_hochberg,
    check_alpha,
    check_level,
    fdr_frame,
    fold_scale,
    nadeau_bengio_pvalues,
    row_test_pvalues,
    standard_error,
    t_interval,
)

# --- the tests across rows and folds ------------------------------------------------


def test_row_test_is_scipys_one_sided_t_test():
    rng = np.random.default_rng(0)
    differences = rng.normal(loc=[[0.0], [0.1], [-0.2]], size=(3, 50))
    expected = stats.ttest_1samp(differences, 0.0, axis=1, alternative="greater").pvalue
    np.testing.assert_allclose(row_test_pvalues(differences), expected, rtol=1e-12)


def test_rows_without_spread():
    differences = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [-1.0, -1.0, -1.0]])
    np.testing.assert_array_equal(row_test_pvalues(differences), [1.0, 0.0, 1.0])


def test_nadeau_bengio_is_a_t_test_with_a_wider_variance():
    rng = np.random.default_rng(1)
    k, n_train, n_test = 5, np.full(5, 80.0), np.full(5, 20.0)
    folds = rng.normal(loc=[[0.05], [0.2]], scale=0.1, size=(2, k))
    # Stretching the folds around their mean by sqrt(k * factor) turns the
    # plain t statistic into the corrected one.
    factor = 1 / k + 20 / 80
    mean = folds.mean(axis=1, keepdims=True)
    stretched = mean + (folds - mean) * np.sqrt(k * factor)
    expected = stats.ttest_1samp(stretched, 0.0, axis=1, alternative="greater").pvalue
    np.testing.assert_allclose(
        nadeau_bengio_pvalues(folds, n_train, n_test), expected, rtol=1e-12
    )
    with pytest.raises(ValueError, match="at least 2 folds"):
        nadeau_bengio_pvalues(folds[:, :1], n_train[:1], n_test[:1])


def test_benjamini_hochberg_by_hand():
    # Sorted 0.01, 0.03, 0.04, 0.2: p * m / rank = 0.04, 0.06, 0.0533, 0.2,
    # then the running minimum from the top.
    pvalues = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(
        benjamini_hochberg(pvalues), [0.04, 0.16 / 3, 0.16 / 3, 0.2, np.nan]
    )


def test_benjamini_hochberg_is_scipys_false_discovery_control():
    pvalues = np.random.default_rng(2).uniform(size=40) ** 3
    np.testing.assert_array_equal(
        benjamini_hochberg(pvalues),
        stats.false_discovery_control(pvalues, method="bh"),
    )


def test_fdr_frame_selects_the_qvalues_at_most_alpha():
    import pandas as pd

    pvalues = pd.Series([0.001, 0.04, 0.5], index=["a", "b", "c"])
    frame = fdr_frame(pvalues, 0.05)
    np.testing.assert_allclose(frame["qvalue"], [0.003, 0.06, 0.5])
    assert frame["selected"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="alpha must be a number in"):
        fdr_frame(pvalues, 1.5)


# --- intervals ----------------------------------------------------------------------


def test_t_interval_is_scipys_t_interval():
    values = np.random.default_rng(3).normal(size=(4, 12))
    mean = values.mean(axis=1)
    lower, upper = t_interval(mean, standard_error(values), 11, 0.9)
    expected = stats.t.interval(0.9, df=11, loc=mean, scale=stats.sem(values, axis=1))
    np.testing.assert_allclose(lower, expected[0], rtol=1e-12)
    np.testing.assert_allclose(upper, expected[1], rtol=1e-12)


def test_fold_scale_plain_and_nadeau_bengio_by_hand():
    folds = np.array([[0.1, 0.3, 0.2, 0.4], [1.0, 1.0, 2.0, 2.0]])
    variance = folds.var(axis=1, ddof=1)
    np.testing.assert_allclose(fold_scale(folds), np.sqrt(variance / 4), rtol=1e-15)
    n_train, n_test = np.array([75.0, 75, 75, 75]), np.array([25.0, 25, 25, 25])
    np.testing.assert_allclose(
        fold_scale(folds, n_train, n_test),
        np.sqrt((1 / 4 + 25 / 75) * variance),
        rtol=1e-15,
    )


def test_result_intervals_are_the_textbook_formulas():
    draws = np.random.default_rng(4).normal(size=(3, 8))
    frame = ImportanceResult(draws, ["a", "b", "c"], method="m").ci(0.95)
    half = stats.t.ppf(0.975, 7) * draws.std(axis=1, ddof=1) / np.sqrt(8)
    np.testing.assert_allclose(frame["upper"] - frame["lower"], 2 * half, rtol=1e-12)

    names = ["a", "b", "c"]
    folds = [ImportanceResult(draws[:, [k]], names, method="m") for k in range(8)]
    cv = CVImportanceResult(folds, np.zeros(8), np.full(8, 90.0), np.full(8, 10.0))
    corrected = cv.ci(0.95, corrected=True)
    half = stats.t.ppf(0.975, 7) * np.sqrt((1 / 8 + 1 / 9) * draws.var(axis=1, ddof=1))
    np.testing.assert_allclose(corrected["upper"] - corrected["lower"], 2 * half)


def test_bad_levels_and_alphas_are_refused_by_name():
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="level must be in"):
            check_level(bad)
    for bad in (0, 1, True, "0.1"):
        with pytest.raises(ValueError, match="alpha must be a number"):
            check_alpha(bad)
