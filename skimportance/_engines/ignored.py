"""Groups the network provably ignores: scored without a forward pass.

A column whose every weight in the network's first Dense layer is exactly 0
has no path to the output: the network's output on permuted rows *is* its
output on the rows themselves. The engines score such a slice on the
unperturbed output (``Slices.unperturbed_raw``) instead of running the
network on rows of another batch composition, whose float32 rounding would
differ in the last digits: its importance and every loss difference are then
exactly 0, on any CPU. Only where X's columns are the network's inputs (no
preprocessing, one flat input) and the network starts with a plain Dense
layer; elsewhere nothing is skipped.
"""

from __future__ import annotations

import numpy as np

from .network_split import IncrementalUnavailable, _first_dense

__all__ = ["ignored_groups"]


def ignored_groups(located, groups) -> frozenset:
    """Indices of the groups whose columns all have zero first-layer weights."""
    if (
        located.preprocessor is not None
        or located.kind == "keras_wrapper"  # its own input handling, unread
        or not located.layout.flat
        or getattr(located.final, "inputs", None) is not None
    ):
        return frozenset()
    try:
        kernel = np.asarray(_first_dense(located.model).kernel.numpy())
    except IncrementalUnavailable:
        return frozenset()
    if kernel.shape[0] != located.n_model_features:
        return frozenset()
    return frozenset(
        g
        for g, columns in enumerate(groups)
        if len(columns) and not kernel[columns].any()
    )
