"""Properties of permutation importance, over shapes, dtypes and groupings.

Hypothesis draws the number of rows and columns, the dtype of X (float32,
float64, int), the network's weights and the feature groups. The Keras
networks are built once per input width (``network``) and only their weights
change between examples, so no example pays for building or tracing a model.

The properties:

* a feature the network ignores (zero weights) has importance exactly 0;
* reordering the columns (and the network's inputs with them) reorders the
  importances the same way;
* the fast Keras engine gives scikit-learn's numbers;
* singleton groups give the ungrouped result;
* any partition into groups gives one row per group, named as documented;
* memory stays bounded: no forward pass takes more permuted rows than one
  chunk (``batch_size``, or one permuted copy of X when that is larger).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from unittest import mock

import numpy as np
import pandas as pd
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

from skimportance import from_keras, permutation_importance
from skimportance._model import LocatedModel

HIDDEN = 4
MAX_FEATURES = 5
ATOL = 1e-5  # float32 rounding of the network, as in test_permutation.py

# Deterministic examples: CI runs the same cases every time.
CI = settings(max_examples=30, deadline=None, derandomize=True)


@cache
def network(n_features: int):
    """(keras model, from_keras estimator, the same with feature names).

    Built once per width; every example sets its own weights.
    """
    import keras

    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(HIDDEN, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    names = [f"col{j}" for j in range(n_features)]
    return (
        model,
        from_keras(model, task="regression"),
        from_keras(model, task="regression", feature_names=names),
    )


@dataclass
class Problem:
    X: np.ndarray
    y: np.ndarray
    weights: list  # kernel 1, bias 1, kernel 2, bias 2
    n_repeats: int

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def estimator(self, named: bool = False):
        """The cached network for this width, with this problem's weights."""
        model, plain, with_names = network(self.n_features)
        model.set_weights(self.weights)
        return with_names if named else plain


