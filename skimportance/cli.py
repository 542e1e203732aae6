"""Command line: ``skimportance demo`` and ``skimportance explain DATA.csv``.

Both commands are thin: they build a scikit-learn Pipeline around a Keras MLP,
call the library's importance functions and print a features x methods table.
Problems with the user's input end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import _tabular
from ._cli_interactions import print_interactions, save_heat_map
from ._cli_output import (
    CommandError,
    check_output_paths,
    format_table,
    save_figure,
    signed_note,
    write_json,
)
from ._compat import quiet_tensorflow
from ._methods import DEMO_METHODS, EXPLAIN_METHODS, REGISTRY, resolve_methods


class _HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Keeps the method list's lines and shows every option's default (an
    option without one says in its help what happens instead)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


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
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser(
        "demo",
        help="train a small MLP on load_diabetes and compare every method",
        epilog=_methods_help(),
        formatter_class=_HelpFormatter,
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
    demo.add_argument(
        "--out", help="also save a comparison figure (PNG); default: none"
    )
    demo.set_defaults(run=_run_demo)

    explain = commands.add_parser(
        "explain",
        help="train an MLP on a CSV file and explain which columns matter",
        epilog=_methods_help(),
        formatter_class=_HelpFormatter,
    )
    explain.add_argument("data", help="CSV file with a header row")
    explain.add_argument("--target", required=True, help="column to predict")
    explain.add_argument(
        "--task",
        choices=_tabular.TASKS,
        default="auto",
        help="auto: classification for text or few integer labels",
    )
    explain.add_argument(
        "--methods",
        default=",".join(EXPLAIN_METHODS),
        help="comma-separated methods (listed below)",
    )
    explain.add_argument(
        "--cv",
        type=_positive_int,
        help="K-fold cross-validated importance (K >= 2); default: one held-out split",
    )
    explain.add_argument(
        "--epochs", type=_positive_int, default=100, help="most training epochs"
    )
    explain.add_argument("--hidden", default="64,64", help="hidden layer sizes")
    explain.add_argument("--seed", type=int, default=0, help="random seed")
    explain.add_argument(
        "--n-repeats",
        type=_positive_int,
        help="repeats of the methods that draw (default: each method's own)",
    )
    explain.add_argument(
        "--scoring",
        help="a scikit-learn scorer name (e.g. r2, neg_mean_absolute_error, "
        "roc_auc) for the held-out score and the methods that score; "
        "default: R^2 or accuracy",
    )
    explain.add_argument(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="fraction of rows held out for the score and the importances",
    )
    explain.add_argument(
        "--random-state",
        type=int,
        help="seed of the held-out split and the methods' draws (default: --seed)",
    )
    explain.add_argument("--out", help="save a comparison figure (PNG); default: none")
    explain.add_argument(
        "--json", help="write the importances, p-values and FDR as JSON; default: none"
    )
    explain.add_argument(
        "--report",
        help="write a self-contained HTML report (tables, figures); default: none",
    )
    explain.add_argument(
        "--interactions",
        nargs="?",
        const=5,
        type=_positive_int,
        metavar="K",
        help="also print the K strongest pairwise interactions (H², default 5) "
        "and, with --out, save their heat map next to the figure",
    )
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


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


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
    check_output_paths(args)
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
    results, failed = _measure(model, X_test, y_test, calls, args.seed, X_train)
    print(format_table(results, calls))
    for name, reason in failed.items():
        print(f"{name}: not computed: {reason}")
    print(
        "Scales differ between methods: compare rankings, not raw numbers."
        + signed_note(calls)
    )
    if args.out:
        save_figure(results, args.out)
    return 0


# --- explain --------------------------------------------------------------------


def _run_explain(args) -> int:
    from sklearn.model_selection import train_test_split

    calls = _parse_methods(args.methods, n_repeats=args.n_repeats, scoring=args.scoring)
    hidden = _parse_hidden(args.hidden)
    check_output_paths(args)  # before minutes of training
    if args.cv is not None and args.cv < 2:
        raise CommandError("--cv needs at least 2 folds")
    if args.cv is not None and args.interactions is not None:
        raise CommandError(
            "--interactions runs on the held-out rows, which --cv does not keep; "
            "drop one of the two"
        )
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
    seed = args.seed if args.random_state is None else args.random_state
    metric = f"held-out {args.scoring or _default_metric(task)}"
    if args.cv:
        results, failed, scores = _cross_validate(model, X, y, calls, args, seed)
        if scores is None:
            raise CommandError(f"no method could answer: {'; '.join(failed.values())}")
        score_line = (
            f"{args.cv}-fold {metric}: {scores.mean():.3f} +/- {scores.std():.3f}"
        )
        print(score_line + "\n")
    else:
        stratify = y if task == "classification" else None
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=seed, stratify=stratify
        )
        model.fit(X_train, y_train)
        score_line = f"{metric}: {_score(model, X_test, y_test, args.scoring):.3f}"
        print(score_line + "\n")
        results, failed = _measure(model, X_test, y_test, calls, seed, X_train)
    skipped.update(failed)
    if not results:
        raise CommandError(f"no method could answer: {'; '.join(failed.values())}")
    print(format_table(results, calls))
    for name, reason in skipped.items():
        print(f"{name}: not computed: {reason}")
    interactions = None
    if args.interactions is not None:
        interactions = print_interactions(model, X_test, args.interactions, args.seed)
    if args.out:
        save_figure(results, args.out)
        if interactions is not None:
            save_heat_map(interactions, args.out)
    if args.json:
        header = {"data": args.data, "target": args.target, "task": task,
                  "score": score_line, "skipped": skipped}  # fmt: skip
        if interactions is not None:
            header["interactions"] = interactions.pairs.head(args.interactions)[
                ["feature_a", "feature_b", "interaction", "h"]
            ].to_dict(orient="records")
        write_json(results, args.json, header)
    if args.report:
        from .html_report import report

        summary = _tabular.summary(X, y, args.data, task)
        shown = dict(results)
        if interactions is not None:  # its own section: the pairs and heat map
            shown["interactions"] = interactions
        report(shown, args.report, data_summary=summary, score=score_line,
               skipped=skipped)  # fmt: skip
        print(f"Report written to {args.report}")
    return 0


def _default_metric(task: str) -> str:
    return "R^2" if task == "regression" else "accuracy"


def _score(model, X, y, scoring) -> float:
    """The held-out score by scikit-learn's scorer ``scoring`` (None: .score)."""
    from sklearn.metrics import check_scoring

    return float(check_scoring(model, scoring=scoring)(model, X, y))


