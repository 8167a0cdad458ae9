"""Samplers: draw time indices of reference, positive and negative samples.

Samplers return indices only (the dataset cuts the windows), run in torch on the
data's device, and draw every random number from an explicit ``torch.Generator``,
so a seed fixes the batches. Everything that depends on the recording length
(sorted labels, neighbour grids, class member lists) is built once in
``__init__``; a sampling step then costs O(batch).
"""

from __future__ import annotations

import torch

from cebra_pipe.data.datasets import DatasetCollection, TensorDataset
from cebra_pipe.data.datatypes import IndexSet
from cebra_pipe.data.neighbors import NearestNeighbors
from cebra_pipe.registry import Registry

_registry = Registry("sampler")
register = _registry.register
get_options = _registry.get_options
init = _registry.init


class Sampler:
    """Uniform prior over the samples whose window fits in the recording.

    With segment ids on the dataset a sample is admissible only if its window lies
    inside one segment: references (and negatives) also need their partner
    ``time_offset`` steps later in the same segment, positives found by label
    search come from the samples whose own window fits (``positives``).

    Parameters
    ----------
    dataset
        The recording; its ``offset`` must already match the model.
    generator
        Source of all randomness, on ``dataset.device``.
    time_offset
        Steps between a reference and its time-contrastive positive.
    """

    def __init__(self, dataset: TensorDataset, generator: torch.Generator,
                 time_offset: int = 1, **_: object):
        self.dataset, self.generator = dataset, generator
        self.time_offset = int(time_offset)
        if self.time_offset < 0:
            raise ValueError(f"time_offset must be >= 0, got {time_offset}.")
        dataset.valid_range()  # raises for a recording shorter than the receptive field
        self.positives = dataset.admissible(0)
        # References need their time-shifted partner inside the same segment too.
        self.references = dataset.admissible(self.time_offset)
        if len(self.positives) == 0:
            longest = int((dataset.segment_bounds().diff(dim=1)).max())
            raise ValueError(f"No segment is long enough for the model: the longest has "
                             f"{longest} samples, the receptive field is {len(dataset.offset)}.")
        if len(self.references) == 0:
            raise ValueError(
                f"time_offsets={self.time_offset} is beyond the recording: {len(dataset)} "
                f"samples with a receptive field of {len(dataset.offset)} leave no reference "
                f"with a partner {self.time_offset} steps later"
                f"{'' if dataset.segments is None else ' in the same segment'}.")

    @property
    def device(self) -> torch.device:
        return self.dataset.device

    def randint(self, low: int | torch.Tensor, high: int | torch.Tensor,
                num_samples: int) -> torch.Tensor:
        """Uniform integers in ``[low, high)``; bounds may be per-sample tensors."""
        draw = torch.rand(num_samples, generator=self.generator, device=self.device)
        # float32 rounding can turn draw * n into n for draws just below 1
        return torch.clamp_max(low + (draw * (high - low)).long(), high - 1)

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        """References / negatives ``(num_samples,)``."""
        return self.references.draw(self.randint, num_samples)

    def all_references(self) -> torch.Tensor:
        """Every admissible reference, for full-batch training."""
        return self.references.all()

    def sample_conditional(self, reference: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register("time")
class TimeSampler(Sampler):
    """Time-contrastive: the positive is the reference ``time_offset`` steps later."""

    def sample_conditional(self, reference: torch.Tensor) -> torch.Tensor:
        return reference + self.time_offset


class _BehaviorSampler(Sampler):
    """Positives whose label is nearest to a target derived from the reference's label."""

    def __init__(self, dataset: TensorDataset, generator: torch.Generator,
                 time_offset: int = 1, **kwargs: object):
        super().__init__(dataset, generator, time_offset, **kwargs)
        if dataset.continuous is None:
            raise ValueError(f"{type(self).__name__} needs continuous labels.")
        self.labels = dataset.continuous
        self.index = NearestNeighbors(self._search_space(), generator)

    def _search_space(self) -> torch.Tensor:
        return self.positives.select(self.labels)

    def target(self, reference: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nearest(self, targets: torch.Tensor) -> torch.Tensor:
        """Admissible time indices ``(batch,)`` with the label nearest to ``targets``."""
        return self.positives.map(self.index.query(targets))

    def sample_conditional(self, reference: torch.Tensor) -> torch.Tensor:
        return self.nearest(self.target(reference))


@register("time_delta")
class TimeDeltaSampler(_BehaviorSampler):
    """Target = label[ref] + a label change observed over ``time_offset`` steps elsewhere."""

    def label_change(self, num_samples: int) -> torch.Tensor:
        t = self.sample_prior(num_samples)
        return self.labels[t + self.time_offset] - self.labels[t]

    def target(self, reference: torch.Tensor) -> torch.Tensor:
        return self.labels[reference] + self.label_change(len(reference))


@register("delta_normal")
class DeltaNormalSampler(_BehaviorSampler):
    """Target = label[ref] + N(0, delta^2) noise in every label dimension."""

    def __init__(self, dataset: TensorDataset, generator: torch.Generator,
                 time_offset: int = 1, delta: float | None = None, **kwargs: object):
        if delta is None or not float(delta) > 0:
            raise ValueError(f"delta_normal sampling needs delta > 0, got delta={delta}.")
        self.delta = float(delta)
        super().__init__(dataset, generator, time_offset, **kwargs)

    def target(self, reference: torch.Tensor) -> torch.Tensor:
        labels = self.labels[reference]
        noise = torch.randn(labels.shape, generator=self.generator, device=self.device)
        return labels + self.delta * noise


class _ClassMembers:
    """Time indices grouped by integer label, to draw a random member of a class.

    Parameters
    ----------
    labels : (time,)
        Integer labels of the whole recording.
    admissible
        The time indices that may be drawn.
    """

    def __init__(self, labels: torch.Tensor, admissible: IndexSet):
        self.classes, inverse, self.counts = torch.unique(admissible.select(labels),
                                                          return_inverse=True, return_counts=True)
        self.members = admissible.map(torch.argsort(inverse, stable=True))
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def class_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Position of each label in ``classes`` (labels must be present)."""
        return torch.searchsorted(self.classes, labels)

    def draw(self, klass: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        draw = torch.rand(klass.shape, generator=generator, device=klass.device)
        count = self.counts[klass]
        return self.members[self.starts[klass] + (draw * count).long().clamp_max(count - 1)]


@register("discrete")
class DiscreteSampler(Sampler):
    """Positives share the reference's integer label.

    Parameters
    ----------
    prior
        ``"empirical"``: references uniform over time; ``"uniform"``: every class
        equally often.
    """

    def __init__(self, dataset: TensorDataset, generator: torch.Generator,
                 time_offset: int = 1, prior: str = "empirical", **kwargs: object):
        super().__init__(dataset, generator, time_offset=0, **kwargs)
        if dataset.discrete is None:
            raise ValueError("DiscreteSampler needs discrete labels.")
        if prior not in ("empirical", "uniform"):
            raise ValueError(f"prior must be 'empirical' or 'uniform', got {prior!r}.")
        self.prior = prior
        self.labels = dataset.discrete
        self.members = _ClassMembers(self.labels, self.positives)

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        if self.prior == "empirical":
            return super().sample_prior(num_samples)
        klass = self.randint(0, len(self.members.classes), num_samples)
        return self.members.draw(klass, self.generator)

    def sample_conditional(self, reference: torch.Tensor) -> torch.Tensor:
        return self.members.draw(self.members.class_of(self.labels[reference]), self.generator)


@register("mixed")
class MixedSampler(TimeDeltaSampler):
    """Same discrete label, nearest continuous label (time-delta target) within it.

    The class is appended to the labels as one more coordinate, spaced further
    apart than any continuous target can move, so a single exact neighbour search
    never leaves the reference's class.
    """

    def __init__(self, dataset: TensorDataset, generator: torch.Generator,
                 time_offset: int = 1, **kwargs: object):
        if dataset.discrete is None or dataset.continuous is None:
            raise ValueError("MixedSampler needs discrete and continuous labels.")
        cont = dataset.continuous
        span = float((cont.max(0).values - cont.min(0).values).max())
        self.class_gap = 4.0 * (span + 1.0)
        rank = torch.unique(dataset.discrete, return_inverse=True)[1]
        self.class_coordinate = rank.to(cont.dtype) * self.class_gap
        super().__init__(dataset, generator, time_offset, **kwargs)

    def _search_space(self) -> torch.Tensor:
        return torch.cat([self.positives.select(self.labels),
                          self.positives.select(self.class_coordinate)[:, None]], 1)

    def target(self, reference: torch.Tensor) -> torch.Tensor:
        return torch.cat([super().target(reference), self.class_coordinate[reference, None]], 1)


def make_generator(seed: int | None, device: torch.device | str) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (or from torch's global RNG)."""
    if seed is None:
        seed = int(torch.randint(0, 2 ** 62, (1,)))
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def make_host_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded by one draw from ``generator``."""
    return torch.Generator().manual_seed(
        int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device)))


class MultiSessionSampler:
    """References in every session, positives in another session with a matching label.

    Each step draws a cyclic derangement ``sigma`` of the sessions; the positives of
    session ``s``'s references lie in session ``sigma[s]``. Continuous labels match
    by nearest label to a time-delta (or ``delta_normal``) target, discrete labels
    by equality. Without labels, positives are time-contrastive within the session.

    Parameters
    ----------
    datasets
        The sessions.
    generator
        Source of all randomness on the sessions' device.
    host_generator
        CPU generator of the session permutations; seeded from ``generator`` if not given.
    conditional
        ``"time_delta"``, ``"delta_normal"``, ``"discrete"`` or ``"time"``.
    """

    def __init__(self, datasets: DatasetCollection, generator: torch.Generator,
                 conditional: str = "time_delta", time_offset: int = 1,
                 delta: float | None = None, host_generator: torch.Generator | None = None):
        self.datasets, self.generator, self.conditional = datasets, generator, conditional
        kind = {"time_delta": "time_delta", "delta_normal": "delta_normal",
                "discrete": "discrete", "time": "time"}.get(conditional)
        if kind is None:
            raise ValueError(f"Unknown multi-session conditional {conditional!r}; use "
                             "'time_delta', 'delta_normal', 'discrete' or 'time'.")
        self.samplers = [init(kind, ds, generator, time_offset=time_offset, delta=delta)
                         for ds in datasets]
        if kind == "discrete":
            self._check_shared_classes()
        # The session permutation is drawn on the host: it steers Python-level
        # indexing, and a device generator would force a synchronisation per step.
        self.host_generator = (make_host_generator(generator) if host_generator is None
                               else host_generator)

    def _check_shared_classes(self) -> None:
        reference = self.samplers[0].members.classes.cpu()
        for i, sampler in enumerate(self.samplers[1:], 1):
            classes = sampler.members.classes.cpu()
            if not torch.equal(classes, reference):
                raise ValueError(f"Discrete labels differ between sessions: session 0 has "
                                 f"{reference.tolist()}, session {i} has {classes.tolist()}.")

    @property
    def num_sessions(self) -> int:
        return len(self.samplers)

    def permutation(self) -> list[int]:
        """``sigma``: session ``s`` takes its positives from session ``sigma[s]``."""
        n = self.num_sessions
        if self.conditional == "time" or n == 1:
            return list(range(n))
        order = torch.randperm(n, generator=self.host_generator).tolist()
        shift = 1 + int(torch.randint(0, n - 1, (1,), generator=self.host_generator))
        sigma = [0] * n
        for i, s in enumerate(order):
            sigma[s] = order[(i + shift) % n]
        return sigma

    def sample(self, num_samples: int) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                list[torch.Tensor], list[int]]:
        """``(reference, positive, negative, sigma)``; lists indexed by the session the
        indices belong to, so ``positive[sigma[s]]`` pairs with ``reference[s]``."""
        sigma = self.permutation()
        reference = [s.sample_prior(num_samples) for s in self.samplers]
        negative = [s.sample_prior(num_samples) for s in self.samplers]
        return reference, self.positives(reference, sigma), negative, sigma

    def positives(self, reference: list[torch.Tensor], sigma: list[int]
                  ) -> list[torch.Tensor]:
        """Positives of ``reference`` (one ``(batch,)`` tensor per session) under
        ``sigma``: ``positive[sigma[s]]`` pairs with ``reference[s]``."""
        positive: list[torch.Tensor] = [None] * self.num_sessions  # type: ignore[list-item]
        for s, sampler in enumerate(self.samplers):
            target_sampler = self.samplers[sigma[s]]
            positive[sigma[s]] = self._positive(sampler, target_sampler, reference[s])
        return positive

    def _positive(self, source: Sampler, target: Sampler, reference: torch.Tensor):
        if self.conditional == "time":
            return source.sample_conditional(reference)
        if self.conditional == "discrete":
            klass = target.members.class_of(source.labels[reference])
            return target.members.draw(klass, self.generator)
        return target.nearest(source.target(reference))
