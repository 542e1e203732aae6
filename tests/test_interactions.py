"""interaction_importance: H² against a brute-force reference, engines against
each other, the joint-permutation excess against a loop over the same draws.

Models whose interactions are known by construction: a polynomial
regression, and Keras networks with fixed weights that compute a product
exactly (``((a + b)^2 - (a - b)^2) / 4 = a b`` with a squaring first layer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures

from skimportance import InteractionResult, from_keras, interaction_importance
from skimportance._engines.plan import draw_permutation_plan

# --- models with known interactions ---------------------------------------------------


def product_network(pairs, linear=(), n_inputs=4, n_inputs_layer=None):
    """A network computing ``sum c a b`` over ``pairs`` (a, b, c) plus the
    ``linear`` columns, exactly, from a squaring first Dense layer."""
    import keras

    units = 2 * (len(pairs) + len(linear))
    W = np.zeros((n_inputs, units))
    bias = np.zeros(units)
    out = np.zeros((units, 1))
    for k, (a, b, c) in enumerate(pairs):
        W[a, 2 * k] = W[b, 2 * k] = W[a, 2 * k + 1] = 1.0
        W[b, 2 * k + 1] = -1.0
        out[2 * k : 2 * k + 2, 0] = [c / 4, -c / 4]
    for k, j in enumerate(linear, start=len(pairs)):
        W[j, 2 * k] = W[j, 2 * k + 1] = 1.0
        bias[2 * k : 2 * k + 2] = [1.0, -1.0]
        out[2 * k : 2 * k + 2, 0] = [0.25, -0.25]
    inputs = keras.Input((n_inputs,))
    first = keras.layers.Dense(units, activation=keras.ops.square)
    last = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, last(first(inputs)))
    first.set_weights([W, bias])
    last.set_weights([out])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(80, 5))
    y = 2 * X[:, 0] * X[:, 1] + X[:, 2] + X[:, 3] + 0.05 * rng.normal(size=80)
    return X, y


@pytest.fixture(scope="module")
def polynomial(data):
    X, y = data
    return make_pipeline(PolynomialFeatures(2), LinearRegression()).fit(X, y)


@pytest.fixture(scope="module")
def network():
    return from_keras(
        product_network([(0, 1, 2.0)], linear=(2, 3), n_inputs=5), task="regression"
    )


def brute_force_h2(predict, X, totals=True):
    """H² the slow, obvious way: each PD from its whole grid of rows."""
    n, p = X.shape

    def pd_at_rows(columns):
        # Row i of the grid block i: every row with the columns set to row i's.
        grid = np.vstack([X for _ in range(n)])
        grid[:, columns] = np.repeat(X[:, columns], n, axis=0)
        values = predict(grid).reshape(n, n).mean(axis=1)
        return values - values.mean()

    single = [pd_at_rows([j]) for j in range(p)]
    pairs, numerators = {}, {}
    for j in range(p):
        for k in range(j + 1, p):
            both = pd_at_rows([j, k])
            numerators[j, k] = np.sum((both - single[j] - single[k]) ** 2)
            pairs[j, k] = numerators[j, k] / np.sum(both**2)
    if not totals:
        return pairs, None, numerators
    f = predict(X) - predict(X).mean()
    total = []
    for j in range(p):
        rest = pd_at_rows([c for c in range(p) if c != j])
        total.append(np.sum((f - single[j] - rest) ** 2) / np.sum(f**2))
    return pairs, np.array(total), numerators


def h2_lookup(result):
    return {
        (int(a[1:]), int(b[1:])): v
        for a, b, v in zip(
            *(result.pairs[c] for c in ("feature_a", "feature_b", "interaction"))
        )
    }


# --- H² -------------------------------------------------------------------------------


def test_h2_equals_the_brute_force_reference_and_ranks_the_product_first(
    data, polynomial
):
    X, _ = data
    result = interaction_importance(polynomial, X[:30])
    pairs, totals, numerators = brute_force_h2(polynomial.predict, X[:30])
    found = h2_lookup(result)
    assert result.top(1) == [("x0", "x1")]
    assert found.keys() == pairs.keys()
    for key, value in pairs.items():
        assert found[key] == pytest.approx(value, abs=1e-6)
    np.testing.assert_allclose(
        result.total[[f"x{j}" for j in range(5)]], totals, atol=1e-6
    )
    # The unnormalised form is the square root of H²'s numerator.
    for a, b, h in zip(
        result.pairs["feature_a"], result.pairs["feature_b"], result.pairs["h"]
    ):
        assert h == pytest.approx(np.sqrt(numerators[int(a[1:]), int(b[1:])]), abs=1e-6)


def test_exact_and_incremental_engines_agree_and_match_the_reference(data, network):
    X, _ = data
    X = X[:30]
    exact = interaction_importance(network, X, algorithm="exact")
    fast = interaction_importance(network, X, algorithm="incremental")
    assert exact.details["algorithm"] == "exact"
    assert fast.details["algorithm"] == "incremental"
    merged = exact.pairs.merge(fast.pairs, on=["feature_a", "feature_b"])
    np.testing.assert_allclose(
        merged["interaction_x"], merged["interaction_y"], atol=1e-5
    )
    np.testing.assert_allclose(merged["h_x"], merged["h_y"], atol=1e-5)
    np.testing.assert_allclose(exact.total, fast.total, atol=1e-5)
    pairs, _, _ = brute_force_h2(
        lambda rows: network.predict(rows).astype(float), X, totals=False
    )
    for key, value in pairs.items():
        assert h2_lookup(fast)[key] == pytest.approx(value, abs=1e-5)
    assert fast.top(1) == [("x0", "x1")]


def test_parallel_blocks_give_the_same_numbers(data, network):
    X, _ = data
    one = interaction_importance(network, X[:30], features=[0, 1, 2])
    two = interaction_importance(network, X[:30], features=[0, 1, 2], n_jobs=2)
    pd.testing.assert_frame_equal(one.pairs, two.pairs)


@pytest.mark.parametrize("algorithm", ["exact", "incremental"])
def test_a_small_memory_budget_gives_the_same_numbers(data, network, algorithm):
    from sklearn import config_context

    X, _ = data
    whole = interaction_importance(
        network, X[:30], algorithm=algorithm, features=[0, 1, 2]
    )
    with config_context(working_memory=0.02):  # grids of a few slices at a time
        chunked = interaction_importance(
            network, X[:30], algorithm=algorithm, features=[0, 1, 2]
        )
    pd.testing.assert_frame_equal(whole.pairs, chunked.pairs, atol=1e-6)


def test_raw_columns_through_a_column_transformer_one_hot_times_numeric():
    rng = np.random.RandomState(1)
    n = 60
    X = pd.DataFrame(
        {
            "city": rng.choice(["a", "b", "c"], n),
            "dose": rng.uniform(-1, 1, n),
            "age": rng.uniform(-1, 1, n),
        }
    )
    encoder = ColumnTransformer(
        [("city", OneHotEncoder(sparse_output=False), ["city"])],
        remainder="passthrough",
    ).fit(X)
    # Model columns: city=a, city=b, city=c, dose, age. The effect of the dose
    # depends on the city (3, 0 and -2 per unit); age adds linearly.
    network = product_network([(0, 3, 3.0), (2, 3, -2.0)], linear=(4,), n_inputs=5)
    model = make_pipeline(encoder, from_keras(network, task="regression"))
    fast = interaction_importance(model, X, algorithm="incremental")
    exact = interaction_importance(model, X, algorithm="exact")
    assert list(fast.feature_names) == ["city", "dose", "age"]
    assert fast.top(1) == [("city", "dose")]
    assert fast.pairs["interaction"].iloc[1:].abs().max() < 1e-6
    np.testing.assert_allclose(
        fast.matrix().to_numpy(), exact.matrix().to_numpy(), atol=1e-5
    )
    # The permutation excess on the same raw columns: the one-hot block moves
    # as one feature, and the product pair is strongly negative.
    y = model.predict(X) + 0.1 * rng.normal(size=n)
    excess = interaction_importance(model, X, y, method="permutation", random_state=0)
    top = excess.pairs.iloc[0]
    assert (top["feature_a"], top["feature_b"]) == ("city", "dose")
    assert top["interaction"] < 0 and top["pvalue"] < 1e-3


def test_several_inputs_run_on_the_exact_engine_and_find_the_pair():
    import keras

    numeric = keras.Input((2,), name="numeric")
    other = keras.Input((1,), name="other")
    joined = keras.layers.Concatenate()([numeric, other])
    inner = product_network([(0, 2, 1.0)], linear=(1,), n_inputs=3)
    model = keras.Model({"numeric": numeric, "other": other}, inner(joined))
    table = pd.DataFrame(
        np.random.RandomState(2).normal(size=(30, 3)), columns=list("abc")
    )
    estimator = from_keras(
        model, task="regression", inputs={"numeric": ["a", "b"], "other": ["c"]}
    )
    result = interaction_importance(estimator, table)
    assert result.details["algorithm"] == "exact"  # two inputs: no first Dense
    assert "incremental_unavailable" in result.details
    assert result.top(1) == [("a", "c")]
    reference, _, _ = brute_force_h2(
        lambda rows: estimator.predict(pd.DataFrame(rows, columns=list("abc"))),
        table.to_numpy(),
        totals=False,
    )
    assert result.pairs["interaction"].iloc[0] == pytest.approx(
        reference[0, 2], abs=1e-5
    )


def test_several_heads_give_one_result_per_head():
    import keras

    inputs = keras.Input((3,))
    inner = product_network([(0, 1, 1.0)], n_inputs=3)
    product = keras.layers.Identity(name="product")(inner(inputs))
    additive = keras.layers.Dense(1, name="additive")(inputs)
    model = keras.Model(inputs, [product, additive])
    estimator = from_keras(model, task="regression")
    X = np.random.RandomState(3).normal(size=(25, 3))
    results = interaction_importance(estimator, X)
    assert set(results) == {"product", "additive"}
    assert results["product"].top(1) == [("x0", "x1")]
    assert results["additive"].pairs["interaction"].abs().max() < 1e-6


def test_screening_keeps_the_pairs_of_the_strongest_features(data, polynomial):
    X, _ = data
    result = interaction_importance(polynomial, X[:30], max_features=2)
    assert result.top(5) == [("x0", "x1")]
    assert result.details["screened_from"] == 5
    explicit = interaction_importance(
        polynomial, X[:30], features=[("x2", "x3"), (0, 1)]
    )
    assert len(explicit.pairs) == 2 and explicit.top(1) == [("x0", "x1")]


# --- the permutation excess -----------------------------------------------------------


def test_permutation_excess_equals_a_loop_over_the_same_draws(data, polynomial):
    X, y = data
    result = interaction_importance(
        polynomial, X, y, method="permutation", n_repeats=3, random_state=0
    )
    rng = np.random.RandomState(0)
    first = draw_permutation_plan(rng, len(X), len(X), 3)
    second = draw_permutation_plan(rng, len(X), len(X), 3)
    base = polynomial.score(X, y)

    def drop(columns_first, columns_second, repeat):
        permuted = X.copy()
        permuted[:, columns_first] = X[first.permutation(repeat)][:, columns_first]
        permuted[:, columns_second] = X[second.permutation(repeat)][:, columns_second]
        return base - polynomial.score(permuted, y)

    for a, b, value in zip(
        result.pairs["feature_a"],
        result.pairs["feature_b"],
        result.pairs["interaction"],
    ):
        j, k = int(a[1:]), int(b[1:])
        expected = np.mean(
            [drop([j], [k], r) - drop([j], [], r) - drop([], [k], r) for r in range(3)]
        )
        assert value == pytest.approx(expected, abs=1e-10)


def test_product_pair_is_negative_and_additive_pairs_sit_near_zero(data, polynomial):
    X, y = data
    result = interaction_importance(
        polynomial, X, y, method="permutation", n_repeats=5, random_state=0
    )
    top = result.pairs.iloc[0]
    assert (top["feature_a"], top["feature_b"]) == ("x0", "x1")
    assert top["interaction"] < 0 and top["pvalue"] < 1e-6
    additive = result.to_frame().loc[("x2", "x3")]
    assert abs(additive["interaction"]) < 0.2 * abs(top["interaction"])
    assert additive["pvalue"] > 0.01
    selected = result.fdr(0.05)
    assert selected.loc[("x0", "x1"), "selected"]


# --- the result -----------------------------------------------------------------------


def test_matrix_is_symmetric_and_the_heat_map_draws_it(data, polynomial):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, _ = data
    result = interaction_importance(polynomial, X[:20], features=[0, 1, 2])
    assert isinstance(result, InteractionResult)
    matrix = result.matrix()
    np.testing.assert_array_equal(matrix.to_numpy(), matrix.to_numpy().T)
    assert matrix.loc["x0", "x1"] == result.pairs["interaction"].iloc[0]
    drawn = result.plot(polynomial, X[:20], top=1)
    np.testing.assert_array_equal(
        np.ma.filled(drawn.image_.get_array(), np.nan), matrix.to_numpy()
    )
    # The pair's panel is scikit-learn's own display, for the top pair.
    assert drawn.dependence_.features == [(0, 1)]


# --- bad input, refused before any forward pass ---------------------------------------


@pytest.fixture
def no_forward_pass(monkeypatch):
    from skimportance._engines import pd_grid
    from skimportance._model import LocatedModel

    def refuse(*args, **kwargs):
        raise AssertionError("data reached the model")

    monkeypatch.setattr(LocatedModel, "forward", refuse)
    monkeypatch.setattr(pd_grid, "split_network", refuse)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"features": ["x0", "x1", "x0"]}, "'x0' twice"),
        ({"features": [("x0", "x1"), ("x1", "x0")]}, "named twice"),
        ({"features": ["x0", "nope"]}, "Unknown feature 'nope'"),
        ({"max_features": 0}, "max_features"),
        ({"method": "shap"}, "method must be one of"),
        ({"y": np.zeros(10)}, "takes no y"),
        ({"method": "permutation"}, "needs y"),
        ({"X": np.ones((1, 5))}, "at least 2 rows"),
        ({"X": np.c_[np.arange(10.0), np.ones((10, 4))]}, "'x1' is constant"),
        (
            {"X": np.where(np.eye(10, 5) > 0, np.nan, 1.0) + np.arange(10)[:, None]},
            "NaN",
        ),
        ({"X": np.full((10, 5), np.inf)}, "infinity"),
    ],
)
def test_bad_input_is_refused_before_any_forward_pass(
    network, no_forward_pass, kwargs, match
):
    X = np.random.RandomState(0).normal(size=(10, 5))
    kwargs = {"X": X, **kwargs}
    with pytest.raises(ValueError, match=match):
        interaction_importance(network, **kwargs)
