"""Loaders for several sessions trained into one shared embedding space."""

from __future__ import annotations

from cebra_pipe.data.datasets import DatasetCollection
from cebra_pipe.data.datatypes import BatchIndex, MultiSessionBatch
from cebra_pipe.data.loaders import Loader
from cebra_pipe.data.samplers import MultiSessionSampler, make_host_generator


class _MultiSessionLoader(Loader):
    """``batch_size`` references per session and step."""

    conditional = "time_delta"

    @classmethod
    def full_batch_refusal(cls) -> str:
        return ("Multi-session training needs a batch_size (batch_size=None is only for "
                "single-session time or continuous training).")

    def __init__(self, dataset: DatasetCollection, num_steps: int, batch_size: int,
                 time_offset: int = 10, delta: float | None = None, seed: int | None = None):
        if not isinstance(dataset, DatasetCollection):
            raise TypeError(f"dataset must be a DatasetCollection, got {type(dataset).__name__}.")
        super().__init__(dataset, num_steps, batch_size, seed)
        self.time_offset, self.delta = int(time_offset), delta
        # Owned by the loader (not the sampler) so that state_dict() captures it.
        self.host_generator = make_host_generator(self.generator)

    def _configuration(self) -> tuple:
        return (tuple(ds.offset for ds in self.dataset), self.device)

    def _build_sampler(self) -> MultiSessionSampler:
        return MultiSessionSampler(self.dataset, self.generator, self.conditional,
                                   time_offset=self.time_offset, delta=self.delta,
                                   host_generator=self.host_generator)

    def state_dict(self) -> dict:
        """Generator states (device and host): restoring them replays the same batches."""
        return {**super().state_dict(), "host_generator": self.host_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "host_generator" in state:
            self.host_generator.set_state(state["host_generator"].cpu())

    def get_indices(self, num_samples: int):
        """``(reference, positive, negative, permutation)`` lists, one entry per session."""
        return self.sampler.sample(num_samples)

    def load(self, index) -> MultiSessionBatch:
        reference, positive, negative, permutation = index
        batches = [ds.load_batch(BatchIndex(reference=r, positive=p, negative=n))
                   for ds, r, p, n in zip(self.dataset, reference, positive, negative)]
        return MultiSessionBatch(batches, permutation)


class ContinuousMultiSessionDataLoader(_MultiSessionLoader):
    """Positives from another session with the nearest continuous label.

    Parameters
    ----------
    conditional
        ``"time_delta"``, ``"delta_normal"``, or ``"time"`` (time-contrastive within
        each session with shared negatives; used when sessions have no labels).
    """

    def __init__(self, dataset: DatasetCollection, num_steps: int, batch_size: int,
                 conditional: str = "time_delta", time_offset: int = 10,
                 delta: float | None = None, seed: int | None = None):
        super().__init__(dataset, num_steps, batch_size, time_offset, delta, seed)
        has_labels = [ds.continuous is not None for ds in dataset]
        if any(has_labels) and not all(has_labels):
            raise ValueError("Either every session or none must have continuous labels.")
        self.conditional = conditional if all(has_labels) else "time"


class DiscreteMultiSessionDataLoader(_MultiSessionLoader):
    """Positives from another session with the same discrete label."""

    conditional = "discrete"

    def __init__(self, dataset: DatasetCollection, num_steps: int, batch_size: int,
                 time_offset: int = 10, seed: int | None = None):
        super().__init__(dataset, num_steps, batch_size, time_offset, None, seed)
        if any(ds.discrete is None for ds in dataset):
            raise ValueError("DiscreteMultiSessionDataLoader needs discrete labels in every "
                             "session.")
