"""One encoder, several objectives: its embedding read as slices (``MultiobjectiveModel``).

A user who trains one part of an embedding on one label and another part on another
label wraps the encoder; each objective's criterion then scores its own slice. The
name and arguments are the reference's (``cebra.models.MultiobjectiveModel``); the
training loop that combines the objectives is the user's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cebra_pipe.models.model import Model

__all__ = ["MultiobjectiveModel"]


class MultiobjectiveModel(nn.Module):
    """An encoder whose output is returned as a tuple of feature slices.

    Parameters
    ----------
    module
        The encoder (a :class:`cebra_pipe.models.Model`), ``num_output`` features.
    dimensions
        Increasing feature counts ``(d0, d1, ...)``; the largest must be
        ``module.num_output`` unless ``append_last_dimension`` adds it.
    renormalize
        Project every slice onto the unit sphere (for cosine criteria).
    output_mode
        ``"overlapping"``: slices ``0:d0, 0:d1, ...``; ``"separate"``: ``0:d0, d0:d1, ...``.
    append_last_dimension
        Append ``module.num_output`` to ``dimensions`` (which must then stay below it).

    Examples
    --------
    >>> import torch
    >>> from cebra_pipe.models import MultiobjectiveModel, init
    >>> encoder = init("offset1-model", num_neurons=12, num_units=16, num_output=6)
    >>> both = MultiobjectiveModel(encoder, dimensions=(2,), output_mode="separate",
    ...                            append_last_dimension=True)
    >>> position_part, rest = both(torch.randn(8, 12, 1))   # (batch, neurons, window)
    >>> tuple(position_part.shape), tuple(rest.shape)
    ((8, 2), (8, 4))
    """

    OVERLAPPING = "overlapping"
    SEPARATE = "separate"
    MODES = (OVERLAPPING, SEPARATE)

    def __init__(self, module: nn.Module, dimensions: Sequence[int], renormalize: bool = False,
                 output_mode: str = "overlapping", append_last_dimension: bool = False):
        super().__init__()
        if not isinstance(module, Model):
            raise ValueError(f"MultiobjectiveModel wraps a cebra_pipe.models.Model (an encoder "
                             f"with num_output), got {type(module).__name__}.")
        if output_mode not in self.MODES:
            raise ValueError(f"Unknown output_mode {output_mode!r}; use one of {self.MODES}.")
        self.module = module
        self.renormalize = bool(renormalize)
        self.output_mode = output_mode
        self.dimensions = self._dimensions(dimensions, append_last_dimension)
        starts = ((0,) * len(self.dimensions) if output_mode == self.OVERLAPPING
                  else (0,) + self.dimensions[:-1])
        self.feature_ranges = tuple(slice(a, b) for a, b in zip(starts, self.dimensions))

    def _dimensions(self, dimensions: Sequence[int], append_last: bool) -> tuple[int, ...]:
        values = tuple(int(d) for d in dimensions)
        if append_last:
            if values and max(values) >= self.num_output:
                raise ValueError(f"append_last_dimension adds num_output={self.num_output} to "
                                 f"dimensions, which must then stay below it; got {values}.")
            values += (self.num_output,)
        if not values or any(b <= a for a, b in zip((0,) + values, values)):
            raise ValueError(f"dimensions must be increasing positive feature counts, got "
                             f"{values}.")
        if values[-1] != self.num_output:
            raise ValueError(f"The largest of dimensions {values} must be the encoder's "
                             f"num_output={self.num_output} (or pass "
                             "append_last_dimension=True).")
        return values

    @property
    def num_output(self) -> int:
        """The wrapped encoder's features."""
        return self.module.num_output

    @property
    def get_offset(self):
        """The wrapped encoder's ``get_offset`` (call it for its receptive field)."""
        return self.module.get_offset

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``inputs`` as the encoder takes them -> one ``(batch, d)`` tensor per slice."""
        features = self.module(inputs)
        parts = tuple(features[:, part] for part in self.feature_ranges)
        if self.renormalize:
            parts = tuple(nn.functional.normalize(part, dim=1) for part in parts)
        return parts
