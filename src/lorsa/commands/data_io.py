"""``lorsa fit`` / ``lorsa predict`` / ``lorsa adapt`` on the user's own CSV or Parquet file.

A file has one row per sample: a task column (read as strings), a target column and feature columns, named as a
list (``--features a b c``) or a prefix (``--feature-prefix x_``; default: every other column). ``fit`` writes
lorsa's model file (:mod:`lorsa.io`) and records in it the task, target and feature column names, so ``predict``
and ``adapt`` find the same columns in another file without repeating the options. ``predict`` writes one
prediction per row next to the task ids; ``adapt`` fits tasks never seen in training against the saved ``U``
(SPEC §5) and writes a model that also holds them. Tables are read by :mod:`lorsa.tables`; every data problem is
reported naming the file and the column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (
    HelpFormatter,
    add_quiet,
    add_seed,
    cli_errors,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    say,
)
from .distributed_io import add_scheduler_option, run_adapt_distributed, run_fit_distributed, run_predict_distributed
from .methods import FIT_OPTIONS, add_method_option, build_estimator, is_lrs_model, option_error
from .table_model import (
    Steps,
    add_table_options,
    check_model_suffix,
    cli_warnings,
    load_model_file,
    model_features,
    read_features,
    save_model,
)

__all__ = ["register", "save_with_columns", "read_columns", "check_columns", "COLUMNS_KEY"]

_COLUMNS_KEY = "data_columns"
COLUMNS_KEY = _COLUMNS_KEY


def register(sub: argparse._SubParsersAction) -> None:
    fmt = HelpFormatter
    fit = sub.add_parser("fit", help="fit AMHT-LRS (or a baseline) on a CSV/Parquet file and write a model file",
                         description="Fit one linear model per task, theta_i = U w_i + b_i, on a CSV or Parquet "
                                     "file (one row per sample) and write the model file; --method fits a baseline "
                                     "instead.", formatter_class=fmt)
    fit.add_argument("data", help="CSV (.csv, .tsv, .txt) or Parquet (.parquet, .pq) file, one row per sample")
    fit.add_argument("--output", "-o", required=True, metavar="MODEL",
                     help="model file to write (lorsa's .npz format, name ending in .npz; records the column "
                          "names and the feature encoding too)")
    _column_options(fit, fitting=True)
    add_method_option(fit)
    add_table_options(fit)
    fit.add_argument("--rank", type=positive_int, default=None, metavar="R",
                     help="rank r of the shared basis U, 1 <= r < d (default 1 for lrs)")
    fit.add_argument("--sparsity", type=nonnegative_int, default=None, metavar="K",
                     help="non-zeros k of each task's sparse part b_i, k <= d (default 0 for lrs: representation "
                          "learning only)")
    fit.add_argument("--row-sparsity", type=positive_int, default=None, metavar="ZETA",
                     help="each feature personalised by at most ZETA tasks (default: no limit)")
    fit.add_argument("--ridge", type=nonnegative_float, default=None, metavar="LAMBDA",
                     help="ridge penalty on w_i and b_i (default 0 for lrs; use > 0 for noisy data with tasks of "
                          "few rows); for a baseline, its ridge (default: chosen on held-out rows)")
    fit.add_argument("--max-iter", type=positive_int, default=None, metavar="L",
                     help="cap on outer iterations (default 100); with --epsilon the fixed number of private "
                          "iterations, i.e. of noisy U releases (default 6)")
    fit.add_argument("--tol", type=nonnegative_float, default=None,
                     help="stopping tolerance on the subspace change and the relative objective change "
                          "(default: 1e-8 with float64, 1e-5 with float32)")
    fit.add_argument("--init", choices=("random", "moments"), default=None,
                     help="initial U: method of moments (the default, as in LRSRegressor) or random "
                          "orthonormal (the default with --epsilon, where a moments start costs privacy budget)")
    fit.add_argument("--u-solver", choices=("auto", "exact", "cg"), default=None,
                     help="U step: exact normal equations, conjugate gradients, or picked by cost (default: auto)")
    fit.add_argument("--dtype", choices=("float64", "float32"), default=None,
                     help="storage precision of the data during the fit (default: float64)")
    fit.add_argument("--tune", action="store_true",
                     help="choose r, k, the ridge, a shared offset and the shrinkage of w_i on held-out rows of "
                          "every task (lorsa.LRSRegressorCV's default search), then refit on all rows; replaces "
                          "--rank, --sparsity and --ridge")
    add_seed(fit, "of the initial U (same seed, same model); ignored with --epsilon")
    _privacy_options(fit)
    add_quiet(fit)
    add_scheduler_option(fit)
    fit.set_defaults(func=cli_errors(run_fit))

    predict = sub.add_parser("predict", help="predict every row of a CSV/Parquet file with its task's model",
                             description="Predict every row of a file with its own task's model and write the "
                                         "predictions next to the task ids. Columns default to the ones recorded "
                                         "in the model file by 'lorsa fit'.", formatter_class=fmt)
    predict.add_argument("model", help="model file written by 'lorsa fit' or 'lorsa adapt'")
    predict.add_argument("data", help="CSV or Parquet file with the task column and the feature columns")
    predict.add_argument("--output", "-o", required=True, metavar="FILE",
                         help="predictions file (.csv, .tsv or .parquet): the kept columns, the task column and "
                              "the prediction column, one row per input row in input order")
    _column_options(predict, fitting=False, command="predict")
    predict.add_argument("--keep-columns", nargs="+", default=[], metavar="COLUMN",
                         help="columns of the input to copy into the output (e.g. a row id)")
    predict.add_argument("--prediction-column", default="prediction", metavar="NAME",
                         help="name of the prediction column in the output")
    add_seed(predict, "unused (prediction is deterministic); accepted so every command takes one")
    add_quiet(predict)
    add_scheduler_option(predict)
    predict.set_defaults(func=cli_errors(run_predict))

    adapt = sub.add_parser("adapt", help="fit new tasks from their rows against a saved model's U (lrs models)",
                           description="Fit tasks never seen in training from their rows, with the saved model's "
                                       "shared basis U held fixed (the paper's Algorithm 6), and write a model file "
                                       "holding the old and the new tasks. The file needs the target column; the "
                                       "feature columns and their encoding are the model's.", formatter_class=fmt)
    adapt.add_argument("model", help="model file written by 'lorsa fit' (or a previous 'lorsa adapt')")
    adapt.add_argument("data", help="CSV or Parquet file with the new tasks' rows (target and features)")
    adapt.add_argument("--output", "-o", required=True, metavar="MODEL",
                       help="model file to write (.npz): the saved model plus the new tasks (may equal MODEL)")
    _column_options(adapt, fitting=False, command="adapt")
    adapt.add_argument("--task-name", default=None, metavar="NAME",
                       help="all rows belong to this one new task (instead of reading a task column)")
    adapt.add_argument("--max-iter", type=positive_int, default=100, metavar="L", help="cap on per-task passes")
    add_seed(adapt, "unused (adaptation is deterministic); accepted so every command takes one")
    add_quiet(adapt)
    add_scheduler_option(adapt)
    adapt.set_defaults(func=cli_errors(run_adapt))


def _privacy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "user-level differential privacy (SPEC §6)",
        "With --epsilon the shared U is (epsilon, delta)-DP with respect to adding or removing one task's entire "
        "data (lorsa.PrivateLRSRegressor); the noise then uses fresh OS entropy (a known seed would let anyone "
        "remove it), and the guarantee is printed and stored in the model file.")
    group.add_argument("--epsilon", type=_positive_float, default=None, metavar="EPS",
                       help="privacy budget epsilon, in (0, 100] (default: no privacy)")
    group.add_argument("--delta", type=_positive_float, default=None,
                       help="privacy parameter delta, in (0, 0.01] (default 1e-6; only with --epsilon)")
    group.add_argument("--max-rows", type=positive_int, default=None, metavar="M",
                       help="rows a task contributes at full weight (larger tasks are down-weighted; default 100; "
                            "only with --epsilon)")
    group.add_argument("--feature-scale", type=_positive_float, default=None, metavar="S",
                       help="assumed standard deviation S of each feature (default 1; only with --epsilon); sets "
                            "the clipping bounds A1 = S (sqrt(d) + 2) and A_w = 2 T / S")
    group.add_argument("--target-scale", type=_positive_float, default=None, metavar="T",
                       help="assumed standard deviation T of the target (default 1; only with --epsilon); sets the "
                            "clipping bounds A2 = A3 = 3 T")
    group.add_argument("--include-users", action="store_true",
                       help="also write every task's label, w_i and b_i into the model file (only with --epsilon): "
                            "they are OUTSIDE the guarantee; by default a private model file holds U and the "
                            "privacy report only")


def _positive_float(text: str) -> float:
    value = nonnegative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _column_options(parser: argparse.ArgumentParser, fitting: bool, command: str = "fit") -> None:
    recorded = "" if fitting else " (default: as recorded in the model file by 'lorsa fit')"
    parser.add_argument("--task-column", required=fitting, default=None, metavar="COLUMN",
                        help=f"column holding each row's task id, read as text{recorded}")
    target_help = {"fit": "", "adapt": recorded + "; the new tasks are fitted to it",
                   "evaluate": recorded + "; required in the file",
                   "predict": " (optional, to report the RMSE; default: the recorded one when the file has it)"}
    parser.add_argument("--target-column", required=fitting, default=None, metavar="COLUMN",
                        help="column holding the target y" + target_help[command])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--features", nargs="+", default=None, metavar="COLUMN",
                       help="feature columns, in order" + (" (default: every column except the task and target "
                                                            "columns)" if fitting else recorded))
    group.add_argument("--feature-prefix", default=None, metavar="PREFIX",
                       help="feature columns = every column whose name starts with PREFIX, in file order")


# ---------------------------------------------------------------------- model file with column names
def save_with_columns(est: Any, path: str | Path, columns: dict[str, Any], include_users: bool = False) -> None:
    """Write ``est``'s model file with the data's column names in its metadata (key ``data_columns``), in one
    atomic write. ``include_users`` asks a private model for its per-user parameters (outside the guarantee)."""
    from ..io import write_model_file

    kind, arrays, meta = est._model_file_contents(include_users=True) if include_users else est._model_file_contents()
    meta[_COLUMNS_KEY] = columns
    write_model_file(path, kind, arrays, meta)


def read_columns(path: str | Path, n_features: int | None = None) -> dict[str, Any]:
    """The column names recorded by :func:`save_with_columns` (empty for a model saved from Python), checked:
    names are strings, the feature columns distinct and (given ``n_features``) as many as the model's features."""
    from ..io import read_model_metadata

    return _check_columns(read_model_metadata(path).get(_COLUMNS_KEY), str(path), n_features)


