"""Command line: ``skimportance demo`` and ``skimportance explain DATA.csv``.

Both commands are thin: they build a scikit-learn Pipeline around a Keras MLP,
call the library's importance functions and print a features x methods table.
Problems with the user's input end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import _tabular
from ._compat import quiet_tensorflow
from ._methods import DEMO_METHODS, EXPLAIN_METHODS, REGISTRY, resolve_methods


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skimportance`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    quiet_tensorflow()
    try:
        return args.run(args)
    except (CommandError, _tabular.TableError) as error:
        print(f"skimportance: error: {error}", file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skimportance",
        description="Which inputs matter in my Keras neural network?",
        epilog=_methods_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser(
        "demo",
        help="train a small MLP on load_diabetes and compare every method",
        epilog=_methods_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--epochs", type=_positive_int, default=60, help="training epochs"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument(
        "--methods",
        default=",".join(DEMO_METHODS),
        help="comma-separated methods (listed below)",
    )
    demo.add_argument("--out", help="also save a comparison figure (PNG)")
    demo.set_defaults(run=_run_demo)

    explain = commands.add_parser(
        "explain",
        help="train an MLP on a CSV file and explain which columns matter",
        epilog=_methods_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("data", help="CSV file with a header row")
    explain.add_argument("--target", required=True, help="column to predict")
    explain.add_argument("--task", choices=_tabular.TASKS, default="auto")
    explain.add_argument(
        "--methods",
        default=",".join(EXPLAIN_METHODS),
        help="comma-separated methods (listed below)",
    )
    explain.add_argument(
        "--cv", type=_positive_int, help="K-fold cross-validated importance (K >= 2)"
    )
    explain.add_argument("--epochs", type=_positive_int, default=100)
    explain.add_argument("--hidden", default="64,64", help="hidden layer sizes")
    explain.add_argument("--seed", type=int, default=0, help="random seed")
    explain.add_argument("--out", help="save a comparison figure (PNG)")
    explain.add_argument("--json", help="write the importances as JSON")
    explain.set_defaults(run=_run_explain)
    return parser


def _methods_help() -> str:
    """The registered methods, one line each, as the spec describes them."""
    width = max(map(len, REGISTRY))
    lines = [
        f"  {name:<{width}}  {spec.summary}" + (" (signed)" if spec.signed else "")
        for name, spec in REGISTRY.items()
    ]
    return "methods (for --methods):\n" + "\n".join(lines)


def _signed_note(calls) -> str:
    """Which of the computed methods give signed importances, in words."""
    signed = [call.name for call in calls if call.spec.signed]
    if not signed:
        return ""
    if len(signed) == 1:
        return f" {signed[0]} is signed."
    return f" {', '.join(signed[:-1])} and {signed[-1]} are signed."


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# --- demo -----------------------------------------------------------------------


def _run_demo(args) -> int:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    calls = _parse_methods(args.methods)
    _check_output_paths(args)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=args.seed
    )
    print(
        f"Training a 2x32 Keras MLP on load_diabetes ({len(X_train)} rows, "
        f"{X.shape[1]} features, at most {args.epochs} epochs)...",
        flush=True,
    )
    start = time.perf_counter()
    model = _mlp_pipeline(
        StandardScaler(), "regression", (32, 32), args.epochs, args.seed
    )
    model.fit(X_train, y_train)
    print(
        f"Trained in {time.perf_counter() - start:.1f} s; "
        f"{_score_name('regression')} = {model.score(X_test, y_test):.3f}\n"
    )
    results = _measure(model, X_test, y_test, calls, args.seed, X_train)
    print(_format_table(results, calls))
    print(
        "Scales differ between methods: compare rankings, not raw numbers."
        + _signed_note(calls)
    )
    if args.out:
        _save_figure(results, args.out)
    return 0


# --- explain --------------------------------------------------------------------


def _run_explain(args) -> int:
    from sklearn.model_selection import train_test_split

    calls = _parse_methods(args.methods)
    hidden = _parse_hidden(args.hidden)
    _check_output_paths(args)  # before minutes of training
    if args.cv is not None and args.cv < 2:
        raise CommandError("--cv needs at least 2 folds")
    X, y = _tabular.read_table(args.data, args.target)
    task = _tabular.resolve_task(y, args.task)
    if args.cv is not None and args.cv > len(X):
        raise CommandError(f"--cv {args.cv} is more folds than the {len(X)} rows")
    if task == "classification":
        _tabular.check_classes(y, args.cv or 2)
    calls, skipped = _eligible(calls, X)
    print(
        f"{args.data}: {len(X)} rows, {X.shape[1]} input columns "
        f"({len(_tabular.categorical_columns(X))} categorical), target "
        f"{args.target!r} -> {task}",
        flush=True,
    )
    model = _mlp_pipeline(
        _tabular.preprocessor(X), task, hidden, args.epochs, args.seed, progress=True
    )
    if args.cv:
        from .model_selection import cross_validate_importance

        results = cross_validate_importance(
            model,
            X,
            y,
            cv=args.cv,
            method=[call.name for call in calls],
            random_state=args.seed,
        )
        score = next(iter(results.values())).test_scores
        print(
            f"{args.cv}-fold {_score_name(task)}: {score.mean():.3f} "
            f"+/- {score.std():.3f}\n"
        )
    else:
        stratify = y if task == "classification" else None
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=args.seed, stratify=stratify
        )
        model.fit(X_train, y_train)
        print(f"{_score_name(task)}: {model.score(X_test, y_test):.3f}\n")
        results = _measure(model, X_test, y_test, calls, args.seed, X_train)
    print(_format_table(results, calls))
    for name, reason in skipped.items():
        print(f"{name}: not computed: {reason}")
    if args.out:
        _save_figure(results, args.out)
    if args.json:
        _write_json(results, args, task)
    return 0


def _score_name(task: str) -> str:
    """What ``estimator.score`` measures on held-out rows, in words."""
    return "held-out R^2" if task == "regression" else "held-out accuracy"


def _eligible(calls, X):
    """The methods that can report on the table's raw columns, and why the
    others cannot: weights of one-hot or missing-indicator columns have no
    sound sum per CSV column (the methods refuse them)."""
    encoded = _tabular.categorical_columns(X) + X.columns[X.isna().any()].tolist()
    if not encoded:
        return calls, {}
    reason = (
        "weight methods cannot report on one-hot encoded or imputed columns "
        f"({', '.join(map(str, encoded[:4]))}); methods that read predictions "
        "or gradients can"
    )
    skipped = {c.name: reason for c in calls if c.spec.reads == "weights"}
    kept = [c for c in calls if c.name not in skipped]
    if not kept:
        raise CommandError(f"no method left to compute: {reason}")
    return kept, skipped


def _check_output_paths(args) -> None:
    """Refuse an --out or --json path that cannot be written, before training."""
    import os
    from pathlib import Path

    for option in ("out", "json"):
        path = getattr(args, option, None)
        if path is None:
            continue
        folder = Path(path).resolve().parent
        if not folder.is_dir():
            raise CommandError(f"--{option} {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise CommandError(f"--{option} {path}: folder {folder} is not writable")
        if Path(path).is_dir():
            raise CommandError(f"--{option} {path} is a folder, not a file")
    if getattr(args, "out", None):
        from matplotlib.backend_bases import FigureCanvasBase

        suffix = Path(args.out).suffix.lstrip(".").lower()
        formats = FigureCanvasBase.get_supported_filetypes()
        if suffix not in formats:
            raise CommandError(
                f"--out {args.out}: unknown figure format {suffix!r}; use one of "
                f"{', '.join(sorted(formats))}"
            )


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CommandError(f"--hidden must be sizes like 64,64, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise CommandError(f"--hidden must be positive sizes like 64,64, got {text!r}")
    return sizes


def _write_json(results, args, task: str) -> None:
    payload = {
        "data": args.data,
        "target": args.target,
        "task": task,
        "methods": {},
    }
    for name, result in results.items():
        frame = result.to_frame()
        if args.cv:
            frame = frame.join(result.ci(corrected=True)[["lower", "upper"]])
        payload["methods"][name] = {
            "ranking": frame.index.tolist(),
            "importances": frame.to_dict(orient="index"),
        }
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    print(f"Importances written to {args.json}")


# --- shared ---------------------------------------------------------------------


def _mlp_pipeline(preprocessing, task, hidden, epochs, seed, progress=False):
    """``preprocessing`` + a Keras MLP, as a scikit-learn Pipeline.

    Training stops early when the loss on a 20% validation split has not
    improved for 10 epochs, keeping the best weights: ``epochs`` is a maximum.
    """
    from sklearn.pipeline import make_pipeline

    from ._compat import import_tensorflow_quietly

    import_tensorflow_quietly()  # before anything imports it with its noise
    from ._mlp import build_mlp
    from ._progress import EarlyStop, EpochProgressBar
    from .wrappers import KerasClassifier, KerasRegressor

    callbacks = [EarlyStop]  # classes: scikeras builds fresh ones for every fit
    if progress:
        callbacks.append(EpochProgressBar)
    common = dict(
        model=build_mlp,
        model__hidden=hidden,
        optimizer="adam",
        optimizer__learning_rate=0.01,
        epochs=epochs,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        random_state=seed,
        callbacks=callbacks,
    )
    if task == "regression":
        wrapper = KerasRegressor(loss="mse", **common)
    else:
        wrapper = KerasClassifier(loss="sparse_categorical_crossentropy", **common)
    return make_pipeline(preprocessing, wrapper)


def _parse_methods(text: str):
    """The method calls of ``--methods``, checked against the registry."""

    methods = [name.strip() for name in text.split(",") if name.strip()]
    if not methods:
        raise CommandError("--methods is empty")
    try:
        return resolve_methods(methods)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _measure(estimator, X, y, calls, seed, X_train):
    """{method: ImportanceResult} on held-out data, with a progress bar; the
    training rows are the background of methods that need one."""
    from tqdm.auto import tqdm

    calls = [call.with_training_data(X_train) for call in calls]
    return {
        call.name: call.seeded_with(seed).single(estimator, X, y, who="skimportance")
        for call in tqdm(calls, desc="importance", unit="method", file=sys.stderr)
    }


def _format_table(results, calls) -> str:
    """A features x methods table of mean importances, as text, with a line
    saying how the rows are ordered.

    Rows follow the most reliable method computed: one that measures the
    drop of the held-out score (permutation), else the first one; a signed
    method orders by magnitude. Most important first.
    """
    import pandas as pd

    table = pd.DataFrame(
        {
            name: pd.Series(r.importances_mean, index=r.feature_names)
            for name, r in results.items()
        }
    )
    scored = [call for call in calls if call.spec.needs_y]
    reference = (scored or calls)[0]
    order = (
        table[reference.name].abs() if reference.spec.signed else table[reference.name]
    )
    table = table.reindex(order.sort_values(ascending=False, kind="stable").index)
    table.index.name = "feature"
    how = "|value|" if reference.spec.signed else "value"
    return (
        table.to_string(float_format=lambda v: f"{v:.4g}")
        + f"\n\nRows ordered by {reference.name} ({reference.spec.summary}), by "
        + f"{how}, most important first."
    )


def _save_figure(results, path: str) -> None:
    from .plotting import ImportanceDisplay

    display = ImportanceDisplay.from_result(results).plot(layout="grouped")
    display.figure_.savefig(path, dpi=120, bbox_inches="tight")
    print(f"Figure written to {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
