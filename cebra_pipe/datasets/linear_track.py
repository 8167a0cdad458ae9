"""Synthetic rat hippocampus on a linear track, shaped like CEBRA's rat datasets.

A rat runs laps on a 1.6 m track, pausing at the reward sites at both ends; CA1 place
cells fire with Gaussian, mostly direction-selective place fields, and spikes are
Poisson counts in 25 ms bins. Labels follow the CEBRA rat layout: position in metres,
direction (0 = "right", position increasing; 1 = "left"), and the continuous label
``[position, right, left]``. The true latent ``[position, direction]`` and the place
field parameters come with each recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from cebra_pipe.datasets.base import REGISTRY, Recording, RecordingSet, check_size

TRACK_LENGTH_M = 1.6
BIN_SIZE_S = 0.025
DEFAULT_DURATION_S = 250.0  # 10,000 bins, like CEBRA's rat 'achilles'


@dataclass(frozen=True)
class Animal:
    """Per-animal defaults: cell count and running habits."""

    name: str
    num_neurons: int
    run_speed: float  # mean running speed, m/s
    pause: float  # mean stop at each track end, s


ANIMALS: dict[str, Animal] = {a.name: a for a in (
    Animal("rat1", 120, 0.70, 0.8),
    Animal("rat2", 48, 0.60, 1.2),
    Animal("rat3", 64, 0.75, 0.6),
    Animal("rat4", 80, 0.55, 1.5),
)}


def simulate_laps(rng: np.random.Generator, num_bins: int, run_speed: float, pause: float,
                  bin_size: float = BIN_SIZE_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-and-forth runs with stops at the ends.

    Each run accelerates and decelerates smoothly around a plateau speed that varies
    from run to run, with a little within-run speed wobble; at the ends the rat fidgets
    by a few millimetres while drinking. Direction holds its last value during stops.

    Returns
    -------
    position : (time,) float64, metres in ``[0, TRACK_LENGTH_M]``
    direction : (time,) int64, 0 while (last) running right, 1 left
    traversal : (time,) int64, index of the current run (with the stop after it)
    """
    positions, directions, traversals = [], [], []
    total, direction = 0, 0
    x = rng.uniform(0.02, 0.08)  # start at the left reward site
    while total < num_bins:
        target = (TRACK_LENGTH_M - rng.uniform(0.02, 0.08) if direction == 0
                  else rng.uniform(0.02, 0.08))
        speed = run_speed * np.clip(rng.lognormal(0.0, 0.15), 0.7, 1.4)
        steps = max(4, int(round(abs(target - x) / speed / bin_size)))
        # Velocity: smooth sin^2 ramps over the first and last quarter, a plateau between.
        u = (np.arange(steps) + 0.5) / steps
        velocity = np.sin(0.5 * np.pi * np.clip(np.minimum(u, 1 - u) / 0.25, 0, 1)) ** 2
        velocity *= np.clip(1.0 + 0.15 * _smooth_noise(rng, steps, sigma=4.0), 0.5, 1.5)
        s = np.cumsum(velocity) / velocity.sum()
        run = x + (target - x) * s
        stop = max(1, int(round(rng.gamma(4.0, pause / 4.0) / bin_size)))
        wander = 0.005 * _smooth_noise(rng, stop, sigma=8.0)
        fidget = target + wander - wander[0]  # continuous with the end of the run
        positions += [run, fidget]
        directions.append(np.full(steps + stop, direction, dtype=np.int64))
        traversals.append(np.full(steps + stop, len(traversals), dtype=np.int64))
        total += steps + stop
        x, direction = fidget[-1], 1 - direction
    position = np.concatenate(positions)[:num_bins]
    position = position + rng.normal(0.0, 0.003, num_bins)  # tracking noise, ~3 mm
    return (np.clip(position, 0.0, TRACK_LENGTH_M), np.concatenate(directions)[:num_bins],
            np.concatenate(traversals)[:num_bins])


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """(n,) Gaussian-filtered noise with unit standard deviation (before edge effects)."""
    kernel_norm = np.sqrt(2.0 * np.sqrt(np.pi) * sigma)  # std of filtered white noise is 1/this
    return gaussian_filter1d(rng.standard_normal(n), sigma) * kernel_norm


