"""Write the DeepLabCut example recording of config/dlc (seeded, about 0.6 MB).

A mouse explores a 60 x 60 cm open field for 150 s:

- ``data/pose.csv``: DeepLabCut output at 60 Hz in its multi-row-header CSV layout
  (scorer / bodyparts / coords, x and y in pixels at 8 px/cm, likelihood), with
  occlusions where the likelihood drops under 0.9 for 3 to 40 frames; the camera
  starts 1.5 s after the neural recording (``starting_time: 1.5`` in the config);
- ``data/neural.npz``: ``counts`` (3000, 48) spike counts of place cells in 50 ms bins
  and ``t`` (3000,) the bin centres in seconds on the neural clock.

    python config/dlc/make_fixture.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DURATION_S = 150.0
CAMERA_HZ = 60.0
CAMERA_DELAY_S = 1.5
NEURAL_BIN_S = 0.05
NUM_CELLS = 48
ARENA_CM = 60.0
PX_PER_CM = 8.0


def walk(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The animal's path: (samples,) times on the neural clock, (samples, 2) cm.

    A smooth random walk (Ornstein-Uhlenbeck velocity) reflected at the walls.
    """
    t = np.arange(0.0, DURATION_S, 1 / 240)
    velocity = np.zeros((len(t), 2))
    kicks = rng.normal(size=(len(t), 2))
    for i in range(1, len(t)):
        velocity[i] = 0.995 * velocity[i - 1] + 2.0 * kicks[i]
    position = ARENA_CM / 2 + np.cumsum(velocity, axis=0) / 240
    return t, np.abs(np.mod(position, 2 * ARENA_CM) - ARENA_CM)


def pose_table(t: np.ndarray, path: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """DeepLabCut table of nose and tailbase at 60 Hz (camera clock), with occlusions."""
    frames = np.arange(int((DURATION_S - CAMERA_DELAY_S) * CAMERA_HZ))
    frame_t = CAMERA_DELAY_S + frames / CAMERA_HZ
    nose = np.stack([np.interp(frame_t, t, path[:, k]) for k in range(2)], axis=1)
    heading = np.arctan2(*np.gradient(nose, axis=0)[:, ::-1].T)
    tail = nose - 6.0 * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    columns = pd.MultiIndex.from_product(
        [["DLC_resnet50_openfieldJan1shuffle1_200000"], ["nose", "tailbase"],
         ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"])
    data = np.empty((len(frames), 6))
    for j, part in enumerate((nose, tail)):
        likelihood = rng.uniform(0.93, 1.0, size=len(frames))
        for _ in range(25):  # occlusions of 3-40 frames
            start = rng.integers(0, len(frames) - 40)
            likelihood[start:start + rng.integers(3, 41)] = rng.uniform(0.05, 0.6)
        jitter = rng.normal(scale=0.15, size=part.shape)
        data[:, 3 * j:3 * j + 2] = np.round((part + jitter) * PX_PER_CM, 1)
        data[:, 3 * j + 2] = np.round(likelihood, 3)
    return pd.DataFrame(data, columns=columns, index=frames)


def neural_counts(t: np.ndarray, path: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(bins,) bin centres and (bins, cells) place-cell spike counts in 50 ms bins."""
    centres_t = (np.arange(int(DURATION_S / NEURAL_BIN_S)) + 0.5) * NEURAL_BIN_S
    position = np.stack([np.interp(centres_t, t, path[:, k]) for k in range(2)], axis=1)
    fields = rng.uniform(5, ARENA_CM - 5, size=(NUM_CELLS, 2))
    distance2 = ((position[:, None, :] - fields[None]) ** 2).sum(-1)
    rate_hz = 0.3 + 12.0 * np.exp(-distance2 / (2 * 8.0 ** 2))
    return centres_t, rng.poisson(rate_hz * NEURAL_BIN_S).astype(np.uint8)


def main(out: Path = Path(__file__).resolve().parent / "data") -> None:
    rng = np.random.default_rng(2024)
    t, path = walk(rng)
    centres_t, counts = neural_counts(t, path, rng)
    out.mkdir(parents=True, exist_ok=True)
    pose_table(t, path, rng).to_csv(out / "pose.csv")
    np.savez_compressed(out / "neural.npz", counts=counts, t=centres_t)


if __name__ == "__main__":
    main()
