"""Personalised networks on synthetic LRS tasks (SPEC §9): test RMSE against parameters per task for
:class:`lorsa.nn.NetworkLRS` and every network baseline, and new-task adaptation error against ``m``.

Data (:func:`lorsa.datasets.network_tasks.make_network_lrs_tasks`): a teacher 3-layer MLP ``d -> h -> h -> 1``
whose task ``i`` runs ``theta_0 + U w_i + b_i`` (``r``-dimensional ``U``, ``k``-sparse ``b_i`` anywhere among the
``P`` weights), ``t`` tasks of ``m`` rows, noiseless and noisy. Every method trains a student network of the same
architecture from a fresh initialisation (not the teacher's) with the same epochs, mini-batches and per-task steps,
and is scored on ``n_test`` fresh rows per task: ``test_rmse`` against the (noisy) targets and ``excess_rmse``
against the noiseless teacher. Then new tasks from the same teacher are adapted from ``m`` rows each with the
shared part frozen (``adapt``) and scored the same way. Writes ``runs.csv``, ``adaptation.csv``,
``summary.json``, ``table.md`` and ``networks.png``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ._common import Progress, environment, prepare_output, pyplot, spread, write_csv, write_json

__all__ = ["NetworkConfig", "NetworkResult", "run_networks", "format_network_table", "METHODS"]


def _kw(c: NetworkConfig, seed: int) -> dict[str, Any]:
    return dict(n_epochs=c.n_epochs, pretrain_epochs=0 if c.pretrained else c.pretrain_epochs, task_steps=c.task_steps,
                task_batch_size=c.task_batch_size, adapt_epochs=c.adapt_epochs, random_state=seed)


def _methods() -> dict[str, tuple[str, Callable[[NetworkConfig, Any, int], Any]]]:
    from ..nn import NetworkLRS
    from ..nn.baselines import (
        FullFineTuning,
        LastLayerFineTuning,
        LoRA,
        RepresentationLearning,
        SingleNetwork,
        SparseFineTuning,
        TaskEmbedding,
    )

    rk = lambda c: c.rank + c.sparsity  # noqa: E731 - the baselines get the LRS budget r + k
    return {
        "lrs": ("LRS (r, k)", lambda c, m, s: NetworkLRS(m, rank=c.rank, sparsity=c.sparsity, **_kw(c, s))),
        "representation": ("Representation (r = r+k)", lambda c, m, s: RepresentationLearning(m, rank=rk(c),
                                                                                              **_kw(c, s))),
        "sparse_finetune": ("Sparse fine-tuning (k = r+k)", lambda c, m, s: SparseFineTuning(m, sparsity=rk(c),
                                                                                            **_kw(c, s))),
        "embedding": ("Task embedding (q = r+k)", lambda c, m, s: TaskEmbedding(m, embedding_dim=rk(c),
                                                                                **_kw(c, s))),
        "single": ("Single network", lambda c, m, s: SingleNetwork(
            m, **{**_kw(c, s), "n_epochs": c.n_epochs + _kw(c, s)["pretrain_epochs"], "pretrain_epochs": 0})),
        "last_layer": ("Last-layer fine-tuning", lambda c, m, s: LastLayerFineTuning(m, **_kw(c, s))),
        "lora": ("LoRA (rank 1)", lambda c, m, s: LoRA(m, rank=1, **_kw(c, s))),
        "finetune": ("Full fine-tuning", lambda c, m, s: FullFineTuning(m, **_kw(c, s))),
    }


#: Method names, in table order.
METHODS: tuple[str, ...] = ("lrs", "representation", "sparse_finetune", "embedding", "single", "last_layer", "lora",
                            "finetune")


@dataclass(frozen=True)
class NetworkConfig:
    """Settings of :func:`run_networks` (defaults: the committed full run).

    Attributes
    ----------
    n_tasks, n_samples, n_test : int
        ``t``, training rows per task ``m``, fresh test rows per task.
    n_features, hidden : int, tuple of int
        Input size ``d`` and the two hidden widths of the 3-layer MLP.
    rank, sparsity, w_scale, b_scale : int, int, float, float
        The teacher's ``r``, ``k`` and the scales of ``w_i`` and of ``b_i``'s non-zeros; the LRS student uses the
        same ``r, k``, the baselines with a budget get ``r + k``.
    noise_levels, seeds : tuple
    n_epochs, pretrain_epochs, task_steps, task_batch_size, adapt_epochs : int
        Training schedule, the same for every method.
    methods : tuple of str
        Names in :data:`METHODS`.
    adapt_samples : tuple of int
        Rows per new task in the adaptation experiment (empty: skip it).
    n_new_tasks : int
    adapt_methods : tuple of str
    pretrained : bool
        Start every student from the teacher's ``theta_0`` (a pre-trained network being personalised; no
        pre-training epochs) instead of a fresh initialisation.
    """

    n_tasks: int = 1000
    n_samples: int = 30
    n_test: int = 50
    n_features: int = 6
    hidden: tuple[int, ...] = (8, 8)
    rank: int = 1
    sparsity: int = 3
    w_scale: float = 1.0
    b_scale: float = 1.0
    noise_levels: tuple[float, ...] = (0.0, 0.05)
    seeds: tuple[int, ...] = (0, 1)
    n_epochs: int = 6
    pretrain_epochs: int = 6
    task_steps: int = 2
    task_batch_size: int = 100
    adapt_epochs: int = 5
    methods: tuple[str, ...] = METHODS
    adapt_samples: tuple[int, ...] = (5, 10, 20, 40)
    n_new_tasks: int = 100
    adapt_methods: tuple[str, ...] = ("lrs", "representation", "sparse_finetune", "finetune", "single")
    pretrained: bool = True

    def validate(self) -> NetworkConfig:
        for name in ("n_tasks", "n_samples", "n_test", "n_features", "rank", "n_new_tasks", "task_steps",
                     "task_batch_size", "adapt_epochs"):
            v.check_int(name, getattr(self, name), 1)
        for name in ("sparsity", "n_epochs", "pretrain_epochs"):
            v.check_int(name, getattr(self, name), 0)
        for name in ("w_scale", "b_scale"):
            v.check_float(name, getattr(self, name), 0.0)
        for sigma in self.noise_levels:
            v.check_float("noise_levels", sigma, 0.0)
        if not self.seeds or not self.noise_levels:
            raise ValueError("seeds and noise_levels must each hold at least one value")
        for m in self.adapt_samples:
            v.check_int("adapt_samples", m, 1)
        for name in (*self.methods, *self.adapt_methods):
            if name not in METHODS:
                raise ValueError(f"methods must be among {list(METHODS)}, got {name!r}")
        return self


@dataclass
class NetworkResult:
    """What :func:`run_networks` measured."""

    runs: list[dict[str, Any]]
    adaptation: list[dict[str, Any]]
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def run_networks(config: NetworkConfig, output: str | Path, progress: bool = True, plot: bool = True
                 ) -> NetworkResult:
    """Run the experiment and write its files to ``output`` (see the module docstring)."""
    from ..datasets.network_tasks import make_network_lrs_tasks
    from ..nn._torch import torch_threads
    from ..nn.networks import make_mlp

    config = config.validate()
    out = prepare_output(output)
    methods = _methods()
    tic = time.perf_counter()
    runs: list[dict[str, Any]] = []
    adaptation: list[dict[str, Any]] = []
    total = len(config.noise_levels) * len(config.seeds) * len(config.methods)
    with Progress(total, "networks", progress) as bar, torch_threads(1):
        for sigma in config.noise_levels:
            for seed in config.seeds:
                problem = make_network_lrs_tasks(config.n_tasks, config.n_samples, config.n_features, config.hidden,
                                                 config.rank, config.sparsity, config.w_scale, config.b_scale,
                                                 sigma, random_state=seed)
                Xt, yt, tt, signal = problem.sample(config.n_test, 10_000 + seed)
                theta_new = problem.new_tasks(config.n_new_tasks, 20_000 + seed)
                for name in config.methods:
                    label, factory = methods[name]
                    student = copy.deepcopy(problem.teacher) if config.pretrained else make_mlp(
                        config.n_features, config.hidden, seed=1000 + seed)
                    est = factory(config, student, seed)
                    t0 = time.perf_counter()
                    est.fit(problem.X, problem.y, problem.tasks)
                    seconds = time.perf_counter() - t0
                    pred = est.predict(Xt, tt)
                    runs.append({"noise": sigma, "seed": seed, "method": name, "label": label,
                                 "params_per_task": est.params_per_task_, "indices_per_task": est.indices_per_task_,
                                 "bytes_per_task": est.bytes_per_task_, "n_parameters": est.n_parameters_,
                                 "test_rmse": _rmse(pred, yt), "excess_rmse": _rmse(pred, signal),
                                 "train_rmse": est.rmse(problem.X, problem.y, problem.tasks), "fit_seconds": seconds})
                    if name in config.adapt_methods:
                        adaptation += _adapt_rows(est, problem, theta_new, config, sigma, seed, name, label)
                    bar.update(f"sigma={sigma:g} seed={seed} {name}")
    summary = _summarise(runs, adaptation, config)
    files = {"runs": write_csv(runs, out / "runs.csv"), "summary": write_json(summary, out / "summary.json")}
    if adaptation:
        files["adaptation"] = write_csv(adaptation, out / "adaptation.csv")
    (out / "table.md").write_text(format_network_table(summary) + "\n", encoding="utf-8")
    files["table"] = out / "table.md"
    if plot:
        files["figure"] = _plot(summary, config, out / "networks.png")
    return NetworkResult(runs, adaptation, summary, files, time.perf_counter() - tic)


def _adapt_rows(est: Any, problem: Any, theta_new: Any, config: NetworkConfig, sigma: float, seed: int, name: str,
                label: str) -> list[dict[str, Any]]:
    rows = []
    for j, m in enumerate(config.adapt_samples):
        X, y, tasks, _ = problem.sample(m, 30_000 + 97 * seed + j, theta=theta_new)
        Xt, yt, tt, signal = problem.sample(config.n_test, 40_000 + 97 * seed + j, theta=theta_new)
        offset = 10**6 * (j + 1)
        est.adapt(X, y, tasks + offset)
        pred = est.predict(Xt, tt + offset)
        rows.append({"noise": sigma, "seed": seed, "method": name, "label": label, "m": m,
                     "test_rmse": _rmse(pred, yt), "excess_rmse": _rmse(pred, signal)})
    return rows


def _summarise(runs: list[dict[str, Any]], adaptation: list[dict[str, Any]], config: NetworkConfig
               ) -> dict[str, Any]:
    table = []
    for sigma in config.noise_levels:
        for name in config.methods:
            rows = [r for r in runs if r["noise"] == sigma and r["method"] == name]
            table.append({"noise": sigma, "method": name, "label": rows[0]["label"],
                          "params_per_task": rows[0]["params_per_task"],
                          "indices_per_task": rows[0]["indices_per_task"],
                          "bytes_per_task": rows[0]["bytes_per_task"], "n_parameters": rows[0]["n_parameters"],
                          "test_rmse": spread(r["test_rmse"] for r in rows),
                          "excess_rmse": spread(r["excess_rmse"] for r in rows),
                          "fit_seconds": spread(r["fit_seconds"] for r in rows)})
    adapt = []
    for sigma in config.noise_levels:
        for name in config.adapt_methods:
            for m in config.adapt_samples:
                rows = [r for r in adaptation if r["noise"] == sigma and r["method"] == name and r["m"] == m]
                if rows:
                    adapt.append({"noise": sigma, "method": name, "label": rows[0]["label"], "m": m,
                                  "excess_rmse": spread(r["excess_rmse"] for r in rows)})
    return {"config": asdict(config), "table": table, "adaptation": adapt, "environment": environment()}


def format_network_table(summary: dict[str, Any]) -> str:
    """Markdown tables: every method's storage and test error, then adaptation error against ``m``."""
    n = len(summary["config"]["seeds"])
    lines = [f"| sigma | method | numbers / task | indices / task | bytes / task | test RMSE (mean ± sd, {n} seeds) "
             "| excess RMSE | fit s |", "|---|---|---|---|---|---|---|---|"]
    for row in summary["table"]:
        te, ex = row["test_rmse"], row["excess_rmse"]
        lines.append(f"| {row['noise']:g} | {row['label']} | {row['params_per_task']} | {row['indices_per_task']} | "
                     f"{row['bytes_per_task']} | {te['mean']:.4f} ± {te['std']:.4f} | {ex['mean']:.4f} | "
                     f"{row['fit_seconds']['mean']:.1f} |")
    if summary["adaptation"]:
        ms = sorted({r["m"] for r in summary["adaptation"]})
        lines += ["", "New tasks adapted from m rows each (shared part frozen): excess RMSE, mean over seeds", "",
                  "| sigma | method | " + " | ".join(f"m = {m}" for m in ms) + " |",
                  "|---|---|" + "---|" * len(ms)]
        keys = []
        for r in summary["adaptation"]:
            if (r["noise"], r["method"]) not in keys:
                keys.append((r["noise"], r["method"]))
        for sigma, name in keys:
            cells = {r["m"]: r for r in summary["adaptation"] if r["noise"] == sigma and r["method"] == name}
            label = next(iter(cells.values()))["label"]
            lines.append(f"| {sigma:g} | {label} | " + " | ".join(
                f"{cells[m]['excess_rmse']['mean']:.4f}" if m in cells else "" for m in ms) + " |")
    return "\n".join(lines)


