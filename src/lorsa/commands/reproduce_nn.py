"""``lorsa reproduce nn``: personalised networks on synthetic LRS tasks (:mod:`lorsa.experiments.networks`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, nonnegative_float, nonnegative_int, positive_int, say
from .reproduce_nn_movielens import register as register_movielens
from .reproduce_nn_movielens import run as run_movielens

HELP = "networks (SPEC §9): LRS-personalised 3-layer MLPs vs LoRA and the other baselines, and new-task adaptation"
DESCRIPTION = (
    "Low-rank + sparse personalisation of neural networks (SPEC §9, needs the torch extra): a teacher 3-layer MLP "
    "whose task i runs theta_0 + U w_i + b_i generates many tasks with few rows each (noiseless and noisy); "
    "lorsa.nn.NetworkLRS and the baselines (single network, full / last-layer / LoRA / sparse fine-tuning, task "
    "embedding, representation learning) train students of the same architecture and are scored on fresh rows "
    "against the numbers each stores per task; then new tasks are adapted from m rows with the shared part frozen. "
    "Writes runs.csv, adaptation.csv, summary.json, table.md and networks.png. --quick runs a reduced version "
    "(about 2-3 minutes on 2 cores). With --movielens ml-100k|ml-1m it runs the MLP on MovieLens tasks instead "
    "(see the MovieLens options)."
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="lorsa-results/nn", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="first seed: runs use seeds N, ..., N+n_seeds-1 (teacher, data, students)")
    parser.add_argument("--n-seeds", type=positive_int, default=None, metavar="S",
                        help="seeds per noise level (default 2, --quick 1)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes: 300 tasks of 40 rows, hidden 6+6, 50 new tasks, one seed")
    parser.add_argument("--noise", type=nonnegative_float, nargs="+", default=[0.0, 0.05], metavar="SIGMA",
                        help="noise standard deviations (0 = noiseless)")
    parser.add_argument("--tasks", type=positive_int, default=None, metavar="T", help="tasks t (default 1000)")
    parser.add_argument("--samples", type=positive_int, default=None, metavar="M",
                        help="training rows per task (default 30)")
    parser.add_argument("--rank", type=positive_int, default=1, metavar="R", help="r of the teacher and of LRS")
    parser.add_argument("--sparsity", type=nonnegative_int, default=3, metavar="K", help="k of the teacher and LRS")
    parser.add_argument("--epochs", type=nonnegative_int, default=None, metavar="E",
                        help="alternating epochs of every method (default 6, --quick 6)")
    parser.add_argument("--adapt-samples", type=positive_int, nargs="*", default=[5, 10, 20, 40], metavar="M",
                        help="rows per new task in the adaptation part (none: skip it)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="start every student from a fresh initialisation and pre-train the single network first, "
                             "instead of from the teacher's shared weights theta_0 (a pre-trained network)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw networks.png")
    add_quiet(parser)
    register_movielens(parser)


def config_from_args(args: argparse.Namespace):  # -> NetworkConfig
    from ..experiments.networks import NetworkConfig

    quick = args.quick
    n_seeds = args.n_seeds or (1 if quick else 2)
    epochs = args.epochs if args.epochs is not None else 6
    sizes = dict(n_tasks=300, n_samples=40, hidden=(6, 6), n_new_tasks=50) if quick else {}
    if args.tasks is not None:
        sizes["n_tasks"] = args.tasks
    if args.samples is not None:
        sizes["n_samples"] = args.samples
    return NetworkConfig(rank=args.rank, sparsity=args.sparsity, noise_levels=tuple(args.noise),
                         seeds=tuple(range(args.seed, args.seed + n_seeds)), n_epochs=epochs, pretrain_epochs=epochs,
                         adapt_samples=tuple(args.adapt_samples), pretrained=not args.from_scratch,
                         **sizes).validate()


def run(args: argparse.Namespace) -> int:
    from ..experiments.networks import format_network_table, run_networks

    if args.movielens is not None:
        return run_movielens(args)
    config = config_from_args(args)
    say(args, f"networks: t={config.n_tasks} tasks x m={config.n_samples} rows, d={config.n_features}, hidden "
              f"{list(config.hidden)}, r={config.rank}, k={config.sparsity}; noise {list(config.noise_levels)}, "
              f"seeds {list(config.seeds)}")
    result = run_networks(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_network_table(result.summary))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
