"""Multi-session sampling bound to a dataset, under the reference's names.

:class:`MultisessionSampler` and :class:`DiscreteMultisessionSampler` draw references
in every session and positives in other sessions with a matching label, through
:class:`cebra_pipe.data.samplers.MultiSessionSampler` (the sampler multi-session
training uses): each draw maps every session's references onto one other session
(a cyclic derangement of the sessions), and ``idx`` / ``idx_rev`` say which
reference each positive belongs to. :class:`UnifiedSampler` draws references that
share their label across all sessions ("pseudo-animal" batches) and positives within
each session.

Indices are numpy arrays ``(sessions, batch)`` as in the reference; the draws come
from the sampler's own generator (``seed``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cebra_pipe.data.datasets import DatasetCollection, TensorDataset
from cebra_pipe.data.samplers import MultiSessionSampler
from cebra_pipe.distributions.base import HasGenerator, JointDistribution

__all__ = ["DiscreteMultisessionSampler", "MultisessionSampler", "UnifiedSampler"]


def as_collection(dataset: Any) -> DatasetCollection:
    """``dataset`` as a :class:`~cebra_pipe.data.DatasetCollection`.

    Parameters
    ----------
    dataset
        A ``DatasetCollection``, a registered multi-session dataset
        (:class:`cebra_pipe.datasets.RecordingSet`) or a list of recordings /
        ``TensorDataset``s.
    """
    if isinstance(dataset, DatasetCollection):
        return dataset
    try:
        sessions = list(dataset)
    except TypeError:
        raise TypeError(f"dataset must hold several sessions (a DatasetCollection or a "
                        f"multi-session dataset), got {type(dataset).__name__}.") from None
    return DatasetCollection(*[s if isinstance(s, TensorDataset) else s.tensors()
                               for s in sessions])


def _reorder(sigma: list[int], batch: int) -> np.ndarray:
    """``idx`` of a session permutation: the positive at flat position ``t * batch + j``
    (session ``t``) belongs to the reference at ``s * batch + j``, ``sigma[s] = t``."""
    source = np.argsort(np.asarray(sigma))  # source[t] = s
    return (source[:, None] * batch + np.arange(batch)[None, :]).reshape(-1)


class MultisessionSampler(JointDistribution, HasGenerator):
    """References in every session, positives in another session with the nearest label
    to the reference's label plus a label change seen over ``time_offset`` steps.

    Parameters
    ----------
    dataset
        The sessions (see :func:`as_collection`), with continuous labels.
    time_offset
        Steps over which the label changes are observed.
    seed
        Seeds the draws; None draws a seed.

    Attributes
    ----------
    session_lengths : (sessions,) samples per session
    lengths : (sessions,) first row of each session in :attr:`all_data`
    all_data : the labels of all sessions, one after the other
    """

    conditional = "time_delta"

    def __init__(self, dataset: Any, time_offset: int = 10, seed: int | None = None):
        self.dataset = as_collection(dataset)
        HasGenerator.__init__(self, device=self.dataset.device, seed=seed)
        self.time_offset = int(time_offset)
        self.session_lengths = np.array([len(session) for session in self.dataset])
        self.lengths = np.concatenate([[0], np.cumsum(self.session_lengths)[:-1]])
        self.all_data = torch.cat([self._labels(s) for s in self.dataset]).cpu().numpy()
        self.sampler = MultiSessionSampler(self.dataset, self.generator, self.conditional,
                                           time_offset=self.time_offset)

    def _labels(self, session: TensorDataset) -> torch.Tensor:
        if session.continuous is None:
            raise ValueError(f"{type(self).__name__} needs continuous labels in every session.")
        return session.continuous

    @property
    def num_sessions(self) -> int:
        return self.dataset.num_sessions

    def sample_prior(self, num_samples: int) -> np.ndarray:
        """References ``(sessions, num_samples)``, uniform over each session's samples."""
        return torch.stack([s.sample_prior(int(num_samples)) for s in self.sampler.samplers]
                           ).cpu().numpy()

    def _as_references(self, reference: Any) -> list[torch.Tensor]:
        array = np.asarray(reference)
        if array.ndim != 2 or len(array) != self.num_sessions:
            raise ValueError(f"reference must have shape (sessions={self.num_sessions}, "
                             f"batch), got {array.shape}.")
        return [torch.as_tensor(row, dtype=torch.long, device=self.device) for row in array]

    def sample_conditional(self, reference: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positives of ``reference (sessions, batch)``, grouped by the session they are in.

        Returns
        -------
        positive : (sessions, batch)
        idx : (sessions * batch,) ``mix(reference, idx)`` aligns references to positives
        idx_rev : (sessions * batch,) ``mix(positive, idx_rev)`` aligns positives to
            references
        """
        references = self._as_references(reference)
        sigma = self.sampler.permutation()
        positive = self.sampler.positives(references, sigma)
        idx = _reorder(sigma, len(references[0]))
        idx_rev = np.empty_like(idx)
        idx_rev[idx] = np.arange(len(idx))
        return torch.stack(positive).cpu().numpy(), idx, idx_rev

    @staticmethod
    def mix(array: Any, idx: np.ndarray) -> Any:
        """``array (sessions, batch, ...)`` with its flattened first two axes reordered by
        ``idx``: ``out.reshape(sessions * batch, -1)[i] = array.reshape(...)[idx[i]]``."""
        sessions, batch = array.shape[:2]
        return array.reshape(sessions * batch, -1)[idx].reshape(array.shape)


class DiscreteMultisessionSampler(MultisessionSampler):
    """Positives in another session, of the reference's class.

    Parameters
    ----------
    dataset
        The sessions (see :func:`as_collection`), with the same discrete classes.
    seed
        Seeds the draws; None draws a seed.
    """

    conditional = "discrete"

    def __init__(self, dataset: Any, seed: int | None = None):
        super().__init__(dataset, time_offset=0, seed=seed)

    def _labels(self, session: TensorDataset) -> torch.Tensor:
        if session.discrete is None:
            raise ValueError("DiscreteMultisessionSampler needs discrete labels in every "
                             "session.")
        return session.discrete


class UnifiedSampler(MultisessionSampler):
    """References at one label in all sessions; positives within each session.

    :meth:`sample_prior` draws references uniformly in one session and takes, in every
    other session, the samples with the nearest labels, so that row ``j`` of all
    sessions describes one moment of a "pseudo-animal" recorded in every session.
    :meth:`sample_conditional` draws each positive in the reference's own session,
    nearest to the reference's label plus a label change over ``time_offset`` steps.
    """

    def sample_prior(self, num_samples: int, session_id: int | None = None) -> np.ndarray:
        """References ``(sessions, num_samples)``; ``session_id`` is the session drawn
        uniformly (a random one when None)."""
        samplers = self.sampler.samplers
        if session_id is None:
            session_id = int(torch.randint(len(samplers), (1,), generator=self.generator,
                                           device=self.device))
        elif not 0 <= int(session_id) < len(samplers):
            raise ValueError(f"session_id must be in [0, {len(samplers)}), got {session_id}.")
        drawn = samplers[int(session_id)].sample_prior(int(num_samples))
        query = samplers[int(session_id)].labels[drawn]
        return torch.stack([drawn if i == int(session_id) else sampler.nearest(query)
                            for i, sampler in enumerate(samplers)]).cpu().numpy()

    def sample_conditional(self, reference: Any) -> np.ndarray:
        """Positives ``(sessions, batch)``, each in its reference's session."""
        references = self._as_references(reference)
        return torch.stack([sampler.sample_conditional(ref) for sampler, ref
                            in zip(self.sampler.samplers, references)]).cpu().numpy()
