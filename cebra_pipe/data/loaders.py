"""Shared machinery of the single- and multi-session loaders."""

from __future__ import annotations

from typing import Iterator

import torch

from cebra_pipe.data.samplers import make_generator


class FullBatchUnsupportedError(ValueError, NotImplementedError):
    """``batch_size=None`` for training that needs batches (a ValueError, and the
    NotImplementedError the reference raises for it)."""


class Loader:
    """Yields ``num_steps`` batches drawn by a seeded sampler.

    The sampler is built on first use, after the dataset was configured for the
    model (its receptive field decides which time points are admissible).

    Parameters
    ----------
    dataset
        The data to draw from.
    num_steps
        Batches per pass.
    batch_size
        Samples per batch; ``None`` for full-batch training where supported.
    seed
        Seeds the sampler's generator; ``None`` draws one from torch's global RNG.
    """

    supports_full_batch = False
    #: What needs a batch size, for the one error that refuses ``batch_size=None``.
    batched_only = "these labels"

    def __init__(self, dataset, num_steps: int, batch_size: int | None = None,
                 seed: int | None = None):
        if int(num_steps) < 0:
            raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}.")
        if batch_size is None and not self.supports_full_batch:
            raise FullBatchUnsupportedError(self.full_batch_refusal())
        self.dataset = dataset
        self.num_steps = int(num_steps)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.generator = make_generator(seed, dataset.device)
        self._sampler = None
        self._sampler_key = None


    @classmethod
    def full_batch_refusal(cls) -> str:
        """The error for ``batch_size=None`` on a loader without full-batch training
        (the one place that says which training needs a batch size)."""
        return (f"batch_size=None (full batch) is only for single-session time or continuous "
                f"training; {cls.batched_only} need a batch_size ({cls.__name__}).")
    def __len__(self) -> int:
        return self.num_steps

    @property
    def device(self) -> torch.device:
        return self.dataset.device

    @property
    def sampler(self):
        key = self._configuration()
        if self._sampler is None or key != self._sampler_key:
            if self.generator.device != self.device:
                state = self.generator.get_state()
                self.generator = torch.Generator(device=self.device)
                self.generator.set_state(state)
            self._sampler, self._sampler_key = self._build_sampler(), key
        return self._sampler

    def _configuration(self) -> tuple:
        """What the sampler depends on; a change rebuilds it."""
        return (self.dataset.offset, self.device)

    def _build_sampler(self):
        raise NotImplementedError

    def get_indices(self, num_samples: int | None):
        raise NotImplementedError

    def load(self, index):
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        for _ in range(self.num_steps):
            yield self.load(self.get_indices(self.batch_size))

    def state_dict(self) -> dict:
        """The generator state: restoring it replays the same future batches."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
