"""The ``skimportance`` command line: demo, explain, and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skimportance.cli import main


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    """A small table: two informative numeric columns, noise, an informative
    categorical column and a noise one, and a few empty cells."""
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "dose": rng.normal(size=n),
            "age": rng.normal(50, 10, size=n),
            "noise": rng.normal(size=n),
            "site": rng.choice(["north", "south", "east"], size=n),
            "colour": rng.choice(["red", "green", "blue", "grey", "pink"], size=n),
        }
    )
    frame["response"] = (
        3 * frame["dose"] + 0.2 * (frame["age"] - 50) + 2 * (frame["site"] == "north")
    )
    frame.loc[::23, "age"] = np.nan  # imputed, with a missing-value indicator
    frame.loc[5::31, "colour"] = np.nan  # a category of its own
    path = tmp_path_factory.mktemp("data") / "table.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def labelled_csv(csv_file):
    """The same inputs with a class label instead of the numeric response."""
    frame = pd.read_csv(csv_file)
    frame["label"] = np.where(frame.pop("response") > 0, "high", "low")
    path = csv_file.with_name("labelled.csv")
    frame.to_csv(path, index=False)
    return path


def table_rows(output: str, n: int = 5) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("feature"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split()[0])
    return rows[:n]


def test_demo_prints_a_features_by_methods_table(capsys):
    code = main(["demo", "--epochs", "5", "--methods", "permutation,olden,saliency"])
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if "permutation" in line)
    assert header.split() == ["permutation", "olden", "saliency"]
    assert set(table_rows(out)) <= {
        "age",
        "sex",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
    }


def test_explain_regression_with_categorical_column(csv_file, tmp_path, capsys):
    out_json, out_png = tmp_path / "out.json", tmp_path / "fig.png"
    code = main(
        [
            "explain",
            str(csv_file),
            "--target",
            "response",
            "--epochs",
            "60",
            "--methods",
            "olden,probe,permutation,integrated_gradients",
            "--hidden",
            "16",
            "--json",
            str(out_json),
            "--out",
            str(out_png),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "-> regression" in out and "held-out R^2:" in out
    rows = table_rows(out, 6)
    assert rows[0] == "dose"
    assert set(rows[-2:]) == {"noise", "colour"}  # the two noise columns last
    assert "Rows ordered by permutation" in out
    assert "olden: not computed: weight methods cannot report on one-hot" in out
    payload = json.loads(out_json.read_text())
    assert payload["task"] == "regression"
    for method in ("permutation", "probe", "integrated_gradients"):
        # one row per CSV column, whatever the encoding made of it
        ranking = payload["methods"][method]["ranking"]
        assert sorted(ranking) == ["age", "colour", "dose", "noise", "site"]
        assert ranking[0] == "dose", method
    assert out_png.stat().st_size > 1000


def test_explain_classification_with_cross_validation(labelled_csv, tmp_path, capsys):
    out_json = tmp_path / "cv.json"
    code = main(
        [
            "explain",
            str(labelled_csv),
            "--target",
            "label",
            "--cv",
            "2",
            "--epochs",
            "15",
            "--methods",
            "permutation",
            "--hidden",
            "8",
            "--json",
            str(out_json),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "-> classification" in out and "2-fold" in out
    dose = json.loads(out_json.read_text())["methods"]["permutation"]["importances"][
        "dose"
    ]
    assert dose["lower"] <= dose["importance_mean"] <= dose["upper"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.csv", "--target", "y"], "no such file: missing.csv"),
        (["{csv}", "--target", "nope"], "target column 'nope' not found"),
        (
            ["{labelled}", "--target", "label", "--task", "regression"],
            "'label' is not numeric",
        ),
        (["{empty}", "--target", "y"], "is empty"),
        (["{header}", "--target", "y"], "has a header but no rows"),
        (
            ["{csv}", "--target", "response", "--methods", "shap"],
            "Unknown importance method 'shap'",
        ),
        (
            ["{csv}", "--target", "response", "--hidden", "a,b"],
            "--hidden must be sizes",
        ),
        (["{csv}", "--target", "response", "--cv", "1"], "--cv needs at least 2 folds"),
        (["{csv}", "--target", "response", "--cv", "900"], "more folds than the 200"),
        (["{odd}", "--target", "constant"], "'constant' takes a single value"),
        (
            ["{odd}", "--target", "single", "--task", "classification"],
            "'single' takes a single value ('a')",
        ),
        (["{odd}", "--target", "rare"], "class 'b' of 'rare' has 1 row"),
        (["{odd}", "--target", "gappy"], "'gappy' is missing in 1 row"),
        (["{infinite}", "--target", "y"], "infinite values in column(s) x"),
        (
            ["{csv}", "--target", "response", "--out", "/no/such/dir/fig.png"],
            "folder /no/such/dir does not exist",
        ),
        (
            ["{csv}", "--target", "response", "--out", "{tmp}/fig.docx"],
            "unknown figure format 'docx'",
        ),
        (
            ["{csv}", "--target", "response", "--json", "{tmp}"],
            "is a folder, not a file",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    args, message, csv_file, labelled_csv, tmp_path, capsys
):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("a,b,y\n")
    odd = tmp_path / "odd.csv"
    rows = 12
    pd.DataFrame(
        {
            "x": np.arange(rows, dtype=float),
            "constant": np.ones(rows),
            "single": ["a"] * rows,
            "rare": ["a"] * (rows - 1) + ["b"],
            "gappy": [1.0] * (rows - 1) + [np.nan],
        }
    ).to_csv(odd, index=False)
    infinite = tmp_path / "infinite.csv"
    pd.DataFrame({"x": [1.0, np.inf] + [0.0] * 10, "y": np.arange(12.0)}).to_csv(
        infinite, index=False
    )
    paths = {
        "csv": csv_file,
        "labelled": labelled_csv,
        "empty": empty,
        "header": header,
        "odd": odd,
        "infinite": infinite,
        "tmp": tmp_path,
    }
    args = [arg.format(**paths) for arg in args]
    code = main(["explain", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a subprocess
def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skimportance.cli",
            "explain",
            str(tmp_path / "no.csv"),
            "--target",
            "y",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"no such file: {tmp_path / 'no.csv'}")
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # a subprocess
def test_no_tensorflow_start_up_noise(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skimportance.cli",
            "demo",
            "--epochs",
            "2",
            "--methods",
            "permutation",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert result.returncode == 0, result.stderr
    noise = [
        line
        for line in result.stderr.splitlines()
        if "I0000" in line or "E0000" in line or "absl" in line or "oneDNN" in line
    ]
    assert not noise
    assert "held-out R^2 =" in result.stdout
