"""The model function behind local attributions, and the rows it is fed.

Local attributions compare a row x with background rows b through rows that
take some features from x and the rest from b. This module holds the rows of
X and of the background in one space, each feature's columns in it
(``blocks``), and the explained response columns of the model:

* a Keras estimator: the space the Keras model sees (after the Pipeline's
  preprocessing, which must keep raw columns apart, as a one-hot encoder or a
  scaler does), so X and the background are preprocessed once and a raw
  column's one-hot block moves as one;
* any other fitted estimator: the raw rows themselves (an ndarray, or a
  DataFrame whose columns keep their dtypes), through ``predict_proba`` for a
  classifier and ``predict`` otherwise.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from ._model import has_keras_model, locate_keras_model

__all__ = ["LocalModel", "local_model"]


class LocalModel:
    """X and the background in one space, feature blocks and the response.

    Attributes
    ----------
    X, background : ndarray or DataFrame
        Rows in the space the function takes.
    blocks : list of ndarray of int
        The columns of each feature (raw column or group) in that space.
    names : ndarray of str
        One name per feature.
    output_names : list of str
        The explained response columns.
    located : LocatedModel or None
        The Keras model, when there is one.
    """

    def __init__(
        self, X, background, blocks, names, output_names, predict, located, outputs=None
    ):
        self.outputs = outputs  # a Keras model's OutputSelection
        #: The incremental first-layer engine, when one is used (``use_incremental``).
        self.engine = None
        self.raw = None  # (X, background, raw column groups) for that engine
        self.X = X
        self.background = background
        self.blocks = blocks
        self.names = np.asarray(names, dtype=object).astype(str)
        self.output_names = list(output_names)
        self._predict = predict
        self.located = located
        self.frame = hasattr(X, "iloc")

    @property
    def n_columns(self) -> int:
        return np.shape(self.X)[1]

    @property
    def row_bytes(self) -> int:
        """Memory one built row costs: its values and, for a network, every
        layer's output."""
        if self.engine is not None:
            return int(self.engine.bytes_per_row)
        forward = self.located.bytes_per_row if self.located is not None else 0
        return 8 * self.n_columns + forward

    def use_incremental(self, required: bool) -> str | None:
        """Switch coalition values to the incremental first-layer engine
        (``_engines.coalitions``, shared with SAGE): each feature's share of
        the first Dense layer is computed once for X and for the background,
        so a coalition is a sum of shares and only the rest of the network
        runs. Returns why it does not apply (raising if ``required``)."""
        from ._engines.coalitions import IncrementalCoalitions
        from ._engines.network_split import IncrementalUnavailable

        why = None
        if self.located is None:
            why = "it needs a Keras model"
        elif self.raw is None:
            why = "the features are parts of an N-D input"
        else:
            X, background, groups = self.raw
            classifier = getattr(self.located.final, "classes_", None) is not None
            method = "predict_proba" if classifier else "predict"
            try:
                self.engine = IncrementalCoalitions.plan(
                    self.located, X, background, groups, method
                )
            except IncrementalUnavailable as exc:
                why = str(exc)
        if why is not None and required:
            raise ValueError(f"algorithm='incremental' does not apply: {why}.")
        return why

    def mean_responses(self, xs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Coalition values by the incremental engine, (n_x, n_masks, n_out)."""
        rows = np.repeat(xs, len(masks))
        kept = np.tile(masks, (len(xs), 1))
        values = self.engine.mean_responses(rows, kept).reshape(len(rows), -1)
        columns = list(self.outputs.columns)
        return values[:, columns].reshape(len(xs), len(masks), -1)

    def __call__(self, rows) -> np.ndarray:
        """The explained response columns, shape (n_rows, n_outputs), float64."""
        return np.asarray(self._predict(rows), dtype=np.float64)

    def column_masks(self, masks: np.ndarray) -> np.ndarray:
        """Feature masks (n_masks, n_features) as column masks (n_masks, n_columns)."""
        indicator = np.zeros((len(self.blocks), self.n_columns), dtype=bool)
        for k, block in enumerate(self.blocks):
            indicator[k, block] = True
        return (masks.astype(np.int64) @ indicator.astype(np.int64)) > 0

    def hybrid_rows(self, x_rows: np.ndarray, masks: np.ndarray, bg_rows=None):
        """For each explained row, each mask and each background row: the
        background row with the masked features taken from the explained row.

        Rows are ordered (explained row, mask, background row).
        """
        background = self.background if bg_rows is None else bg_rows
        columns = self.column_masks(masks)  # (n_masks, n_columns)
        n_x, n_m, n_b = len(x_rows), len(masks), len(background)
        if not self.frame:
            X = np.asarray(self.X)[x_rows]  # (n_x, n_columns)
            B = np.asarray(background)
            out = np.where(
                columns[np.newaxis, :, np.newaxis, :],
                X[:, np.newaxis, np.newaxis, :],
                B[np.newaxis, np.newaxis, :, :],
            )
            return out.reshape(n_x * n_m * n_b, self.n_columns)
        import pandas as pd

        data = {}
        for j in range(self.n_columns):
            x_col = self.X.iloc[x_rows, j].array
            b_col = background.iloc[:, j].array
            take_x = np.broadcast_to(
                columns[np.newaxis, :, j, np.newaxis], (n_x, n_m, n_b)
            )
            x_pos = np.broadcast_to(np.arange(n_x)[:, None, None], (n_x, n_m, n_b))
            b_pos = np.broadcast_to(np.arange(n_b)[None, None, :], (n_x, n_m, n_b))
            column = b_col.take(b_pos.ravel())
            chosen = take_x.ravel()
            if chosen.any():
                column[chosen] = x_col.take(x_pos.ravel()[chosen])
            data[j] = column
        frame = pd.DataFrame(data, copy=False)
        frame.columns = self.X.columns
        return frame

    def rows_of(self, rows, positions):
        """Some rows of ``rows`` (an array or a DataFrame)."""
        if hasattr(rows, "iloc"):
            return rows.iloc[positions]
        return np.asarray(rows)[positions]


def local_model(estimator, X, background, output, groups_of) -> LocalModel:
    """Build the :class:`LocalModel`; ``groups_of(raw_names)`` turns the raw
    column names into (blocks over raw columns, names)."""
    if has_keras_model(estimator):
        return _keras_model(estimator, X, background, output, groups_of)
    return _any_estimator(estimator, X, background, output, groups_of)


def _keras_model(estimator, X, background, output, groups_of) -> LocalModel:
    from ._columns import column_map
    from ._outputs import resolve_outputs
    from ._validation import check_model_input

    located = locate_keras_model(estimator)
    outputs = resolve_outputs(located, output)
    X_model = check_model_input(located, X, caller="local_importance")
    bg_model = check_model_input(located, background, caller="local_importance")
    # The map is read on the background: more rows than one explained row.
    mapping = column_map(located, background, bg_model)
    mapping.check_separable("local_importance")
    raw_groups, names = groups_of(mapping.raw_names)
    blocks = [
        np.concatenate([mapping.blocks[j] for j in group]).astype(np.intp)
        for group in raw_groups
    ]
    explained = list(outputs.columns)

    def predict(rows):
        return outputs.response(located.forward(rows))[:, explained]

    model = LocalModel(
        X_model,
        bg_model,
        blocks,
        names,
        [outputs.names[k] for k in explained],
        predict,
        located,
        outputs,
    )
    if not mapping.nd:
        model.raw = (X, background, list(raw_groups))
    return model


def _any_estimator(estimator, X, background, output, groups_of) -> LocalModel:
    from ._model import feature_names_of

    if not hasattr(estimator, "predict"):
        raise TypeError(
            f"local_importance needs a fitted estimator with predict, got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    if np.ndim(X) != 2:
        raise ValueError(f"X must be 2-D, got {np.ndim(X)} dimensions.")
    if len(X) == 0:
        raise ValueError("X has no rows.")
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and np.shape(X)[1] != expected:
        raise ValueError(
            f"X has {np.shape(X)[1]} columns; {type(estimator).__name__} was "
            f"fitted on {expected}."
        )
    names = feature_names_of(estimator, X, np.shape(X)[1])
    raw_groups, group_names = groups_of(names)
    blocks = [np.asarray(group, dtype=np.intp) for group in raw_groups]
    classifier = is_classifier(estimator) and hasattr(estimator, "predict_proba")
    if classifier:
        labels = [str(label) for label in estimator.classes_]
        respond = estimator.predict_proba
    else:
        respond = estimator.predict
        labels = None
    if not hasattr(X, "iloc"):
        X = np.asarray(X)
        background = np.asarray(background)
        if X.dtype.kind in "iub":
            X = X.astype(np.float64)
        if background.dtype.kind in "iub":
            background = background.astype(np.float64)
    columns, output_names = _any_outputs(estimator, X, labels, output, respond)

    def predict(rows):
        response = np.asarray(respond(rows), dtype=np.float64)
        response = response.reshape(len(response), -1)
        return response[:, columns]

    return LocalModel(X, background, blocks, group_names, output_names, predict, None)


def _any_outputs(estimator, X, labels, output, respond):
    """Explained columns of a scikit-learn estimator's response."""
    if labels is None:
        n_outputs = getattr(estimator, "n_outputs_", None)
        if n_outputs is None:
            coef = getattr(estimator, "coef_", None)
            n_outputs = 1 if coef is None or np.ndim(coef) < 2 else np.shape(coef)[0]
        labels = [f"output {k}" for k in range(n_outputs)]
    if output is None:
        columns = [1] if len(labels) == 2 and is_classifier(estimator) else None
        columns = columns if columns is not None else list(range(len(labels)))
    elif isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not 0 <= output < len(labels):
            raise ValueError(
                f"output={output} is out of range: the response has "
                f"{len(labels)} column(s) {labels}."
            )
        columns = [int(output)]
    elif str(output) in labels:
        columns = [labels.index(str(output))]
    else:
        raise ValueError(
            f"output={output!r} is neither a column position nor one of the "
            f"response columns {labels}."
        )
    return columns, [labels[k] for k in columns]
