"""``lorsa reproduce nn --movielens ml-100k|ml-1m``: personalised networks on MovieLens tasks
(:mod:`lorsa.experiments.movielens_networks`)."""

from __future__ import annotations

import argparse

from ._common import nonnegative_float, nonnegative_int, positive_int, say

_METHODS = ("lrs", "representation", "sparse_finetune", "embedding", "single", "last_layer", "lora", "finetune",
            "linear_lrs")


def _rk(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected R:K (e.g. 2:8), got {text!r}")
    return nonnegative_int(parts[0]), nonnegative_int(parts[1])


def register(parser: argparse.ArgumentParser) -> None:
    """The MovieLens options of ``lorsa reproduce nn``."""
    group = parser.add_argument_group("MovieLens (--movielens)")
    group.add_argument("--movielens", choices=("ml-100k", "ml-1m"), default=None,
                       help="instead of the synthetic experiment, run the 3-layer MLP on this MovieLens data set's "
                            "tasks (the linear experiment's split and movie vectors) against the network baselines "
                            "and the linear AMHT-LRS; results are cached per method in OUTPUT/cache/")
    group.add_argument("--data-dir", default="../shared/data/movielens", metavar="DIR",
                       help="folder holding ml-100k/ and ml-1m/ (or one data set's files)")
    group.add_argument("--ratings", default=None, metavar="FILE",
                       help="ratings file to read instead of the default (e.g. ratings_PARTIAL_users1-2999.dat.gz)")
    group.add_argument("--grouping", choices=("demographic", "user"), default="demographic",
                       help="a task is a demographic cluster or one user")
    group.add_argument("--methods", nargs="+", choices=_METHODS, default=None, metavar="NAME",
                       help=f"methods to run, among {', '.join(_METHODS)} (default all)")
    group.add_argument("--max-tasks", type=positive_int, default=None, metavar="T",
                       help="keep only the first T tasks (default all; --quick 30)")
    group.add_argument("--patience", type=positive_int, default=4, metavar="E",
                       help="early-stopping patience in epochs on the tuning split's held-out samples")
    group.add_argument("--ridges", type=nonnegative_float, nargs="+", default=None, metavar="LAMBDA",
                       help="candidate per-task ridges, chosen on the tuning split (default 0 0.03 0.3)")
    group.add_argument("--lrs-settings", type=_rk, nargs="+", default=None, metavar="R:K",
                       help="candidate (r, k) of the LRS network, chosen on the tuning split (default 2:8 2:2, "
                            "--quick 2:8); the baselines with a budget get r + k of the first")
    group.add_argument("--linear-rank", type=positive_int, default=12, metavar="R",
                       help="r of the linear AMHT-LRS (k = 10, ridge 100; default 12, the linear experiment's choice "
                            "on ML-100K; 16 on the ML-1M partial set)")
    group.add_argument("--no-cache", action="store_true", help="refit every method even when OUTPUT/cache has it")


def run(args: argparse.Namespace) -> int:
    """Run the MovieLens variant and print its table."""
    from ..experiments.movielens_networks import MovieLensNetworkConfig, run_movielens_networks

    quick = args.quick
    epochs = args.epochs if args.epochs is not None else (4 if quick else 30)
    methods = tuple(args.methods) if args.methods else (("lrs", "single", "embedding", "lora", "linear_lrs")
                                                         if quick else _METHODS)
    config = MovieLensNetworkConfig(
        data_dir=args.data_dir, dataset=args.movielens, ratings=args.ratings, grouping=args.grouping, seed=args.seed,
        max_tasks=args.max_tasks if args.max_tasks is not None else (30 if quick else None), n_epochs=epochs,
        pretrain_epochs=4 if quick else 20, patience=args.patience, methods=methods,
        lrs_settings=tuple(args.lrs_settings) if args.lrs_settings else (((2, 8),) if quick else ((2, 8), (2, 2))),
        linear_rank=args.linear_rank, **({"ridges": tuple(args.ridges)} if args.ridges else {})).validate()
    output = args.output if args.output != "lorsa-results/nn" else f"lorsa-results/nn-{args.movielens}"
    subset = "" if config.max_tasks is None else f", first {config.max_tasks}"
    say(args, f"networks on {args.movielens} ({args.grouping} tasks{subset}): "
              f"methods {', '.join(methods)}; up to {epochs} epochs, patience {config.patience}; seed {args.seed}")
    result = run_movielens_networks(config, output, progress=not args.quiet, plot=not args.no_plot,
                                    cache=not args.no_cache)
    print(result.files["table"].read_text(encoding="utf-8"))
    say(args, f"done in {result.seconds:.1f} s; results in {output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
