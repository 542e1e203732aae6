"""Shared fixtures: small, seeded Keras models on bundled or synthetic data.

Models are session-scoped and trained for a few epochs only: the tests check
behaviour (equalities, rankings, errors), not accuracy. Tests must never modify
these fitted objects; clone them first if a test needs to fit.
"""

from __future__ import annotations

from skimportance._compat import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_wine,
    make_friedman1,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def make_regressor(**params):
    from skimportance import KerasRegressor, build_mlp

    defaults = dict(
        model=build_mlp,
        model__hidden=(16,),
        loss="mse",
        optimizer="adam",
        epochs=30,
        batch_size=32,
        verbose=0,
        random_state=0,
    )
    defaults.update(params)
    return KerasRegressor(**defaults)


def make_classifier(**params):
    from skimportance import KerasClassifier, build_mlp

    defaults = dict(
        model=build_mlp,
        model__hidden=(16,),
        model__binary_sigmoid=True,
        loss="sparse_categorical_crossentropy",
        optimizer="adam",
        epochs=20,
        batch_size=32,
        verbose=0,
        random_state=0,
    )
    defaults.update(params)
    return KerasClassifier(**defaults)


@pytest.fixture(scope="session")
def diabetes():
    """(X DataFrame, y) of load_diabetes."""
    return load_diabetes(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def breast_cancer():
    """(X DataFrame, y) of load_breast_cancer."""
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def wine():
    """(X DataFrame, y) of load_wine."""
    return load_wine(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def friedman():
    """Friedman #1: 5 informative features (x0..x4) then 5 noise features."""
    X, y = make_friedman1(n_samples=600, n_features=10, noise=0.0, random_state=0)
    return X, y


@pytest.fixture(scope="session")
def diabetes_pipeline(diabetes):
    """StandardScaler + KerasRegressor fitted on the diabetes DataFrame."""
    X, y = diabetes
    reg = make_regressor(epochs=40, optimizer__learning_rate=0.1)
    return make_pipeline(StandardScaler(), reg).fit(X, y)


@pytest.fixture(scope="session")
def binary_classifier(breast_cancer):
    """StandardScaler + KerasClassifier (single sigmoid unit), breast cancer."""
    X, y = breast_cancer
    clf = make_classifier(loss="binary_crossentropy", epochs=10)
    return make_pipeline(StandardScaler(), clf).fit(X, y)


@pytest.fixture(scope="session")
def multiclass_classifier(wine):
    """StandardScaler + KerasClassifier (softmax), wine."""
    X, y = wine
    return make_pipeline(StandardScaler(), make_classifier(epochs=20)).fit(X, y)


@pytest.fixture(scope="session")
def friedman_regressor(friedman):
    """A KerasRegressor trained well enough on Friedman #1 to rank features."""
    X, y = friedman
    reg = make_regressor(
        model__hidden=(32, 32), epochs=60, batch_size=64, optimizer__learning_rate=0.01
    )
    return make_pipeline(StandardScaler(), reg).fit(X, y)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_friedman_pipeline(epochs=40):
    """StandardScaler + a 32x32 KerasRegressor suited to Friedman #1, unfitted."""
    reg = make_regressor(
        model__hidden=(32, 32),
        epochs=epochs,
        batch_size=64,
        optimizer__learning_rate=0.01,
    )
    return make_pipeline(StandardScaler(), reg)
