"""Output heads of different kinds, and y's columns matched to them by name.

A model may predict a number with one head and a class with another (a
regression head and a sigmoid head). Each head is scored on its own columns
(``scoring.HeadScorer``); this module says

* which heads are binary classifiers (one sigmoid unit), so that a scorer
  needing class probabilities (``roc_auc``, ``neg_log_loss``) or labels
  (``accuracy``) sees that head as a classifier (:class:`ClassifierHeadView`);
* which of y's columns belong to which head: a y DataFrame whose columns are
  the heads' names, in any order, is put in the heads' order; one naming only
  some of them is refused (:func:`align_y_to_heads`);
* which head ``output=`` chooses (:func:`check_output`).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils import ClassifierTags, get_tags

__all__ = [
    "ClassifierHeadView",
    "align_y_to_heads",
    "binary_head_classes",
    "check_output",
]


def binary_head_classes(model, layout, y) -> dict[int, np.ndarray]:
    """{head index: its two classes} for every head of one sigmoid unit."""
    from .._compat import layer_inputs

    found = {}
    for k, (tensor, head) in enumerate(zip(model.outputs, layout.outputs)):
        producer = layer_inputs(tensor)
        layer = producer[0] if producer is not None else None
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if head.width != 1 or activation != "sigmoid":
            continue
        labels = np.unique(np.asarray(y).reshape(len(y), -1)[:, layout.head_columns(k)])
        found[k] = labels if len(labels) == 2 else np.array([0, 1])
    return found


class ClassifierHeadView(ClassifierMixin):
    """A binary head (one sigmoid unit ``p``) seen as a classifier:
    probabilities ``[1 - p, p]``, labels where ``p > 0.5``."""

    def __init__(self, estimator, columns: np.ndarray, classes: np.ndarray):
        self.estimator = estimator
        self.columns = columns
        self.classes_ = classes

    def __sklearn_tags__(self):
        tags = get_tags(self.estimator)
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.regressor_tags = None
        return tags

    def predict_proba(self, X):
        predictions = np.asarray(self.estimator.predict(X), dtype=np.float64)
        p = predictions.reshape(len(predictions), -1)[:, self.columns[0]]
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]


def align_y_to_heads(layout, y):
    """y with its columns in the heads' order, when they are named after them.

    A y DataFrame whose column names are the heads' names (each head one
    unit) is reordered to the heads' order; names that match only some heads
    are refused; other names (or an array) pair with the heads by position.
    """
    columns = getattr(y, "columns", None)
    if columns is None or any(head.width != 1 for head in layout.outputs):
        return y
    heads = [head.name for head in layout.outputs]
    names = [str(c) for c in columns]
    if names == heads:
        return y
    if sorted(names) == sorted(heads):
        return y.iloc[:, [names.index(head) for head in heads]]
    shared = sorted(set(names) & set(heads))
    if shared:
        raise ValueError(
            f"y's columns {names} name some of the model's output heads "
            f"{heads} ({shared}) but not all: name every column after its head "
            "(in any order), or use other names to pair them by position."
        )
    return y


def check_output(output, names: list[str]) -> str:
    """The head ``output`` chooses: a name among ``names`` or a position."""
    if isinstance(output, numbers.Integral) and not isinstance(output, bool):
        if 0 <= output < len(names):
            return names[int(output)]
        raise ValueError(
            f"output={output} is out of range: the model has {len(names)} output "
            f"heads {names}."
        )
    if str(output) in names:
        return str(output)
    raise ValueError(
        f"output={output!r} is none of the model's output heads {names}; give a "
        "head's name or position."
    )
