"""Table and figure of the MovieLens network experiment (:mod:`lorsa.experiments.movielens_networks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import pyplot

__all__ = ["format_network_markdown", "plot_network_results"]


def format_network_markdown(rows: list[dict[str, Any]], info: dict[str, Any], config: Any) -> str:
    """A markdown table: per method its setting, per-task storage, epochs chosen and validation RMSE."""
    head = (f"{info['dataset']} ({config.grouping} tasks, {info['n_tasks_used']} tasks, "
            f"{info['n_starved_tasks']} data-starved with < {config.starved_below} training samples; MLP "
            f"{info['n_features_model']} -> {' -> '.join(str(h) for h in config.hidden)} -> 1; seed {config.seed})")
    lines = [head, "",
             "| method | setting | numbers / task | indices / task | bytes / task | epochs | tuning RMSE | "
             "validation RMSE | starved | surplus | fit s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['setting']} | {r['params_per_task']} | {r['indices_per_task']} | "
                     f"{r['bytes_per_task']} | {r['epochs']} | {r['tuning_rmse']:.4f} | {r['rmse']:.4f} | "
                     f"{r['rmse_starved']:.4f} | {r['rmse_surplus']:.4f} | {r['fit_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_network_results(rows: list[dict[str, Any]], info: dict[str, Any], path: Path) -> Path:
    """Validation RMSE against numbers stored per task (0 plotted at 0.5): all, data-starved, data-surplus."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, key, title in zip(axes, ("rmse", "rmse_starved", "rmse_surplus"),
                              ("all tasks", "data-starved tasks", "data-surplus tasks"), strict=True):
        for i, r in enumerate(rows):
            marker = "s" if r["method"] == "linear_lrs" else ("*" if r["method"] == "lrs" else "o")
            ax.scatter([max(float(r["params_per_task"]), 0.5)], [r[key]], marker=marker, s=70, color=f"C{i % 10}",
                       label=r["label"])
        ax.set_xscale("log")
        ax.set_xlabel("numbers stored per task (0 plotted at 0.5)")
        ax.set_ylabel("validation RMSE")
        ax.set_title(f"{info['dataset']}: {title}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
