"""``lorsa reproduce TARGET``: re-run one of the paper's experiments and write its results to a folder.

Targets are modules ``lorsa.commands.reproduce_<name>`` listed in :data:`REPRODUCE_TARGETS`. Each exposes

- ``HELP`` (one line for ``lorsa reproduce --help``) and ``DESCRIPTION`` (for ``lorsa reproduce <name> --help``);
- ``register(parser)``: add the target's options to its sub-parser (importing argparse only, so ``--help`` is
  instant);
- ``run(args) -> int``: import the experiment, run it, print where the results are.

To add a target (e.g. ``movielens`` or ``privacy``), write ``commands/reproduce_<name>.py`` with those three names
and add ``<name>`` to :data:`REPRODUCE_TARGETS`; nothing else changes.
"""

from __future__ import annotations

import argparse
import importlib

from ._common import HelpFormatter, cli_errors

__all__ = ["REPRODUCE_TARGETS", "register"]

#: Reproduce targets, in the order ``--help`` lists them (module ``lorsa.commands.reproduce_<name>`` each).
REPRODUCE_TARGETS: tuple[str, ...] = ("synthetic", "generalization", "privacy", "movielens", "nn", "phase")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reproduce", help="re-run an experiment of the paper (results: CSV, JSON, PNG in a folder)",
        description="Re-run one of the paper's experiments. Each target writes its results (CSV, JSON) and a plot "
                    "(PNG) to an output folder; see 'lorsa reproduce TARGET --help' for its options.")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name in REPRODUCE_TARGETS:
        module = importlib.import_module(f"lorsa.commands.reproduce_{name}")
        target = targets.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                                    formatter_class=HelpFormatter)
        module.register(target)
        target.set_defaults(func=cli_errors(module.run))
