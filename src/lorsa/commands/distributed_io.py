"""``lorsa fit`` / ``predict`` / ``adapt`` with ``--scheduler``: the table stays on a dask cluster.

``--scheduler ADDRESS`` connects to a running dask.distributed scheduler; ``--scheduler local:N`` starts a
LocalCluster of ``N`` worker processes (one thread each) for the command. The data argument is then a Parquet
directory, a glob (``"samples/*.parquet"``) or a single Parquet file, read by ``dask.dataframe.read_parquet`` on
the workers; the fit runs on the distributed engine (:mod:`lorsa.backends.dask`), ``predict`` writes its output as
a Parquet directory written by the workers (one file per partition, input order kept within partitions), and
``adapt`` fits the new tasks on the workers. Columns are chosen and recorded exactly as without ``--scheduler``
(:mod:`lorsa.commands.data_io`): task labels are read as strings, the model file records the column names.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import say

__all__ = ["add_scheduler_option", "run_fit_distributed", "run_predict_distributed", "run_adapt_distributed"]


def add_scheduler_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on a dask.distributed cluster: a scheduler address (tcp://host:8786) or local:N to "
                             "start N local worker processes; DATA is then a Parquet directory, glob or file and "
                             "predictions are written as a Parquet directory")


@contextlib.contextmanager
def _client(spec: str) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is in the all extra
        raise ValueError("--scheduler needs dask.distributed: pip install 'lorsa[distributed]'") from exc
    if spec.startswith("local:"):
        text = spec[len("local:"):]
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"--scheduler local:N needs a number of worker processes N >= 1, got {spec!r}")
        with LocalCluster(n_workers=int(text), threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
                Client(cl) as client:
            yield client
        return
    try:
        client = Client(spec, timeout="20s")
    except OSError as exc:
        raise ValueError(f"--scheduler {spec!r}: cannot reach a dask scheduler there ({exc})") from exc
    with client:
        yield client


def _read(path: str) -> Any:
    import dask.dataframe as dd

    p = Path(path)
    if not any(ch in path for ch in "*?[") and not p.exists():
        raise ValueError(f"data {path!r} not found: give a Parquet directory, a glob or a Parquet file")
    if p.is_file() and p.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(f"data {path!r}: with --scheduler the data must be Parquet (a directory, glob or .parquet "
                         "file)")
    try:
        return dd.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"data {path!r}: cannot be read as Parquet ({type(exc).__name__}: {exc})") from exc


def _need(frame: Any, path: str, column: str, role: str) -> None:
    if column not in frame.columns:
        raise ValueError(f"data {path!r}: {role} column {column!r} not found; the columns are "
                         f"{list(frame.columns)[:20]}")


def _feature_columns(frame: Any, path: str, features: list[str] | None, prefix: str | None,
                     reserved: list[str]) -> list[str]:
    if features is not None:
        for column in features:
            _need(frame, path, column, "feature")
        chosen = list(features)
    elif prefix is not None:
        chosen = [c for c in frame.columns if str(c).startswith(prefix) and c not in reserved]
        if not chosen:
            raise ValueError(f"data {path!r}: no column starts with --feature-prefix {prefix!r}")
    else:
        chosen = [c for c in frame.columns if c not in reserved]
    clash = sorted(set(chosen) & set(reserved))
    if clash:
        raise ValueError(f"data {path!r}: {clash} cannot be a feature and the task or target column")
    if not chosen:
        raise ValueError(f"data {path!r}: no feature columns left")
    return chosen


def _labels(frame: Any, column: str, est: Any | None) -> Any:
    """Task labels as strings (like the file readers), or as integers for a model fitted on integer ids."""
    tasks = frame[column]
    if est is not None and est.tasks_.dtype.kind in "iu" and est.tasks_.shape[0]:
        return tasks.astype("int64")
    return tasks.astype(str)


def run_fit_distributed(args: argparse.Namespace) -> int:
    from .._files import check_writable_target
    from .data_io import _private_estimator, _refuse_privacy_options, save_with_columns
    from .methods import build_estimator

    check_writable_target(args.output, "model file")
    if getattr(args, "tune", False):
        raise ValueError("--tune cannot be used with --scheduler (the tuned fit runs in memory)")
    if args.epsilon is None:
        _refuse_privacy_options(args)
        encoding = [o for o, used in (("--categorical", args.categorical), ("--standardize", args.standardize),
                                      ("--intercept", args.intercept), ("--impute", args.impute)) if used]
        if args.method != "lrs" or encoding:
            raise ValueError(f"--scheduler fits AMHT-LRS (--method lrs) on the numeric columns as they are; "
                             f"{encoding[0] if encoding else '--method ' + args.method} runs in memory only")
        est = build_estimator(args)  # LRSRegressor with the options given
    else:
        est = _private_estimator(args)
    frame = _read(args.data)
    for column, role in ((args.task_column, "task"), (args.target_column, "target")):
        _need(frame, args.data, column, role)
    features = _feature_columns(frame, args.data, args.features, args.feature_prefix,
                                [args.task_column, args.target_column])
    with _client(args.scheduler) as client:
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        start = time.perf_counter()
        est.fit(frame[features], frame[args.target_column], tasks=_labels(frame, args.task_column, None))
        seconds = time.perf_counter() - start
        columns = {"task_column": args.task_column, "target_column": args.target_column,
                   "feature_columns": features}
        if args.epsilon is not None:
            save_with_columns(est, args.output, columns, include_users=args.include_users)
            say(args, f"private fit on {n_workers} dask workers in the fixed {est.n_iter_} iterations; "
                      f"{est.privacy_report_.guarantee}")
        else:
            save_with_columns(est, args.output, columns)
            info = est.distributed_
            say(args, f"{args.data}: {est.tasks_.shape[0]} tasks, {len(features)} features, {info['n_partitions']} "
                      f"partitions on {n_workers} dask workers")
            say(args, f"fitted r={est.rank}, k={est.sparsity} in {est.n_iter_} iterations ({seconds:.2f} s)")
    say(args, f"model written to {args.output}")
    return 0


def run_predict_distributed(args: argparse.Namespace) -> int:
    from .data_io import _features, _is_private, _load

    est, recorded = _load(args.model)
    if _is_private(est) and est.tasks_.shape[0] == 0:
        raise ValueError(f"model file {args.model!r} is a private model holding U and its privacy report only; fit "
                         "the tasks from U first with 'lorsa adapt'")
    task_column = args.task_column or recorded.get("task_column")
    if task_column is None:
        raise ValueError("the model file records no task column; give --task-column")
    if Path(args.output).suffix.lower() in (".csv", ".tsv", ".txt"):
        raise ValueError(f"--output {args.output!r}: with --scheduler predictions are written as a Parquet "
                         "directory by the workers; give a directory name")
    frame = _read(args.data)
    _need(frame, args.data, task_column, "task")
    features, prefix = _features(args, recorded)
    target = args.target_column or recorded.get("target_column")
    features = _feature_columns(frame, args.data, features, prefix, [task_column, target])
    if len(features) != est.n_features_in_:
        raise ValueError(f"data {args.data!r}: {len(features)} feature columns selected, but the model was fitted "
                         f"on {est.n_features_in_}")
    for column in args.keep_columns:
        _need(frame, args.data, column, "--keep-columns")
    if args.prediction_column in (task_column, *args.keep_columns):
        raise ValueError(f"--prediction-column {args.prediction_column!r} is also an output column; choose another")
    with _client(args.scheduler):
        pred = est.predict(frame[features], tasks=_labels(frame, task_column, est))
        out = frame[[c for c in args.keep_columns if c != task_column] + [task_column]]
        out = out.assign(**{args.prediction_column: pred})
        out.to_parquet(args.output, write_index=False, overwrite=Path(args.output).exists())
        n_rows = int(out.map_partitions(len).sum().compute()) if not args.quiet else None
    if n_rows is not None:
        say(args, f"{n_rows} predictions written to {args.output} (a Parquet directory, one file per partition)")
    return 0


def run_adapt_distributed(args: argparse.Namespace) -> int:
    import numpy as np
    import scipy.sparse as sp

    from .._files import check_writable_target
    from .data_io import _features, _is_private, _load, save_with_columns

    check_writable_target(args.output, "model file")
    est, recorded = _load(args.model)
    if args.task_name is not None:
        raise ValueError("--task-name cannot be used with --scheduler (the new tasks come from a task column)")
    task_column = args.task_column or recorded.get("task_column")
    target = args.target_column or recorded.get("target_column")
    if task_column is None or target is None:
        raise ValueError("the model file records no task or target column; give --task-column and --target-column")
    frame = _read(args.data)
    for column, role in ((task_column, "task"), (target, "target")):
        _need(frame, args.data, column, role)
    features, prefix = _features(args, recorded)
    features = _feature_columns(frame, args.data, features, prefix, [task_column, target])
    with _client(args.scheduler):
        new_labels, W, B = est.adapt_tasks(frame[features], frame[target], _labels(frame, task_column, est),
                                           max_iter=args.max_iter)
    known = np.intersect1d(new_labels, est.tasks_)
    if known.size:
        raise ValueError(f"data {args.data!r}: task column {task_column!r} holds {known.size} task(s) already in the "
                         f"model: {', '.join(repr(x) for x in known[:5].tolist())}; adapt fits new tasks only")
    all_labels = np.concatenate([est.tasks_, new_labels])
    order = np.argsort(all_labels, kind="stable")
    est.tasks_, est.W_ = all_labels[order], np.vstack([est.W_, W])[order]
    est.B_ = sp.hstack([est.B_, B]).tocsc()[:, order]
    columns = dict(recorded) or {"task_column": task_column, "target_column": target, "feature_columns": features}
    save_with_columns(est, args.output, columns, include_users=_is_private(est))
    say(args, f"model with {est.tasks_.size} tasks ({new_labels.size} new, fitted on the dask workers) written to "
              f"{args.output}")
    return 0
