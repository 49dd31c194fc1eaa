"""Low-rank + sparse personalisation of PyTorch networks (SPEC §9): ``theta_i = theta_0 + U w_i + b_i``.

Needs the ``torch`` extra. ``import lorsa`` never imports torch; ``import lorsa.nn`` does (through the names
below, loaded on first use).

- :class:`NetworkLRS` -- the method: personalise any ``torch.nn.Module`` (all its parameters or a named subset)
  for many tasks; fit / predict / score / adapt / save / load (safetensors + JSON).
- :mod:`lorsa.nn.baselines` -- the single network, full / last-layer / LoRA / sparse fine-tuning, a task
  embedding and representation learning, in the same code.
- :mod:`lorsa.nn.functional`, :mod:`lorsa.nn.adapter`, :mod:`lorsa.nn.training` -- the parts: flattening and the
  forward batched over tasks, the per-task parameterisations, the alternating training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NetworkLRS", "TaskNetworkEstimator", "ParameterSpace", "LRSAdapter", "make_mlp"]

_WHERE = {"NetworkLRS": ".estimator", "TaskNetworkEstimator": ".estimator", "ParameterSpace": ".functional",
          "LRSAdapter": ".adapter", "make_mlp": ".networks"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module 'lorsa.nn' has no attribute {name!r}")
