"""Saving results to JSON and loading them back, and how results show in notebooks.

One versioned format for every result type. A file is one JSON object::

    {"format": "skimportance-result", "version": 1, "skimportance": "0.1.0",
     "type": "importance", "payload": {...}, "not_saved": ["details.cv"]}

``type`` is the tag a result class registered with :func:`register_result`;
``payload`` holds the result's fields, encoded by :func:`encode`:

* ndarrays as ``{"__ndarray__": dtype, "shape": [...], "data": [...]}`` with
  the values flattened in C order. Floats are written with Python's shortest
  repr, which reads back to the same float64 (or float32) bit for bit; NaN
  and infinities, which JSON lacks, are the strings ``"nan"``, ``"inf"`` and
  ``"-inf"``. Object arrays (names, mixed raw cells) encode each cell.
* tuples, dicts with non-string keys, pandas Index, Series and DataFrames
  (a categorical column comes back as object), numpy scalars, and nested
  results (a cross-validated result's folds) each as a small tagged object;
  plain lists, str-keyed dicts, numbers, text and None as themselves.

Anything else (a fitted estimator, a splitter, a function) is not saved: the
field is written as null and its path listed under ``not_saved``, so a loaded
result says what it lacks (``details["not_saved"]`` is never invented; the
list stays in the file). A file written by a newer format version is refused
with a message saying so. Pickle keeps working as before.

Adding a result type is one registration::

    @register_result("interaction")
    @dataclass
    class InteractionResult(ResultIO): ...

A dataclass whose fields are arrays, frames, numbers and text needs nothing
more; a class that is not a dataclass, or keeps derived state, overrides
``_to_payload`` and ``_from_payload``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RESULT_TYPES",
    "ResultIO",
    "decode",
    "encode",
    "load",
    "register_result",
]

FORMAT = "skimportance-result"
#: Bumped when a file written now could not be read by an older version.
FORMAT_VERSION = 1

#: type tag -> result class; filled by :func:`register_result`.
RESULT_TYPES: dict[str, type] = {}


def register_result(tag: str):
    """Class decorator: results of this class save under ``tag`` and load back."""

    def register(cls):
        if RESULT_TYPES.get(tag, cls) is not cls:
            raise ValueError(f"Result type tag {tag!r} is already registered.")
        RESULT_TYPES[tag] = cls
        cls._result_tag = tag
        return cls

    return register


class ResultIO:
    """What every result type shares: ``save``, ``_repr_html_`` and the payload.

    A subclass provides ``to_frame()`` and ``method``; ``baseline_score`` and
    ``test_name`` are used for the caption when present.
    """

    _result_tag: str = ""

    def _to_payload(self) -> dict:
        """The fields that rebuild this result (a dataclass's own fields)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def _from_payload(cls, payload: dict):
        return cls(**payload)

    def save(self, path) -> Path:
        """Write this result to ``path`` as JSON; read it with ``skimportance.load``.

        The format (versioned, arrays included, floats exact) is described in
        ``docs/guide.md``. A fitted estimator or a splitter kept on the result
        is not saved; the file lists what was left out under ``not_saved``.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        not_saved: list[str] = []
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "skimportance": _version(),
            "type": self._result_tag,
            "payload": encode(self._to_payload(), not_saved, ""),
            "not_saved": not_saved,
        }
        path = Path(path)
        path.write_text(json.dumps(document, allow_nan=False), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        """The table of :meth:`to_frame` with a caption, for notebooks."""
        from html import escape

        parts = [f"{type(self).__name__}: method {self.method}"]
        test = getattr(self, "test_name", None)
        parts.append(f"test: {test}" if test else "no test")
        score = getattr(self, "baseline_score", None)
        if score is not None:
            parts.append(f"baseline score {score:.4g}")
        table = self.to_frame().to_html(float_format=lambda v: f"{v:.4g}")
        caption = f"<caption>{escape('; '.join(parts))}</caption>"
        return table.replace(">", ">" + caption, 1)


def load(path):
    """Read a result written by ``result.save(path)``.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save`` of any skimportance result.

    Returns
    -------
    ImportanceResult, CVImportanceResult or another registered result type
        Equal, array for array, to the result saved.

    Raises
    ------
    ValueError
        The file is not a skimportance result, was written by a newer format
        version, or names a result type this version does not know.

    Examples
    --------
    >>> import os, tempfile
    >>> import skimportance
    >>> from skimportance import ImportanceResult
    >>> result = ImportanceResult([[0.1, 0.3], [0.5, float("nan")]], ["a", "b"],
    ...                           method="permutation")
    >>> path = os.path.join(tempfile.mkdtemp(), "result.json")
    >>> loaded = skimportance.load(result.save(path))
    >>> loaded.importances.tolist()
    [[0.1, 0.3], [0.5, nan]]
    """
    _import_result_types()
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skimportance result file.")
    version = document.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in result format version {version!r} (by "
            f"skimportance {document.get('skimportance')}); this skimportance "
            f"reads versions up to {FORMAT_VERSION}. Upgrade skimportance to "
            "load it."
        )
    return _build(document["type"], decode(document["payload"]), path)


def _build(tag, payload, where):
    cls = RESULT_TYPES.get(tag)
    if cls is None:
        raise ValueError(
            f"{where} holds a result of type {tag!r}, which this skimportance "
            f"does not know; it knows {sorted(RESULT_TYPES)}."
        )
    return cls._from_payload(payload)


def _import_result_types() -> None:
    # Registration happens when a result module is imported; the public
    # package imports them on demand, so load() makes sure they are.
    import skimportance

    for name in skimportance._RESULT_TYPES:
        getattr(skimportance, name)


def _version() -> str:
    import skimportance

    return skimportance.__version__


# --- encoding -----------------------------------------------------------------------


def _float(value: float):
    return value if math.isfinite(value) else str(value)  # "nan", "inf", "-inf"


def encode(value, not_saved: list, where: str):
    """``value`` as JSON-ready data; unsaveable parts appended to ``not_saved``."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        return {"__scalar__": value.dtype.str, "value": _array_data(np.array(value))}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype == object:  # text, or mixed cells: each encoded itself
            data = [encode(v, not_saved, where) for v in value.ravel().tolist()]
            return {"__ndarray__": "object", "shape": list(value.shape), "data": data}
        return {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "data": _array_data(value),
        }
    if isinstance(value, ResultIO):
        return {
            "__result__": value._result_tag,
            "payload": encode(value._to_payload(), not_saved, where),
        }
    if isinstance(value, (list, tuple)):
        items = [encode(v, not_saved, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("__") for key in value):
            return {
                k: encode(v, not_saved, f"{where}.{k}".lstrip("."))
                for k, v in value.items()
            }
        pairs = [[encode(k, not_saved, where), encode(v, not_saved, where)]
                 for k, v in value.items()]  # fmt: skip
        return {"__dict__": pairs}
    frame = _encode_pandas(value, not_saved, where)
    if frame is not None:
        return frame
    not_saved.append(where or type(value).__name__)
    return None


def _encode_pandas(value, not_saved, where):
    import pandas as pd

    name = None
    if isinstance(value, pd.Index) and not isinstance(value, pd.MultiIndex):
        values = np.asarray(value, dtype=object if value.dtype == object else None)
        return {"__index__": encode(values, not_saved, where),
                "name": encode(value.name, not_saved, where)}  # fmt: skip
    if isinstance(value, pd.Series):
        name, value, kind = value.name, value.to_frame(), "__series__"
    elif isinstance(value, pd.DataFrame):
        kind = "__frame__"
    else:
        return None
    return {
        "name": encode(name, not_saved, where),
        kind: [encode(value[c].to_numpy(), not_saved, where) for c in value.columns],
        "columns": encode(np.asarray(value.columns, dtype=object), not_saved, where),
        "index": encode(value.index.to_numpy(), not_saved, where),
        "index_name": value.index.name,
    }


def _array_data(array: np.ndarray) -> list:
    flat = array.ravel().tolist()
    if array.dtype.kind in "fc":
        return [_float(v) for v in flat]
    return flat


def decode(data):
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__ndarray__" in data:
        dtype = data["__ndarray__"]
        if dtype == "object":
            cells = np.empty(len(data["data"]), dtype=object)
            cells[:] = [decode(v) for v in data["data"]]
            return cells.reshape(data["shape"])
        values = [float(v) if isinstance(v, str) else v for v in data["data"]]
        return np.array(values, dtype=np.dtype(dtype)).reshape(data["shape"])
    if "__scalar__" in data:
        value = data["value"][0]
        return np.dtype(data["__scalar__"]).type(
            float(value) if isinstance(value, str) else value
        )
    if "__float__" in data:
        return float(data["__float__"])
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {_hashable(decode(k)): decode(v) for k, v in data["__dict__"]}
    if "__result__" in data:
        return _build(data["__result__"], decode(data["payload"]), "this file")
    if "__index__" in data:
        import pandas as pd

        return pd.Index(decode(data["__index__"]), name=decode(data["name"]))
    for kind in ("__frame__", "__series__"):
        if kind in data:
            return _decode_pandas(data, kind)
    return {k: decode(v) for k, v in data.items()}


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _decode_pandas(data, kind):
    import pandas as pd

    columns = decode(data["columns"]).tolist()
    index = pd.Index(decode(data["index"]), name=data["index_name"])
    values = [decode(column) for column in data[kind]]
    frame = pd.DataFrame(dict(zip(range(len(columns)), values)), index=index)
    frame.columns = columns
    if kind == "__series__":
        return frame.iloc[:, 0].rename(decode(data["name"]))
    return frame
