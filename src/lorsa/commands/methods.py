"""``lorsa fit --method``: every estimator of the library by a command-line name, built from the fit options.

``lrs`` is :class:`lorsa.LRSRegressor` (the default); every baseline of :data:`lorsa.baselines.MODEL_CLASSES` is
there under its class name in kebab case (``SingleModel`` -> ``single-model``, ``FineTuning`` -> ``fine-tuning``,
``TunedLRS`` -> ``tuned-lrs``, ...), so a baseline added to that registry is reachable from the command line
without touching this file. An option is passed to the estimator only when given, and an option the method has
no parameter for is an error naming both; hyper-parameters a baseline tunes by default (a ridge grid, a rank grid)
are then chosen on held-out training rows as in Python.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

__all__ = ["add_method_option", "method_classes", "build_estimator", "option_error", "FIT_OPTIONS", "is_lrs_model"]

#: fit option (argparse dest) -> estimator parameter
FIT_OPTIONS = {"rank": "rank", "sparsity": "sparsity", "row_sparsity": "row_sparsity", "ridge": "ridge",
               "max_iter": "max_iter", "tol": "tol", "init": "init", "u_solver": "u_solver", "dtype": "dtype"}
_LRS_DEFAULTS = {"max_iter": 100, "init": "moments"}


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def method_classes() -> dict[str, type]:
    """Command-line name -> estimator class (``lrs`` first)."""
    from ..baselines import MODEL_CLASSES
    from ..model import LRSRegressor

    return {"lrs": LRSRegressor, **{_kebab(name): cls for name, cls in MODEL_CLASSES.items()}}


def add_method_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="lrs", metavar="NAME",
                        help="estimator to fit: lrs (AMHT-LRS, LRSRegressor) or a baseline: single-model, "
                             "fine-tuning, representation-learning, prompt-tuning, sparse-fine-tuning, tuned-lrs "
                             "and any other of lorsa.baselines (kebab-case class name); a baseline chooses the "
                             "hyper-parameters it tunes by default on held-out training rows")


def is_lrs_model(est: Any) -> bool:
    """Whether ``est`` has a shared basis and can adapt new tasks (``LRSRegressor``, its subclasses and
    ``LRSRegressorCV``)."""
    from ..model import LRSRegressor
    from ..model_cv import LRSRegressorCV

    return isinstance(est, LRSRegressor | LRSRegressorCV)


def build_estimator(args: argparse.Namespace) -> Any:
    """The estimator of ``--method`` with the fit options the user gave (``--seed`` as ``random_state``)."""
    classes = method_classes()
    if args.method not in classes:
        raise ValueError(f"--method must be one of {list(classes)}, got {args.method!r}")
    cls = classes[args.method]
    params = cls().get_params()
    given = {param: getattr(args, dest) for dest, param in FIT_OPTIONS.items() if getattr(args, dest) is not None}
    not_here = [p for p in given if p not in params]
    if not_here:
        option = "--" + not_here[0].replace("_", "-")
        raise ValueError(f"{option} does not apply to --method {args.method} (its parameters: "
                         f"{', '.join(sorted(params))})")
    if args.method == "lrs":
        given = {**_LRS_DEFAULTS, **given}
    if "random_state" in params:
        given["random_state"] = args.seed
    return cls(**given)


def option_error(exc: Exception, given: dict[str, Any], n_features: int) -> Exception:
    """``exc`` raised by an estimator for parameter ``p`` (``"rank must be in [1, 49], got 60"``), reworded for the
    command line: the option's name and the data's number of features (``"--rank must be in [1, 49], got 60 (the
    data have d = 50 features)"``); other errors unchanged."""
    text = str(exc)
    for param in sorted(given, key=len, reverse=True):
        if re.match(rf"{re.escape(param)}(\[\d+\])? ", text):
            option = "--" + param.replace("_", "-")
            return type(exc)(f"{option}{text[len(param):]} (the data have d = {n_features} features)")
    return exc
