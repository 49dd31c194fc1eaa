"""``lorsa evaluate MODEL DATA``: RMSE, MAE and R^2 of a model on a table, overall and by task size, as text and
JSON.

Task-size buckets count a task's *training* rows (recorded in the model file by ``lorsa fit`` / ``lorsa adapt``);
for a model file without that record (saved from Python) they count the task's rows in DATA, and the output says
which. Buckets: 1-4, 5-19, 20-99, 100-999 and 1000 or more rows; empty buckets are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import HelpFormatter, add_quiet, add_seed, cli_errors, say

__all__ = ["register", "run_evaluate", "error_table", "BUCKET_EDGES"]

#: lower edges of the task-size buckets (rows per task)
BUCKET_EDGES = (1, 5, 20, 100, 1000)


def register(sub: argparse._SubParsersAction) -> None:
    from .data_io import _column_options

    ev = sub.add_parser("evaluate", help="RMSE / MAE / R^2 of a model on a CSV/Parquet file, overall and by task size",
                        description="Predict every row of a file with its task's model and report RMSE, MAE and "
                                    "R^2 against the target column, overall and by task-size bucket (training rows "
                                    "per task as recorded by 'lorsa fit'), as a table and optionally as JSON.",
                        formatter_class=HelpFormatter)
    ev.add_argument("model", help="model file written by 'lorsa fit' or 'lorsa adapt' (any --method)")
    ev.add_argument("data", help="CSV or Parquet file with the task, target and feature columns")
    _column_options(ev, fitting=False, command="evaluate")
    ev.add_argument("--json", default=None, metavar="FILE",
                    help="also write the figures as JSON to FILE ('-' for standard output, then no table)")
    add_seed(ev, "unused (evaluation is deterministic); accepted so every command takes one")
    add_quiet(ev)
    ev.set_defaults(func=cli_errors(run_evaluate))


def error_table(y: Any, pred: Any, task_codes: Any, task_rows: Any) -> dict[str, Any]:
    """``{"overall": {...}, "by_task_size": [...]}``: rows, tasks, RMSE, MAE and R^2 overall and per bucket of
    ``task_rows`` (rows per task, indexed by ``task_codes``)."""
    import numpy as np

    def figures(mask: np.ndarray) -> dict[str, Any]:
        e = pred[mask] - y[mask]
        centred = y[mask] - y[mask].mean()
        sst = float(np.dot(centred, centred))
        r2 = 1.0 - float(np.dot(e, e)) / sst if sst > 0 else float("nan")
        return {"rows": int(mask.sum()), "tasks": int(np.unique(task_codes[mask]).size),
                "rmse": float(np.sqrt(np.mean(e ** 2))), "mae": float(np.mean(np.abs(e))), "r2": r2}

    everything = np.ones(y.shape[0], dtype=bool)
    size = np.asarray(task_rows)[task_codes]
    buckets = []
    edges = (*BUCKET_EDGES, np.inf)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        mask = (size >= low) & (size < high)
        if mask.any():
            label = f"{low}-{int(high) - 1}" if np.isfinite(high) else f"{low}+"
            buckets.append({"task_rows": label, **figures(mask)})
    return {"overall": figures(everything), "by_task_size": buckets}


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .._files import atomic_output, check_not_an_input, check_writable_target
    from ..tables import TableError
    from .data_io import _task_labels
    from .table_model import Steps, load_model_file, model_features, read_features

    if args.json == "-":
        args.quiet = True  # standard output holds the JSON only
    if args.json not in (None, "-"):
        check_not_an_input(args.json, [("data file", args.data), ("model file", args.model)])
        check_writable_target(args.json, "JSON file")
    with Steps(args, ["read", "predict"]) as steps:
        steps.step(f"reading {args.model} and {args.data}")
        est, recorded, pre, task_rows = load_model_file(args.model, with_task_rows=True)
        task_column = args.task_column or recorded.get("task_column")
        target = args.target_column or recorded.get("target_column")
        if task_column is None or target is None:
            missing = "--task-column" if task_column is None else "--target-column"
            raise ValueError(f"the model file records no {missing[2:].replace('-', ' ')}; give {missing}")
        features, prefix = model_features(args, pre, recorded)
        X, table, _, notes = read_features(args, task_column, target, features, prefix, pre=pre)
        for note in notes:
            say(args, note)
        if X.shape[1] != est.n_features_in_:
            raise TableError(f"file {args.data!r}: {X.shape[1]} features from the columns "
                             f"{table.feature_columns[:5]}, but the model was fitted on {est.n_features_in_}")
        labels = _task_labels(est, table.tasks, args.data, task_column)
        unknown = np.setdiff1d(labels.labels, est.tasks_)
        if unknown.size:
            shown = ", ".join(repr(x) for x in unknown[:5].tolist())
            raise TableError(f"file {args.data!r}: task column {task_column!r} holds {unknown.size} task(s) the "
                             f"model was never fitted on: {shown}; fit them first with 'lorsa adapt'")
        steps.step(f"predicting {X.shape[0]} rows")
        pred = est.predict(X, tasks=labels)
    if task_rows is not None:
        rows_per_task = task_rows[np.searchsorted(est.tasks_, labels.labels)]
        basis = "training rows per task (recorded in the model file)"
    else:
        rows_per_task = np.bincount(labels.codes, minlength=labels.labels.size)
        basis = f"rows per task in {args.data} (the model file records no training sizes)"
    report = {"model": str(args.model), "data": str(args.data), "kind": type(est).__name__,
              "target_column": target, "bucket_basis": basis,
              **error_table(table.y, pred, labels.codes, rows_per_task)}
    text = json.dumps(report, indent=2, allow_nan=True)
    if args.json == "-":
        print(text, flush=True)
        return 0
    if args.json is not None:
        with atomic_output(args.json, "JSON file") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    if not args.quiet:
        _print_table(report, sys.stdout)
    if args.json is not None:
        say(args, f"figures written to {args.json}")
    return 0


def _print_table(report: dict[str, Any], out: Any) -> None:
    print(f"{report['kind']} from {report['model']} on {report['data']} (target {report['target_column']!r}):",
          file=out)
    print(f"{'':<22}{'tasks':>8}{'rows':>10}{'RMSE':>12}{'MAE':>12}{'R^2':>10}", file=out)
    rows = [("overall", report["overall"])] + [(f"{b['task_rows']} rows", b) for b in report["by_task_size"]]
    for name, f in rows:
        print(f"{name:<22}{f['tasks']:>8,}{f['rows']:>10,}{f['rmse']:>12.5g}{f['mae']:>12.5g}{f['r2']:>10.4f}",
              file=out)
    print(f"task size = {report['bucket_basis']}", file=out, flush=True)
