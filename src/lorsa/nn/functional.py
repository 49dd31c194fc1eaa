"""Flattened parameters of a ``torch.nn.Module`` and its forward pass batched over tasks (SPEC §9).

A :class:`ParameterSpace` picks the personalised parameters of a module (all trainable ones, or a named subset),
and fixes their order in one flat vector ``theta in R^P``. :func:`batched_forward` evaluates the module with a
different ``theta_i`` for every task of a mini-batch in one call: ``torch.func.functional_call`` inside
``torch.func.vmap`` over the task axis, so a per-task forward and backward is a batched computation (no Python
loop over tasks), the pattern torch documents for many model copies at once (``stack_module_state`` + ``vmap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._torch import require_torch

__all__ = ["ParameterSpace", "batched_forward", "batched_outputs_jvp"]


@dataclass(frozen=True)
class ParameterSpace:
    """The personalised parameters of a module, as one flat vector.

    Attributes
    ----------
    names : tuple of str
        Parameter names (``module.named_parameters()`` order) that ``theta`` holds.
    shapes : tuple of tuple of int
        Their shapes.
    offsets : tuple of int
        Start of each parameter in ``theta``; ``theta[offsets[j]:offsets[j] + numel_j]`` is parameter ``j``
        flattened in C order.
    size : int
        ``P``, the length of ``theta``.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    size: int

    @classmethod
    def from_module(cls, module: Any, parameters: Sequence[str] | None = None) -> ParameterSpace:
        """The parameters of ``module`` named in ``parameters`` (exact names or prefixes such as ``"2."`` or
        ``"head"``), or all parameters with ``requires_grad`` when None.

        Raises
        ------
        TypeError
            If ``module`` is not a ``torch.nn.Module``.
        ValueError
            If ``parameters`` names nothing the module has (listing its parameter names), or when no trainable
            parameter is selected.
        """
        torch = require_torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        named = list(module.named_parameters())
        available = [n for n, _ in named]
        if parameters is None:
            chosen = [(n, p) for n, p in named if p.requires_grad]
            if not chosen:
                raise ValueError(f"module {type(module).__name__} has no trainable parameter (parameters with "
                                 f"requires_grad=True); found {len(named)} parameter(s): {available[:10]}")
        else:
            if isinstance(parameters, str):
                parameters = [parameters]
            wanted = list(parameters)
            if not wanted:
                raise ValueError("parameters must name at least one parameter of the module (or be None for all)")
            for name in wanted:
                if not any(n == name or n.startswith(name.rstrip(".") + ".") for n in available):
                    raise ValueError(f"parameters: {name!r} is not a parameter (or a prefix of parameters) of "
                                     f"module {type(module).__name__}; its parameters are {available}")
            chosen = [(n, p) for n, p in named
                      if any(n == w or n.startswith(w.rstrip(".") + ".") for w in wanted)]
        for n, p in chosen:
            if not p.dtype.is_floating_point:
                raise ValueError(f"parameter {n!r} has dtype {p.dtype}; only floating-point parameters can be "
                                 "personalised")
        shapes = tuple(tuple(int(s) for s in p.shape) for _, p in chosen)
        offsets, total = [], 0
        for _, p in chosen:
            offsets.append(total)
            total += int(p.numel())
        return cls(names=tuple(n for n, _ in chosen), shapes=shapes, offsets=tuple(offsets), size=total)

    def numel(self, j: int) -> int:
        """Number of entries of parameter ``j``."""
        n = 1
        for s in self.shapes[j]:
            n *= s
        return n

    def slice_of(self, name: str) -> slice:
        """The coordinates of parameter ``name`` in ``theta``."""
        j = self.names.index(name)
        return slice(self.offsets[j], self.offsets[j] + self.numel(j))

    def flatten(self, module: Any) -> Any:
        """The module's current values of the chosen parameters as ``theta``, shape ``(P,)`` (a detached copy)."""
        torch = require_torch()
        params = dict(module.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names]).clone()

    def unflatten(self, theta: Any) -> dict[str, Any]:
        """Views of ``theta`` (shape ``(..., P)``) as the named parameters, shapes ``(..., *shape)``."""
        lead = tuple(theta.shape[:-1])
        return {n: theta[..., o:o + self.numel(j)].reshape(*lead, *self.shapes[j])
                for j, (n, o) in enumerate(zip(self.names, self.offsets, strict=True))}

    def matrix_names(self) -> tuple[str, ...]:
        """Names of the chosen 2-D parameters (the weight matrices of linear layers)."""
        return tuple(n for n, s in zip(self.names, self.shapes, strict=True) if len(s) == 2)

    def fingerprint(self, module: Any) -> list[list[Any]]:
        """Names and shapes of every parameter and buffer of ``module`` (compared when a saved model is loaded
        into a module: the architecture must be the same)."""
        state = module.state_dict()
        return [[n, list(t.shape)] for n, t in state.items()]


def _fixed_state(module: Any, space: ParameterSpace) -> dict[str, Any]:
    """Parameters that are not personalised and the buffers, detached (held fixed in the batched forward)."""
    chosen = set(space.names)
    fixed = {n: p.detach() for n, p in module.named_parameters() if n not in chosen}
    fixed.update({n: b for n, b in module.named_buffers()})
    return fixed


def batched_forward(module: Any, space: ParameterSpace, thetas: Any, X: Any) -> Any:
    """Outputs of ``module`` for every task of a mini-batch, each with its own parameters.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture (its non-personalised parameters and buffers are used as they are).
    space : ParameterSpace
    thetas : torch.Tensor of shape (n, P)
        Task ``i``'s personalised parameters ``theta_i``.
    X : torch.Tensor of shape (n, m, d)
        Task ``i``'s (padded) inputs.

    Returns
    -------
    torch.Tensor of shape (n, m, ...)
        ``module(X[i])`` with ``theta_i``, for every ``i``: one vmapped ``functional_call``, differentiable in
        ``thetas`` (gradients of a sum of per-task losses are the per-task gradients).
    """
    torch = require_torch()
    fixed = _fixed_state(module, space)

    def one(theta: Any, x: Any) -> Any:
        return torch.func.functional_call(module, {**fixed, **space.unflatten(theta)}, (x,))

    return torch.func.vmap(one)(thetas, X)


def batched_outputs_jvp(module: Any, space: ParameterSpace, thetas: Any, X: Any, tangents: Any) -> tuple[Any, Any]:
    """Outputs and their directional derivatives ``J_i v_i`` (forward mode) for every task of a mini-batch.

    ``tangents`` has the shape of ``thetas`` (n, P): task ``i``'s direction ``v_i`` in parameter space. Used for
    the normalised step of iterative hard thresholding (``||J_i g_i||^2`` is the Gauss-Newton curvature along
    the task's gradient).
    """
    torch = require_torch()
    return torch.func.jvp(lambda th: batched_forward(module, space, th, X), (thetas,), (tangents,))
