"""Size-like parameters of permutation importance are checked against the memory
budget (scikit-learn's ``working_memory``) before any work, and the plan of
permutations is stored compactly."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn

from skimportance import from_keras, permutation_importance
from skimportance._engines.plan import draw_permutation_plan
from skimportance._model import LocatedModel


@pytest.fixture(scope="module")
def small():
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    X = np.random.default_rng(0).normal(size=(120, 4))
    reg = from_keras(model, task="regression")
    return reg, X, reg.predict(X)


@pytest.fixture
def no_forward(monkeypatch):
    def forward(self, X_model, batch_size=None):
        raise AssertionError("data reached the Keras model")

    monkeypatch.setattr(LocatedModel, "forward", forward)


def test_a_huge_n_repeats_is_refused_before_the_plan_is_drawn(small, no_forward):
    reg, X, y = small
    # 10**7 repeats of 120 row numbers: 2.2 GiB as uint16, 8.9 GiB as intp.
    with pytest.raises(ValueError, match=r"n_repeats=10000000 needs about 2,289 MiB"):
        permutation_importance(reg, X, y, n_repeats=10**7)


def test_scores_of_many_features_and_repeats_are_refused_before_work():
    from sklearn.linear_model import Ridge

    class NoPredict(Ridge):
        def predict(self, X):
            raise AssertionError("work started")

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2000)), rng.normal(size=50)
    ridge = NoPredict().fit(X, y)
    # The plan is 10**6 x 50 row numbers (95 MiB); the scores are 2000 x 10**6.
    with pytest.raises(ValueError, match=r"n_repeats=1000000 needs about 91,553 MiB"):
        permutation_importance(ridge, X, y, n_repeats=10**6)


def test_a_batch_size_beyond_the_budget_is_refused_before_work(small, no_forward):
    reg, X, y = small
    with (
        sklearn.config_context(working_memory=0.05),
        pytest.raises(
            ValueError,
            match=r"batch_size=2000 needs about 0.0\d+ MiB .* budget of 0.05 MiB",
        ),
    ):
        permutation_importance(reg, X, y, batch_size=2000)


def test_a_batch_size_larger_than_the_work_gives_the_same_numbers(small):
    reg, X, y = small
    # 10**5 rows of 52 bytes fit the default budget; the work is 600 rows.
    huge = permutation_importance(reg, X, y, batch_size=10**5, random_state=0)
    plain = permutation_importance(reg, X, y, random_state=0)
    np.testing.assert_allclose(huge.importances, plain.importances, atol=1e-6)


def test_the_plan_is_compact_and_equal_to_scikit_learns_draws():
    plan = draw_permutation_plan(3, 70_000, 70_000, 2)
    assert plan.permutations.dtype == np.uint32  # row numbers beyond 2**16
    small = draw_permutation_plan(3, 300, 300, 4)
    assert small.permutations.dtype == np.uint16
    assert small.permutations.nbytes == 4 * 300 * 2
    # scikit-learn shuffles the already-shuffled order again for every repeat
    rng = np.random.RandomState(np.random.RandomState(3).randint(2**31))
    order, shuffling = np.arange(300), np.arange(300)
    for repeat in range(4):
        rng.shuffle(shuffling)
        order = order[shuffling]
        np.testing.assert_array_equal(small.permutation(repeat), order)


def test_the_incremental_engine_steps_aside_when_its_copies_do_not_fit(monkeypatch):
    import keras

    from skimportance._engines import incremental as _incremental

    monkeypatch.setattr(_incremental, "FIXED_COST_FLOPS", 0)  # small problem

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((60,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    reg = from_keras(model, task="regression")
    # Integer counts: the network does not take X's own (float) columns, so
    # the engine needs model-ready copies of X (float X needs none).
    X = rng.integers(0, 10, size=(400, 60))
    y = reg.predict(X)
    kwargs = dict(n_repeats=1, random_state=0)
    with sklearn.config_context(working_memory=0.1):  # 100 KiB: X alone is 188 KiB
        auto = permutation_importance(reg, X, y, **kwargs)
        with pytest.raises(ValueError, match="more than the memory budget"):
            permutation_importance(reg, X, y, algorithm="incremental", **kwargs)
    assert auto.details["algorithm"] == "exact"
    assert "memory budget" in auto.details["incremental_unavailable"]
    exact = permutation_importance(reg, X, y, algorithm="exact", **kwargs)
    np.testing.assert_array_equal(auto.importances, exact.importances)


def test_checking_the_model_input_makes_no_copy_of_x():
    # The checks used to index every column (a full copy of X: 1,335 MiB at
    # 350,000 x 1,000 float32) and mask all of X at once.
    import tracemalloc

    import keras

    from skimportance._model import locate_keras_model
    from skimportance._validation import check_model_input

    model = keras.Sequential([keras.Input((200,)), keras.layers.Dense(1)])
    X = np.random.default_rng(0).normal(size=(5_000, 200)).astype(np.float32)
    located = locate_keras_model(from_keras(model, task="regression"))
    tracemalloc.start()
    try:
        with sklearn.config_context(working_memory=1):  # MiB
            checked = check_model_input(located, X, caller="test")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.shares_memory(checked, X)
    assert peak < X.nbytes / 4  # 3.8 MiB of X; the mask goes by blocks
