"""mkdocs hook: render Sphinx roles in docstrings as code.

The package's numpydoc docstrings cross-reference with Sphinx roles
(``:class:`~skimportance.ImportanceResult```), which mkdocstrings leaves as
literal text. Show them as code instead; ``~`` keeps only the last name, as in
Sphinx.
"""

import re

_ROLE = re.compile(
    r":(?:class|func|meth|attr|mod|obj|data|exc):<code>(~?)([\w.]+)</code>"
)


def _as_code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_as_code, html)
