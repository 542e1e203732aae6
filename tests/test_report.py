"""skimportance.report and `explain --report`: one self-contained HTML page,
checked in a real browser (headless Chromium) by the slow test."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

pytest.importorskip("matplotlib").use("Agg")

from skimportance import ImportanceResult, permutation_importance, report  # noqa: E402

DOCS_SCREENSHOT = Path(__file__).parents[1] / "docs" / "images" / "report.png"


@pytest.fixture(scope="module")
def results():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.1).fit(X[:300], y[:300])
    perm = permutation_importance(model, X[300:], y[300:], n_repeats=3, random_state=0)
    olden = ImportanceResult(model.coef_, X.columns, method="olden")  # signed
    return {"permutation": perm, "olden": olden}


def self_contained(html: str) -> None:
    """No script, no stylesheet link, nothing fetched from anywhere."""
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html


def test_report_holds_tables_scores_and_inline_figures(results, tmp_path):
    path = report(results, tmp_path / "r.html", score="held-out R^2: 0.51",
                  skipped={"garson": "weights of one-hot columns"})  # fmt: skip
    html = path.read_text()
    self_contained(html)
    assert html.count("<svg") == 2  # the bars and the method-agreement map
    assert "Rank agreement" in html
    assert "held-out R^2: 0.51" in html
    assert "garson: not computed: weights of one-hot columns" in html
    # the permutation table carries the row test's interval and p-values
    perm = results["permutation"].to_frame()
    for column in ("lower", "upper", "pvalue", "qvalue", "selected"):
        assert f"<th>{column}</th>" in html
    assert f"{perm['pvalue'].iloc[0]:.4g}" in html
    assert html.count('<table class="dataframe importance">') == 2


def test_report_of_one_result_has_no_agreement_map(results, tmp_path):
    html = report(results["permutation"], tmp_path / "one.html").read_text()
    assert html.count("<svg") == 1 and "Rank agreement" not in html
    assert "baseline score" in html  # no score given: each result's own


def chromium(*args, tmp_path):
    command = [
        shutil.which("chromium") or "/usr/bin/chromium", "--headless", "--no-sandbox",
        "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network, even by accident
        "--enable-logging=stderr", "--v=0", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done, console


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run)"
)
def test_cli_report_renders_in_headless_chromium(tmp_path):
    from skimportance.cli import main

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "dose": rng.normal(size=n), "age": rng.normal(50, 10, size=n),
        "noise": rng.normal(size=n),
        "site": rng.choice(["north", "south", "east"], size=n),
        "clinic": rng.choice([f"c{i}" for i in range(8)], size=n),
    })  # fmt: skip
    frame["response"] = (
        3 * frame["dose"] + 0.1 * (frame["age"] - 50) + 2 * (frame["site"] == "north")
    )
    frame.loc[::17, "age"] = np.nan
    frame.loc[3::19, "clinic"] = np.nan
    data = tmp_path / "clinics.csv"
    frame.to_csv(data, index=False)
    page = tmp_path / "report.html"
    code = main(["explain", str(data), "--target", "response", "--epochs", "40",
                 "--hidden", "16", "--report", str(page)])  # fmt: skip
    assert code == 0
    self_contained(page.read_text())

    # Positive control: the console check sees a page's errors.
    bad = tmp_path / "bad.html"
    bad.write_text("<p>x</p><script>throw new Error('boom')</script>")
    _, console = chromium("--dump-dom", bad.as_uri(), tmp_path=tmp_path)
    assert any("Uncaught" in line for line in console)

    done, console = chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert done.returncode == 0 and console == []
    dom = done.stdout
    assert dom.count("<table") >= 3  # data summary and one per method
    assert dom.count("<svg") == 2 and "Rank agreement" in dom
    assert "pvalue" in dom and "held-out R^2" in dom

    shot = tmp_path / "report.png"
    done, console = chromium(
        f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri(),
        tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0 and console == []
    assert (
        shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    )
    if os.environ.get("SKIMPORTANCE_DOCS_SCREENSHOT"):  # refresh the docs' picture
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_other_result_types_get_a_section_from_their_frame_and_plot(results, tmp_path):
    import matplotlib.pyplot as plt

    class PairsResult:  # any result with to_frame() and plot(), e.g. interactions
        method = "pairs"

        def to_frame(self):
            return pd.DataFrame({"interaction": [0.25]}, index=["bmi x s5"])

        def plot(self):
            _, ax = plt.subplots()
            ax.set_title("pair heat map")
            return ax

    html = report({**results, "pairs": PairsResult()}, tmp_path / "o.html").read_text()
    assert html.count("<svg") == 3 and "pair heat map" in html
    assert "bmi x s5" in html and "(PairsResult)" in html


def test_importing_the_module_never_hides_the_function():
    import skimportance
    import skimportance.html_report  # noqa: F401

    assert skimportance.report is skimportance.html_report.report


def test_a_local_result_gets_its_own_section(results, tmp_path):
    from skimportance import local_importance

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    local = local_importance(Ridge().fit(X, y), X.iloc[:2], background=X.iloc[50:90])
    html = report({**results, "one patient": local}, tmp_path / "l.html").read_text()
    assert html.count("<svg") == 3 and "(LocalResult)" in html


def test_an_interaction_result_gets_its_heat_map_and_pairs(results, tmp_path):
    from skimportance import interaction_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(80, 3)), columns=["dose", "age", "bmi"])
    y = 3 * X["dose"] * X["age"] + X["bmi"]
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    model = make_pipeline(PolynomialFeatures(2), Ridge(alpha=1e-6)).fit(X, y)
    pairs = interaction_importance(model, X, random_state=0)
    html = report({**results, "pairs": pairs}, tmp_path / "i.html").read_text()
    assert html.count("<svg") == 3 and "(InteractionResult)" in html
    table = html[html.index("(InteractionResult)") :]
    table = table[table.index("<tbody>") :]
    first_row = re.findall(r"<th>(\w+)</th>", table)[:2]
    assert first_row == ["dose", "age"]  # the strongest pair first