def _cross_validate(model, X, y, calls, args, seed):
    """(results, {method: why it failed}, fold scores), one method at a time so
    that one method's failure leaves the others' results."""
    from .model_selection import cross_validate_importance

    results, failed = {}, {}
    for call in calls:
        try:
            results[call.name] = cross_validate_importance(
                model, X, y, cv=args.cv, method=call.name, scoring=args.scoring,
                random_state=seed, method_params=dict(call.params) or None,
            )  # fmt: skip
        except (ValueError, TypeError) as error:
            failed[call.name] = _first_line(error)
    scores = next(iter(results.values())).test_scores if results else None
    return results, failed, scores


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)


def _score_name(task: str) -> str:
    """What ``estimator.score`` measures on held-out rows, in words."""
    return "held-out R^2" if task == "regression" else "held-out accuracy"


def _eligible(calls, X):
    """The methods that can report on the table's raw columns, and why the
    others cannot: weights of one-hot or missing-indicator columns have no
    sound sum per CSV column (the methods refuse them)."""
    encoded = list(  # categorical or imputed, each named once
        dict.fromkeys(
            _tabular.categorical_columns(X) + X.columns[X.isna().any()].tolist()
        )
    )
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


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CommandError(f"--hidden must be sizes like 64,64, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise CommandError(f"--hidden must be positive sizes like 64,64, got {text!r}")
    return sizes


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


def _parse_methods(text: str, **run_params):
    """The method calls of ``--methods``, checked against the registry, with
    the run parameters the user set (``--n-repeats``, ``--scoring``)."""
    methods = [name.strip() for name in text.split(",") if name.strip()]
    if not methods:
        raise CommandError("--methods is empty")
    try:
        return resolve_methods(methods, run_params=run_params)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _measure(estimator, X, y, calls, seed, X_train):
    """({method: ImportanceResult}, {method: why it could not answer}) on
    held-out data, with a progress bar; the training rows are the background
    of methods that need one. A method that refuses this data (a ValueError
    or TypeError, raised before long work) is skipped so the others still
    print."""
    from tqdm.auto import tqdm

    results, failed = {}, {}
    calls = [call.with_training_data(X_train) for call in calls]
    for call in tqdm(calls, desc="importance", unit="method", file=sys.stderr):
        try:
            results[call.name] = call.seeded_with(seed).single(
                estimator, X, y, who="skimportance"
            )
        except (ValueError, TypeError) as error:
            failed[call.name] = _first_line(error)
    return results, failed


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