@st.composite
def problems(draw, min_features: int = 1):
    n_features = draw(st.integers(min_features, MAX_FEATURES))
    n_rows = draw(st.integers(4, 30))
    dtype = draw(st.sampled_from(["float32", "float64", "int64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(scale=2.0, size=(n_rows, n_features))
    X = np.round(X).astype(dtype) if dtype == "int64" else X.astype(dtype)
    weights = [
        rng.normal(size=(n_features, HIDDEN)),
        rng.normal(size=HIDDEN),
        rng.normal(size=(HIDDEN, 1)),
        rng.normal(size=1),
    ]
    y = rng.normal(size=n_rows)
    return Problem(X, y, weights, n_repeats=draw(st.integers(1, 3)))


def importance(problem: Problem, X=None, named=False, **kwargs):
    return permutation_importance(
        problem.estimator(named=named),
        problem.X if X is None else X,
        problem.y,
        n_repeats=problem.n_repeats,
        random_state=0,
        **kwargs,
    )


@CI
@given(problem=problems(), data=st.data())
def test_an_ignored_feature_has_exactly_zero_importance(problem, data):
    ignored = data.draw(
        st.sets(st.integers(0, problem.n_features - 1), min_size=1), label="ignored"
    )
    problem.weights[0][sorted(ignored)] = 0.0  # no path from these inputs

    result = importance(problem)

    # Exact by construction: an ignored column's slices get no forward pass.
    assert np.all(result.importances[sorted(ignored)] == 0.0)


@CI
@given(problem=problems(min_features=2), data=st.data())
def test_reordering_columns_reorders_importances(problem, data):
    order = data.draw(st.permutations(range(problem.n_features)), label="order")
    original = importance(problem)

    problem.weights[0] = problem.weights[0][order]  # input j now reads X[:, order[j]]
    reordered = importance(problem, X=problem.X[:, order])

    np.testing.assert_allclose(
        reordered.importances, original.importances[order], rtol=0, atol=ATOL
    )


@settings(CI, max_examples=15)  # scikit-learn calls predict once per column
@given(
    problem=problems(),
    max_samples=st.sampled_from([1.0, 0.5, 3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_fast_engine_gives_scikit_learns_numbers(problem, max_samples, seed):
    estimator = problem.estimator()
    kwargs = dict(n_repeats=problem.n_repeats, max_samples=max_samples)
    ours = permutation_importance(
        estimator, problem.X, problem.y, random_state=seed, **kwargs
    )
    theirs = sklearn_permutation_importance(
        estimator, problem.X, problem.y, random_state=seed, **kwargs
    )

    assert ours.details["engine"] == "keras"
    np.testing.assert_allclose(ours.importances, theirs.importances, rtol=0, atol=ATOL)


@CI
@given(problem=problems(), data=st.data())
def test_singleton_groups_give_the_ungrouped_result(problem, data):
    columns = data.draw(
        st.lists(st.integers(0, problem.n_features - 1), min_size=1, unique=True),
        label="columns",
    )
    names = [f"x{j}" for j in columns]
    groups = data.draw(
        st.sampled_from(
            [
                [[j] for j in columns],  # positions
                [[name] for name in names],  # names
                list(columns),  # bare positions stand for groups of one
                {name: [j] for name, j in zip(names, columns)},
            ]
        ),
        label="feature_groups",
    )
    ungrouped = importance(problem)

    grouped = importance(problem, feature_groups=groups)

    # Fewer groups, other batches: equal to float32 rounding, scaled to the scores.
    atol = ATOL * max(1.0, abs(ungrouped.baseline_score))
    np.testing.assert_allclose(
        grouped.importances, ungrouped.importances[columns], rtol=0, atol=atol
    )
    assert grouped.feature_names.tolist() == names
    assert grouped.baseline_score == ungrouped.baseline_score


@st.composite
def partitions(draw, n_features: int):
    """A partition of range(n_features) into groups, in a drawn order."""
    order = draw(st.permutations(range(n_features)))
    cuts = draw(st.sets(st.integers(1, n_features - 1))) if n_features > 1 else set()
    bounds = [0, *sorted(cuts), n_features]
    return [list(order[a:b]) for a, b in zip(bounds, bounds[1:])]


@CI
@given(problem=problems(), data=st.data())
def test_any_partition_gives_one_named_row_per_group(problem, data):
    partition = data.draw(partitions(problem.n_features), label="partition")
    as_frame = data.draw(st.booleans(), label="as_frame")
    as_dict = data.draw(st.booleans(), label="as_dict")
    by_name = data.draw(st.booleans(), label="by_name")

    column_names = [
        f"col{j}" if as_frame else f"x{j}" for j in range(problem.n_features)
    ]
    X = pd.DataFrame(problem.X, columns=column_names) if as_frame else problem.X
    members = [
        [column_names[j] if by_name else j for j in group] for group in partition
    ]
    if as_dict:
        expected = [f"group {k}" for k in range(len(partition))]
        groups = dict(zip(expected, members))
    else:
        # documented: a list's group is named after its columns, joined by "+"
        expected = ["+".join(column_names[j] for j in group) for group in partition]
        groups = members

    result = importance(problem, X=X, named=as_frame, feature_groups=groups)

    assert result.importances.shape == (len(partition), problem.n_repeats)
    assert result.feature_names.tolist() == expected
    assert result.details["feature_groups"] == {
        name: [column_names[j] for j in group]
        for name, group in zip(expected, partition)
    }


@CI
@given(problem=problems(), chunk_rows=st.integers(1, 100))
def test_forward_passes_stay_within_one_chunk(problem, chunk_rows):
    forward = LocatedModel.forward
    rows_per_pass = []

    def counting_forward(self, X_model, batch_size=None):
        rows_per_pass.append(len(X_model))
        return forward(self, X_model, batch_size=batch_size)

    # A memory budget of ``chunk_rows`` permuted rows: two chunks of raw and
    # preprocessed float64 rows at once.
    row_bytes = 2 * 8 * 2 * problem.n_features
    budget_mib = chunk_rows * row_bytes / 2**20
    with (
        mock.patch.object(LocatedModel, "forward", counting_forward),
        sklearn.config_context(working_memory=budget_mib),
    ):
        chunked = importance(problem)
    unchunked = importance(problem)

    n_rows = len(problem.X)
    baseline_pass, *permuted_passes = rows_per_pass
    assert baseline_pass == n_rows
    assert max(permuted_passes) <= max(chunk_rows, n_rows)  # a slice is never split
    assert sum(permuted_passes) == problem.n_features * problem.n_repeats * n_rows
    np.testing.assert_allclose(
        chunked.importances, unchunked.importances, rtol=0, atol=ATOL
    )