def check_columns(columns: Any, path: str, n_features: int | None) -> dict[str, Any]:
    """The recorded ``data_columns`` of model file ``path``, checked (ModelFileError): see :func:`read_columns`."""
    return _check_columns(columns, path, n_features)


def _check_columns(columns: Any, path: str, n_features: int | None) -> dict[str, Any]:
    from ..io import ModelFileError

    if columns is None:
        return {}
    bad = f"model file {path!r}: recorded {_COLUMNS_KEY} are malformed"
    if not isinstance(columns, dict) or set(columns) - {"task_column", "target_column", "feature_columns"}:
        raise ModelFileError(f"{bad} ({str(columns)[:200]})")
    for key in ("task_column", "target_column"):
        if not isinstance(columns.get(key), str | None):
            raise ModelFileError(f"{bad}: {key} must be a column name, got {columns.get(key)!r}")
    features = columns.get("feature_columns")
    if features is not None:
        if not isinstance(features, list) or not all(isinstance(c, str) for c in features) \
                or len(set(features)) != len(features):
            raise ModelFileError(f"{bad}: feature_columns must be distinct column names")
        if n_features is not None and len(features) != n_features:
            raise ModelFileError(f"{bad}: {len(features)} feature columns recorded for a model of {n_features} "
                                 f"features")
        clash = {columns.get("task_column"), columns.get("target_column")} & set(features)
        if clash:
            raise ModelFileError(f"{bad}: {sorted(clash)} recorded as a feature and as the task or target column")
    return dict(columns)


