"""ensemble_embeddings: rotate runs of the same samples onto the first and average."""

from __future__ import annotations

import numpy as np
import pytest

from cebra_pipe.data.helper import OrthogonalProcrustesAlignment, ensemble_embeddings


def _circle(n: int, seed: int) -> np.ndarray:
    label = np.sort(np.random.default_rng(seed).uniform(0, 1, n))
    return np.stack([np.cos(5 * label), np.sin(5 * label), label - 0.5], axis=1)


def test_ensemble_of_rotated_copies_is_the_original_direction():
    points = _circle(300, 3)
    rotation, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))
    average = ensemble_embeddings([points, points @ rotation], post_norm=True)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    # Each sample is paired with the mean of its top_k=5 time neighbours: the fitted
    # rotation is exact up to that smoothing.
    np.testing.assert_allclose(average, unit, atol=1e-3)
    # Time indices as labels pair the samples as the default does; joblib gives the same.
    again = ensemble_embeddings([points, points @ rotation],
                                labels=[np.arange(300), np.arange(300)], n_jobs=1)
    np.testing.assert_allclose(again, ensemble_embeddings([points, points @ rotation]))


@pytest.mark.parametrize("call,match", [
    (lambda: ensemble_embeddings([np.zeros((5, 2)), np.zeros((6, 2))]), "same samples"),
    (lambda: ensemble_embeddings([np.zeros((5, 2))] * 2, labels=[np.arange(5)]),
     "one label array per embedding"),
    (lambda: ensemble_embeddings([np.zeros((5, 2))] * 2, labels=[np.arange(5), np.arange(4)]),
     "label has 4 samples, its data has 5"),
    (lambda: ensemble_embeddings([np.full((5, 2), np.nan)]), "NaN"),
    (lambda: ensemble_embeddings([]), "non-empty"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_procrustes_alignment_pairs_sessions_of_different_lengths_by_label():
    rng = np.random.default_rng(6)
    label_ref, label = np.sort(rng.uniform(0, 1, 500)), np.sort(rng.uniform(0, 1, 300))
    curve = lambda y: np.stack([np.cos(4 * y), np.sin(4 * y), y], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    model = OrthogonalProcrustesAlignment(top_k=3, subsample=200)
    aligned = model.fit_transform(curve(label_ref), curve(label) @ rotation, label_ref, label)
    np.testing.assert_allclose(model.transform_ @ model.transform_.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(aligned, curve(label), atol=0.05)
    with pytest.raises(ValueError, match="not fitted"):
        OrthogonalProcrustesAlignment().transform(curve(label))
    with pytest.raises(ValueError, match="same number of dimensions, got 3 and 2"):
        model.fit(curve(label_ref), curve(label)[:, :2], label_ref, label)
    with pytest.raises(ValueError, match="top_k"):
        OrthogonalProcrustesAlignment(top_k=0).fit(curve(label_ref), curve(label),
                                                   label_ref, label)
    with pytest.raises(ValueError, match="Missing labels: give both ref_label and label"):
        model.fit(curve(label_ref), curve(label), label_ref, None)
    with pytest.raises(ValueError, match="500 and 300 samples, so they cannot be paired"):
        model.fit(curve(label_ref), curve(label))
    with pytest.raises(ValueError, match="Invalid reference data.*at least 2"):
        model.fit(curve(label_ref)[:1], curve(label), label_ref[:1], label)
    # A single sample to align: every reference sample pairs with it.
    assert model.fit_transform(curve(label_ref), curve(label)[:1], label_ref,
                               label[:1]).shape == (1, 3)
