"""Tests of ``cebra_pipe.sklearn.metrics.consistency_score``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cebra_pipe as cebra
from cebra_pipe.sklearn.metrics import consistency_score


def _rotation(dim: int, seed: int) -> np.ndarray:
    """Random orthogonal (dim, dim) matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def _latent_embedding(label: np.ndarray, seed: int, noise: float = 0.05) -> np.ndarray:
    """(time, 3) embedding that encodes a 1-D label in [0, 1], plus a little noise."""
    rng = np.random.default_rng(seed)
    angle = np.pi * label
    clean = np.stack([np.cos(angle), np.sin(angle), label ** 2], axis=1)
    return clean + noise * rng.normal(size=clean.shape)


@pytest.fixture
def base_embedding() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(500, 4))


# ---------------------------------------------------------------- between runs

def test_identical_runs_score_one(base_embedding):
    scores, pairs, ids = consistency_score([base_embedding] * 3, between="runs")
    np.testing.assert_allclose(scores, 1.0, atol=1e-9)
    assert scores.shape == (6,)
    np.testing.assert_array_equal(ids, [0, 1, 2])
    expected_pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    np.testing.assert_array_equal(pairs, expected_pairs)


@pytest.mark.parametrize("held_out", [None, 0.2])
def test_rotated_run_is_consistent(base_embedding, held_out):
    rotated = base_embedding @ _rotation(4, seed=1)
    assert not np.allclose(rotated, base_embedding)
    scores, _, _ = consistency_score([base_embedding, rotated], between="runs",
                                     held_out=held_out)
    assert np.all(scores > 0.99)


def test_rotated_run_with_noise_is_less_consistent(base_embedding):
    rng = np.random.default_rng(3)
    noisy = base_embedding @ _rotation(4, seed=2) + rng.normal(size=base_embedding.shape)
    scores, _, _ = consistency_score([base_embedding, noisy], between="runs")
    # Unit noise on unit-variance latents: about half the variance is explained.
    assert np.all((scores > 0.3) & (scores < 0.7))


@pytest.mark.parametrize("held_out", [None, 0.3])
def test_unrelated_runs_score_low(held_out):
    rng = np.random.default_rng(4)
    runs = [rng.normal(size=(1000, 3)) for _ in range(3)]
    scores, _, _ = consistency_score(runs, between="runs", held_out=held_out)
    assert np.all(scores < 0.2)


def test_runs_accept_tensors_and_different_dims(base_embedding):
    tensor = torch.tensor(base_embedding[:, :3] @ _rotation(3, seed=5), requires_grad=True)
    scores, _, _ = consistency_score([base_embedding[:, :3], tensor, base_embedding],
                                     between="runs")
    assert scores.shape == (6,)
    # A 3-D embedding predicts itself (rotated) perfectly and is predicted by the 4-D one.
    assert scores[0] > 0.99


def test_held_out_runs_score_on_later_time():
    # The map changes halfway through time: a map fitted on the first 80% fails on the rest.
    rng = np.random.default_rng(6)
    source = rng.normal(size=(1000, 2))
    target = source.copy()
    target[800:] = source[800:, ::-1]
    in_sample, _, _ = consistency_score([source, target], between="runs")
    held_out, _, _ = consistency_score([source, target], between="runs", held_out=0.2)
    assert held_out[0] < 0.2 < in_sample[0]


# ---------------------------------------------------------------- between datasets

def test_datasets_aligned_on_labels_are_consistent():
    rng = np.random.default_rng(7)
    label_a, label_b = rng.uniform(size=3000), rng.uniform(size=2000)
    embedding_a = _latent_embedding(label_a, seed=8)
    embedding_b = _latent_embedding(label_b, seed=9) @ _rotation(3, seed=10)
    scores, pairs, ids = consistency_score(
        [embedding_a, embedding_b], between="datasets", labels=[label_a, label_b],
        dataset_ids=["a", "b"], num_discretization_bins=20)
    assert np.all(scores > 0.95)
    np.testing.assert_array_equal(pairs, [["a", "b"], ["b", "a"]])
    np.testing.assert_array_equal(ids, ["a", "b"])


def test_datasets_default_ids_and_held_out():
    rng = np.random.default_rng(11)
    labels = [rng.uniform(size=2000) for _ in range(3)]
    embeddings = [_latent_embedding(label, seed=20 + i) for i, label in enumerate(labels)]
    scores, pairs, ids = consistency_score(embeddings, between="datasets", labels=labels,
                                           num_discretization_bins=25, held_out=0.2)
    np.testing.assert_array_equal(ids, [0, 1, 2])
    assert pairs.shape == (6, 2) and scores.shape == (6,)
    assert np.all(scores > 0.95)


