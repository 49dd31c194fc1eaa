"""Small networks for the experiments and tests: the paper's 3-layer MLP (SPEC §9)."""

from __future__ import annotations

from typing import Any

from ._torch import require_torch

__all__ = ["make_mlp"]


def make_mlp(n_features: int, hidden: int | tuple[int, ...] = (32, 32), n_outputs: int = 1, *,
             activation: str = "tanh", seed: int | None = 0, dtype: str = "float32") -> Any:
    """A multi-layer perceptron ``Linear -> act -> Linear -> act -> Linear`` (3 layers for two hidden sizes),
    with torch's default initialisation drawn from ``seed``."""
    torch = require_torch()
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}
    if activation not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}")
    gen_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    layers: list[Any] = []
    prev = n_features
    for h in sizes:
        layers += [torch.nn.Linear(prev, h), acts[activation]()]
        prev = h
    layers.append(torch.nn.Linear(prev, n_outputs))
    net = torch.nn.Sequential(*layers).to(getattr(torch, dtype))
    if seed is not None:
        torch.random.set_rng_state(gen_state)
    return net
