"""Keras callbacks of the command line: a tqdm bar over training epochs, and
early stopping with its defaults (imports Keras)."""

from __future__ import annotations

import sys

import keras
from tqdm.auto import tqdm


class EpochProgressBar(keras.callbacks.Callback):
    """One progress bar per ``fit``, on stderr, removed when training ends."""

    def on_train_begin(self, logs=None):
        self.bar = tqdm(
            total=self.params.get("epochs"),
            desc="training",
            unit="epoch",
            file=sys.stderr,
            leave=False,
        )

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4g}")

    def on_train_end(self, logs=None):
        self.bar.close()


class EarlyStop(keras.callbacks.EarlyStopping):
    """Stop when the validation loss has not improved for 10 epochs, keeping
    the best weights (a class, so that scikeras builds a fresh one per fit)."""

    def __init__(self, patience: int = 10):
        super().__init__(patience=patience, restore_best_weights=True)
