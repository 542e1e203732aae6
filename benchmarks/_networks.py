"""The network the validity benchmarks train: an MLP behind a StandardScaler.

Early stopping on the last 20% of the training rows: an overfitted network
would blur the comparison with the known truth with noise it learned.
"""

from __future__ import annotations


def early_stopped_regressor(
    *, hidden, learning_rate: float, max_epochs: int, patience: int, seed: int
):
    """An unfitted ``StandardScaler -> KerasRegressor(build_mlp)`` pipeline."""
    import keras
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skimportance import KerasRegressor, build_mlp

    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    network = KerasRegressor(
        build_mlp,
        model__hidden=hidden,
        loss="mse",
        optimizer="adam",
        optimizer__learning_rate=learning_rate,
        epochs=max_epochs,
        batch_size=64,
        validation_split=0.2,
        callbacks=[stop],
        verbose=0,
        random_state=seed,
    )
    return make_pipeline(StandardScaler(), network)
