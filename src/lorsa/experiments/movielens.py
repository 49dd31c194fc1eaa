"""Figure 1 of the paper (SPEC §8): validation RMSE against % of fine-tunable parameters per task on MovieLens.

Protocol (:mod:`lorsa.datasets.movielens_tasks`, unchanged here): a task is a demographic cluster (gender x age
group x occupation) or, with ``grouping="user"``, one user; per task 20 % of the movies it rated are validation
(all its ratings of them), a rank-50 factorisation of the TRAINING ratings gives the movie vectors ``x``, and a
sample is (movie vector, the task's mean rating of that movie).

Hyper-parameters are chosen on a *tuning* split carved out of the training part
(:func:`lorsa.datasets.movielens_tasks.movielens_tuning_tasks`: a further 20 % of each task's training movies held
out and the factorisation refitted without them): every candidate is fitted on the tuning problem's training
samples and scored on its held-out samples; the winner is refitted on the full training part and scored once on
the validation samples. The validation ratings never enter a choice, nor the movie vectors of the tuning problem.

Methods (every one a linear model per task over the same features):

- AMHT-LRS (:class:`lorsa.baselines.TunedLRS`) at each ``k`` of ``lrs_sparsities``, with ``r`` and the ridge on
  ``(w_i, b_i)`` chosen on the tuning split, and "AMHT-LRS (r, k tuned)" where ``k`` is chosen too;
- the baselines of SPEC §7 (:mod:`lorsa.baselines`): single model, full fine-tuning (per-task ridge shrunk toward
  the single model or toward 0, the strength and the target chosen on the tuning split: the strongest baseline),
  full fine-tuning toward 0 alone (plain per-task ridge), representation learning (``k = 0``), prompt tuning (a
  per-task bias), sparse fine-tuning.

Two choices of the method, both measured on MovieLens 100K and explained in the README:

- ``intercept=True`` appends a constant feature to ``x`` for *every* method (so ``d = 51``): the ALS vectors have
  no intercept of their own (their first coordinate, mean 1.64 and spread 0.27, stands in for one badly), and a
  task's average rating generosity is the first thing a data-starved task needs. AMHT-LRS can then put the
  constant coordinate in ``U`` or in a task's sparse ``b_i``.
- ``lrs_init="moments"``: AMHT-LRS starts from the method-of-moments basis (SPEC §4). From a random ``U`` it
  stopped in poorer local minima on this data (training objective up to 11 % higher, validation RMSE up to 0.01
  worse, varying with the seed).

Reported per method: validation RMSE over all validation samples, over those of data-starved tasks (fewer than
``starved_below`` = 100 training samples) and of data-surplus tasks; parameters per task (what a task stores
beyond the shared part) and that as a % of ``d``. Files: ``results.csv`` (one row per method), ``tuning.csv``
(every candidate's tuning RMSE), ``summary.json`` (configuration, data-set statistics, results, timings,
machine), ``table.md`` and ``figure1.png`` (three panels: overall, starved, surplus).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ..baselines import (
    DEFAULT_RIDGE_GRID,
    ConvexLRS,
    FineTuning,
    MixedEffects,
    PromptTuning,
    RepresentationLearning,
    SingleModel,
    SparseFineTuning,
    TaskRegressor,
    TunedLRS,
)
from ._common import Progress, environment, prepare_output, single_threaded_blas, write_csv, write_json
from .movielens_data import load_problems, resolve_data_dir
from .movielens_report import format_markdown, format_table, plot_figure1

__all__ = ["MovieLensConfig", "MovieLensResult", "run_movielens", "BASELINES", "LRS_METHOD", "resolve_data_dir",
           "format_table", "format_markdown", "plot_figure1"]

LRS_METHOD = "amht_lrs"

#: Baselines by name -> label in tables and plots.
BASELINES: dict[str, str] = {
    "single": "Single model",
    "prompt": "Prompt tuning",
    "representation": "Representation learning",
    "sparse_finetune": "Sparse fine-tuning",
    "finetune": "Full fine-tuning",
    "finetune_zero": "Full fine-tuning (toward 0)",
    "mixed": "Mixed effects (random slopes)",
    "convex": "Convex low-rank + sparse",
}

_GROUPINGS = ("demographic", "user")
_DATASETS = ("ml-100k", "ml-1m")


@dataclass(frozen=True)
class MovieLensConfig:
    """Settings of the MovieLens experiment (defaults: the paper's protocol, SPEC §8).

    Attributes
    ----------
    data_dir : str
        Folder with the GroupLens files, or a folder holding ``ml-100k/`` and/or ``ml-1m/``
        (:func:`resolve_data_dir`).
    dataset : {"ml-100k", "ml-1m"} or None
        Which data set; None detects it from the files.
    ratings : str or None
        Ratings file to read instead of the default one (relative to the data set's folder), e.g.
        ``ratings_PARTIAL_users1-2999.dat.gz``.
    grouping : {"demographic", "user"}
        What a task is.
    seed : int
        Seed of the validation split and the factorisation (the tuning split and the fits derive theirs from it).
    fraction, tuning_fraction : float
        Share of each task's movies held out for validation, and of its training movies for tuning.
    starved_below : int
        A task with fewer training samples is data-starved.
    intercept : bool
        Append a constant feature to ``x`` for every method.
    lrs_sparsities : tuple of int
        ``k`` of AMHT-LRS, one point of its curve each.
    lrs_ranks, lrs_ridges : tuple
        Candidate ``r`` and ridge of AMHT-LRS, chosen on the tuning split.
    lrs_offsets : tuple of {"none", "single"}
        Candidate offsets of AMHT-LRS (:class:`lorsa.baselines.TunedLRS`): ``"single"`` fits ``U w_i + b_i`` on top
        of the single model, so that the ridge shrinks a task toward the single model rather than toward 0.
    lrs_samples_per_nonzero : tuple of float or None
        Candidates for the per-task sparsity ``k_i = min(k, floor(m_i / s))`` (None: ``k`` for every task).
    lrs_tuned : bool
        Also report AMHT-LRS with ``r``, ``k`` and the ridge all chosen on the tuning split (the per-``k`` winner
        with the lowest tuning RMSE).
    lrs_init : {"moments", "random"}
        Initial ``U`` of AMHT-LRS.
    baselines : tuple of str
        Names in :data:`BASELINES`.
    ridges : tuple of float
        Candidate ridge strengths of the single model, fine-tuning and prompt tuning.
    representation_ranks, sparse_finetune_sparsities : tuple of int
        Candidate ``r`` (representation learning) and ``k`` (sparse fine-tuning).
    mixed_cov_scales : tuple of float
        Candidate prior tempering ``c`` of the mixed-effects baseline (:class:`lorsa.baselines.MixedEffects`).
    convex_fractions : tuple of float
        Candidate ``lam_*`` and ``lam_1`` fractions of the convex baseline (:class:`lorsa.baselines.ConvexLRS`;
        every pair).
    max_iter : int
        Cap on AMHT-LRS / AltMin iterations.
    factor_rank : int
        Dimension of the movie vectors (50 in the paper).
    """

    data_dir: str
    dataset: str | None = None
    ratings: str | None = None
    grouping: str = "demographic"
    seed: int = 0
    fraction: float = 0.2
    tuning_fraction: float = 0.2
    starved_below: int = 100
    intercept: bool = True
    lrs_sparsities: tuple[int, ...] = (1, 2, 5, 10)
    lrs_ranks: tuple[int, ...] = (4, 8, 12, 16)
    lrs_ridges: tuple[float, ...] = (10.0, 100.0)
    lrs_tuned: bool = True
    lrs_offsets: tuple[str, ...] = ("single",)
    lrs_samples_per_nonzero: tuple[float | None, ...] = (None, 25.0)
    lrs_init: str = "moments"
    baselines: tuple[str, ...] = tuple(BASELINES)
    ridges: tuple[float, ...] = DEFAULT_RIDGE_GRID
    representation_ranks: tuple[int, ...] = (1, 2, 4, 8, 12, 16)
    sparse_finetune_sparsities: tuple[int, ...] = (1, 2, 5, 10, 20)
    mixed_cov_scales: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01)
    convex_fractions: tuple[float, ...] = (0.3, 0.1, 0.03)
    max_iter: int = 100
    factor_rank: int = 50

    def validate(self) -> MovieLensConfig:
        """Check every field (messages name the field, the allowed values and the value received)."""
        if not isinstance(self.data_dir, str | Path) or not str(self.data_dir):
            raise ValueError(f"data_dir must be a folder name, got {self.data_dir!r}")
        if self.dataset is not None:
            v.check_choice("dataset", self.dataset, _DATASETS)
        v.check_choice("grouping", self.grouping, _GROUPINGS)
        v.check_choice("lrs_init", self.lrs_init, ("moments", "random"))
        v.check_int("seed", self.seed, 0)
        v.check_float("fraction", self.fraction, 0.0, 1.0, False, False)
        v.check_float("tuning_fraction", self.tuning_fraction, 0.0, 1.0, False, False)
        v.check_int("starved_below", self.starved_below, 1)
        v.check_int("max_iter", self.max_iter, 1)
        d = v.check_int("factor_rank", self.factor_rank, 2) + int(bool(self.intercept))
        for name in ("lrs_ranks", "lrs_ridges", "lrs_offsets", "lrs_samples_per_nonzero", "ridges",
                     "representation_ranks", "sparse_finetune_sparsities", "mixed_cov_scales", "convex_fractions"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"{name} must not be empty")
        for k in self.lrs_sparsities + self.sparse_finetune_sparsities:
            v.check_int("sparsities[...]", k, 0, d)
        for r in self.lrs_ranks + self.representation_ranks:
            v.check_int("ranks[...]", r, 1, d - 1)
        for lam in self.lrs_ridges + self.ridges:
            v.check_float("ridges[...]", lam, 0.0)
        for off in self.lrs_offsets:
            v.check_choice("lrs_offsets[...]", off, ("none", "single"))
        for spn in self.lrs_samples_per_nonzero:
            if spn is not None:
                v.check_float("lrs_samples_per_nonzero[...]", spn, 0.0, low_inclusive=False)
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ValueError(f"baselines must be among {list(BASELINES)}, got {unknown}")
        if not self.lrs_sparsities and not self.baselines:
            raise ValueError("nothing to run: give lrs_sparsities or baselines")
        return self


@dataclass
class MovieLensResult:
    """Output of :func:`run_movielens`: one row per method, every tuning candidate, data statistics, files."""

    config: MovieLensConfig
    rows: list[dict[str, Any]]
    tuning: list[dict[str, Any]]
    data: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Method:
    """A method of the comparison: its candidate grid and how to build an estimator from one candidate."""

    name: str
    label: str
    setting: str
    grid: list[dict[str, Any]]
    make: Callable[[dict[str, Any], int], TaskRegressor]


def _grid(**axes: Any) -> list[dict[str, Any]]:
    """Every combination of the candidate values, as dicts (the first axis varies slowest)."""
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _methods(c: MovieLensConfig, shared: dict[str, float]) -> list[_Method]:
    """Every method; the single model comes first, and its chosen ridge (``shared["ridge"]``, read when an estimator
    is built) is the ridge of the shared model of sparse and full fine-tuning."""
    def lrs(p: dict[str, Any], seed: int) -> TaskRegressor:
        return TunedLRS(rank=p["rank"], sparsity=p["sparsity"], ridge=p["ridge"], offset=p["offset"],
                        samples_per_nonzero=p["samples_per_nonzero"], shared_ridge=shared["ridge"],
                        init=c.lrs_init, max_iter=c.max_iter, tol=1e-6, random_state=seed)

    out = [_Method("single", BASELINES["single"], "", _grid(ridge=c.ridges), lambda p, s: SingleModel(p["ridge"]))]
    out += [_Method(LRS_METHOD, "AMHT-LRS", f"k={k}", _grid(rank=c.lrs_ranks, sparsity=(k,), ridge=c.lrs_ridges,
                                                           offset=c.lrs_offsets,
                                                           samples_per_nonzero=c.lrs_samples_per_nonzero), lrs)
            for k in c.lrs_sparsities]
    makers: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any], int], TaskRegressor]]] = {
        "prompt": (_grid(ridge=c.ridges, bias_ridge=(0.0, 1.0, 10.0, 100.0)),
                   lambda p, s: PromptTuning(p["ridge"], bias_ridge=p["bias_ridge"], random_state=s)),
        "representation": (_grid(rank=c.representation_ranks, ridge=c.lrs_ridges),
                           lambda p, s: RepresentationLearning(p["rank"], ridge=p["ridge"], init=c.lrs_init,
                                                               max_iter=c.max_iter, tol=1e-6, random_state=s)),
        "sparse_finetune": (_grid(sparsity=c.sparse_finetune_sparsities, ridge=(0.0,) + tuple(c.lrs_ridges)),
                            lambda p, s: SparseFineTuning(p["sparsity"], ridge=p["ridge"], shared_ridge=shared["ridge"],
                                                          random_state=s)),
        "finetune": (_grid(ridge=c.ridges, toward=("single", "zero")),
                     lambda p, s: FineTuning(p["ridge"], toward=p["toward"], shared_ridge=shared["ridge"],
                                             random_state=s)),
        "finetune_zero": (_grid(ridge=c.ridges, toward=("zero",)),
                          lambda p, s: FineTuning(p["ridge"], toward="zero", random_state=s)),
        "mixed": (_grid(cov_scale=c.mixed_cov_scales),
                  lambda p, s: MixedEffects(cov_scale=p["cov_scale"], max_iter=100, tol=1e-6, random_state=s)),
        "convex": (_grid(nuclear=c.convex_fractions, l1=c.convex_fractions),
                   lambda p, s: ConvexLRS(p["nuclear"], l1=p["l1"], shared_ridge=shared["ridge"], max_iter=1000,
                                          tol=1e-6, random_state=s)),
    }
    for name in c.baselines:
        if name in makers:
            grid, make = makers[name]
            out.append(_Method(name, BASELINES[name], "", grid, make))
    return out


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    """AMHT-LRS first (by k, then the tuned point), then the baselines by parameters per task."""
    lrs = row["method"] == LRS_METHOD
    k = int(row["setting"][2:]) if lrs and row["setting"].startswith("k=") else 10**9
    return (not lrs, k, row["pct_params"], row["label"])


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2))) if y.size else float("nan")


def _fit_score(method: _Method, params: dict[str, Any], seed: int, problem: Any) -> tuple[TaskRegressor, np.ndarray]:
    est = method.make(params, seed)
    est.fit(problem.X_train, problem.y_train, problem.tasks_train)
    return est, est.predict(problem.X_val, problem.tasks_val)


def run_movielens(config: MovieLensConfig, output: str | Path | None = None, progress: bool = True,
                  plot: bool = True) -> MovieLensResult:
    """Run the MovieLens experiment (SPEC §8, Figure 1); with ``output`` write its result files there.

    Parameters
    ----------
    config : MovieLensConfig
        Data folder and settings.
    output : str or Path, optional
        Folder for ``results.csv``, ``tuning.csv``, ``summary.json``, ``table.md`` and ``figure1.png`` (created).
    progress : bool
        Show a tqdm progress bar over the fits (on stderr).
    plot : bool
        Draw ``figure1.png`` (needs matplotlib).

    Returns
    -------
    MovieLensResult

    Raises
    ------
    FileNotFoundError
        If the data folder or one of its files is missing (the message names it).
    ValueError
        On a bad setting or a malformed data file (naming the file and line).
    """
    c = config.validate()
    folder = prepare_output(output) if output is not None else None
    start = time.perf_counter()
    final, tune, data_info = load_problems(c)
    seeds = np.random.SeedSequence([c.seed, 3]).generate_state(2)
    tune_seed, fit_seed = int(seeds[0] % (2**31 - 1)), int(seeds[1] % (2**31 - 1))
    starved = final.train_counts < c.starved_below
    starved_val = starved[final.task_index_val]
    d = final.X_train.shape[1]
    shared = {"ridge": 0.0}
    methods = _methods(c, shared)
    rows: list[dict[str, Any]] = []
    tuning: list[dict[str, Any]] = []
    n_fits = sum(len(m.grid) + 1 for m in methods)
    with single_threaded_blas(), warnings.catch_warnings(), Progress(n_fits, "movielens", progress) as bar:
        warnings.filterwarnings("ignore", message=r".*fewer rows than rank \+ sparsity", category=UserWarning)
        for method in methods:
            best, best_score = method.grid[0], np.inf
            for params in method.grid:
                tic = time.perf_counter()
                _, pred = _fit_score(method, params, tune_seed, tune)
                score = _rmse(pred, tune.y_val)
                tuning.append({"method": method.name, "label": method.label, "setting": method.setting,
                               "params": params, "tuning_rmse": score, "fit_seconds": time.perf_counter() - tic})
                if score < best_score:
                    best, best_score = params, score
                bar.update(f"tuning {method.label} {method.setting}".strip())
            if method.name == "single":
                shared["ridge"] = float(best["ridge"])
            tic = time.perf_counter()
            est, pred = _fit_score(method, best, fit_seed, final)
            seconds = time.perf_counter() - tic
            params_per_task = float(est.params_per_task)
            rows.append({"method": method.name, "label": method.label, "setting": method.setting,
                         "params_per_task": params_per_task, "pct_params": 100.0 * params_per_task / d,
                         "rmse": _rmse(pred, final.y_val),
                         "rmse_starved": _rmse(pred[starved_val], final.y_val[starved_val]),
                         "rmse_surplus": _rmse(pred[~starved_val], final.y_val[~starved_val]),
                         "tuning_rmse": best_score, "chosen": dict(est.best_params_), "fit_seconds": seconds,
                         "n_candidates": len(method.grid)})
            bar.update(f"{method.label} {method.setting}".strip())
    lrs_rows = [r for r in rows if r["method"] == LRS_METHOD]
    if c.lrs_tuned and len(lrs_rows) > 1:  # k chosen too: the per-k winner with the best tuning RMSE (no new fit)
        rows.append({**min(lrs_rows, key=lambda r: r["tuning_rmse"]), "setting": "r, k tuned",
                     "n_candidates": sum(r["n_candidates"] for r in lrs_rows)})
    if "single" not in c.baselines:
        rows = [r for r in rows if r["method"] != "single"]
    rows.sort(key=_order)
    data_info.update(n_features_model=int(d), n_starved_tasks=int(starved.sum()),
                     n_surplus_tasks=int((~starved).sum()), n_val_samples_starved=int(starved_val.sum()),
                     n_val_samples_surplus=int((~starved_val).sum()), shared_ridge=shared["ridge"])
    result = MovieLensResult(config=c, rows=rows, tuning=tuning, data=data_info, seconds=time.perf_counter() - start)
    if folder is not None:
        result.files["results"] = write_csv(rows, folder / "results.csv")
        result.files["tuning"] = write_csv(tuning, folder / "tuning.csv")
        result.files["summary"] = write_json({"experiment": "movielens-figure1", "config": asdict(c),
                                              "data": data_info, "results": rows, "seconds": result.seconds,
                                              "environment": environment()}, folder / "summary.json")
        (folder / "table.md").write_text(format_markdown(rows, data_info, c), encoding="utf-8")
        result.files["table"] = folder / "table.md"
        if plot:
            result.files["plot"] = plot_figure1(rows, folder / "figure1.png", data_info, c)
    return result
