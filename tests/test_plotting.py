"""ImportanceDisplay: what is drawn, in which order, and the errors.

Results are built directly, so no model is trained; from_estimator is checked
against stand-in functions in the method registry, plus real runs.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skimportance import (  # noqa: E402
    ImportanceDisplay,
    ImportanceResult,
    rank_agreement,
)
from skimportance._methods import METHOD_NAMES, REGISTRY  # noqa: E402

FEATURES = ["age", "sex", "bmi", "bp", "s1"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def perm():
    """Permutation-like: 5 features x 8 draws, means 0.2, 0.05, 0.9, 0.4, -0.01."""
    rng = np.random.default_rng(0)
    means = np.array([0.2, 0.05, 0.9, 0.4, -0.01])
    draws = means[:, None] + rng.normal(0, 0.03, size=(5, 8))
    return ImportanceResult(draws, FEATURES, method="permutation")


@pytest.fixture
def olden():
    """One deterministic draw, features listed in another order."""
    names = ["s1", "bp", "bmi", "sex", "age"]
    return ImportanceResult([0.1, 0.8, 0.7, 0.3, 0.2], names, method="olden")


@pytest.fixture
def saliency():
    rng = np.random.default_rng(1)
    draws = np.abs(rng.normal([[1], [2], [5], [3], [0.5]], 0.5, size=(5, 20)))
    return ImportanceResult(draws, FEATURES, method="saliency")


def tick_labels(ax):
    return [label.get_text() for label in ax.get_yticklabels()]


def by_name(result):
    return dict(zip(result.feature_names, result.importances_mean))


# -- single result ------------------------------------------------------------------
@pytest.mark.parametrize("top_n", [None, 1, 3, 5, 50])
def test_bars_one_per_feature_sorted_by_importance(perm, top_n):
    display = ImportanceDisplay.from_result(perm).plot(top_n=top_n)
    n_shown = min(top_n or 5, 5)
    expected = perm.ranking()[:n_shown].tolist()

    assert len(display.bars_) == 1
    assert len(display.bars_[0].patches) == n_shown
    assert display.features_.tolist() == expected
    assert tick_labels(display.ax_) == expected
    widths = [patch.get_width() for patch in display.bars_[0].patches]
    np.testing.assert_allclose(widths, [by_name(perm)[f] for f in expected])
    # most important on top: y axis runs downwards
    bottom, top = display.ax_.get_ylim()
    assert bottom > top


@pytest.mark.parametrize("errorbars", ["std", "ci"])
def test_error_bars_show_std_or_confidence_interval(perm, errorbars):
    display = ImportanceDisplay.from_result(perm).plot(errorbars=errorbars, level=0.9)
    container = display.errorbars_[0]
    assert container is not None
    segments = container.lines[2][0].get_segments()
    assert len(segments) == perm.n_features

    order = np.argsort(-perm.importances_mean, kind="stable")
    if errorbars == "std":
        lower = perm.importances_mean - perm.importances_std
        upper = perm.importances_mean + perm.importances_std
    else:
        ci = perm.ci(0.9)
        lower, upper = ci["lower"].to_numpy(), ci["upper"].to_numpy()
    drawn = np.array([[seg[0][0], seg[1][0]] for seg in segments])
    np.testing.assert_allclose(np.sort(drawn, axis=1)[:, 0], lower[order])
    np.testing.assert_allclose(np.sort(drawn, axis=1)[:, 1], upper[order])


def test_no_error_bars_when_asked_or_single_draw(perm, olden):
    assert ImportanceDisplay.from_result(perm).plot(errorbars=None).errorbars_ == [None]
    assert ImportanceDisplay.from_result(olden).plot().errorbars_ == [None]


def test_box_plot_has_one_box_per_feature(perm):
    display = ImportanceDisplay.from_result(perm).plot(kind="box", top_n=4)
    boxes = display.boxes_[0]
    assert display.bars_ == []
    assert len(boxes["boxes"]) == 4
    assert tick_labels(display.ax_) == perm.ranking()[:4].tolist()
    order = np.argsort(-perm.importances_mean, kind="stable")[:4]
    medians = [line.get_xdata()[0] for line in boxes["medians"]]
    np.testing.assert_allclose(medians, np.median(perm.importances[order], axis=1))


def test_given_ax_is_used(perm):
    fig, ax = plt.subplots()
    n_figures = len(plt.get_fignums())
    display = ImportanceDisplay.from_result(perm).plot(ax=ax)
    assert display.ax_ is ax
    assert display.figure_ is fig
    assert len(plt.get_fignums()) == n_figures
    assert len(ax.patches) == perm.n_features


def test_result_plot_delegates_and_draws_one_figure(perm):
    n_figures = len(plt.get_fignums())
    display = perm.plot(kind="box", top_n=2)
    assert isinstance(display, ImportanceDisplay)
    assert len(display.boxes_[0]["boxes"]) == 2
    assert len(plt.get_fignums()) == n_figures + 1


def test_bar_kwargs_reach_matplotlib(perm):
    display = ImportanceDisplay.from_result(perm).plot(bar_kwargs={"color": "red"})
    red = matplotlib.colors.to_rgba("red")
    assert all(patch.get_facecolor() == red for patch in display.bars_[0].patches)


# -- several results ----------------------------------------------------------------
def test_panels_one_per_method_in_one_feature_order(perm, olden, saliency):
    results = {"perm": perm, "olden": olden, "grad": saliency}
    display = ImportanceDisplay.from_result(results).plot(top_n=4)

    assert len(display.axes_) == 3
    assert display.ax_ is display.axes_[0]
    assert [ax.get_title() for ax in display.axes_] == ["perm", "olden", "grad"]
    # one feature order for all panels: the mean of normalised importances
    normalised = [
        pd.Series(by_name(r)) / np.abs(r.importances_mean).max()
        for r in (perm, olden, saliency)
    ]
    consensus = pd.concat(normalised, axis=1).mean(axis=1).loc[FEATURES]
    expected = consensus.sort_values(ascending=False, kind="stable").index[:4]
    assert display.features_.tolist() == expected.tolist()
    assert tick_labels(display.axes_[0]) == expected.tolist()  # shared by all
    for ax, bars, result in zip(display.axes_, display.bars_, results.values()):
        np.testing.assert_array_equal(ax.get_yticks(), np.arange(4))
        widths = [patch.get_width() for patch in bars.patches]
        np.testing.assert_allclose(widths, [by_name(result)[f] for f in expected])


def test_panels_in_given_axes(perm, saliency):
    fig, axes = plt.subplots(1, 2)
    display = ImportanceDisplay.from_result([perm, saliency]).plot(ax=axes)
    assert list(display.axes_) == list(axes)
    assert display.figure_ is fig
    with pytest.raises(ValueError, match="2 Axes"):
        ImportanceDisplay.from_result([perm, saliency]).plot(ax=axes[0])


@pytest.mark.parametrize("kind", ["bar", "box"])
def test_grouped_one_group_per_method_normalised(perm, olden, saliency, kind):
    results = {"perm": perm, "olden": olden, "grad": saliency}
    display = ImportanceDisplay.from_result(results).plot(kind=kind, layout="grouped")

    assert len(display.axes_) == 1
    legend = display.ax_.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == list(results)
    if kind == "bar":
        assert len(display.bars_) == 3
        for bars, result in zip(display.bars_, results.values()):
            widths = np.array([patch.get_width() for patch in bars.patches])
            assert len(widths) == 5
            assert np.abs(widths).max() == pytest.approx(1.0)
            expected = [by_name(result)[f] for f in display.features_]
            np.testing.assert_allclose(
                widths, np.divide(expected, np.abs(result.importances_mean).max())
            )
    else:
        assert [len(boxes["boxes"]) for boxes in display.boxes_] == [5, 5, 5]


def test_list_of_results_is_keyed_by_method(perm, saliency):
    other = ImportanceResult(perm.importances[::-1], FEATURES, method="permutation")
    display = ImportanceDisplay.from_result([perm, saliency, other])
    assert list(display.results) == ["permutation", "saliency", "permutation (2)"]


# -- rank agreement -----------------------------------------------------------------
def test_rank_agreement_is_spearman(perm, olden, saliency):
    agreement = rank_agreement({"a": perm, "b": olden, "c": saliency})

    assert list(agreement.index) == list(agreement.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(agreement.to_numpy(), agreement.to_numpy().T)
    np.testing.assert_array_equal(np.diag(agreement), 1.0)
    # olden lists its features in another order: compare by name
    means = np.column_stack(
        [[by_name(r)[f] for f in FEATURES] for r in (perm, olden, saliency)]
    )
    np.testing.assert_allclose(agreement.to_numpy(), spearmanr(means).statistic)
    pair = spearmanr(means[:, 0], means[:, 1]).statistic
    assert agreement.loc["a", "b"] == pytest.approx(pair)


def test_plot_rank_agreement(perm, olden):
    fig, ax = plt.subplots()
    display = ImportanceDisplay.from_result([perm, olden]).plot_rank_agreement(ax=ax)
    assert display.ax_ is ax
    assert display.figure_ is fig
    np.testing.assert_allclose(display.image_.get_array(), display.agreement_)
    assert len(ax.texts) == 4
    assert tick_labels(ax) == ["permutation", "olden"]


def test_mismatched_features_are_named(perm):
    other = ImportanceResult([1.0, 2.0, 3.0, 4.0, 5.0], [*FEATURES[:4], "s6"], "olden")
    display = ImportanceDisplay.from_result([perm, other])
    for call in (
        lambda: rank_agreement([perm, other]),
        display.plot,
        display.plot_rank_agreement,
    ):
        with pytest.raises(ValueError, match=r"only in 'permutation': \['s1'\]"):
            call()


def test_rank_agreement_errors(perm):
    # Results never repeat a feature name (see test_result.py); a result-like
    # object that does cannot be aligned by name.
    repeated = SimpleNamespace(
        importances=np.ones((2, 1)),
        importances_mean=np.ones(2),
        feature_names=np.array(["x", "x"], dtype=object),
        method="olden",
    )
    with pytest.raises(ValueError, match="repeats feature names"):
        rank_agreement([repeated, repeated])
    single = ImportanceResult([1.0], ["x"], method="olden")
    with pytest.raises(ValueError, match="at least 2 features"):
        rank_agreement(single)


# -- errors and laziness --------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kind": "pie"}, ValueError, "kind must be one of"),
        ({"top_n": 0}, ValueError, "top_n == 0, must be >= 1"),
        ({"top_n": 2.5}, TypeError, "top_n must be an instance of int"),
        ({"top_n": True}, TypeError, "top_n must be an instance of int"),
        ({"errorbars": "sem"}, ValueError, "errorbars must be one of"),
        ({"layout": "stacked"}, ValueError, "layout must be one of"),
        ({"errorbars": "ci", "level": 1.5}, ValueError, "level must be in"),
    ],
)
def test_plot_rejects_bad_arguments(perm, kwargs, error, match):
    with pytest.raises(error, match=match):
        ImportanceDisplay.from_result(perm).plot(**kwargs)


def test_from_result_rejects_bad_input(perm):
    with pytest.raises(ValueError, match="empty"):
        ImportanceDisplay.from_result({})
    with pytest.raises(TypeError, match="not an ImportanceResult"):
        ImportanceDisplay.from_result({"perm": perm, "bad": perm.to_frame()})
    with pytest.raises(TypeError, match="Expected an ImportanceResult"):
        ImportanceDisplay.from_result(perm.importances)


def test_missing_matplotlib_is_a_clear_import_error(perm, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    display = ImportanceDisplay.from_result([perm, perm])
    with pytest.raises(ImportError, match=r"needs matplotlib.*skimportance\[plot\]"):
        display.plot()
    with pytest.raises(ImportError, match="needs matplotlib"):
        ImportanceDisplay.from_estimator(object(), np.zeros((2, 5)), method="olden")
    assert rank_agreement(display.results).shape == (2, 2)  # needs no matplotlib


def test_import_loads_neither_matplotlib_nor_tensorflow():
    code = (
        "import sys, skimportance.plotting, skimportance\n"
        "skimportance.ImportanceDisplay\n"
        "heavy = {'matplotlib', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- from_estimator -------------------------------------------------------------------
@pytest.fixture
def stand_in_methods(monkeypatch):
    """Swap every registry entry's function for a fake that records its calls.

    The fakes keep the real signatures (``functools.wraps``), so the registry
    checks keywords exactly as it does for the real functions.
    """
    calls = []

    def fake(function):
        @functools.wraps(function)
        def method(estimator, **kwargs):
            calls.append((function.__name__, estimator, kwargs))
            name = kwargs.get("method", kwargs.get("kind", function.__name__))
            return ImportanceResult(np.arange(3.0), ["a", "b", "c"], method=name)

        return method

    for name, spec in REGISTRY.items():
        monkeypatch.setitem(REGISTRY, name, replace(spec, function=fake(spec.function)))
    return calls


@pytest.mark.parametrize(
    "method, function, kwargs",
    [
        ("permutation", "permutation_importance", {"X": "X", "y": "y", "n_repeats": 2}),
        ("first_layer", "weight_importance", {"X": "X", "method": "first_layer"}),
        ("garson", "weight_importance", {"X": "X", "method": "garson"}),
        ("olden", "weight_importance", {"X": "X", "method": "olden"}),
        ("probe", "probe_importance", {"X": "X", "kind": "delta"}),
        ("profile", "probe_importance", {"X": "X", "kind": "profile"}),
        ("occlusion", "probe_importance", {"X": "X", "kind": "occlusion"}),
        ("saliency", "gradient_importance", {"X": "X", "method": "saliency"}),
        (
            "input_x_gradient",
            "gradient_importance",
            {"X": "X", "method": "input_x_gradient"},
        ),
        (
            "integrated_gradients",
            "gradient_importance",
            {"X": "X", "method": "integrated_gradients", "n_steps": 8},
        ),
    ],
)
def test_from_estimator_calls_the_method_function(
    stand_in_methods, method, function, kwargs
):
    extra = {k: v for k, v in kwargs.items() if k not in ("method", "X", "y", "kind")}
    display = ImportanceDisplay.from_estimator(
        "est", "X", "y", method=method, method_params=extra
    )
    assert stand_in_methods == [(function, "est", kwargs)]
    assert list(display.results) == [method]
    assert len(display.plot().bars_[0].patches) == 3


def test_every_registered_method_is_reachable_from_the_display(stand_in_methods):
    display = ImportanceDisplay.from_estimator("est", "X", "y", method=METHOD_NAMES)
    assert list(display.results) == list(METHOD_NAMES)
    assert len(stand_in_methods) == len(METHOD_NAMES)


def test_from_estimator_several_methods(stand_in_methods):
    display = ImportanceDisplay.from_estimator(
        "est",
        "X",
        "y",
        method=["olden", "permutation"],
        method_params={"permutation": {"random_state": 0}},
    )
    assert list(display.results) == ["olden", "permutation"]
    assert stand_in_methods[1] == (
        "permutation_importance",
        "est",
        {"X": "X", "y": "y", "random_state": 0},
    )
    assert len(display.plot().axes_) == 2


def test_run_parameters_go_to_the_methods_that_take_them(stand_in_methods):
    ImportanceDisplay.from_estimator(
        "est", "X", "y", method=["olden", "permutation"], random_state=0, n_repeats=3
    )
    olden, permutation = stand_in_methods
    assert olden[2] == {"X": "X", "method": "olden"}  # deterministic: no seed
    assert permutation[2] == {"X": "X", "y": "y", "random_state": 0, "n_repeats": 3}


def test_from_estimator_one_result_per_scoring_metric(monkeypatch):
    spec = REGISTRY["permutation"]

    @functools.wraps(spec.function)
    def permutation_importance(estimator, X, y, **kwargs):
        return {
            metric: ImportanceResult([1.0, 2.0], ["a", "b"], method="permutation")
            for metric in kwargs["scoring"]
        }

    monkeypatch.setitem(
        REGISTRY, "permutation", replace(spec, function=permutation_importance)
    )
    display = ImportanceDisplay.from_estimator(
        "est", "X", "y", scoring=["r2", "neg_mean_squared_error"]
    )
    assert list(display.results) == [
        "permutation (r2)",
        "permutation (neg_mean_squared_error)",
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "shap"}, r"Unknown importance method 'shap'"),
        ({"method": []}, "at least one"),
        ({"method": ["olden", "olden"]}, "distinct"),
        (
            {"method": "permutation", "y": None},
            r"\['permutation'\] needs the targets y",
        ),
        ({"method": "olden", "method_params": {"method": "garson"}}, r"\['method'\]"),
        ({"method": "probe", "method_params": {"X": None}}, r"\['X'\]"),
        (
            {"method": ["olden", "probe"], "method_params": {"saliency": {}}},
            r"\['saliency'\] are not among",
        ),
        (
            {"method": "olden", "n_repeats": 3},
            "n_repeats is not taken by method 'olden'",
        ),
        (
            {
                "method": "permutation",
                "n_repeats": 3,
                "method_params": {"n_repeats": 4},
            },
            "n_repeats is given twice",
        ),
        (
            {"method": "profile", "method_params": {"probe": 2.0}},
            r"\['probe'\] are not accepted by method 'profile'",
        ),
    ],
)
def test_from_estimator_errors(stand_in_methods, kwargs, match):
    kwargs = {"y": "y", **kwargs}
    with pytest.raises(ValueError, match=match):
        ImportanceDisplay.from_estimator("est", "X", **kwargs)
    assert stand_in_methods == []


def test_from_estimator_real_permutation_matches_sklearn():
    from sklearn.datasets import load_diabetes
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(X, y)
    display = ImportanceDisplay.from_estimator(ridge, X, y, n_repeats=3, random_state=0)
    expected = permutation_importance(ridge, X, y, n_repeats=3, random_state=0)
    np.testing.assert_allclose(
        display.results["permutation"].importances, expected.importances
    )
    assert len(display.plot(top_n=4).bars_[0].patches) == 4


def test_from_estimator_runs_every_real_method():
    keras = pytest.importorskip("keras")
    from skimportance import from_keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, "tanh"), keras.layers.Dense(1)]
    )
    names = ["w", "x", "y", "z"]
    estimator = from_keras(model, task="regression", feature_names=names)
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 4)), columns=names)
    y = estimator.predict(X) + 0.1 * X["w"].to_numpy()

    methods = list(METHOD_NAMES)
    # Methods whose reference is the centre of a background get one here;
    # the Display holds no training rows of its own.
    from skimportance._methods import REGISTRY

    backgrounds = {
        name: {"background": X}
        for name in methods
        if REGISTRY[name].fit_data == "background"
    }
    display = ImportanceDisplay.from_estimator(
        estimator, X, y, method=methods, method_params=backgrounds,
        n_repeats=2, random_state=0,
    )  # fmt: skip
    assert list(display.results) == methods
    for result in display.results.values():
        assert result.feature_names.tolist() == names
    assert rank_agreement(display.results).shape == (len(methods), len(methods))
    assert len(display.plot().axes_) == len(methods)


def test_from_estimator_weight_methods_take_x_none(stand_in_methods):
    ImportanceDisplay.from_estimator("est", None, method="garson")
    assert stand_in_methods == [
        ("weight_importance", "est", {"X": None, "method": "garson"})
    ]
