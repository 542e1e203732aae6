"""`skimportance explain` on a real-looking CSV: missing cells, text categories
and a pure-noise categorical `clinic` that no method may rank high."""

import json

import numpy as np
import pandas as pd
import pytest

from skimportance._methods import EXPLAIN_METHODS, REGISTRY
from skimportance.cli import _measure, main


@pytest.fixture(scope="module")
def clinics_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "dose": rng.normal(size=n),
            "weight": rng.normal(size=n),
            "age": rng.normal(50, 10, size=n),
            "noise": rng.normal(size=n),
            "site": rng.choice(["north", "south", "east"], size=n),
            "clinic": rng.choice([f"c{i}" for i in range(8)], size=n),  # noise
        }
    )
    frame["response"] = (
        2 * frame["dose"] + frame["weight"] + 0.1 * (frame["age"] - 50)
        + 1.5 * (frame["site"] == "north") + 0.3 * rng.normal(size=n)
    )  # fmt: skip
    for column in ("dose", "weight", "age", "noise", "clinic"):
        frame.loc[rng.random(n) < 0.1, column] = np.nan
    path = tmp_path_factory.mktemp("clinics") / "clinics.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow  # trains a network for a minute on 2 cores
def test_default_methods_survive_missing_cells_and_ignore_the_noise_clinic(
    clinics_csv, tmp_path, capsys
):
    out_json = tmp_path / "out.json"
    code = main(["explain", str(clinics_csv), "--target", "response", "--epochs",
                 "40", "--hidden", "16", "--n-repeats", "3", "--test-size", "0.3",
                 "--random-state", "1", "--json", str(out_json)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out_json.read_text())
    methods = payload["methods"]
    assert len(methods) >= 3  # the weight method is skipped, the rest answer
    assert set(payload["skipped"]) | set(methods) == set(EXPLAIN_METHODS)
    for name, reason in payload["skipped"].items():
        assert f"{name}: not computed: {reason}" in out
    for name, method in methods.items():
        ranking = method["ranking"]
        if REGISTRY[name].signed:  # importance is the magnitude
            values = {f: abs(v["importance_mean"]) for f, v in
                      method["importances"].items()}  # fmt: skip
            ranking = sorted(values, key=values.get, reverse=True)
        assert len(ranking) == 6
        assert ranking.index("clinic") >= 3, (name, ranking)  # never in top half
    # p-values and FDR decisions reach the JSON and the table
    permutation = methods["permutation"]
    assert permutation["test"] == "t across rows"
    assert permutation["importances"]["dose"]["selected"] is True
    assert permutation["importances"]["clinic"]["selected"] is False
    assert "permutation p" in out and "selected at false discovery rate" in out
    assert "held-out R^2" in out


def test_a_method_that_cannot_answer_is_skipped_with_its_reason():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from skimportance._methods import resolve_methods

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(X, y)
    # a gradient method needs a Keras model; permutation works on any model
    calls = resolve_methods(["permutation", "saliency"], run_params={"n_repeats": 2})
    results, failed = _measure(ridge, X[:50], y[:50], calls, seed=0, X_train=X[50:])
    assert list(results) == ["permutation"]
    assert list(failed) == ["saliency"] and "Keras" in failed["saliency"]
    assert "\n" not in failed["saliency"]


def test_help_lists_every_registered_method_and_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, spec in REGISTRY.items():
        assert f"{name} {spec.summary}" in text
    assert f"(default: {','.join(EXPLAIN_METHODS)})" in text
    for default in ("(default: 0.25)", "(default: 64,64)", "(default: 100)",
                    "(default: auto)"):  # fmt: skip
        assert default in text


def test_scoring_names_a_scikit_learn_scorer_for_the_held_out_score():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    from skimportance.cli import _score

    X, y = load_diabetes(return_X_y=True)
    ridge = Ridge().fit(X[:300], y[:300])
    mae = _score(ridge, X[300:], y[300:], "neg_mean_absolute_error")
    assert mae == -mean_absolute_error(y[300:], ridge.predict(X[300:]))
    assert _score(ridge, X[300:], y[300:], None) == ridge.score(X[300:], y[300:])
