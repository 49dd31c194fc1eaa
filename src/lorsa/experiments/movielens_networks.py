"""Personalised networks on MovieLens (SPEC §9 on the data of SPEC §8): a 3-layer MLP on the movie vectors,
:class:`lorsa.nn.NetworkLRS` against the network baselines and the linear AMHT-LRS.

Problem: exactly the linear experiment's (:func:`lorsa.experiments.movielens_data.load_problems`, reused, not
rebuilt): tasks are demographic clusters or users, 20 % of each task's movies are validation, the movie vectors
come from a rank-50 factorisation of the training ratings, with the constant feature appended (``d = 51``), and a
*tuning* problem carved out of the training part (its own factorisation) for every choice. The network sees the
features standardised by the training rows' mean and standard deviation (the constant column left as it is) and
the targets centred by the training mean (both fitted on training rows only).

Protocol per method: (1) fit on the tuning problem's training samples with early stopping on its held-out
samples (``eval_set``, ``patience``), which gives the number of alternating epochs (and, for methods with several
settings, the setting) with the lowest held-out RMSE; (2) refit on the full training part for that many epochs;
(3) score once on validation. Validation never enters a choice. The linear AMHT-LRS
(:class:`lorsa.baselines.TunedLRS`) is fitted at fixed settings (default: the linear experiment's tuning-split
choice at ``k = 10``, ``r = 12``, ridge 100, offset "single") on the same samples.

Each method's result is cached in ``cache/<method>.json`` under the output folder (keyed by the configuration),
so an interrupted run resumes. Files: ``results.csv``, ``tuning.csv``, ``summary.json``, ``table.md`` and
``movielens_networks.png`` (:mod:`lorsa.experiments.movielens_networks_report`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ._common import Progress, environment, prepare_output, single_threaded_blas, write_csv, write_json
from .movielens_data import load_problems

__all__ = ["MovieLensNetworkConfig", "MovieLensNetworkResult", "run_movielens_networks", "NETWORK_METHODS"]

#: Method names -> labels, in table order (the linear AMHT-LRS last).
NETWORK_METHODS: dict[str, str] = {
    "lrs": "LRS network (r, k)",
    "representation": "Representation (r = r+k)",
    "sparse_finetune": "Sparse fine-tuning (k = r+k)",
    "embedding": "Task embedding (q = r+k)",
    "single": "Single network",
    "last_layer": "Last-layer fine-tuning",
    "lora": "LoRA (rank 1)",
    "finetune": "Full fine-tuning",
    "linear_lrs": "Linear AMHT-LRS",
}


@dataclass(frozen=True)
class MovieLensNetworkConfig:
    """Settings of :func:`run_movielens_networks`.

    Attributes
    ----------
    data_dir, dataset, ratings, grouping, seed, fraction, tuning_fraction, starved_below, factor_rank
        As in :class:`lorsa.experiments.movielens.MovieLensConfig` (the same problem; the constant feature is
        always appended).
    max_tasks : int or None
        Keep only the first ``max_tasks`` task labels (a reduced run; None: every task).
    hidden : tuple of int
        Hidden widths of the MLP ``d -> h1 -> h2 -> 1`` (tanh).
    lrs_settings : tuple of (int, int)
        Candidate ``(r, k)`` of the LRS network, chosen on the tuning problem; the baselines with a budget get
        ``r + k`` of the first.
    n_epochs, pretrain_epochs, patience : int
        Alternating epochs at most; epochs of the single network first (when ``"single"`` is run, its own
        early-stopped epoch count, chosen on the tuning split, replaces this); early-stopping patience (epochs).
        The single network runs ``pretrain_epochs + n_epochs`` epochs at most.
    ridges : tuple of float
        Candidate penalties ``ridge/2 ||.||^2`` on each task's own parameters, chosen on the tuning split with the
        setting (every method with per-task parameters).
    task_steps, task_batch_size : int
        Per-task steps per visit, tasks per mini-batch (size-grouped).
    linear_rank, linear_sparsity, linear_ridge, linear_shared_ridge : int, int, float, float
        Settings of the linear AMHT-LRS (defaults: the linear experiment's tuning-split choices on ML-100K at
        ``k = 10``, and its single model's ridge, under the shared model of the "single" offset).
    methods : tuple of str
        Names in :data:`NETWORK_METHODS`.
    """

    data_dir: str
    dataset: str | None = None
    ratings: str | None = None
    grouping: str = "demographic"
    seed: int = 0
    fraction: float = 0.2
    tuning_fraction: float = 0.2
    starved_below: int = 100
    factor_rank: int = 50
    max_tasks: int | None = None
    hidden: tuple[int, ...] = (32, 32)
    lrs_settings: tuple[tuple[int, int], ...] = ((2, 8),)
    n_epochs: int = 30
    pretrain_epochs: int = 20
    ridges: tuple[float, ...] = (0.0, 0.03, 0.3)
    patience: int = 4
    task_steps: int = 2
    task_batch_size: int = 16
    linear_rank: int = 12
    linear_sparsity: int = 10
    linear_ridge: float = 100.0
    linear_shared_ridge: float = 1000.0
    methods: tuple[str, ...] = tuple(NETWORK_METHODS)

    def validate(self) -> MovieLensNetworkConfig:
        """Check every field (messages name the field, the allowed values and the value received)."""
        v.check_choice("grouping", self.grouping, ("demographic", "user"))
        v.check_int("max_tasks", self.max_tasks, 1, allow_none=True)
        for name in ("n_epochs", "patience", "task_steps", "task_batch_size", "starved_below", "linear_rank"):
            v.check_int(name, getattr(self, name), 1)
        for name in ("pretrain_epochs", "linear_sparsity", "seed"):
            v.check_int(name, getattr(self, name), 0)
        v.check_float("linear_ridge", self.linear_ridge, 0.0)
        if not self.ridges:
            raise ValueError("ridges must hold at least one value")
        for lam in self.ridges:
            v.check_float("ridges[...]", lam, 0.0)
        v.check_float("linear_shared_ridge", self.linear_shared_ridge, 0.0)
        for h in self.hidden:
            v.check_int("hidden[...]", h, 1)
        if not self.lrs_settings:
            raise ValueError("lrs_settings must hold at least one (r, k)")
        for r, k in self.lrs_settings:
            v.check_int("lrs_settings[...] r", r, 0)
            v.check_int("lrs_settings[...] k", k, 0)
        unknown = [m for m in self.methods if m not in NETWORK_METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty list among {list(NETWORK_METHODS)}, got "
                             f"{list(self.methods)}")
        return self

    def problem_config(self) -> Any:
        """The linear experiment's configuration of the same problem (for its problem builder)."""
        from .movielens import MovieLensConfig

        return MovieLensConfig(data_dir=str(self.data_dir), dataset=self.dataset, ratings=self.ratings,
                               grouping=self.grouping, seed=self.seed, fraction=self.fraction,
                               tuning_fraction=self.tuning_fraction, starved_below=self.starved_below,
                               intercept=True, factor_rank=self.factor_rank)


@dataclass
class MovieLensNetworkResult:
    """What :func:`run_movielens_networks` measured."""

    rows: list[dict[str, Any]]
    tuning: list[dict[str, Any]]
    data: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def _subset(problem: Any, keep: np.ndarray) -> Any:
    tr, va = np.isin(problem.tasks_train, keep), np.isin(problem.tasks_val, keep)
    return replace(problem, X_train=problem.X_train[tr], y_train=problem.y_train[tr],
                   tasks_train=problem.tasks_train[tr], X_val=problem.X_val[va], y_val=problem.y_val[va],
                   tasks_val=problem.tasks_val[va])


class _Scaler:
    """Standardise features (constant columns kept) and centre targets, from training rows only."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.mean, self.std = X.mean(0), X.std(0)
        constant = self.std < 1e-12
        self.mean[constant], self.std[constant] = 0.0, 1.0
        self.y_mean = float(y.mean())

    def x(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std).astype(np.float32)

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean).astype(np.float32)


def _factories(c: MovieLensNetworkConfig) -> dict[str, tuple[list[dict[str, Any]], Callable[..., Any]]]:
    """Per network method: its candidate settings and ``make(setting, module, n_epochs, pretrain, seed)``."""
    from ..nn import NetworkLRS
    from ..nn import baselines as nb

    def kw(e: int, p: int, s: int, ridge: float = 0.0) -> dict[str, Any]:
        return dict(n_epochs=e, pretrain_epochs=p, task_steps=c.task_steps, task_batch_size=c.task_batch_size,
                    ridge=ridge, random_state=s)

    def grid(*settings: dict[str, Any]) -> list[dict[str, Any]]:
        return [{**q, "ridge": lam} for q in settings for lam in c.ridges]

    budget = sum(c.lrs_settings[0])
    return {
        "lrs": (grid(*({"rank": r, "sparsity": k} for r, k in c.lrs_settings)),
                lambda q, m, e, p, s: NetworkLRS(m, rank=q["rank"], sparsity=q["sparsity"], **kw(e, p, s, q["ridge"]))),
        "representation": (grid({"rank": budget}), lambda q, m, e, p, s: nb.RepresentationLearning(
            m, rank=q["rank"], **kw(e, p, s, q["ridge"]))),
        "sparse_finetune": (grid({"sparsity": budget}), lambda q, m, e, p, s: nb.SparseFineTuning(
            m, sparsity=q["sparsity"], **kw(e, p, s, q["ridge"]))),
        "embedding": (grid({"embedding_dim": budget}), lambda q, m, e, p, s: nb.TaskEmbedding(
            m, embedding_dim=q["embedding_dim"], **kw(e, p, s, q["ridge"]))),
        "single": ([{}], lambda q, m, e, p, s: nb.SingleNetwork(m, **kw(e + p, 0, s))),
        "last_layer": (grid({}), lambda q, m, e, p, s: nb.LastLayerFineTuning(m, **kw(e, p, s, q["ridge"]))),
        "lora": (grid({"rank": 1}), lambda q, m, e, p, s: nb.LoRA(m, rank=q["rank"], **kw(e, p, s, q["ridge"]))),
        "finetune": (grid({}), lambda q, m, e, p, s: nb.FullFineTuning(m, **kw(e, p, s, q["ridge"]))),
    }


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2))) if y.size else float("nan")


def _scores(pred: np.ndarray, problem: Any, starved_tasks: np.ndarray) -> dict[str, float]:
    starved = np.isin(problem.tasks_val, starved_tasks)
    return {"rmse": _rmse(pred, problem.y_val), "rmse_starved": _rmse(pred[starved], problem.y_val[starved]),
            "rmse_surplus": _rmse(pred[~starved], problem.y_val[~starved])}


def _network_method(name: str, c: MovieLensNetworkConfig, final: Any, tune: Any, starved: np.ndarray,
                    seed: int, pretrain: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from ..nn.networks import make_mlp

    grid, make = _factories(c)[name]
    d = final.X_train.shape[1]
    tuning, best = [], None
    st = _Scaler(tune.X_train, tune.y_train)
    for setting in grid:
        tic = time.perf_counter()
        est = make(setting, make_mlp(d, c.hidden, seed=seed), c.n_epochs, pretrain, seed)
        est.fit(st.x(tune.X_train), st.y(tune.y_train), tune.tasks_train,
                eval_set=(st.x(tune.X_val), st.y(tune.y_val), tune.tasks_val), patience=c.patience)
        score = float(np.sqrt(2 * min(est.eval_history_)))
        row = {"method": name, "setting": json.dumps(setting), "tuning_rmse": score, "best_epoch": est.best_epoch_,
               "epochs_run": len(est.eval_history_) - 1, "fit_seconds": time.perf_counter() - tic}
        tuning.append(row)
        if best is None or score < best["tuning_rmse"]:
            best = {**row, "params": setting}
    assert best is not None
    sf = _Scaler(final.X_train, final.y_train)
    tic = time.perf_counter()
    est = make(best["params"], make_mlp(d, c.hidden, seed=seed), best["best_epoch"], pretrain, seed)
    if name == "single":       # its epochs are all pooled: the tuned count is the total
        est.set_params(n_epochs=best["best_epoch"])
    est.fit(sf.x(final.X_train), sf.y(final.y_train), final.tasks_train)
    pred = est.predict(sf.x(final.X_val), final.tasks_val).astype(np.float64) + sf.y_mean
    return ({"method": name, "label": NETWORK_METHODS[name], "setting": json.dumps(best["params"]),
             "params_per_task": int(est.params_per_task_), "indices_per_task": int(est.indices_per_task_),
             "bytes_per_task": int(est.bytes_per_task_), "n_parameters": int(est.n_parameters_),
             **_scores(pred, final, starved), "tuning_rmse": best["tuning_rmse"], "epochs": best["best_epoch"],
             "fit_seconds": time.perf_counter() - tic + sum(r["fit_seconds"] for r in tuning)}, tuning)


def _linear_method(c: MovieLensNetworkConfig, final: Any, starved: np.ndarray, seed: int) -> dict[str, Any]:
    from ..baselines import TunedLRS

    tic = time.perf_counter()
    est = TunedLRS(rank=c.linear_rank, sparsity=c.linear_sparsity, ridge=c.linear_ridge, offset="single",
                   shared_ridge=c.linear_shared_ridge, init="moments", max_iter=100, tol=1e-6, random_state=seed)
    with single_threaded_blas():
        est.fit(final.X_train, final.y_train, final.tasks_train)
        pred = est.predict(final.X_val, final.tasks_val)
    n = int(est.params_per_task)
    return {"method": "linear_lrs", "label": NETWORK_METHODS["linear_lrs"],
            "setting": json.dumps({"rank": c.linear_rank, "sparsity": c.linear_sparsity, "ridge": c.linear_ridge}),
            "params_per_task": n, "indices_per_task": c.linear_sparsity,
            "bytes_per_task": 8 * n + 4 * c.linear_sparsity,
            "n_parameters": int(final.X_train.shape[1]), **_scores(pred, final, starved), "tuning_rmse": float("nan"),
            "epochs": 0, "fit_seconds": time.perf_counter() - tic}


_PROBLEM = ("data_dir", "dataset", "ratings", "grouping", "seed", "fraction", "tuning_fraction", "starved_below",
            "factor_rank", "max_tasks")
_LINEAR = ("linear_rank", "linear_sparsity", "linear_ridge", "linear_shared_ridge")


def _key(c: MovieLensNetworkConfig, name: str, pretrain: int) -> str:
    """A method's cache key: the fields its result depends on (and the pre-training epochs it used)."""
    fields = asdict(c)
    if name == "linear_lrs":
        used = {k: fields[k] for k in _PROBLEM + _LINEAR}
    else:
        used = {k: val for k, val in fields.items() if k not in ("methods",) + _LINEAR}
        used["pretrain_used"] = pretrain
        if name == "single":
            used.pop("ridges")
            used.pop("lrs_settings")
    return hashlib.sha256(json.dumps([name, used], sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_movielens_networks(config: MovieLensNetworkConfig, output: str | Path, progress: bool = True,
                           plot: bool = True, cache: bool = True) -> MovieLensNetworkResult:
    """Run the experiment (see the module docstring) and write its files to ``output``.

    Raises
    ------
    FileNotFoundError
        If the data folder or one of its files is missing (the message names it).
    """
    from ..nn._torch import torch_threads
    from .movielens_networks_report import format_network_markdown, plot_network_results

    c = config.validate()
    out = prepare_output(output)
    tic = time.perf_counter()
    final, tune, info = load_problems(c.problem_config())
    if c.max_tasks is not None:
        keep = np.unique(final.tasks_train)[:c.max_tasks]
        final, tune = _subset(final, keep), _subset(tune, keep)
    labels, counts = np.unique(final.tasks_train, return_counts=True)
    starved = labels[counts < c.starved_below]
    info.update(n_tasks_used=int(labels.size), n_starved_tasks=int(starved.size),
                n_val_samples_used=int(final.y_val.size), n_features_model=int(final.X_train.shape[1]))
    seed = int(np.random.SeedSequence([c.seed, 11]).generate_state(1)[0] % (2**31 - 1))
    rows: list[dict[str, Any]] = []
    tuning: list[dict[str, Any]] = []
    (out / "cache").mkdir(exist_ok=True)
    methods = sorted(c.methods, key=lambda m: m != "single")      # the single network first: its epochs
    pretrain = c.pretrain_epochs                                    # become the others' pre-training
    with Progress(len(c.methods), "movielens-nn", progress) as bar, torch_threads(1):
        for name in methods:
            path = out / "cache" / f"{name}.json"
            key = _key(c, name, pretrain)
            if cache and path.is_file():
                saved = json.loads(path.read_text(encoding="utf-8"))
                if saved.get("key") == key:
                    rows.append(saved["row"])
                    tuning += saved["tuning"]
                    pretrain = saved["row"]["epochs"] if name == "single" else pretrain
                    bar.update(f"{name} (cached)")
                    continue
            if name == "linear_lrs":
                row, tun = {**_linear_method(c, final, starved, seed), "pretrain_epochs": 0}, []
            else:
                row, tun = _network_method(name, c, final, tune, starved, seed, pretrain)
                row["pretrain_epochs"] = 0 if name == "single" else pretrain
                if name == "single":
                    pretrain = row["epochs"]
            path.write_text(json.dumps({"key": key, "row": row, "tuning": tun}, default=float), encoding="utf-8")
            rows.append(row)
            tuning += tun
            bar.update(name)
    rows.sort(key=lambda r: list(NETWORK_METHODS).index(r["method"]))
    seconds = time.perf_counter() - tic
    summary = {"experiment": "movielens-networks", "config": asdict(c), "data": info, "results": rows,
               "seconds": seconds, "environment": environment()}
    files = {"results": write_csv(rows, out / "results.csv"), "tuning": write_csv(tuning, out / "tuning.csv"),
             "summary": write_json(summary, out / "summary.json")}
    (out / "table.md").write_text(format_network_markdown(rows, info, c), encoding="utf-8")
    files["table"] = out / "table.md"
    if plot:
        files["figure"] = plot_network_results(rows, info, out / "movielens_networks.png")
    return MovieLensNetworkResult(rows, tuning, info, files, seconds)
