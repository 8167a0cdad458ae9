"""Loss regularisers added to the contrastive loss at each training step.

A regulariser is called as ``regularizer(solver, batch)`` after the solver's loss
and returns a scalar tensor added to it. ``init(name, **kwargs)`` builds one;
``@register(name)`` adds your own.

``jacobian``: the xCEBRA regulariser (Schneider, Gonzalez Laiz, Filippova, Frey &
Mathis, AISTATS 2025): the squared Frobenius norm of the encoder's Jacobian with
respect to its input window, averaged over the batch's reference windows, with a
weight that is off for ``start`` steps and then ramps linearly to ``weight`` over
``ramp`` steps. Penalising the Jacobian makes the encoder depend on as few input
entries as the contrastive objective allows, which makes its attribution maps
identifiable.
"""

from __future__ import annotations

import torch

from cebra_pipe.registry import Registry

_registry = Registry("regularizer")
register = _registry.register
get_options = _registry.get_options
init = _registry.init


@register("jacobian")
class JacobianRegularizer:
    """``weight(step) * mean_b ||d f(x_b) / d x_b||_F^2`` over reference windows.

    Parameters
    ----------
    weight
        Final weight (>= 0).
    start
        Steps of the ``fit`` call (resumed runs continue the count) before
        the penalty switches on.
    ramp
        Steps over which the weight grows linearly from 0 to ``weight`` after
        ``start`` (0: full weight at once).
    """

    def __init__(self, weight: float, start: int = 0, ramp: int = 0):
        if isinstance(weight, bool) or not float(weight) >= 0:
            raise ValueError(f"jacobian regularizer: weight must be a number >= 0, got "
                             f"{weight!r}.")
        for name, value in (("start", start), ("ramp", ramp)):
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"jacobian regularizer: {name} must be an integer >= 0, "
                                 f"got {value!r}.")
        self.weight, self.start, self.ramp = float(weight), int(start), int(ramp)

    def weight_at(self, step: int) -> float:
        """The penalty's weight at training step ``step`` (1-based)."""
        if step <= self.start:
            return 0.0
        if self.ramp == 0:
            return self.weight
        return self.weight * min(1.0, (step - self.start) / self.ramp)

    def __call__(self, solver, batch) -> torch.Tensor:
        """Weighted penalty (a scalar on the solver's device) for ``batch``'s references."""
        weight = self.weight_at(solver.iteration)
        if weight == 0.0:
            return torch.zeros((), device=solver.device)
        reference = getattr(batch, "reference", None)
        if not isinstance(reference, torch.Tensor):
            raise ValueError("The jacobian regularizer needs single-session batches with "
                             "reference windows; multi-session training is not supported.")
        return weight * jacobian_norm(solver.model, reference.to(solver.device))


def jacobian_norm(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean over windows of the squared Frobenius norm of ``d model(w) / d w``.

    Parameters
    ----------
    windows : (batch, neurons, window)

    Exact: one backward pass per output dimension, each keeping its graph so the
    penalty itself can be differentiated (the windows of a batch are independent,
    so the gradient of ``sum_b f_d(x_b)`` holds every window's row ``d``).
    """
    inputs = windows.detach().requires_grad_(True)
    output = model(inputs).reshape(len(inputs), -1)
    total = torch.zeros((), device=windows.device)
    for dim in range(output.shape[1]):
        grad, = torch.autograd.grad(output[:, dim].sum(), inputs, create_graph=True)
        total = total + grad.pow(2).sum()
    return total / len(inputs)
