"""Tables and the Figure 1 plot of the MovieLens experiment (SPEC §8), from the rows of
:func:`lorsa.experiments.movielens.run_movielens`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._common import pyplot

__all__ = ["format_table", "format_markdown", "plot_figure1", "method_name", "PANELS"]

#: (column, panel title) of the three panels / RMSE columns.
PANELS: tuple[tuple[str, str], ...] = (("rmse", "all tasks"), ("rmse_starved", "data-starved tasks"),
                                       ("rmse_surplus", "data-surplus tasks"))
_LRS = "amht_lrs"
_MARKERS = {"single": "s", "finetune": "D", "finetune_zero": "d", "representation": "^", "prompt": "v",
            "sparse_finetune": "P", "mixed": "X", "convex": "h"}


def method_name(row: dict[str, Any]) -> str:
    """``"AMHT-LRS (k=5)"`` or a baseline's label."""
    return f"{row['label']} ({row['setting']})" if row["setting"] else row["label"]


def _chosen(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(row["chosen"].items()))


def _best(rows: list[dict[str, Any]], column: str) -> float:
    values = [r[column] for r in rows if np.isfinite(r[column])]
    return min(values) if values else float("nan")


def _title(data: dict[str, Any], config: Any) -> str:
    part = " PARTIAL ratings file" if data.get("partial") else ""
    return (f"{data['dataset']}{part} ({data['ratings_file']}), {config.grouping} tasks: {data['n_tasks']} tasks, "
            f"{data['n_starved_tasks']} data-starved (< {config.starved_below} training samples)")


def format_table(rows: list[dict[str, Any]], data: dict[str, Any], config: Any) -> str:
    """Plain-text comparison table (one line per method) with the data set's description."""
    head = (f"{'method':<32} {'params/task':>11} {'% of d':>7}  {'RMSE all':>9} {'starved':>9} {'surplus':>9}  "
            f"{'tuning':>8}  chosen")
    lines = [_title(data, config), head]
    for r in rows:
        lines.append(f"{method_name(r):<32} {r['params_per_task']:>11.4g} {r['pct_params']:>7.1f}  {r['rmse']:>9.4f} "
                     f"{r['rmse_starved']:>9.4f} {r['rmse_surplus']:>9.4f}  {r['tuning_rmse']:>8.4f}  {_chosen(r)}")
    return "\n".join(lines)


def format_markdown(rows: list[dict[str, Any]], data: dict[str, Any], config: Any) -> str:
    """The comparison table in Markdown (what the README shows); the best value of each RMSE column in bold."""
    d = data.get("n_features_model", "d")
    lines = [f"{_title(data, config)}; d = {d}; validation samples: {data['n_val_samples_starved']:,} starved, "
             f"{data['n_val_samples_surplus']:,} surplus.", "",
             "| method | params / task | % of d | validation RMSE | starved | surplus | chosen on the tuning split |",
             "|---|---|---|---|---|---|---|"]
    best = {col: _best(rows, col) for col, _ in PANELS}
    for r in rows:
        cells = []
        for col, _ in PANELS:
            text = f"{r[col]:.4f}"
            cells.append(f"**{text}**" if r[col] == best[col] else text)
        lines.append(f"| {method_name(r)} | {r['params_per_task']:.4g} | {r['pct_params']:.1f} | "
                     + " | ".join(cells) + f" | {_chosen(r)} |")
    return "\n".join(lines) + "\n"


def plot_figure1(rows: list[dict[str, Any]], path: Path, data: dict[str, Any], config: Any) -> Path:
    """Validation RMSE against % of fine-tunable parameters per task (symlog x), panels overall / starved / surplus;
    AMHT-LRS at each ``k`` as a line, each baseline as a marker."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(13.5, 3.9), squeeze=False)
    lrs = sorted((r for r in rows if r["method"] == _LRS and r["setting"].startswith("k=")),
                 key=lambda r: int(r["setting"][2:]))
    tuned = [r for r in rows if r["method"] == _LRS and not r["setting"].startswith("k=")]
    others = [r for r in rows if r["method"] != _LRS]
    for ax, (col, title) in zip(axes[0], PANELS, strict=True):
        if lrs:
            x = [r["pct_params"] for r in lrs]
            y = [r[col] for r in lrs]
            ax.plot(x, y, color="C3", marker="o", linewidth=2, label="AMHT-LRS (k = "
                    + ", ".join(r["setting"][2:] for r in lrs) + ")")
            for r, xi, yi in zip(lrs, x, y, strict=True):
                ax.annotate(r["setting"], (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7, color="C3")
        for r in tuned:
            ax.plot([r["pct_params"]], [r[col]], color="C3", marker="*", markersize=11, linestyle="none",
                    label=method_name(r))
        for i, r in enumerate(others):
            ax.plot([r["pct_params"]], [r[col]], marker=_MARKERS.get(r["method"], "o"), markersize=7,
                    linestyle="none", color=f"C{i if i < 3 else i + 1}", label=method_name(r))
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-0.3, 200.0)
        ax.set_xlabel("% fine-tunable parameters per task")
        ax.set_ylabel("validation RMSE")
        n = data["n_starved_tasks"] if col == "rmse_starved" else (
            data["n_surplus_tasks"] if col == "rmse_surplus" else data["n_tasks"])
        ax.set_title(f"{title} ({n} tasks)", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    part = f", PARTIAL ratings file ({data['n_users_rated']:,} users)" if data.get("partial") else ""
    fig.suptitle(f"Figure 1: MovieLens {data['dataset'][3:].upper()}{part}, {config.grouping} tasks, "
                 f"d = {data.get('n_features_model')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
