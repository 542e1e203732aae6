"""Command line: ``skimportance demo`` and ``skimportance explain``."""

from __future__ import annotations

import argparse
import os
import sys
import time

DEMO_METHODS = (
    "permutation",
    "olden",
    "garson",
    "first_layer",
    "probe",
    "saliency",
    "integrated_gradients",
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skimportance`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return args.run(args)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skimportance",
        description="Which inputs matter in my Keras neural network?",
    )
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser(
        "demo", help="train a small MLP on load_diabetes and compare every method"
    )
    demo.add_argument("--epochs", type=int, default=60, help="training epochs")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument(
        "--methods",
        default=",".join(DEMO_METHODS),
        help="comma-separated methods (default: all)",
    )
    demo.add_argument("--out", help="also save a comparison figure (PNG)")
    demo.set_defaults(run=_run_demo)
    return parser


def _run_demo(args) -> int:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    methods = _parse_methods(args.methods)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=args.seed
    )
    print(
        f"Training a 2x32 Keras MLP on load_diabetes ({len(X_train)} rows, "
        f"{X.shape[1]} features, {args.epochs} epochs)...",
        flush=True,
    )
    start = time.perf_counter()
    model = _standardised_mlp("regression", args.epochs, (32, 32), args.seed)
    model.fit(X_train, y_train)
    print(
        f"Trained in {time.perf_counter() - start:.1f} s; "
        f"held-out R^2 = {model.score(X_test, y_test):.3f}\n"
    )
    results = _compute_all(model, X_test, y_test, methods, args.seed)
    print(_format_table(results))
    print(
        "\nRows sorted by the first method. Scales differ between methods: "
        "compare rankings, not raw numbers.\npermutation: drop in R^2 when the "
        "column is shuffled (held-out data); olden is signed."
    )
    if args.out:
        _save_figure(results, args.out)
    return 0


def _standardised_mlp(task: str, epochs: int, hidden: tuple[int, ...], seed: int):
    """StandardScaler + a Keras MLP, as a scikit-learn Pipeline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .wrappers import KerasClassifier, KerasRegressor

    common = dict(
        model=_build_mlp,
        model__hidden=hidden,
        optimizer="adam",
        optimizer__learning_rate=0.01,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        random_state=seed,
    )
    if task == "regression":
        wrapper = KerasRegressor(loss="mse", **common)
    else:
        wrapper = KerasClassifier(loss="sparse_categorical_crossentropy", **common)
    return make_pipeline(StandardScaler(), wrapper)


def _build_mlp(meta, hidden=(32, 32)):
    import keras

    if "n_classes_" in meta:
        n_out, activation = meta["n_classes_"], "softmax"
    else:
        n_out, activation = 1, None
    layers = [keras.Input((meta["n_features_in_"],))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(n_out, activation=activation))
    return keras.Sequential(layers)


def _parse_methods(text: str) -> list[str]:
    from ._methods import check_method

    methods = [name.strip() for name in text.split(",") if name.strip()]
    if not methods:
        raise SystemExit("skimportance: error: --methods is empty")
    for name in methods:
        try:
            check_method(name)
        except ValueError as error:
            raise SystemExit(f"skimportance: error: {error}") from None
    return methods


def _compute_all(estimator, X, y, methods, seed):
    """{method: ImportanceResult}, with a progress bar over methods."""
    from tqdm.auto import tqdm

    from ._methods import compute_importance

    results = {}
    for method in tqdm(methods, desc="importance", unit="method", file=sys.stderr):
        params = (
            {"random_state": seed, "n_repeats": 5} if method == "permutation" else {}
        )
        results[method] = compute_importance(estimator, X, y, method=method, **params)
    return results


def _format_table(results) -> str:
    """A features x methods table of mean importances, as text."""
    import pandas as pd

    table = pd.DataFrame(
        {
            name: pd.Series(r.importances_mean, index=r.feature_names)
            for name, r in results.items()
        }
    )
    first = next(iter(results))
    table = table.reindex(table[first].abs().sort_values(ascending=False).index)
    table.index.name = "feature"
    return table.to_string(float_format=lambda v: f"{v:.4g}")


def _save_figure(results, path: str) -> None:
    from .plotting import ImportanceDisplay

    display = ImportanceDisplay.from_result(results).plot()
    display.figure_.savefig(path, dpi=120, bbox_inches="tight")
    print(f"Figure written to {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
