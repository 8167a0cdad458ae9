"""Small demo datasets: neural activity as a random nonlinear mixing of known latents.

Each dataset draws a smooth latent trajectory (continuous), a sequence of discrete
states, or both, and maps the latents to neurons through a random one-hidden-layer
tanh network plus Gaussian noise, so an embedding method should recover the latents
up to a smooth transformation. Labels are the latents themselves. Everything is
generated from ``seed`` with :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from cebra_pipe.datasets.base import REGISTRY, Recording, RecordingSet, check_size

DEFAULT_TIMESTEPS = 4000


def smooth_latent(rng: np.random.Generator, num_timesteps: int, dims: int,
                  smoothness: float = 20.0) -> np.ndarray:
    """Gaussian-filtered white noise, standardised per dimension.

    Returns
    -------
    (time, dims) float64, zero mean and unit variance per dimension.
    """
    noise = rng.standard_normal((num_timesteps, dims))
    latent = gaussian_filter1d(noise, sigma=smoothness, axis=0, mode="reflect")
    return (latent - latent.mean(0)) / latent.std(0)


def discrete_states(rng: np.random.Generator, num_timesteps: int, num_classes: int,
                    mean_duration: float = 50.0) -> np.ndarray:
    """Piecewise-constant states with geometric durations; consecutive states differ.

    Returns
    -------
    (time,) int64 in ``[0, num_classes)``.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    states = np.empty(num_timesteps, dtype=np.int64)
    t, state = 0, int(rng.integers(num_classes))
    while t < num_timesteps:
        length = int(rng.geometric(1.0 / mean_duration))
        states[t:t + length] = state
        t += length
        state = (state + int(rng.integers(1, num_classes))) % num_classes
    return states


def state_anchors(states: np.ndarray, num_classes: int) -> np.ndarray:
    """Each state as a point on the unit circle, so states are equally far apart.

    Returns
    -------
    (time, 2) float64.
    """
    angles = 2 * np.pi * states / num_classes
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def random_mixing(rng: np.random.Generator, latent: np.ndarray, num_neurons: int,
                  noise: float = 0.1, hidden: int = 32) -> np.ndarray:
    """Neurons as a random tanh network of the latents plus Gaussian noise.

    Parameters
    ----------
    latent : (time, k)
    num_neurons
        Output width.
    noise
        Noise standard deviation relative to each neuron's (unit) signal std.

    Returns
    -------
    (time, num_neurons) float32.
    """
    k = latent.shape[1]
    w_in = rng.normal(0.0, 1.5 / np.sqrt(k), (k, hidden))
    b_in = rng.normal(0.0, 0.5, hidden)
    w_out = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, num_neurons))
    signal = np.tanh(latent @ w_in + b_in) @ w_out
    signal = (signal - signal.mean(0)) / (signal.std(0) + 1e-12)
    return (signal + noise * rng.standard_normal(signal.shape)).astype(np.float32)


def _check(num_timesteps: int, num_neurons: int) -> None:
    check_size(num_timesteps, num_neurons, "demo dataset")
    if int(num_timesteps) < 2 or int(num_neurons) < 1:
        raise ValueError(f"need num_timesteps >= 2 and num_neurons >= 1, got {num_timesteps} "
                         f"and {num_neurons}.")


def _continuous(rng: np.random.Generator, name: str, num_timesteps: int, num_neurons: int,
                latent_dim: int, noise: float, seed: int) -> Recording:
    _check(num_timesteps, num_neurons)
    latent = smooth_latent(rng, num_timesteps, latent_dim)
    return Recording(neural=random_mixing(rng, latent, num_neurons, noise), continuous=latent,
                     latent=latent, name=name,
                     metadata={"seed": seed, "noise": noise, "latent": "smooth Gaussian noise"})


def _discrete(rng: np.random.Generator, name: str, num_timesteps: int, num_neurons: int,
              num_classes: int, noise: float, seed: int) -> Recording:
    _check(num_timesteps, num_neurons)
    states = discrete_states(rng, num_timesteps, num_classes)
    # A little smooth jitter around each state's anchor keeps the classes from collapsing
    # onto single points in neural space.
    latent = state_anchors(states, num_classes) + 0.1 * smooth_latent(rng, num_timesteps, 2)
    return Recording(neural=random_mixing(rng, latent, num_neurons, noise), discrete=states,
                     latent=latent, name=name,
                     metadata={"seed": seed, "noise": noise, "num_classes": num_classes})