def place_cell_rates(rng: np.random.Generator, position: np.ndarray, direction: np.ndarray,
                     speed: np.ndarray, traversal: np.ndarray,
                     num_neurons: int) -> tuple[np.ndarray, dict]:
    """Firing rates of CA1 place cells on the track.

    Fields are Gaussian (sd 6-16 cm) with lognormal peak rates (about 15 Hz). Most
    cells prefer one running direction, as on real linear tracks, and fire mainly
    while the rat runs. Field strength varies from run to run (lognormal gain, the
    "excess variance" of real place cells). About 20 % of cells have no field here
    and fire at baseline; about 20 % of the others have a second, weaker field.

    Returns
    -------
    rates : (time, neurons) float64, Hz
    params : the place field parameters, each (neurons,)
    """
    centers = rng.uniform(0.0, TRACK_LENGTH_M, num_neurons)
    widths = rng.uniform(0.06, 0.16, num_neurons)
    peaks = np.clip(rng.lognormal(np.log(15.0), 0.5, num_neurons), 2.0, 40.0)
    peaks[rng.random(num_neurons) < 0.2] = 0.0
    # Some cells have a second, weaker field elsewhere on the track.
    second_centers = rng.uniform(0.0, TRACK_LENGTH_M, num_neurons)
    second_ratio = np.where(rng.random(num_neurons) < 0.2, rng.uniform(0.3, 0.8, num_neurons),
                            0.0)
    baselines = np.clip(rng.lognormal(np.log(0.1), 0.8, num_neurons), 0.01, 1.0)
    preferred = rng.integers(0, 2, num_neurons)
    other_gain = rng.uniform(0.0, 1.0, num_neurons) ** 2
    other_shift = rng.normal(0.0, 0.05, num_neurons)  # fields move a few cm between directions

    in_preferred = direction[:, None] == preferred[None, :]
    center = np.where(in_preferred, centers, centers + other_shift)
    gain = np.where(in_preferred, 1.0, other_gain)
    field = (np.exp(-0.5 * ((position[:, None] - center) / widths) ** 2)
             + second_ratio * np.exp(-0.5 * ((position[:, None] - second_centers) / widths) ** 2))
    running = np.clip(np.abs(speed) / 0.1, 0.0, 1.0)[:, None]
    run_gain = rng.lognormal(-0.5 * 0.8**2, 0.8, (int(traversal.max()) + 1, num_neurons))
    rates = baselines + peaks * gain * run_gain[traversal] * field * (0.2 + 0.8 * running)
    params = {"place_field_centers": centers, "place_field_widths": widths,
              "peak_rates": peaks, "second_field_centers": second_centers,
              "second_field_peak_rates": second_ratio * peaks, "baseline_rates": baselines,
              "preferred_direction": preferred, "other_direction_gain": other_gain}
    return rates, params


def _animal(animal: str | int) -> tuple[int, Animal]:
    names = list(ANIMALS)
    if isinstance(animal, (int, np.integer)) and 0 <= animal < len(names):
        return int(animal), ANIMALS[names[animal]]
    if animal in ANIMALS:
        return names.index(animal), ANIMALS[animal]
    raise ValueError(f"Unknown animal {animal!r}; choose one of {names} or an index below "
                     f"{len(names)}.")


@REGISTRY.register("synthetic-linear-track")
@REGISTRY.parametrize("synthetic-linear-track-{animal}", animal=list(ANIMALS))
def synthetic_linear_track(animal: str | int = "rat1", seed: int = 0,
                           num_neurons: int | None = None, duration: float = DEFAULT_DURATION_S,
                           bin_size: float = BIN_SIZE_S) -> Recording:
    """One animal's session.

    Parameters
    ----------
    animal
        Name (``"rat1"``..``"rat4"``) or index; sets the cell count (120, 48, 64, 80)
        and running habits.
    seed
        Non-negative; with the animal it fixes the session.
    num_neurons
        Overrides the animal's cell count.
    duration
        Seconds; ``duration / bin_size`` time bins.
    bin_size
        Seconds per bin.

    Returns
    -------
    Recording with ``neural`` (time, neurons) spike counts, ``continuous`` (time, 3)
    ``[position, right, left]``, ``discrete`` (time,) direction and ``latent`` (time, 2)
    ``[position, direction]``; ``metadata`` holds time, speed and place field parameters.
    """
    index, info = _animal(animal)
    num_neurons = info.num_neurons if num_neurons is None else int(num_neurons)
    if not bin_size > 0:
        raise ValueError(f"bin_size must be > 0 seconds, got {bin_size}.")
    check_size(duration / bin_size, num_neurons, f"synthetic-linear-track (duration={duration:g}"
               f" s, bin_size={bin_size:g} s)")
    num_bins = int(round(duration / bin_size))
    if num_bins < 2 or num_neurons < 1 or bin_size <= 0:
        raise ValueError(f"need duration/bin_size >= 2 bins, num_neurons >= 1 and bin_size > 0;"
                         f" got duration={duration}, bin_size={bin_size}, "
                         f"num_neurons={num_neurons}.")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    # The animal index joins the seed so that animals differ for the same seed.
    rng = np.random.default_rng([int(seed), index])
    position, direction, traversal = simulate_laps(rng, num_bins, info.run_speed, info.pause,
                                                   bin_size)
    speed = np.gradient(gaussian_filter1d(position, 2.0)) / bin_size
    rates, params = place_cell_rates(rng, position, direction, speed, traversal, num_neurons)
    counts = rng.poisson(rates * bin_size).astype(np.float32)
    right = (direction == 0).astype(np.float32)
    continuous = np.stack([position, right, 1.0 - right], axis=1)
    return Recording(
        neural=counts, continuous=continuous, discrete=direction,
        latent=np.stack([position, direction], axis=1).astype(np.float32),
        name=f"synthetic-linear-track-{info.name}",
        metadata={"animal": info.name, "seed": int(seed), "bin_size_s": bin_size,
                  "track_length_m": TRACK_LENGTH_M, "time_s": np.arange(num_bins) * bin_size,
                  "speed_m_s": speed, "traversal": traversal,
                  "latent_names": ["position", "direction"], **params},
    )


@REGISTRY.register("synthetic-linear-track-cohort")
def synthetic_linear_track_cohort(animals: Sequence[str | int] = tuple(ANIMALS), seed: int = 0,
                                  duration: float = DEFAULT_DURATION_S,
                                  bin_size: float = BIN_SIZE_S) -> RecordingSet:
    """Several animals, one session each, with different cell counts.

    Session ``i`` equals ``init("synthetic-linear-track", animal=animals[i], seed=seed)``.
    """
    sessions = [synthetic_linear_track(animal=a, seed=seed, duration=duration, bin_size=bin_size)
                for a in animals]
    return RecordingSet(sessions, name="synthetic-linear-track-cohort",
                        metadata={"seed": int(seed), "animals": [s.metadata["animal"]
                                                                 for s in sessions]})
