"""A Keras callback showing a tqdm bar over training epochs (imports Keras)."""

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