def test_datasets_unrelated_to_labels_score_low():
    rng = np.random.default_rng(12)
    labels = [rng.uniform(size=3000) for _ in range(2)]
    embeddings = [rng.normal(size=(3000, 3)) for _ in range(2)]
    scores, _, _ = consistency_score(embeddings, between="datasets", labels=labels)
    assert np.all(scores < 0.2)


def test_datasets_column_labels_need_their_column():
    """A (time, 1) label is refused as by the reference; the column it names works."""
    rng = np.random.default_rng(13)
    label = rng.uniform(size=1000)
    embedding = _latent_embedding(label, seed=14)
    column = label[:, None]
    with pytest.raises(ValueError, match=r"got shape \(1000, 1\); .*labels\[0\]\[:, 0\]"):
        consistency_score([embedding, embedding], between="datasets", labels=[column, label],
                          num_discretization_bins=10)
    scores, _, _ = consistency_score([embedding, embedding], between="datasets",
                                     labels=[column[:, 0], label],
                                     num_discretization_bins=10)
    np.testing.assert_allclose(scores, 1.0, atol=1e-9)


# ---------------------------------------------------------------- guide

def test_guide_consistency_block():
    """The usage guide's consistency example, with synthetic embeddings for the fits."""
    rng = np.random.default_rng(15)
    continuous_label1 = rng.uniform(size=(1500, 3))
    continuous_label2 = rng.uniform(size=(1200, 3))
    fits = iter([_latent_embedding(continuous_label1[:, 0], seed=s) for s in range(3)])

    n_runs = 3
    dataset_ids = ["session1", "session2"]

    embeddings_runs = []
    embeddings_datasets, ids, labels = [], [], []
    for i in range(n_runs):
        embeddings_runs.append(next(fits))

    labels.append(continuous_label1[:, 0])
    embeddings_datasets.append(embeddings_runs[-1])

    embeddings_datasets.append(_latent_embedding(continuous_label2[:, 0], seed=99))
    labels.append(continuous_label2[:, 0])

    n_datasets = len(dataset_ids)

    # Between-runs
    scores_runs, pairs_runs, ids_runs = cebra.sklearn.metrics.consistency_score(embeddings=embeddings_runs,
                                                                                between="runs")
    assert scores_runs.shape == (n_runs**2 - n_runs, )
    assert pairs_runs.shape == (n_runs**2 - n_runs, 2)
    assert ids_runs.shape == (n_runs, )

    # Between-datasets, by aligning on the labels
    (scores_datasets,
        pairs_datasets,
        ids_datasets) = cebra.sklearn.metrics.consistency_score(embeddings=embeddings_datasets,
                                                                    labels=labels,
                                                                    dataset_ids=dataset_ids,
                                                                    between="datasets")
    assert scores_datasets.shape == (n_datasets**2 - n_datasets, )
    assert pairs_datasets.shape == (n_datasets**2 - n_datasets, 2)
    assert ids_datasets.shape == (n_datasets, )

    # Same latent, independent noise: consistent both ways.
    assert np.all(scores_runs > 0.9)
    assert np.all(scores_datasets > 0.9)


# ---------------------------------------------------------------- bad input

def test_runs_with_mismatched_lengths(base_embedding):
    with pytest.raises(ValueError, match="equal length"):
        consistency_score([base_embedding, base_embedding[:-1]], between="runs")


def test_datasets_with_mismatched_label_length(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match=r"Invalid labels\[1\]: 499 samples"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label[:-1]])


def test_datasets_with_wrong_number_of_labels(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match="Invalid labels: 1 label arrays for 2 embeddings"):
        consistency_score([base_embedding, base_embedding], between="datasets", labels=[label])


def test_datasets_with_nan_labels(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    bad = label.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"labels\[1\] contains NaN"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, bad])


def test_datasets_with_2d_labels(base_embedding):
    label = np.random.default_rng(0).uniform(size=(len(base_embedding), 2))
    with pytest.raises(NotImplementedError, match=r"Invalid labels\[0\]: must be 1-D") as err:
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label])
    assert isinstance(err.value, ValueError)  # and the reference's NotImplementedError


def test_datasets_with_text_labels(base_embedding):
    """Text labels are a TypeError and (as in the reference) a ValueError naming the dtype."""
    text = np.array(["left"] * len(base_embedding))
    with pytest.raises(TypeError, match=r"Invalid labels\[0\] dtype: must be numeric") as err:
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[text, text])
    assert isinstance(err.value, ValueError)


def test_datasets_without_labels(base_embedding):
    with pytest.raises(ValueError, match="needs labels"):
        consistency_score([base_embedding, base_embedding], between="datasets")


