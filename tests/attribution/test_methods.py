"""Tests for cebra_pipe.attribution: CEBRA's API, shapes, exactness, bounded batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cebra_pipe as cebra
from cebra_pipe import attribution
from cebra_pipe.data.datatypes import Offset

NEURONS, OUT, TIME = 12, 3, 240
JACOBIAN_KEYS = {"jf", "jf-convabs", "jf-inv-lsq", "jf-inv-svd", "jf-convabs-inv-lsq",
                 "jf-convabs-inv-svd", "time_inversion_lsq", "time_inversion_svd"}


class LinearWindowModel(nn.Module):
    """``out[d] = sum_{n,l} W[d, n, l] x[n, l]``: every method has a closed form."""

    num_input, num_output = 4, 2

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 4, 3, generator=torch.Generator()
                                               .manual_seed(1)))

    def get_offset(self) -> Offset:
        return Offset(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("dnl,bnl->bd", self.weight, x)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((TIME, NEURONS)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(data) -> cebra.CEBRA:
    return cebra.CEBRA(model_architecture="offset10-model", batch_size=64, max_iterations=10,
                       output_dimension=OUT, num_hidden_units=16, device="cpu",
                       random_state=0).fit(data)


def test_registry_has_cebras_method_names():
    assert cebra.attribution is attribution  # `import cebra_pipe as cebra; cebra.attribution`
    for name in ("jacobian-based", "jacobian-based-batched", "neuron-gradient",
                 "neuron-gradient-batched", "feature-ablation", "feature-ablation-batched",
                 "integrated-gradients", "integrated-gradients-batched"):
        assert attribution.is_registered(name)
    with pytest.raises(ValueError, match="jacobian-based"):
        attribution.init("jacobian-base", model=None, input_data=None)


def test_fitted_offset_model_gives_cebras_keys_and_shapes(fitted, data):
    method = attribution.init("jacobian-based", model=fitted, input_data=data,
                              output_dimension=OUT)
    result = method.compute_attribution_map()
    assert set(result) == JACOBIAN_KEYS
    samples = TIME - len(fitted.offset_) + 1  # every window inside the recording
    for key in JACOBIAN_KEYS - {"time_inversion_lsq", "time_inversion_svd"}:
        assert result[key].shape == (samples, OUT, NEURONS), key
        assert np.isfinite(result[key]).all()
    assert result["time_inversion_svd"] >= 0


def test_num_samples_are_seeded(fitted, data):
    def draw(seed):
        return attribution.init("jacobian-based", model=fitted, input_data=data,
                                num_samples=50, seed=seed).compute_attribution_map()["jf"]

    first, again, other = draw(3), draw(3), draw(4)
    assert first.shape == (50, OUT, NEURONS)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_jacobian_matches_finite_differences_and_neuron_gradient(fitted, data):
    encoder = attribution.encoder_of(fitted).eval()
    method = attribution.init("jacobian-based", model=encoder, input_data=data, num_samples=4)
    jac = method.compute_attribution_map()["jf"] * len(fitted.offset_)  # undo mean over lags
    window = torch.from_numpy(data).unfold(0, len(fitted.offset_), 1)
    index = method.indices - fitted.offset_.left
    eps = 1e-2
    for sample, row in enumerate(index):
        x = window[row].double()
        numeric = torch.zeros(OUT, NEURONS)
        for neuron in range(NEURONS):
            bump = torch.zeros_like(x)
            bump[neuron] = eps  # every lag at once: the lag-summed Jacobian
            with torch.no_grad():
                plus = encoder.double()((x + bump)[None]).reshape(-1)
                minus = encoder.double()((x - bump)[None]).reshape(-1)
            numeric[:, neuron] = ((plus - minus) / (2 * eps)).float()
        encoder.float()
        np.testing.assert_allclose(jac[sample], numeric.numpy(), atol=2e-3)
    gradient = attribution.init("neuron-gradient", model=encoder, input_data=data,
                                num_samples=4).compute_attribution_map()
    np.testing.assert_allclose(gradient["neuron-gradient"] * len(fitted.offset_), jac,
                               atol=1e-5)
    assert "neuron-gradient-inv-svd" in gradient
    batched = attribution.init("neuron-gradient-batched", model=encoder, input_data=data,
                               num_samples=4).compute_attribution_map()
    assert set(batched) == {"neuron-gradient", "neuron-gradient-convabs"}


def test_pseudo_inverse_methods_agree_and_satisfy_moore_penrose():
    maps = torch.randn(5, 3, 9, dtype=torch.float64)
    svd = attribution.pseudo_inverse(maps, "svd").transpose(1, 2)
    lsq = attribution.pseudo_inverse(maps, "lsq").transpose(1, 2)
    torch.testing.assert_close(svd, lsq)
    torch.testing.assert_close(maps @ svd @ maps, maps)
    torch.testing.assert_close(svd @ maps @ svd, svd)
    with pytest.raises(ValueError, match="inverse method"):
        attribution.pseudo_inverse(maps, "qr")


def test_inverse_methods_can_be_chosen(fitted, data):
    method = attribution.init("jacobian-based", model=fitted, input_data=data, num_samples=9)
    result = method.compute_attribution_map(inverse_methods=("svd",))
    assert set(result) == {"jf", "jf-convabs", "jf-inv-svd", "jf-convabs-inv-svd",
                           "time_inversion_svd"}
    with pytest.raises(ValueError, match="inverse_methods"):
        method.compute_attribution_map(inverse_methods=("pinv",))


def test_normalised_embedding_inverse_stays_finite_and_small(fitted, data):
    # A cosine embedding's Jacobian has rank out - 1; its rounding noise must not be
    # inverted into huge values.
    result = attribution.init("jacobian-based", model=fitted, input_data=data,
                              num_samples=20).compute_attribution_map()
    assert np.abs(result["jf-inv-svd"]).max() < 1e4


def test_mean_aggregate_streams_the_same_result(fitted, data):
    method = attribution.init("jacobian-based", model=fitted, input_data=data)
    full = method.compute_attribution_map(batch_size=1000)
    streamed = method.compute_attribution_map(batch_size=17, aggregate="mean")
    assert set(streamed) == set(full)
    for key, value in full.items():
        if key.startswith("time_"):
            continue
        assert streamed[key].shape == (OUT, NEURONS)
        np.testing.assert_allclose(streamed[key], value.mean(0), rtol=1e-4, atol=1e-6)
    absolute = method.compute_attribution_map(batch_size=50, aggregate="abs-mean")
    np.testing.assert_allclose(absolute["jf-inv-svd"], np.abs(full["jf-inv-svd"]).mean(0),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="aggregate"):
        method.compute_attribution_map(aggregate="max")


def test_linear_model_closed_forms():
    model = LinearWindowModel()
    x = np.random.default_rng(1).standard_normal((30, 4)).astype(np.float32)
    weight = model.weight.detach().numpy()
    windows = torch.from_numpy(x).unfold(0, 3, 1).numpy()  # (28, neurons, lags)
    contribution = np.einsum("dnl,bnl->bdnl", weight, windows)
    jac = attribution.init("jacobian-based", model=model, input_data=x).compute_attribution_map()
    np.testing.assert_allclose(jac["jf"], np.broadcast_to(weight.mean(-1), (28, 2, 4)),
                               atol=1e-6)
    ablation = attribution.init("feature-ablation", model=model, input_data=x
                                ).compute_attribution_map(perturbations_per_eval=5)
    np.testing.assert_allclose(ablation["feature-ablation"], contribution.mean(-1), atol=1e-5)
    np.testing.assert_allclose(ablation["feature-ablation-convabs"],
                               np.abs(contribution).mean(-1), atol=1e-5)
    integrated = attribution.init("integrated-gradients", model=model, input_data=x
                                  ).compute_attribution_map(n_steps=3)
    np.testing.assert_allclose(integrated["integrated-gradients"], contribution.mean(-1),
                               atol=1e-5)
    with pytest.raises(TypeError, match="unknown options"):
        attribution.init("jacobian-based", model=model, input_data=x
                         ).compute_attribution_map(n_steps=3)


def test_integrated_gradients_completeness_on_a_trained_encoder(fitted, data):
    # Sum of attributions = f(x) - f(baseline) (up to the quadrature error).
    encoder = attribution.encoder_of(fitted)
    method = attribution.init("integrated-gradients", model=encoder, input_data=data,
                              num_samples=5)
    result = method.compute_attribution_map(n_steps=64)
    window = torch.from_numpy(data).unfold(0, len(fitted.offset_), 1)[
        method.indices - fitted.offset_.left]
    with torch.no_grad():
        delta = encoder.eval()(window) - encoder(torch.zeros_like(window))
    np.testing.assert_allclose(result["integrated-gradients"].sum(-1) * len(fitted.offset_),
                               delta.numpy(), atol=2e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_data": np.full((50, NEURONS), np.nan, np.float32)}, "NaN"),
    ({"input_data": np.zeros((50, NEURONS + 1), np.float32)}, "neurons"),
    ({"input_data": np.zeros((5, NEURONS), np.float32)}, "receptive field"),
    ({"output_dimension": OUT + 1}, "output_dimension"),
    ({"num_samples": 10_000}, "num_samples"),
])
def test_bad_input_is_named(fitted, data, kwargs, match):
    args = {"model": fitted, "input_data": data, **kwargs}
    with pytest.raises(ValueError, match=match):
        attribution.init("jacobian-based", **args)


def test_multi_session_model_needs_session_id(data):
    model = cebra.CEBRA(model_architecture="offset1-model", batch_size=32, max_iterations=2,
                        output_dimension=2, device="cpu", random_state=0)
    model.fit([data, data[:, :5]], [data[:, 0], data[:, 0]])
    with pytest.raises(ValueError, match="session_id"):
        attribution.init("jacobian-based", model=model, input_data=data)
    result = attribution.init("jacobian-based", model=model, input_data=data[:, :5],
                              session_id=1, num_samples=7).compute_attribution_map()
    assert result["jf"].shape == (7, 2, 5)
    with pytest.raises(TypeError, match="offset model"):
        attribution.init("jacobian-based", model=object(), input_data=data)


def test_roc_auc_and_latent_map():
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], bool)
    assert attribution.attribution_roc_auc(truth * 2.0 + 0.1, truth) == 1.0
    assert attribution.attribution_roc_auc(-(truth * 1.0), truth) == 0.0
    with pytest.raises(ValueError, match="shape"):
        attribution.attribution_roc_auc(np.zeros((4, 3)), truth)
    with pytest.raises(ValueError, match="both"):
        attribution.attribution_roc_auc(np.zeros((4, 2)), np.ones((4, 2)))
    # Latents mixed linearly into the embedding: J^+ = J_g L^-1, so the aligned map
    # gives back J_g.
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((500, 2))
    mixing = np.array([[2.0, 1.0], [-1.0, 1.0]])
    embedding = latents @ mixing.T + 3.0
    jg = truth * rng.uniform(1, 2, truth.shape)
    inverse = (jg @ np.linalg.inv(mixing)).T  # (out, neurons)
    np.testing.assert_allclose(attribution.latent_map(inverse, embedding, latents), jg,
                               atol=1e-8)
    with pytest.raises(ValueError, match="time axis"):
        attribution.latent_map(inverse, embedding[:10], latents)
