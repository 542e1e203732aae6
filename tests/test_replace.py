"""The one helper that writes copies of X with columns replaced."""

import numpy as np
import pandas as pd

from skimportance._replace import replace_columns, stack_replaced


def test_an_array_copy_holds_the_new_columns_and_x_is_untouched():
    X = np.arange(12.0).reshape(4, 3)
    before = X.copy()
    new = np.array([[10.0, 20.0]] * 4)
    out = replace_columns(X, [([0, 2], new)])
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(out[:, [0, 2]], new)
    np.testing.assert_array_equal(out[:, 1], X[:, 1])
    assert not np.shares_memory(out, X)


def test_integers_are_cast_unless_promoted():
    X = np.arange(6).reshape(3, 2)
    half = [np.array([0.5, 1.5, 2.5])]
    assert replace_columns(X, [([1], half)]).dtype == X.dtype  # as X[:, 1] = ...
    promoted = replace_columns(X, [([1], half)], promote=True)
    assert promoted.dtype == np.float64
    np.testing.assert_array_equal(promoted[:, 1], half[0])
    # Integer values keep an integer X integer, even when promoting.
    assert replace_columns(X, [([1], [X[::-1, 1]])], promote=True).dtype == X.dtype


def test_a_frame_keeps_index_labels_and_every_dtype():
    X = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "n": np.array([1, 2, 3], dtype=np.int32),
            "c": pd.Categorical(["a", "b", "a"], categories=["a", "b", "z"]),
        },
        index=[10, 20, 30],
    )
    before = X.copy()
    new_c = X["c"].array.take([1, 1, 0])
    out = replace_columns(X, [([2], [new_c]), ([0], [np.array([7.0, 8.0, 9.0])])])
    pd.testing.assert_frame_equal(X, before)
    assert list(out.index) == [10, 20, 30] and list(out.columns) == ["x", "n", "c"]
    pd.testing.assert_series_equal(out.dtypes, X.dtypes)
    assert list(out["c"].cat.categories) == ["a", "b", "z"]
    assert out["c"].tolist() == ["b", "b", "a"]
    assert out["x"].tolist() == [7.0, 8.0, 9.0]


def test_one_value_is_broadcast_down_the_rows():
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [4.0, 5.0, 6.0]})
    out = replace_columns(X, [([1], [np.array([0.0])])])
    assert out["y"].tolist() == [0.0, 0.0, 0.0]
    array = replace_columns(X.to_numpy(), [([1], [np.array([0.0])])])
    np.testing.assert_array_equal(array, out.to_numpy())


def test_stacked_copies_equal_the_copies_one_by_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    changes = [[([0], rng.normal(size=(5, 1)))], [([1, 2], rng.normal(size=(5, 2)))]]
    stacked = stack_replaced(X, 2, iter(changes))
    one_by_one = np.concatenate([replace_columns(X, c) for c in changes])
    np.testing.assert_array_equal(stacked, one_by_one)

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    stacked_frame = stack_replaced(frame, 2, iter(changes))
    np.testing.assert_array_equal(stacked_frame.to_numpy(), one_by_one)
    assert list(stacked_frame.index) == [0, 1, 2, 3, 4] * 2


def test_n_d_rows_replace_along_the_feature_axis():
    X = np.arange(24.0).reshape(2, 3, 4)  # (rows, features, timesteps)
    new = np.zeros((2, 1, 4))
    out = replace_columns(X, [([1], new)])
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_array_equal(out[:, [0, 2]], X[:, [0, 2]])
    assert X[:, 1].sum() > 0