def test_datasets_with_wrong_number_of_ids(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match="one id per embedding"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label], dataset_ids=["a"])


def test_datasets_with_duplicate_ids(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match=r"Invalid dataset_ids: they must be unique, got "
                                         r"\['a', 'a'\] .*e.g. 'a-2' for a second recording"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label], dataset_ids=["a", "a"])


def test_datasets_with_empty_bin_names_dataset_and_bin(base_embedding):
    full = np.linspace(0, 1, len(base_embedding))
    gap = full.copy()
    gap[(gap > 0.3) & (gap < 0.8)] = 0.0  # nothing between 0.3 and 0.8 in dataset "s2"
    with pytest.raises(ValueError, match=r"dataset 's2' has no samples in 5 of 10 label bins "
                                         r"\(first: bin 3, .*none within 2 bins of bin 5 "
                                         r"\(labels 0.5 to 0.6\); use fewer bins"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[full, gap], dataset_ids=["s1", "s2"],
                          num_discretization_bins=10)


def test_datasets_empty_bin_takes_its_neighbours_with_a_warning():
    """A bin left empty by chance takes the samples next to it (as in the reference)."""
    label = np.linspace(0, 1, 1000)
    embedding = np.stack([label, label ** 2], axis=1)  # (time, 2), smooth in the label
    gap = (label > 0.5) & (label < 0.6)  # bin 5 of 10 empty in dataset "s2"
    with pytest.warns(UserWarning, match=r"dataset 's2' has no samples in 1 of 10 label bins "
                                         r"\(first: bin 5, labels 0.5 to 0.6\); each takes"):
        scores, _, _ = consistency_score([embedding, embedding[~gap]], between="datasets",
                                         labels=[label, label[~gap]], dataset_ids=["s1", "s2"],
                                         num_discretization_bins=10)
    # the filled bin is the mean of bins 4 and 6, near bin 5's own mean: still consistent
    assert np.all(scores > 0.99)


def test_datasets_with_constant_labels(base_embedding):
    label = np.ones(len(base_embedding))
    with pytest.raises(ValueError, match="same value"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label])


@pytest.mark.parametrize("bins", [1, 2.5, True])
def test_datasets_with_bad_bin_count(base_embedding, bins):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match="num_discretization_bins"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label], num_discretization_bins=bins)


def test_runs_reject_labels_and_ids(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match='No labels with between="runs"'):
        consistency_score([base_embedding, base_embedding], between="runs",
                          labels=[label, label])
    with pytest.raises(ValueError, match=r'No dataset IDs \(dataset_ids\) with between="runs"'):
        consistency_score([base_embedding, base_embedding], between="runs",
                          dataset_ids=["a", "b"])


@pytest.mark.parametrize(("between", "match"), [(None, "Missing between"),
                                                ("sessions", "Invalid between: must be"),
                                                ("RUNS", "Invalid between: must be")])
def test_unknown_between(base_embedding, between, match):
    with pytest.raises(ValueError, match=match):
        consistency_score([base_embedding, base_embedding], between=between)


@pytest.mark.parametrize("embeddings", [[], "single"])
def test_fewer_than_two_embeddings(base_embedding, embeddings):
    embeddings = [base_embedding] if embeddings == "single" else embeddings
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        consistency_score(embeddings, between="runs")


def test_single_2d_array_instead_of_list(base_embedding):
    with pytest.raises(ValueError, match="list of 2-D embeddings"):
        consistency_score(base_embedding, between="runs")


def test_embedding_with_nan(base_embedding):
    bad = base_embedding.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"embeddings\[1\] contains NaN"):
        consistency_score([base_embedding, bad], between="runs")


def test_one_dimensional_embedding(base_embedding):
    with pytest.raises(ValueError, match=r"embeddings\[1\] must be 2-D"):
        consistency_score([base_embedding, base_embedding[:, 0]], between="runs")


@pytest.mark.parametrize("held_out", [0.0, 1.0, -0.1, 1.5])
def test_held_out_out_of_range(base_embedding, held_out):
    with pytest.raises(ValueError, match="held_out"):
        consistency_score([base_embedding, base_embedding], between="runs", held_out=held_out)


def test_held_out_wrong_type(base_embedding):
    with pytest.raises(TypeError, match="held_out"):
        consistency_score([base_embedding, base_embedding], between="runs", held_out="0.2")


def test_held_out_leaving_too_few_bins(base_embedding):
    label = np.linspace(0, 1, len(base_embedding))
    with pytest.raises(ValueError, match="at least 2"):
        consistency_score([base_embedding, base_embedding], between="datasets",
                          labels=[label, label], num_discretization_bins=4, held_out=0.1)
