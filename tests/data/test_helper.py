"""ensemble_embeddings: rotate runs of the same samples onto the first and average."""

from __future__ import annotations

import numpy as np
import pytest

from cebra_pipe.data.helper import ensemble_embeddings


def _circle(n: int, seed: int) -> np.ndarray:
    label = np.sort(np.random.default_rng(seed).uniform(0, 1, n))
    return np.stack([np.cos(5 * label), np.sin(5 * label), label - 0.5], axis=1)


def test_ensemble_of_rotated_copies_is_the_original_direction():
    points = _circle(300, 3)
    rotation, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))
    average = ensemble_embeddings([points, points @ rotation], post_norm=True)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    np.testing.assert_allclose(average, unit, atol=1e-6)
    shuffled = np.random.default_rng(5).permutation(300)
    again = ensemble_embeddings([points, (points @ rotation)[shuffled]],
                                labels=[np.arange(300), shuffled])
    np.testing.assert_allclose(again, points, atol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: ensemble_embeddings([np.zeros((5, 2)), np.zeros((6, 2))]), "same samples"),
    (lambda: ensemble_embeddings([np.zeros((5, 2))], labels=[np.arange(4)]), "one index"),
    (lambda: ensemble_embeddings([np.full((5, 2), np.nan)]), "NaN"),
    (lambda: ensemble_embeddings([]), "non-empty"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