def _load(path: str) -> tuple[Any, dict[str, Any]]:
    """Any model file (an LRS model or a baseline) and its recorded columns (:func:`.table_model.load_model_file`)."""
    est, recorded, _, _ = load_model_file(path)
    return est, recorded


def _is_private(est: Any) -> bool:
    return hasattr(est, "privacy_report_")


# ---------------------------------------------------------------------- fit
class _IterationProgress:
    """A tqdm bar over AMHT-LRS iterations, advanced by ``LRSRegressor.fit(..., callback=...)``."""

    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="AMHT-LRS", unit="iter", leave=False, dynamic_ncols=True, file=sys.stderr)

    def __call__(self, iteration: int, objective: float, change: float) -> None:
        self._bar.set_postfix_str(f"objective {objective:.4e}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _iteration_progress(total: int) -> _IterationProgress | None:
    try:
        return _IterationProgress(total)
    except ImportError:  # pragma: no cover - tqdm is in the cli extra
        return None


def run_fit(args: argparse.Namespace) -> int:
    if args.scheduler is not None:
        return run_fit_distributed(args)
    import inspect

    import numpy as np

    from .._files import check_not_an_input, check_writable_target

    check_not_an_input(args.output, [("data file", args.data)])
    check_writable_target(args.output, "model file")
    check_model_suffix(args.output)
    if args.epsilon is None:
        _refuse_privacy_options(args)
    else:
        if args.method != "lrs":
            raise ValueError(f"--epsilon fits the private AMHT-LRS (PrivateLRSRegressor); it cannot be combined "
                             f"with --method {args.method}")
        for option, used in (("--categorical", args.categorical), ("--standardize", args.standardize),
                             ("--impute", args.impute)):
            if used:
                raise ValueError(f"{option} cannot be used with --epsilon: its encoding (categories, means, "
                                 f"scales) would be computed from the private data outside the privacy accounting; "
                                 f"encode the columns beforehand from public information (--intercept is allowed)")
        est = _private_estimator(args)  # checks the privacy options before reading the data
    columns = (args.task_column, args.target_column, args.features, args.feature_prefix)
    if args.epsilon is not None:  # numeric columns (and a data-independent intercept), read in chunks
        X, table, pre, _ = read_features(args, *columns, dtype=args.dtype, fit=True)
        return _run_private_fit(args, table, X, pre, est)
    if args.tune and args.method != "lrs":
        raise ValueError(f"--tune searches AMHT-LRS's r, k and ridge (LRSRegressorCV); it cannot be combined with "
                         f"--method {args.method} (a baseline tunes its own hyper-parameters on held-out rows)")
    with Steps(args, ["read", "fit", "write"]) as steps, cli_warnings(args):
        steps.step(f"reading and encoding {args.data}")
        X, table, pre, notes = read_features(args, *columns, dtype=args.dtype, fit=True)
        for note in notes:
            say(args, note)
        encoded = "" if pre.is_plain else f" ({len(table.feature_columns)} columns encoded)"
        say(args, f"{args.data}: {X.shape[0]} rows, {table.tasks.labels.size} tasks, {X.shape[1]} features{encoded}")
        if args.tune:
            steps.step("tuning LRSRegressorCV")
            return _run_tuned_fit(args, table, X, pre)
        est = build_estimator(args)
        steps.step(f"fitting {type(est).__name__}")
        start = time.perf_counter()
        takes_callback = "callback" in inspect.signature(est.fit).parameters
        progress = None if args.quiet or not takes_callback else _iteration_progress(est.max_iter)
        given = {param: getattr(args, dest) for dest, param in FIT_OPTIONS.items() if getattr(args, dest) is not None}
        try:
            est.fit(X, table.y, tasks=table.tasks, **({"callback": progress} if takes_callback else {}))
        except (ValueError, TypeError) as exc:
            raise option_error(exc, given, X.shape[1]) from exc
        finally:
            if progress is not None:
                progress.close()
        seconds = time.perf_counter() - start
        steps.step(f"writing {args.output}")
        save_model(est, args.output, {"task_column": args.task_column, "target_column": args.target_column,
                                      "feature_columns": table.feature_columns}, pre,
                   np.bincount(table.tasks.codes, minlength=table.tasks.labels.size))
    rmse = est.rmse(X, table.y, tasks=table.tasks)
    say(args, f"fitted {_describe(est)} in {seconds:.2f} s; training RMSE {rmse:.4g}")
    say(args, f"model written to {args.output}")
    return 0


def _run_tuned_fit(args: argparse.Namespace, table: Any, X: Any, pre: Any) -> int:
    """``lorsa fit --tune``: :class:`lorsa.LRSRegressorCV` with its default search."""
    import numpy as np

    from ..model_cv import LRSRegressorCV

    for option, value in (("--rank", args.rank), ("--sparsity", args.sparsity), ("--ridge", args.ridge),
                          ("--row-sparsity", args.row_sparsity), ("--init", args.init), ("--u-solver", args.u_solver)):
        if value is not None:
            raise ValueError(f"{option} cannot be used with --tune (the search chooses r, k and the ridge and starts "
                             f"every fit from the method of moments), got {value!r}")
    est = LRSRegressorCV(max_iter=args.max_iter or 100, tol=1e-6 if args.tol is None else args.tol,
                         dtype=args.dtype or "float64", random_state=args.seed)
    start = time.perf_counter()
    est.fit(X, table.y, tasks=table.tasks)
    seconds = time.perf_counter() - start
    save_model(est, args.output, {"task_column": args.task_column, "target_column": args.target_column,
                                  "feature_columns": table.feature_columns}, pre,
               np.bincount(table.tasks.codes, minlength=table.tasks.labels.size))
    p = est.best_params_
    say(args, f"chose r={p['rank']}, k={p['sparsity']}, ridge={p['ridge']:.4g}, offset={p['offset']}, "
              f"shrinkage={p['shrinkage']} (hold-out RMSE {est.best_score_:.4g}) from {est.n_fits_ - 1} fits, "
              f"refitted on all rows; {seconds:.2f} s ({est.search_seconds_:.2f} s search, "
              f"{est.refit_seconds_:.2f} s refit); training RMSE {est.rmse(X, table.y, tasks=table.tasks):.4g}")
    say(args, f"model written to {args.output}")
    return 0


_PRIVACY_OPTIONS = (("--delta", "delta"), ("--max-rows", "max_rows"), ("--feature-scale", "feature_scale"),
                    ("--target-scale", "target_scale"), ("--include-users", "include_users"))


def _refuse_privacy_options(args: argparse.Namespace) -> None:
    """A privacy option without ``--epsilon`` would be silently ignored: refuse it."""
    for option, name in _PRIVACY_OPTIONS:
        if getattr(args, name) not in (None, False):
            raise ValueError(f"{option} only applies to a private fit: give --epsilon too (got {option} "
                             f"{getattr(args, name)!r} without --epsilon)")


def _run_private_fit(args: argparse.Namespace, table: Any, X: Any, pre: Any, est: Any) -> int:
    """``lorsa fit --epsilon``: prints only what does not depend on the data (the settings, the fixed number of
    iterations and the guarantee) — no row or task count, no time, no training error, no progress bar."""
    say(args, f"{args.data}: private fit (epsilon {args.epsilon:g}, delta {est.delta:g}) of r={est.rank}, "
              f"k={est.sparsity} on {X.shape[1]} features; row and task counts, the fit time and the "
              "training error are not shown (they are not private)")
    est.fit(X, table.y, tasks=table.tasks)
    save_model(est, args.output, {"task_column": args.task_column, "target_column": args.target_column,
                                  "feature_columns": table.feature_columns}, pre, None,
               include_users=args.include_users)
    say(args, f"fitted in the fixed {est.n_iter_} iterations; {est.privacy_report_.guarantee}")
    if args.include_users:
        say(args, "the model file also holds every task's label, w_i and b_i: OUTSIDE the guarantee, keep it with "
                  "the data and never publish it")
    else:
        say(args, "the model file holds U and the privacy report only: each task fits its own w_i, b_i from U with "
                  "'lorsa adapt' (or refit with --include-users to keep them, outside the guarantee)")
    say(args, f"model written to {args.output}")
    return 0


def _describe(est: Any) -> str:
    """What was fitted, for the fit's summary line."""
    if is_lrs_model(est):
        private = type(est).__name__ == "PrivateLRSRegressor"  # runs its fixed number of iterations by design
        state = ", not converged" if not (est.converged_ or private) else ""
        return f"r={est.U_.shape[1]}, k={est.sparsity} in {est.n_iter_} iterations{state}"
    chosen = ", ".join(f"{k}={v}" for k, v in getattr(est, "best_params_", {}).items())
    return f"{type(est).__name__}" + (f" ({chosen}, chosen on held-out rows)" if est.validation_scores_ else
                                      f" ({chosen})" if chosen else "")


def _private_estimator(args: argparse.Namespace) -> Any:
    """``PrivateLRSRegressor`` for ``lorsa fit --epsilon``; refuses the options a private fit cannot honour."""
    from ..privacy import PrivateLRSRegressor
    from ..privacy.accounting import _check_delta, check_epsilon

    for option, value, default in (("--row-sparsity", args.row_sparsity, None), ("--tol", args.tol, None),
                                   ("--u-solver", args.u_solver, None)):
        if value != default:
            raise ValueError(f"{option} cannot be used with --epsilon (a private fit runs a fixed number of "
                             f"iterations with the exact U step and no coupling between tasks), got {value!r}")
    check_epsilon(args.epsilon, name="--epsilon")
    delta = 1e-6 if args.delta is None else _check_delta(args.delta, name="--delta")
    return PrivateLRSRegressor(rank=1 if args.rank is None else args.rank,
                               sparsity=0 if args.sparsity is None else args.sparsity, epsilon=args.epsilon,
                               delta=delta,
                               max_rows=100 if args.max_rows is None else args.max_rows,
                               feature_scale=args.feature_scale or 1.0, target_scale=args.target_scale or 1.0,
                               ridge=args.ridge or 0.0, max_iter=args.max_iter or 6, init=args.init or "random",
                               dtype=args.dtype or "float64", random_state=None)


# ---------------------------------------------------------------------- predict / adapt
def encode_table(args: argparse.Namespace, est: Any, pre: Any, frame: Any, table: Any) -> Any:
    """The model's features of a table (its recorded encoding, or the numeric columns as they are), the notes on
    unseen categories or imputed values shown as informational lines; the feature count checked."""
    from ..preprocessing import TablePreprocessor

    if pre is None or pre.is_plain:  # numeric columns as they are: the ones selected (recorded or given)
        pre = TablePreprocessor(columns=table.feature_columns)
    X, notes = pre.transform(frame, args.data)
    for note in notes:
        say(args, note)
    d = est.n_features_in_
    if X.shape[1] != d:
        raise ValueError(f"file {args.data!r}: {X.shape[1]} feature columns selected "
                         f"({', '.join(table.feature_columns[:5])}{', ...' if X.shape[1] > 5 else ''}), but "
                         f"the model was fitted on {d}")
    return X


def _features(args: argparse.Namespace, recorded: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """Feature columns of a model without an encoding (the distributed commands): given, else recorded."""
    return model_features(args, None, recorded)


def _task_labels(est: Any, tasks: Any, path: str, column: str | None) -> Any:
    """Labels (:class:`lorsa.task_labels.TaskCodes`) as the model's type: integers when the model was fitted (from
    Python) on integer task ids."""
    import numpy as np

    from ..task_labels import TaskCodes

    if est.tasks_.dtype.kind not in "iu" or est.tasks_.shape[0] == 0:  # no task yet (a private model): as read
        return tasks
    try:
        return TaskCodes.create(tasks.codes, np.asarray([int(x) for x in tasks.labels], dtype=np.int64))
    except (ValueError, OverflowError):
        raise ValueError(f"file {path!r}: task column {column!r} must hold integer task ids like the model's "
                         f"(e.g. {est.tasks_[0]!r})") from None


def run_predict(args: argparse.Namespace) -> int:
    if args.scheduler is not None:
        return run_predict_distributed(args)
    import numpy as np
    import pandas as pd

    from .._files import check_not_an_input, check_writable_target
    from ..tables import TableError, numeric_column, read_table, select_columns, table_kind, write_table

    check_not_an_input(args.output, [("data file", args.data), ("model file", args.model)])
    check_writable_target(args.output, "predictions file")
    table_kind(args.output)
    est, recorded, pre, _ = load_model_file(args.model)
    if _is_private(est) and est.tasks_.shape[0] == 0:
        raise ValueError(f"model file {args.model!r} is a private model holding U and its privacy report only (no "
                         "task's w_i, b_i); fit the tasks from U first with 'lorsa adapt', then predict with the "
                         "model it writes")
    task_column = args.task_column or recorded.get("task_column")
    if task_column is None:
        raise ValueError("the model file records no task column; give --task-column")
    if args.prediction_column == task_column or args.prediction_column in args.keep_columns:
        role = "the task column" if args.prediction_column == task_column else "a --keep-columns column"
        raise ValueError(f"--prediction-column {args.prediction_column!r} is also {role}; the output would hold "
                         f"two columns of that name: choose another name")
    frame = read_table(args.data, task_column, text_columns=list(pre.categories) if pre else ())
    target = args.target_column
    if target is None and recorded.get("target_column") in frame.columns:
        target = recorded["target_column"]
    features, prefix = model_features(args, pre, recorded)
    table = select_columns(frame, args.data, task_column, None, features, prefix,
                           reserved=[target] if target is not None else (), numeric_features=False)
    X = encode_table(args, est, pre, frame, table)
    for column in args.keep_columns:
        if column not in frame.columns:
            raise TableError(f"file {args.data!r}: column {column!r} to keep not found; the file's columns are "
                             f"{list(frame.columns)[:20]}")
    # The target is optional at predict time: rows without one are predicted and left out of the RMSE.
    y = None if target is None else numeric_column(frame, args.data, target, "target", allow_missing=True)
    labels = _task_labels(est, table.tasks, args.data, task_column)
    unknown = np.setdiff1d(labels.labels, est.tasks_)
    if unknown.size:
        shown = ", ".join(repr(x) for x in unknown[:5].tolist())
        more = f" and {unknown.size - 5} more" if unknown.size > 5 else ""
        raise TableError(f"file {args.data!r}: task column {task_column!r} holds {unknown.size} task(s) the model "
                         f"was never fitted on: {shown}{more}; fit them first with 'lorsa adapt'")
    pred = est.predict(X, tasks=labels)
    out = pd.DataFrame({c: frame[c].to_numpy() for c in args.keep_columns if c != task_column})
    out[task_column] = pd.Categorical.from_codes(table.tasks.codes, categories=table.tasks.labels)
    out[args.prediction_column] = pred
    write_table(out, args.output)
    if y is not None:
        has = ~np.isnan(y)
        if has.any():
            rmse = float(np.sqrt(np.mean((pred[has] - y[has]) ** 2)))
            rows = "" if has.all() else f" on the {int(has.sum())} of {has.size} rows that have one"
            say(args, f"RMSE against column {target!r}{rows}: {rmse:.6g}")
        else:
            say(args, f"column {target!r} is blank in every row: no RMSE")
    say(args, f"{pred.shape[0]} predictions written to {args.output}")
    return 0


def run_adapt(args: argparse.Namespace) -> int:
    if args.scheduler is not None:
        return run_adapt_distributed(args)
    import numpy as np
    import scipy.sparse as sp

    from .._files import check_not_an_input, check_writable_target
    from ..model import predict_rows
    from ..tables import TableError

    check_not_an_input(args.output, [("data file", args.data)])
    check_writable_target(args.output, "model file")
    check_model_suffix(args.output)
    est, recorded, pre, task_rows = load_model_file(args.model, with_task_rows=True)
    if not is_lrs_model(est):
        raise ValueError(f"model file {args.model!r} holds a {type(est).__name__}, which has no shared basis U to "
                         "adapt new tasks against; 'lorsa adapt' needs a model fitted with --method lrs")
    if args.task_name is not None and args.task_column is not None:
        raise ValueError("give either --task-column or --task-name, not both")
    task_column = None if args.task_name is not None else (args.task_column or recorded.get("task_column"))
    if task_column is None and args.task_name is None:
        raise ValueError("the model file records no task column; give --task-column or --task-name")
    target = args.target_column or recorded.get("target_column")
    if target is None:
        raise ValueError("the model file records no target column; give --target-column")
    features, prefix = model_features(args, pre, recorded)
    X, table, _, notes = read_features(args, task_column, target, features, prefix, pre=pre, task_name=args.task_name)
    for note in notes:
        say(args, note)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"file {args.data!r}: {X.shape[1]} feature columns selected "
                         f"({', '.join(table.feature_columns[:5])}{', ...' if X.shape[1] > 5 else ''}), but "
                         f"the model was fitted on {est.n_features_in_}")
    labels = _task_labels(est, table.tasks, args.data, task_column)
    known = np.intersect1d(labels.labels, est.tasks_)
    if known.size:
        where = f"task column {task_column!r}" if task_column else "--task-name"
        raise TableError(f"file {args.data!r}: {where} holds {known.size} task(s) already in the model: "
                         f"{', '.join(repr(x) for x in known[:5].tolist())}; adapt fits new tasks only")
    with Steps(args, ["adapt"]) as steps, cli_warnings(args):
        steps.step(f"adapting {labels.labels.size} new task(s)")
        new_labels, W, B = est.adapt_tasks(X, table.y, labels, max_iter=args.max_iter)
    index = labels.codes  # adapt_tasks returns the new tasks in the order of labels.labels
    fitted = predict_rows(X, index, est.U_, W, B)
    if getattr(est, "offset_", None) is not None:  # LRSRegressorCV: theta_0 + U w_i + b_i
        fitted = fitted + X @ est.offset_
    all_labels = np.concatenate([est.tasks_, new_labels])
    order = np.argsort(all_labels, kind="stable")
    est.tasks_ = all_labels[order]
    est.W_ = np.vstack([est.W_, W])[order]
    est.B_ = sp.hstack([est.B_, B]).tocsc()[:, order]
    columns = dict(recorded) or {"task_column": task_column, "target_column": target,
                                 "feature_columns": table.feature_columns}
    counts = np.bincount(index, minlength=new_labels.size)
    rows = None if task_rows is None else np.concatenate([task_rows, counts])[order]
    save_model(est, args.output, columns, pre, rows, include_users=_is_private(est))
    if _is_private(est):
        say(args, "the model file holds the tasks' own w_i, b_i next to the private U: they are outside the "
                  "privacy guarantee (each belongs to its task), keep the file with the tasks' data")
    sq = np.bincount(index, weights=(fitted - table.y) ** 2, minlength=new_labels.size)
    nnz = np.diff(B.tocsc().indptr)
    for i in range(min(new_labels.size, 10)):
        say(args, f"task {new_labels[i].item()!r}: {counts[i]} rows, {nnz[i]} non-zeros in b, "
                  f"training RMSE {np.sqrt(sq[i] / counts[i]):.4g}")
    if new_labels.size > 10:
        say(args, f"... and {new_labels.size - 10} more new tasks")
    say(args, f"model with {est.tasks_.size} tasks ({new_labels.size} new) written to {args.output}")
    return 0
