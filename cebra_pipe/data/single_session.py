"""Loaders for one recording: time, continuous, discrete, mixed and hybrid."""

from __future__ import annotations

import torch

from cebra_pipe.data import samplers
from cebra_pipe.data.datasets import TensorDataset
from cebra_pipe.data.datatypes import Batch, BatchIndex, FullBatch
from cebra_pipe.data.loaders import Loader

_CONTINUOUS_CONDITIONALS = ("time", "time_delta", "delta_normal")


class _SingleSessionLoader(Loader):
    """Draws references and negatives from the prior, positives from the conditional."""

    def __init__(self, dataset: TensorDataset, num_steps: int, batch_size: int | None = None,
                 seed: int | None = None):
        if not isinstance(dataset, TensorDataset):
            raise TypeError(f"dataset must be a TensorDataset, got {type(dataset).__name__}.")
        super().__init__(dataset, num_steps, batch_size, seed)

    def load(self, index: BatchIndex) -> Batch | FullBatch:
        """Windows of ``index``; a full batch keeps the recording and cuts them lazily."""
        if index.full_batch:
            return FullBatch(self.dataset.neural, self.dataset.offset, index)
        return self.dataset.load_batch(index)

    def get_indices(self, num_samples: int | None) -> BatchIndex:
        """Indices of one batch; ``None`` uses every admissible reference."""
        sampler = self.sampler
        if num_samples is None:
            reference = sampler.all_references()
            negative = reference[torch.randperm(len(reference), generator=self.generator,
                                                device=self.device)]
        else:
            reference = sampler.sample_prior(num_samples)
            negative = sampler.sample_prior(num_samples)
        return BatchIndex(reference=reference, positive=sampler.sample_conditional(reference),
                          negative=negative, full_batch=num_samples is None)


class ContinuousDataLoader(_SingleSessionLoader):
    """Time-contrastive or continuous-behaviour batches.

    Parameters
    ----------
    conditional
        ``"time"`` (positive ``time_offset`` steps later), ``"time_delta"``
        (nearest label to label[ref] + an observed change) or ``"delta_normal"``
        (nearest label to label[ref] + N(0, delta^2)). Without continuous labels
        the loader is time-contrastive.
    time_offset
        Steps between reference and positive (or over which changes are observed).
    delta
        Standard deviation for ``"delta_normal"``.
    """

    supports_full_batch = True

    def __init__(self, dataset: TensorDataset, num_steps: int, batch_size: int | None = None,
                 conditional: str = "time_delta", time_offset: int = 10,
                 delta: float | None = None, seed: int | None = None):
        if conditional not in _CONTINUOUS_CONDITIONALS:
            raise ValueError(f"conditional must be one of {_CONTINUOUS_CONDITIONALS}, "
                             f"got {conditional!r}.")
        super().__init__(dataset, num_steps, batch_size, seed)
        self.conditional = conditional if dataset.continuous is not None else "time"
        self.time_offset, self.delta = int(time_offset), delta

    def _build_sampler(self) -> samplers.Sampler:
        return samplers.init(self.conditional, self.dataset, self.generator,
                             time_offset=self.time_offset, delta=self.delta)


class DiscreteDataLoader(_SingleSessionLoader):
    """Positives share the reference's discrete label.

    Parameters
    ----------
    prior
        ``"empirical"`` (references uniform over time) or ``"uniform"`` (classes
        equally often).
    """

    batched_only = "discrete labels"

    def __init__(self, dataset: TensorDataset, num_steps: int, batch_size: int,
                 prior: str = "empirical", seed: int | None = None):
        super().__init__(dataset, num_steps, batch_size, seed)
        if dataset.discrete is None:
            raise ValueError("DiscreteDataLoader needs a dataset with discrete labels.")
        self.prior = prior

    def _build_sampler(self) -> samplers.Sampler:
        return samplers.init("discrete", self.dataset, self.generator, prior=self.prior)


class MixedDataLoader(_SingleSessionLoader):
    """Positives share the discrete label and have the nearest continuous label."""

    batched_only = "mixed labels"

    def __init__(self, dataset: TensorDataset, num_steps: int, batch_size: int,
                 conditional: str = "time_delta", time_offset: int = 10,
                 delta: float | None = None, seed: int | None = None):
        super().__init__(dataset, num_steps, batch_size, seed)
        if dataset.discrete is None or dataset.continuous is None:
            raise ValueError("MixedDataLoader needs discrete and continuous labels.")
        if conditional != "time_delta":
            raise ValueError(f"MixedDataLoader supports conditional='time_delta', "
                             f"got {conditional!r}.")
        self.time_offset, self.delta = int(time_offset), delta

    def _build_sampler(self) -> samplers.Sampler:
        return samplers.init("mixed", self.dataset, self.generator,
                             time_offset=self.time_offset)


class HybridDataLoader(ContinuousDataLoader):
    """Behaviour positives plus time-contrastive positives for the same references."""

    supports_full_batch = False
    batched_only = "hybrid models"

    def _build_sampler(self) -> tuple[samplers.Sampler, samplers.Sampler]:
        behavior = super()._build_sampler()
        time = samplers.init("time", self.dataset, self.generator, time_offset=self.time_offset)
        return behavior, time

    def get_indices(self, num_samples: int | None) -> BatchIndex:
        behavior, time = self.sampler
        # Both kinds of positive must exist, so references come from the time prior.
        reference = time.sample_prior(num_samples)
        return BatchIndex(reference=reference, positive=behavior.sample_conditional(reference),
                          negative=time.sample_prior(num_samples),
                          positive_time=time.sample_conditional(reference))
