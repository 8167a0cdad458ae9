"""Dataset-bound multi-session samplers (the reference's names) over cebra_pipe's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cebra_pipe as cebra
from cebra_pipe.data import DatasetCollection, TensorDataset
from cebra_pipe.distributions import (DiscreteMultisessionSampler, MultisessionSampler,
                                      UnifiedSampler)


def _flat_labels(sampler, index):
    """Labels of ``index (sessions, batch)`` in ``sampler.all_data``, flattened."""
    return sampler.all_data[(np.asarray(index) + sampler.lengths[:, None]).reshape(-1)]


def test_discrete_positives_have_the_class_of_their_reference():
    dataset = cebra.datasets.init("demo-discrete-multisession", num_timesteps=2000)
    sampler = DiscreteMultisessionSampler(dataset, seed=0)
    reference = sampler.sample_prior(64)
    assert reference.shape == (3, 64)
    assert sampler.session_lengths.tolist() == [2000] * 3 and sampler.lengths.tolist() == [
        0, 2000, 4000]
    positive, idx, idx_rev = sampler.sample_conditional(reference)
    assert positive.shape == (3, 64) and idx.shape == idx_rev.shape == (192,)
    np.testing.assert_array_equal(idx[idx_rev], np.arange(192))
    # the references' labels, reordered to their positives
    np.testing.assert_array_equal(_flat_labels(sampler, reference)[idx],
                                  _flat_labels(sampler, positive))
    mixed = sampler.mix(reference, idx)
    np.testing.assert_array_equal(mixed.reshape(-1), reference.reshape(-1)[idx])
    # a positive lies in another session than its reference (sessions are deranged)
    reference_session = idx.reshape(3, 64) // 64
    assert np.all(reference_session != np.arange(3)[:, None])
    np.testing.assert_array_equal(sampler.mix(positive, idx_rev).shape, (3, 64))


def test_continuous_positives_are_near_their_reference_label_in_another_session():
    rng = np.random.default_rng(1)
    position = [np.sort(rng.uniform(0, 1, n)) for n in (400, 500)]
    dataset = DatasetCollection(*[TensorDataset(rng.normal(size=(len(p), k)), p[:, None])
                                  for p, k in zip(position, (6, 9))])
    sampler = MultisessionSampler(dataset, time_offset=1, seed=2)
    reference = sampler.sample_prior(200)
    positive, idx, _ = sampler.sample_conditional(reference)
    gap = np.abs(_flat_labels(sampler, reference)[idx] - _flat_labels(sampler, positive))
    assert np.median(gap) < 0.02  # labels change by ~1/450 per step
    again = MultisessionSampler(dataset, time_offset=1, seed=2)
    np.testing.assert_array_equal(again.sample_prior(200), reference)  # seeded


def test_unified_references_share_their_label_across_sessions():
    dataset = cebra.datasets.init("demo-continuous-unified", num_timesteps=400)
    assert dataset.num_sessions == 3
    sampler = UnifiedSampler(dataset, time_offset=5, seed=0)
    reference = sampler.sample_prior(50, session_id=1)
    labels = _flat_labels(sampler, reference).reshape(3, 50, -1)
    # every session's reference row j sits at the label of session 1's row j
    assert np.median(np.abs(labels[0] - labels[1])) < 0.3
    assert np.median(np.abs(labels[0] - labels[1][rng_perm(50)])) > 0.5
    positive = sampler.sample_conditional(reference)
    assert positive.shape == (3, 50)
    with pytest.raises(ValueError, match=r"session_id must be in \[0, 3\), got 3"):
        sampler.sample_prior(5, session_id=3)


def rng_perm(n: int) -> np.ndarray:
    return np.random.default_rng(0).permutation(n)


def test_bad_inputs_name_the_problem():
    time_only = DatasetCollection(TensorDataset(torch.zeros(50, 3)),
                                  TensorDataset(torch.zeros(50, 3)))
    with pytest.raises(ValueError, match="needs continuous labels in every session"):
        MultisessionSampler(time_only)
    with pytest.raises(ValueError, match="needs discrete labels in every session"):
        DiscreteMultisessionSampler(time_only)
    with pytest.raises(TypeError, match="must hold several sessions"):
        MultisessionSampler(3)
    sampler = MultisessionSampler(cebra.datasets.init("demo-continuous-multisession",
                                                      num_timesteps=100), time_offset=2)
    with pytest.raises(ValueError, match=r"reference must have shape \(sessions=3, batch\), "
                                         r"got \(2, 4\)"):
        sampler.sample_conditional(np.zeros((2, 4), dtype=int))
