"""Run the code examples of the documentation.

Every ```python block of a docs/*.md page (and of README.md) runs, in order, in
one namespace per page (like a notebook), so examples cannot silently rot. Blocks that
are only illustrations use another fence (```text, ```console, ...). A failing
block shows up in the traceback as ``docs/<page>.md`` at the line it starts on.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


#: Pages whose examples train several networks (over 10 s on 2 cores): slow,
#: so that plain pytest stays within its 5 minutes; CI runs them with -m slow.
LONG_PAGES = {"guide.md", "models.md"}


def _page_param(page: Path):
    # A page whose examples start a dask cluster takes tens of seconds: slow.
    starts_a_cluster = "LocalCluster(" in page.read_text(encoding="utf-8")
    slow = starts_a_cluster or page.name in LONG_PAGES
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(page, id=page.name, marks=marks)


# An opening ```python fence (possibly indented, e.g. inside a list or an
# admonition), the code, and the closing fence at the same indentation.
_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the first code line, dedented code) of each python block."""
    blocks = []
    for match in _BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start("code")) + 1
        blocks.append((first_line, textwrap.dedent(match.group("code"))))
    return blocks


def test_block_extraction():
    text = (
        "intro\n```python\na = 1\n```\n\n- item\n\n    ```python\n    b = a\n    ```\n"
    )
    text += "```text\nnot = code\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a\n")]


def test_docs_exist():
    assert {"index.md", "guide.md", "api.md"} <= {page.name for page in PAGES}


@pytest.mark.parametrize("page", [_page_param(page) for page in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{page.name} has no python examples")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # anything an example writes lands here
    namespace = {"__name__": f"docs_{page.stem}"}
    try:
        for first_line, code in blocks:
            # pad so that tracebacks show the line numbers of the .md file
            source = "\n" * (first_line - 1) + code
            exec(compile(source, str(page), "exec"), namespace)
    finally:
        plt.close("all")