_COLOURS = {name: f"C{i}" for i, name in enumerate(METHODS)}


def _plot(summary: dict[str, Any], config: NetworkConfig, path: Path) -> Path:
    plt = pyplot()
    levels = list(config.noise_levels)
    fig, axes = plt.subplots(1, len(levels) + (1 if summary["adaptation"] else 0),
                             figsize=(5.2 * (len(levels) + 1), 4.2), squeeze=False)
    for ax, sigma in zip(axes[0], levels, strict=False):
        for row in (r for r in summary["table"] if r["noise"] == sigma):
            te = row["test_rmse"]
            x = max(row["params_per_task"], 0.5)
            ax.errorbar([x], [te["mean"]], yerr=[[te["mean"] - te["min"]], [te["max"] - te["mean"]]], fmt="o",
                        capsize=3, label=row["label"], color=_COLOURS[row["method"]])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("numbers stored per task (0 plotted at 0.5)")
        ax.set_ylabel("test RMSE")
        ax.set_title(f"sigma = {sigma:g}")
    axes[0][0].legend(fontsize=7)
    if summary["adaptation"]:
        ax = axes[0][-1]
        sigma = levels[0]
        for name in config.adapt_methods:
            rows = [r for r in summary["adaptation"] if r["noise"] == sigma and r["method"] == name]
            if rows:
                ax.plot([r["m"] for r in rows], [r["excess_rmse"]["mean"] for r in rows], "o-", label=rows[0]["label"],
                        color=_COLOURS[name])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows per new task m")
        ax.set_ylabel("excess RMSE on new tasks")
        ax.set_title(f"new tasks, sigma = {sigma:g}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
