"""A synthetic recording with known neuron-to-latent connectivity (for attribution maps).

Smooth latents drive disjoint groups of neurons through a sparse weight matrix and a
softplus nonlinearity; other neurons carry only noise. The first ``num_behavior``
latents are the recording's continuous labels (what CEBRA-behaviour is trained on);
the remaining ``num_nuisance`` latents drive their own neurons but are not labels,
so an attribution map of a behaviour model should rank their neurons low. The true
connectivity, ``(neurons, latents)`` 0/1, is in ``metadata["connectivity"]``.

Registered as ``synthetic-connectivity``; everything is drawn from ``seed``.
"""

from __future__ import annotations

import numpy as np

from cebra_pipe.datasets.base import REGISTRY, Recording
from cebra_pipe.datasets.demo import smooth_latent


def connectivity_matrix(rng: np.random.Generator, num_neurons: int, num_latents: int,
                        neurons_per_latent: int) -> np.ndarray:
    """Each latent drives its own ``neurons_per_latent`` randomly chosen neurons.

    Returns
    -------
    (neurons, latents) bool; a neuron has at most one latent, some have none.
    """
    if neurons_per_latent * num_latents > num_neurons:
        raise ValueError(f"neurons_per_latent x latents = {neurons_per_latent * num_latents} "
                         f"exceeds num_neurons={num_neurons}.")
    order = rng.permutation(num_neurons)
    truth = np.zeros((num_neurons, num_latents), dtype=bool)
    for latent in range(num_latents):
        truth[order[latent * neurons_per_latent:(latent + 1) * neurons_per_latent], latent] = True
    return truth


@REGISTRY.register("synthetic-connectivity")
def synthetic_connectivity(num_timesteps: int = 6000, num_neurons: int = 40,
                           num_behavior: int = 2, num_nuisance: int = 1,
                           neurons_per_latent: int = 10, noise: float = 0.1,
                           smoothness: float = 10.0, seed: int = 0) -> Recording:
    """Neurons ``softplus(W z + b) + noise`` with sparse ``W`` (connectivity x weights).

    Parameters
    ----------
    num_timesteps, num_neurons
        Recording size.
    num_behavior, num_nuisance
        Latents given as continuous labels, and latents that are not.
    neurons_per_latent
        Neurons driven by each latent (the rest are noise only).
    noise
        Gaussian noise standard deviation (the driven part has unit scale).
    smoothness
        Gaussian smoothing of the latents, in time steps.
    seed
        Seed of every random draw.

    Returns
    -------
    Recording
        ``neural (time, neurons)``, ``continuous (time, num_behavior)``, ``latent
        (time, num_behavior + num_nuisance)`` and ``metadata["connectivity"]``
        ``(neurons, latents)`` as nested lists of 0/1.
    """
    for name, value, low in (("num_timesteps", num_timesteps, 2), ("num_neurons", num_neurons, 1),
                             ("num_behavior", num_behavior, 1), ("num_nuisance", num_nuisance, 0),
                             ("neurons_per_latent", neurons_per_latent, 1)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"synthetic-connectivity: {name} must be an integer >= {low}, "
                             f"got {value!r}.")
    if not noise >= 0:
        raise ValueError(f"synthetic-connectivity: noise must be >= 0, got {noise!r}.")
    rng = np.random.default_rng(seed)
    num_latents = num_behavior + num_nuisance
    latent = smooth_latent(rng, num_timesteps, num_latents, smoothness)
    truth = connectivity_matrix(rng, num_neurons, num_latents, neurons_per_latent)
    weights = truth * rng.choice([-1.0, 1.0], size=truth.shape) * rng.uniform(
        0.5, 1.5, size=truth.shape)
    drive = latent @ weights.T + rng.uniform(-0.5, 0.5, size=num_neurons)
    neural = np.logaddexp(0.0, drive) + noise * rng.standard_normal((num_timesteps, num_neurons))
    return Recording(neural=neural.astype(np.float32),
                     continuous=latent[:, :num_behavior].astype(np.float32),
                     latent=latent.astype(np.float32), name="synthetic-connectivity",
                     metadata={"connectivity": truth.astype(int).tolist(),
                               "behavior_latents": list(range(num_behavior)),
                               "nuisance_latents": list(range(num_behavior, num_latents)),
                               "seed": int(seed), "noise": float(noise)})
