"""End to end: Jacobian-regularised CEBRA recovers a known connectivity (xCEBRA's claim)."""

from __future__ import annotations

import numpy as np
import pytest

import cebra_pipe as cebra
from cebra_pipe import attribution


def connectivity_auc(regularization, recording) -> float:
    """ROC-AUC of the aligned ``jf-inv-svd`` map against the behaviour latents' neurons."""
    behavior = recording.metadata["behavior_latents"]
    truth = np.array(recording.metadata["connectivity"], bool)[:, behavior]
    # Cosine embedding on a 3-sphere; a local patch of it holds the two latents.
    model = cebra.CEBRA(model_architecture="offset1-model", conditional="delta", delta=0.1,
                        batch_size=256, max_iterations=500, learning_rate=3e-3,
                        output_dimension=3, device="cpu", random_state=0,
                        jacobian_regularization=regularization)
    embedding = model.fit_transform(recording.neural, recording.continuous)
    result = attribution.init("jacobian-based", model=model, input_data=recording.neural,
                              num_samples=1000, seed=0).compute_attribution_map()
    # The sampled maps are aligned with the latents -> embedding map fitted on all steps.
    per_latent = np.abs(attribution.latent_map(result["jf-inv-svd"], embedding,
                                               recording.continuous)).mean(0)
    assert per_latent.shape == truth.shape  # (neurons, behaviour latents)
    return attribution.attribution_roc_auc(per_latent, truth)


@pytest.mark.slow
def test_regularised_map_recovers_connectivity():
    recording = cebra.datasets.init("synthetic-connectivity", num_timesteps=3000, seed=0)
    plain = connectivity_auc(None, recording)
    regularised = connectivity_auc(1.0, recording)
    print(f"connectivity ROC-AUC (chance 0.5): unregularised {plain:.3f}, "
          f"jacobian_regularization=1.0 {regularised:.3f}")
    assert regularised >= 0.9
    assert regularised > plain
