"""What an engine returns: a frozen EngineScores, never a write to the run."""

import dataclasses

import numpy as np
import pytest
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import Ridge

from skimportance._engines.engine_scores import EngineScores
from skimportance._engines.plan import ShuffledColumns, draw_permutation_plan
from skimportance._engines.run import prepare_run
from skimportance._inference import resolve_loss


def test_the_generic_engine_returns_scikit_learns_scores_by_name():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X @ [2.0, 1.0, 0.0] + 0.1 * rng.normal(size=80)
    reg = Ridge().fit(X, y)
    run = prepare_run(reg, X, y, caller="test")
    plan = draw_permutation_plan(0, len(X), run.n_rows, 4)
    scored = run.scores(
        plan,
        ShuffledColumns(plan, run.groups),
        batch_size=None,
        n_jobs=None,
        verbose=0,
        desc="",
        row_loss=resolve_loss("squared_error", reg),
    )
    assert isinstance(scored, EngineScores)
    expected = sklearn_permutation_importance(reg, X, y, n_repeats=4, random_state=0)
    np.testing.assert_allclose(
        scored.baseline - np.asarray(scored.scores), expected.importances, rtol=1e-12
    )
    assert scored.loss_differences.shape == (3, 80)
    assert dict(scored.details) == {"algorithm": "exact"}
    # The report is read-only and the run carries none: a replaced run
    # shares nothing an engine could write to.
    with pytest.raises(TypeError):
        scored.details["algorithm"] = "incremental"
    with pytest.raises(dataclasses.FrozenInstanceError):
        scored.baseline = 0.0
    assert not any(f.name == "engine_details" for f in dataclasses.fields(run))


def test_from_flat_groups_the_slices_group_by_group():
    details = {"algorithm": "exact"}
    flat = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    scored = EngineScores.from_flat(1.0, flat, 3, None, details)
    assert scored.scores == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    details["algorithm"] = "changed later"  # the engine's own dict is copied
    assert scored.details["algorithm"] == "exact"
