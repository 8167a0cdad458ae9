"""Train/validation splits of time: the one rule every layer uses to hold out data.

A contiguous split (rather than a random one) keeps temporally autocorrelated
neighbours of held-out samples out of the training set.
"""

from __future__ import annotations

import numpy as np

__all__ = ["block_split"]


def block_split(num_timesteps: int, valid_fraction: float, num_blocks: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``valid_fraction`` of each of ``num_blocks`` contiguous blocks.

    Returns
    -------
    train, valid : sorted int64 indices into ``range(num_timesteps)``
    """
    edges = np.linspace(0, num_timesteps, num_blocks + 1).round().astype(int)
    is_valid = np.zeros(num_timesteps, dtype=bool)
    for begin, end in zip(edges[:-1], edges[1:]):
        held = int(round((end - begin) * valid_fraction))
        if held:
            is_valid[end - held:end] = True
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