def _session_neurons(num_neurons: int | Sequence[int], num_sessions: int) -> list[int]:
    if isinstance(num_neurons, (int, np.integer)):
        return [int(num_neurons)] * num_sessions
    counts = [int(n) for n in num_neurons]
    if len(counts) != num_sessions:
        raise ValueError(f"num_neurons has {len(counts)} entries for {num_sessions} sessions.")
    return counts


@REGISTRY.register("demo-continuous")
def demo_continuous(num_timesteps: int = DEFAULT_TIMESTEPS, num_neurons: int = 30,
                    latent_dim: int = 3, noise: float = 0.1, seed: int = 0) -> Recording:
    """Smooth 3-D latent; ``continuous`` (time, 3) is the latent itself."""
    return _continuous(np.random.default_rng(seed), "demo-continuous", num_timesteps,
                       num_neurons, latent_dim, noise, seed)


@REGISTRY.register("demo-discrete")
def demo_discrete(num_timesteps: int = DEFAULT_TIMESTEPS, num_neurons: int = 30,
                  num_classes: int = 4, noise: float = 0.1, seed: int = 0) -> Recording:
    """Switching discrete states; ``discrete`` (time,) holds the state."""
    return _discrete(np.random.default_rng(seed), "demo-discrete", num_timesteps, num_neurons,
                     num_classes, noise, seed)


@REGISTRY.register("demo-mixed")
def demo_mixed(num_timesteps: int = DEFAULT_TIMESTEPS, num_neurons: int = 30,
               latent_dim: int = 3, num_classes: int = 4, noise: float = 0.1,
               seed: int = 0) -> Recording:
    """Both: a smooth latent (``continuous``) and discrete states (``discrete``).

    ``latent`` is (time, latent_dim + 2): the continuous latent, then the state anchor.
    """
    _check(num_timesteps, num_neurons)
    rng = np.random.default_rng(seed)
    continuous = smooth_latent(rng, num_timesteps, latent_dim)
    states = discrete_states(rng, num_timesteps, num_classes)
    latent = np.concatenate([continuous, state_anchors(states, num_classes)], axis=1)
    return Recording(neural=random_mixing(rng, latent, num_neurons, noise), continuous=continuous,
                     discrete=states, latent=latent, name="demo-mixed",
                     metadata={"seed": seed, "noise": noise, "num_classes": num_classes})


@REGISTRY.register("demo-continuous-multisession")
def demo_continuous_multisession(num_sessions: int = 3,
                                 num_neurons: int | Sequence[int] = (30, 40, 50),
                                 num_timesteps: int = DEFAULT_TIMESTEPS, latent_dim: int = 3,
                                 noise: float = 0.1, seed: int = 0) -> RecordingSet:
    """Sessions with their own latent trajectory and mixing, the same label meaning."""
    counts = _session_neurons(num_neurons, num_sessions)
    rngs = np.random.default_rng(seed).spawn(num_sessions)
    sessions = [_continuous(rng, f"demo-continuous-session{i}", num_timesteps, n, latent_dim,
                            noise, seed) for i, (rng, n) in enumerate(zip(rngs, counts))]
    return RecordingSet(sessions, name="demo-continuous-multisession", metadata={"seed": seed})


@REGISTRY.register("demo-continuous-unified")
def demo_continuous_unified(num_sessions: int = 3,
                            num_neurons: int | Sequence[int] = (30, 40, 50),
                            num_timesteps: int = DEFAULT_TIMESTEPS, latent_dim: int = 3,
                            noise: float = 0.1, seed: int = 0) -> RecordingSet:
    """The sessions of ``demo-continuous-multisession``, for sampling them as one
    "pseudo-animal" (:class:`cebra_pipe.distributions.UnifiedSampler`)."""
    sessions = demo_continuous_multisession(num_sessions, num_neurons, num_timesteps,
                                            latent_dim, noise, seed)
    return RecordingSet(sessions.sessions, name="demo-continuous-unified",
                        metadata={"seed": seed, "unified": True})


@REGISTRY.register("demo-discrete-multisession")
def demo_discrete_multisession(num_sessions: int = 3,
                               num_neurons: int | Sequence[int] = (30, 40, 50),
                               num_timesteps: int = DEFAULT_TIMESTEPS, num_classes: int = 4,
                               noise: float = 0.1, seed: int = 0) -> RecordingSet:
    """Sessions with their own state sequence and mixing, the same classes."""
    counts = _session_neurons(num_neurons, num_sessions)
    rngs = np.random.default_rng(seed).spawn(num_sessions)
    sessions = [_discrete(rng, f"demo-discrete-session{i}", num_timesteps, n, num_classes,
                          noise, seed) for i, (rng, n) in enumerate(zip(rngs, counts))]
    return RecordingSet(sessions, name="demo-discrete-multisession", metadata={"seed": seed})
