"""align_embeddings and the reference's module layout (cebra_pipe.integrations)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import cebra_pipe
from cebra_pipe.integrations.sklearn.helpers import align_embeddings


def _circle(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.sort(rng.uniform(0, 1, n))
    points = np.stack([np.cos(5 * label), np.sin(5 * label), label - 0.5], axis=1)
    return points, label


def test_align_puts_sessions_of_different_lengths_and_dims_on_common_bins():
    first, label_a = _circle(400, 0)
    second, label_b = _circle(250, 1)
    mixing = np.random.default_rng(2).normal(size=(3, 5))  # 5-D second embedding
    aligned = align_embeddings([first, torch.from_numpy(second @ mixing)],
                               [label_a, label_b], normalize=False, n_bins=20)
    assert aligned[0].shape[1] == 3 and aligned[1].shape[1] == 5
    assert len(aligned[0]) == len(aligned[1]) <= 20
    # Bin means of the same curve: the second is the first mapped by `mixing`, up to
    # the spread of labels within a bin.
    np.testing.assert_allclose(aligned[1], aligned[0] @ mixing, atol=0.15)
    normalized = align_embeddings([first, first], [label_a, label_a], n_bins=20)
    np.testing.assert_allclose(normalized[0], normalized[1])
    assert np.linalg.norm(normalized[0], axis=1).max() <= 1 + 1e-9


@pytest.mark.parametrize("call,match", [
    (lambda: align_embeddings([np.zeros((5, 2))], [np.zeros(4)]), "5 samples.*4"),
    (lambda: align_embeddings([np.zeros((5, 2))], []), "one label array per embedding"),
    (lambda: align_embeddings([np.ones((5, 2)), np.ones((5, 2))],
                              [np.zeros(5), np.ones(5)]), "do not overlap"),
    (lambda: align_embeddings([np.full((5, 2), np.nan)], [np.arange(5)]), "NaN"),
    (lambda: align_embeddings([np.zeros((5, 2))], [np.arange(5)], n_bins=0), "n_bins"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_reference_module_layout_resolves_to_cebra_pipe_objects():
    sk = importlib.import_module("cebra_pipe.integrations.sklearn")
    assert sk.cebra.CEBRA is cebra_pipe.CEBRA
    assert sk.metrics.infonce_loss is cebra_pipe.sklearn.metrics.infonce_loss
    assert sk.decoder.KNNDecoder is cebra_pipe.KNNDecoder
    assert issubclass(sk.decoder.L1LinearRegressor, sk.decoder.Decoder)
    plots = importlib.import_module("cebra_pipe.integrations.matplotlib")
    assert plots.plot_embedding is cebra_pipe.plot_embedding
    assert cebra_pipe.align_embeddings is align_embeddings
    assert sk.helpers.ensemble_embeddings is cebra_pipe.ensemble_embeddings
    assert cebra_pipe.data.ContinuousDataLoader.__name__ == "ContinuousDataLoader"
    assert "offset10-model" in cebra_pipe.CEBRA.supported_model_architectures("offset1*")


def test_utils_checks():
    utils = importlib.import_module("cebra_pipe.integrations.sklearn.utils")
    assert utils.check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="Unknown device"):
        utils.check_device("tpu")
    assert utils.check_input_array(np.zeros((4, 2)), min_samples=4).dtype == np.float32
    with pytest.raises(ValueError, match="3 sample.*minimum of 4"):
        utils.check_input_array(np.zeros((3, 2)), min_samples=4)
    with pytest.raises(ValueError, match="minimum of 10"):
        utils.check_label_array(torch.zeros(5), min_samples=10)
    model = cebra_pipe.CEBRA(max_iterations=2, batch_size=8, device="cpu")
    assert not utils.check_fitted(model)
    model.fit(np.random.default_rng(0).normal(size=(40, 3)).astype("float32"))
    assert utils.check_fitted(model)


def test_estimator_attributes_under_the_reference_names():
    rng = np.random.default_rng(0)
    sessions = [rng.normal(size=(40, n)).astype("float32") for n in (3, 5)]
    labels = [rng.normal(size=(40, 1)).astype("float32") for _ in sessions]
    multi = cebra_pipe.CEBRA(max_iterations=2, batch_size=8, device="cpu").fit(sessions, labels)
    assert multi.num_sessions == 2 and multi.n_features_ == [3, 5]
    single = cebra_pipe.CEBRA(max_iterations=2, batch_size=8, device="cpu").fit(sessions[0])
    assert single.num_sessions is None and single.n_features_ == 3
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        cebra_pipe.CEBRA().num_sessions
