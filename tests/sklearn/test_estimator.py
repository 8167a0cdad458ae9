"""The scikit-learn estimator :class:`cebra_pipe.CEBRA`: parameters, training modes,
multi-session, partial_fit, adapt, determinism, transform, fitted attributes,
training options (verbose, callbacks, temperature, distance, conditionals) and bad
input. Persistence and checkpoints are in ``test_estimator_persistence.py``,
scikit-learn's estimator checks in ``test_estimator_sklearn_checks.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import cebra_pipe as cebra
from cebra_pipe import CEBRA
from cebra_pipe.data import multi_session, single_session
from cebra_pipe.models import criterions
from cebra_pipe.sklearn.estimator import SessionIdError
from cebra_pipe.sklearn.inputs import split_labels
from cebra_pipe.solver import MultiSessionSolver, SingleSessionHybridSolver, SingleSessionSolver

# Small and quick: a few steps on a few hundred samples, on the CPU.
FAST = dict(max_iterations=5, batch_size=32, device="cpu", random_state=0)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared, busy CPU: one intra-op thread is much faster than
    oversubscribed threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_data(T: int = 200, neurons: int = 10, seed: int = 0):
    """Neural data driven by a circular latent, its continuous and discrete labels."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6 * np.pi, T)
    latent = np.stack([np.sin(t), np.cos(t)], axis=1)
    weights = rng.normal(size=(2, neurons))
    neural = np.tanh(2 * latent @ weights) + 0.1 * rng.normal(size=(T, neurons))
    continuous = (latent + 0.05 * rng.normal(size=latent.shape)).astype(np.float32)
    discrete = (np.floor(t / np.pi) % 3).astype(np.int64)
    return neural.astype(np.float32), continuous, discrete


@pytest.fixture(scope="module")
def data():
    return make_data()


# --------------------------------------------------------------------------------------
# Constructor and scikit-learn conventions
# --------------------------------------------------------------------------------------

REFERENCE_DEFAULTS = dict(
    model_architecture="offset1-model", device="cuda_if_available", criterion="infonce",
    distance="cosine", conditional=None, temperature=1.0, temperature_mode="constant",
    min_temperature=0.1, time_offsets=1, delta=None, max_iterations=10000,
    max_adapt_iterations=500, batch_size=None, learning_rate=3e-4, optimizer="adam",
    output_dimension=8, verbose=False, num_hidden_units=32, pad_before_transform=True,
    hybrid=False,
    optimizer_kwargs=(("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
                      ("amsgrad", False)),
    random_state=None)


# Parameters cebra_pipe adds; each defaults to "off", so a reference script behaves the same.
ADDED_DEFAULTS = dict(jacobian_regularization=None)


def test_default_parameters_are_the_reference_defaults():
    assert CEBRA().get_params() == {**REFERENCE_DEFAULTS, **ADDED_DEFAULTS}


def test_parameters_are_stored_as_given_and_validated_in_fit(data):
    neural, _, _ = data
    weird = dict(max_iterations="many", batch_size=-3, model_architecture="nope",
                 distance="manhattan", temperature=-1, optimizer="sgd")
    model = CEBRA(**weird)  # no validation in __init__
    assert {k: model.get_params()[k] for k in weird} == weird
    model.set_params(distance="cosine")  # nor in set_params
    with pytest.raises(ValueError, match="max_iterations"):
        model.fit(neural)


@pytest.mark.parametrize("params, match", [
    (dict(max_iterations=0), "max_iterations must be a positive integer"),
    (dict(batch_size=0), "batch_size must be a positive integer or None"),
    (dict(output_dimension=1.5), "output_dimension must be a positive integer"),
    (dict(time_offsets=True), "time_offsets must be a positive integer"),
    (dict(max_adapt_iterations=-1), "max_adapt_iterations must be an integer >= 0"),
    (dict(criterion="nce"), "criterion must be one of"),
    (dict(distance="manhattan"), "distance must be one of"),
    (dict(temperature_mode="learned"), "temperature_mode must be one of"),
    (dict(optimizer="sgd"), "optimizer must be one of"),
    (dict(conditional="poisson"), "conditional must be None, 'time', 'time_delta' or 'delta'"),
    (dict(temperature=0), "temperature must be a finite number > 0"),
    (dict(learning_rate=-1e-3), "learning_rate must be a finite number > 0"),
    (dict(temperature_mode="auto", min_temperature=0),
     "min_temperature must be a finite number > 0"),
    (dict(device="tpu"), "Unknown device 'tpu'"),
])
def test_bad_parameters_raise_in_fit(data, params, match):
    neural, _, _ = data
    model = CEBRA(**{**FAST, **params})
    with pytest.raises(ValueError, match=match):
        model.fit(neural)


def test_get_params_set_params_clone():
    model = CEBRA(max_iterations=7, output_dimension=3, random_state=1)
    assert model.set_params(batch_size=64) is model
    assert model.get_params()["batch_size"] == 64
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert not hasattr(copy, "solver_")


def test_clone_of_a_fitted_model_is_unfitted(data):
    neural, _, _ = data
    model = CEBRA(**FAST).fit(neural)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(neural)


def test_repr_shows_only_changed_parameters():
    assert repr(CEBRA()) == "CEBRA()"
    assert (repr(CEBRA(max_iterations=5, random_state=0))
            == "CEBRA(max_iterations=5, random_state=0)")
    # Defaults given explicitly are not shown (the guide's ``device=...``, ``verbose=...``).
    assert repr(CEBRA(output_dimension=8, verbose=False, device="cuda_if_available")) == "CEBRA()"
    assert repr(CEBRA(batch_size=1024, learning_rate=0.001, max_iterations=10,
                      model_architecture="offset10-model", time_offsets=10)) == (
        "CEBRA(batch_size=1024, learning_rate=0.001, max_iterations=10,\n"
        "      model_architecture='offset10-model', time_offsets=10)")


def test_unfitted_model_refuses_transform_and_fitted_attributes(data):
    neural, _, _ = data
    model = CEBRA(**FAST)
    with pytest.raises(NotFittedError):
        model.transform(neural)
    for attribute in ("state_dict_", "model_", "solver_", "n_features_in_"):
        assert not hasattr(model, attribute)
    with pytest.raises(NotFittedError, match="adapt=True needs a fitted model"):
        model.fit(neural, adapt=True)


# --------------------------------------------------------------------------------------
# Training modes
# --------------------------------------------------------------------------------------

def _loader_for(model, neural, *labels):
    """The loader ``model`` builds for this data (after it was fitted on the same kind)."""
    return model.make_loader([split_labels(np.asarray(neural, np.float32), labels)], 1, seed=0)


@pytest.mark.parametrize("mode", [
    "time", "continuous", "continuous-2", "discrete", "mixed", "mixed-reversed", "hybrid",
    "time-full-batch", "continuous-full-batch"])
def test_training_modes(data, mode):
    neural, continuous, discrete = data
    labels = {"time": (), "time-full-batch": (), "continuous": (continuous,),
              "continuous-full-batch": (continuous,),
              "continuous-2": (continuous[:, 0], continuous), "discrete": (discrete,),
              "mixed": (continuous, discrete), "mixed-reversed": (discrete, continuous),
              "hybrid": (continuous,)}[mode]
    params = dict(FAST, hybrid=mode == "hybrid")
    if mode.endswith("full-batch"):
        params["batch_size"] = None
    model = CEBRA(**params).fit(neural, *labels)

    kind = mode.split("-")[0].replace("hybrid", "continuous")
    assert model.label_kind_ == kind
    expected_dims = {"continuous-2": 3, "time": None, "time-full-batch": None,
                     "discrete": None}.get(mode, 2)
    assert model.label_dims_ == expected_dims
    expected_loader = {
        "time": single_session.ContinuousDataLoader,
        "continuous": single_session.ContinuousDataLoader,
        "discrete": single_session.DiscreteDataLoader,
        "mixed": single_session.MixedDataLoader,
        "hybrid": single_session.HybridDataLoader}[mode.split("-")[0]]
    loader = _loader_for(model, neural, *labels)
    assert type(loader) is expected_loader
    assert loader.batch_size == params["batch_size"]
    if mode.startswith("continuous"):
        assert loader.conditional == "time_delta"
    if mode.startswith("time"):
        assert loader.conditional == "time"
    assert type(model.solver_) is (SingleSessionHybridSolver if mode == "hybrid"
                                   else SingleSessionSolver)

    embedding = model.transform(neural)
    assert embedding.shape == (len(neural), 8) and embedding.dtype == np.float32
    assert np.isfinite(embedding).all()
    assert len(model.state_dict_["loss"]) == params["max_iterations"]


def test_two_float_label_arrays_are_concatenated_column_wise(data):
    neural, continuous, _ = data
    model = CEBRA(**FAST).fit(neural, continuous[:, 0], continuous[:, 1:], continuous)
    assert model.label_dims_ == 1 + 1 + 2
    loader = _loader_for(model, neural, continuous[:, 0], continuous[:, 1:], continuous)
    np.testing.assert_array_equal(
        loader.dataset.continuous.cpu().numpy(),
        np.concatenate([continuous[:, :1], continuous[:, 1:], continuous], axis=1))


def test_labels_are_accepted_as_lists_tensors_and_pandas(data):
    import pandas as pd

    neural, continuous, discrete = data
    reference = CEBRA(**FAST).fit(neural, continuous, discrete).transform(neural)
    for X, c, d in [(neural.tolist(), continuous.tolist(), discrete.tolist()),
                    (torch.from_numpy(neural), torch.from_numpy(continuous),
                     torch.from_numpy(discrete)),
                    (pd.DataFrame(neural), pd.DataFrame(continuous), pd.Series(discrete))]:
        embedding = CEBRA(**FAST).fit(X, c, d).transform(X)
        np.testing.assert_array_equal(embedding, reference)


def test_fit_with_none_label_is_time_contrastive(data):
    """``fit(X, None)`` (what a Pipeline passes for ``y=None``) means no labels."""
    neural, _, _ = data
    model = CEBRA(**FAST).fit(neural, None)
    assert model.label_kind_ == "time"
    np.testing.assert_array_equal(model.transform(neural),
                                  CEBRA(**FAST).fit(neural).transform(neural))


def test_pipeline_with_decoder(data):
    from sklearn.pipeline import make_pipeline

    neural, _, discrete = data
    pipe = make_pipeline(CEBRA(**FAST), cebra.KNNDecoder(n_neighbors=3))
    pipe.fit(neural, discrete)
    assert pipe.predict(neural).shape == (len(neural),)


def test_full_batch_is_refused_for_discrete_labels(data):
    neural, continuous, discrete = data
    for labels in [(discrete,), (continuous, discrete)]:
        with pytest.raises(ValueError, match="batch_size=None .* need a batch_size"):
            CEBRA(**{**FAST, "batch_size": None}).fit(neural, *labels)


def test_hybrid_needs_continuous_labels(data):
    neural, _, discrete = data
    for labels in [(), (discrete,)]:
        with pytest.raises(ValueError, match="hybrid=True needs .* continuous labels"):
            CEBRA(**FAST, hybrid=True).fit(neural, *labels)


def test_refit_starts_from_scratch(data):
    neural, continuous, _ = data
    model = CEBRA(**FAST).fit(neural)
    first = model.transform(neural)
    model.fit(neural, continuous)
    assert model.label_kind_ == "continuous"
    assert len(model.state_dict_["loss"]) == FAST["max_iterations"]
    model.fit(neural)
    np.testing.assert_array_equal(model.transform(neural), first)


# --------------------------------------------------------------------------------------
# Multi-session
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sessions():
    a = make_data(T=150, neurons=10, seed=1)
    b = make_data(T=120, neurons=6, seed=2)
    return a, b


@pytest.mark.parametrize("kind", ["time", "continuous", "discrete"])
def test_multi_session_training(sessions, kind):
    (xa, ca, da), (xb, cb, db) = sessions
    labels = {"time": (), "continuous": ([ca, cb],), "discrete": ([da, db],)}[kind]
    # Label-free multi-session training is opt-in (conditional="time").
    conditional = "time" if kind == "time" else None
    model = CEBRA(**FAST, conditional=conditional).fit([xa, xb], *labels)
    assert model.num_sessions_ == 2
    assert model.n_features_in_ == [10, 6]
    assert model.label_kind_ == kind
    assert isinstance(model.solver_, MultiSessionSolver)
    assert isinstance(model.model_, torch.nn.ModuleList) and len(model.model_) == 2
    loader = model.make_loader([split_labels(xa, tuple(l[0] for l in labels)),
                                split_labels(xb, tuple(l[1] for l in labels))], 1, seed=0)
    assert type(loader) is (multi_session.DiscreteMultiSessionDataLoader if kind == "discrete"
                            else multi_session.ContinuousMultiSessionDataLoader)
    assert loader.conditional == {"time": "time", "continuous": "time_delta",
                                  "discrete": "discrete"}[kind]
    assert model.transform(xa, session_id=0).shape == (150, 8)
    assert model.transform(xb, session_id=1).shape == (120, 8)
    assert len(model.state_dict_["loss"]) == FAST["max_iterations"]


def test_multi_session_transform_needs_a_valid_session_id(sessions):
    (xa, ca, _), (xb, cb, _) = sessions
    model = CEBRA(**FAST).fit([xa, xb], [ca, cb])
    with pytest.raises(SessionIdError, match="No session_id provided.*trained on 2 sessions"):
        model.transform(xa)
    for bad in (2, -1):
        # a ValueError, and a RuntimeError as the reference raises
        with pytest.raises(RuntimeError, match=f"Invalid session_id={bad}.*2 sessions"):
            model.transform(xa, session_id=bad)
    with pytest.raises(ValueError, match="X has 10 features, but CEBRA is expecting 6 .*"
                                         "session 1"):
        model.transform(xa, session_id=1)


def test_adapt_to_a_list_of_sessions_is_refused(data):
    neural, continuous, _ = data
    model = CEBRA(**FAST).fit(neural, continuous)
    with pytest.raises(NotImplementedError, match="multisession adapt"):
        model.fit([neural, neural], [continuous, continuous], adapt=True)
    with pytest.raises(ValueError, match=r"Invalid labels: .*one per session"):
        model.fit(neural, [continuous, continuous[:-1]])
    with pytest.raises(ValueError, match=r"Invalid number of samples: y\[0\] has"):
        model.fit(neural, continuous[:-1])
    with pytest.raises(ValueError, match=r"X has shape \(\d+, 3\)"):
        model.transform(neural[:, :3])


@pytest.mark.parametrize("architecture", ["supervised10-model", "supervised1-model"])
def test_classifier_architectures_are_refused_by_name(data, architecture):
    neural, _, _ = data
    with pytest.raises(ValueError, match=f"model_architecture='{architecture}' is a classifier"):
        CEBRA(**FAST, model_architecture=architecture).fit(neural)


@pytest.mark.parametrize("architecture", ["offset4-model-2x-subsample",
                                          "offset1-model-mse-resnet-2layers-tanh",
                                          "offset36-model-more-dropout"])
def test_reference_model_names_train_and_embed(data, architecture):
    neural, _, _ = data
    model = CEBRA(**FAST, model_architecture=architecture).fit(neural)
    embedding = model.transform(neural)
    assert embedding.shape == (len(neural), model.output_dimension)
    assert np.isfinite(embedding).all()


def test_single_session_model_rejects_other_session_ids(data):
    neural, _, _ = data
    model = CEBRA(**FAST).fit(neural)
    np.testing.assert_array_equal(model.transform(neural, session_id=0), model.transform(neural))
    with pytest.raises(ValueError, match="Invalid session_id=1.*single session"):
        model.transform(neural, session_id=1)
    with pytest.raises(TypeError, match="integer session index"):
        model.transform(neural, session_id="0")


@pytest.mark.parametrize("labels, match", [
    (([np.zeros(150, np.float32) + 0.5],), "2 sessions but label argument 0 has 1 entries"),
    (("not-a-list",), "label argument 0 must be a list with one array per session"),
    ((np.zeros((2, 150)),), "label argument 0 must be a list"),
    (([np.arange(150), np.linspace(0, 1, 120)],),
     "All sessions must have the same kind of labels"),
    (([np.linspace(0, 1, 150), np.linspace(0, 1, 120)], [np.arange(150), np.arange(120)]),
     "one set of continuous labels or one discrete label, not both"),
    (([np.linspace(0, 1, 150), np.random.rand(120, 2)],),
     "same number of columns in every session"),
    (([np.linspace(0, 1, 149), np.linspace(0, 1, 120)],),
     r"y\[session 0\]\[0\] has 149 samples but the neural data has 150"),
])
def test_multi_session_bad_labels(sessions, labels, match):
    (xa, _, _), (xb, _, _) = sessions
    with pytest.raises(ValueError, match=match):
        CEBRA(**FAST).fit([xa, xb], *labels)


def test_multi_session_needs_a_batch_size(sessions):
    (xa, ca, _), (xb, cb, _) = sessions
    with pytest.raises(ValueError, match="Multi-session training needs a batch_size") as err:
        CEBRA(**{**FAST, "batch_size": None}).fit([xa, xb], [ca, cb])
    assert isinstance(err.value, NotImplementedError)  # as the reference raises


def test_list_that_is_not_sessions_is_rejected(data):
    neural, _, _ = data
    with pytest.raises(ValueError, match="list of sessions, but not every entry is a 2-D"):
        CEBRA(**FAST).fit([neural, neural[:, 0]])


# --------------------------------------------------------------------------------------
# partial_fit
# --------------------------------------------------------------------------------------

def test_partial_fit_continues_from_the_current_parameters(data):
    neural, _, _ = data
    model = CEBRA(**FAST).partial_fit(neural)
    first_loss = model.state_dict_["loss"].clone()
    weights = {k: v.clone() for k, v in model.model_.state_dict().items()}
    once = model.transform(neural)
    np.testing.assert_array_equal(once, CEBRA(**FAST).fit(neural).transform(neural))

    model.partial_fit(neural)
    loss = model.state_dict_["loss"]
    assert len(loss) == 2 * FAST["max_iterations"]
    torch.testing.assert_close(loss[:FAST["max_iterations"]], first_loss)  # history kept
    assert any(not torch.equal(weights[k], v) for k, v in model.model_.state_dict().items())
    assert model.state_dict_["optimizer"]["state"][0]["step"] == 2 * FAST["max_iterations"]
    assert not np.array_equal(model.transform(neural), once)


def test_partial_fit_trains_on_the_new_data():
    """The second call learns from the data it is given (the reference ignores it)."""
    from cebra_pipe.sklearn.metrics import infonce_loss

    noise = np.random.default_rng(1).normal(size=(300, 10)).astype(np.float32)
    structured, _, _ = make_data(T=300, neurons=10)
    params = dict(FAST, max_iterations=30, batch_size=64, learning_rate=1e-2)

    model = CEBRA(**params).partial_fit(noise)
    before = infonce_loss(model, structured, num_batches=5)
    model.partial_fit(structured)
    after = infonce_loss(model, structured, num_batches=5)

    control = CEBRA(**params).partial_fit(noise).partial_fit(noise)
    on_old_data = infonce_loss(control, structured, num_batches=5)

    assert after < before - 0.1
    assert after < on_old_data - 0.1
    assert not np.array_equal(model.transform(structured), control.transform(structured))


def test_partial_fit_with_labels_and_multi_session(sessions):
    (xa, ca, da), (xb, _, db) = sessions
    model = CEBRA(**FAST).partial_fit([xa, xb], [da, db]).partial_fit([xa, xb], [da, db])
    assert len(model.state_dict_["loss"]) == 2 * FAST["max_iterations"]
    single = CEBRA(**FAST).partial_fit(xa, ca).partial_fit(xa[::-1].copy(), ca[::-1].copy())
    assert len(single.state_dict_["loss"]) == 2 * FAST["max_iterations"]


def test_partial_fit_refuses_incompatible_data(data, sessions):
    neural, continuous, discrete = data
    model = CEBRA(**FAST).partial_fit(neural, continuous)
    with pytest.raises(ValueError, match="X has 4 features, but CEBRA is expecting 10 features"):
        model.partial_fit(neural[:, :4], continuous)
    with pytest.raises(ValueError, match="trained with continuous labels, got discrete labels"):
        model.partial_fit(neural, discrete)
    (xa, _, _), (xb, _, _) = sessions
    with pytest.raises(ValueError, match="multi-session data for a single-session model"):
        model.partial_fit([xa, xb])


# --------------------------------------------------------------------------------------
# adapt
# --------------------------------------------------------------------------------------

def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv1d))


@pytest.mark.parametrize("architecture", ["offset1-model", "offset10-model"])
def test_adapt_replaces_only_the_input_layer(data, architecture):
    neural, continuous, _ = data
    params = dict(FAST, model_architecture=architecture, max_adapt_iterations=7,
                  temperature_mode="auto")
    model = CEBRA(**params).fit(neural, continuous)
    old_input = _first_conv(model.model_)
    before = {k: v.clone() for k, v in model.model_.state_dict().items()}
    criterion_before = {k: v.clone() for k, v in model.solver_.criterion.state_dict().items()}
    prefix = next(name for name, m in model.model_.named_modules() if m is old_input)
    input_names = {f"{prefix}.{k}" for k in old_input.state_dict()}
    assert input_names <= set(before) and len(input_names) == 2  # weight and bias

    new_neural = make_data(T=180, neurons=7, seed=5)[0]
    assert model.fit(new_neural, adapt=True) is model

    assert model.n_features_in_ == 7
    new_input = _first_conv(model.model_)
    assert new_input is not old_input
    assert new_input.weight.shape[:2] == (old_input.out_channels, 7)
    after = model.model_.state_dict()
    assert set(after) == set(before)
    for name, value in before.items():
        if name not in input_names:
            assert torch.equal(after[name], value), f"{name} changed during adapt"
    for name, value in criterion_before.items():  # the learnable temperature is frozen too
        assert torch.equal(model.solver_.criterion.state_dict()[name], value)
    assert len(model.state_dict_["loss"]) == 7  # max_adapt_iterations
    assert model.label_kind_ == "time"
    assert model.transform(new_neural).shape == (180, 8)
    with pytest.raises(ValueError, match="X has 10 features, but CEBRA is expecting 7"):
        model.transform(neural)
    # Everything trains again afterwards.
    assert all(p.requires_grad for p in model.model_.parameters())
    model.partial_fit(new_neural)
    changed = [name for name, value in model.model_.state_dict().items()
               if name not in input_names and not torch.equal(value, before[name])]
    assert changed


def test_adapt_trains_the_new_input_layer(data):
    neural, _, _ = data
    new_neural = make_data(T=180, neurons=7, seed=5)[0]
    zero_steps = CEBRA(**FAST, max_adapt_iterations=0).fit(neural).fit(new_neural, adapt=True)
    trained = CEBRA(**FAST, max_adapt_iterations=5).fit(neural).fit(new_neural, adapt=True)
    # Same seeds: the same fresh layer, then 5 steps of training on it.
    assert not torch.equal(_first_conv(zero_steps.model_).weight,
                           _first_conv(trained.model_).weight)
    again = CEBRA(**FAST, max_adapt_iterations=5).fit(neural).fit(new_neural, adapt=True)
    np.testing.assert_array_equal(again.transform(new_neural), trained.transform(new_neural))


def test_adapt_with_labels_and_refusals(data, sessions):
    neural, continuous, _ = data
    new_neural = make_data(T=200, neurons=7, seed=5)[0]
    model = CEBRA(**FAST).fit(neural).fit(new_neural, continuous, adapt=True)
    assert model.label_kind_ == "continuous" and model.n_features_in_ == 7

    (xa, _, _), (xb, _, _) = sessions
    multi = CEBRA(**FAST, conditional="time").fit([xa, xb])
    # Multi-session adapt aligns by labels (tests/sklearn/test_adapt.py).
    with pytest.raises(ValueError, match="needs a model trained with labels"):
        multi.fit(new_neural, adapt=True, session_id=2)
    with pytest.raises(ValueError, match="takes one recording"):
        CEBRA(**FAST).fit(neural).fit([xa, xb], adapt=True)


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["time", "continuous", "discrete", "mixed", "hybrid",
                                  "full-batch", "multi-session", "offset10", "dropout"])
def test_same_random_state_gives_bit_identical_fits(data, sessions, mode):
    neural, continuous, discrete = data
    params = dict(FAST, hybrid=mode == "hybrid")
    args = {"time": (neural,), "continuous": (neural, continuous),
            "discrete": (neural, discrete), "mixed": (neural, continuous, discrete),
            "hybrid": (neural, continuous), "full-batch": (neural, continuous),
            "offset10": (neural, continuous), "dropout": (neural, discrete),
            "multi-session": ([sessions[0][0], sessions[1][0]],
                              [sessions[0][1], sessions[1][1]])}[mode]
    if mode == "full-batch":
        params["batch_size"] = None
    if mode == "offset10":
        params["model_architecture"] = "offset10-model"
    if mode == "dropout":
        params["model_architecture"] = "offset36-model-dropout"
        args = (np.tile(neural, (2, 1)), np.tile(discrete, 2))
    X = args[0]
    kwargs = {"session_id": 0} if mode == "multi-session" else {}
    Xt = X[0] if mode == "multi-session" else X

    first = CEBRA(**params).fit(*args)
    second = CEBRA(**params).fit(*args)
    np.testing.assert_array_equal(first.transform(Xt, **kwargs), second.transform(Xt, **kwargs))
    np.testing.assert_array_equal(first.state_dict_["loss"], second.state_dict_["loss"])
    other = CEBRA(**{**params, "random_state": 1}).fit(*args)
    assert not np.array_equal(first.transform(Xt, **kwargs), other.transform(Xt, **kwargs))


def test_random_state_does_not_touch_the_global_rng(data):
    neural, _, _ = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CEBRA(**FAST).fit(neural)
    torch.testing.assert_close(torch.rand(3), expected)


def test_fit_transform_equals_fit_then_transform(data):
    neural, continuous, _ = data
    np.testing.assert_array_equal(CEBRA(**FAST).fit_transform(neural, continuous),
                                  CEBRA(**FAST).fit(neural, continuous).transform(neural))
    # scikit-learn style y= keyword
    np.testing.assert_array_equal(CEBRA(**FAST).fit_transform(neural, y=continuous),
                                  CEBRA(**FAST).fit(neural, continuous).transform(neural))


# --------------------------------------------------------------------------------------
# transform
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture, receptive_field", [
    ("offset1-model", 1), ("offset5-model", 5), ("offset10-model", 10),
    ("offset20-model-4x-subsample", 20)])
def test_transform_shape_padding_and_batching(data, architecture, receptive_field):
    neural, _, _ = data
    model = CEBRA(**FAST, model_architecture=architecture, output_dimension=3).fit(neural)
    assert len(model.offset_) == receptive_field
    full = model.transform(neural)
    assert full.shape == (len(neural), 3) and full.dtype == np.float32
    for batch_size in (1, 7, 64, len(neural), 10 * len(neural)):
        np.testing.assert_allclose(model.transform(neural, batch_size=batch_size), full,
                                   atol=1e-5, rtol=0)
    np.testing.assert_allclose(model.transform(torch.from_numpy(neural)), full, atol=1e-6)

    model.set_params(pad_before_transform=False)
    unpadded = model.transform(neural)
    assert unpadded.shape == (len(neural) - receptive_field + 1, 3)
    np.testing.assert_allclose(model.transform(neural, batch_size=13), unpadded, atol=1e-5,
                               rtol=0)
    # Away from the edges padding changes nothing.
    np.testing.assert_allclose(unpadded, full[model.offset_.left:
                                              len(neural) - model.offset_.right + 1],
                               atol=1e-5, rtol=0)


def test_transform_pads_recordings_shorter_than_the_receptive_field(data):
    neural, _, _ = data
    model = CEBRA(**FAST, model_architecture="offset10-model").fit(neural)
    assert model.transform(neural[:4]).shape == (4, 8)
    model.set_params(pad_before_transform=False)
    with pytest.raises(ValueError, match="fewer than the model's receptive field of 10"):
        model.transform(neural[:4])


def test_transform_bad_batch_size(data):
    neural, _, _ = data
    model = CEBRA(**FAST).fit(neural)
    for bad in (0, -5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            model.transform(neural, batch_size=bad)


def test_transform_does_not_change_the_model(data):
    neural, _, _ = data
    model = CEBRA(**FAST, model_architecture="offset36-model-dropout").fit(neural)
    assert model.model_.training
    first = model.transform(neural)
    assert model.model_.training  # restored after inference
    np.testing.assert_array_equal(model.transform(neural), first)  # dropout off


# --------------------------------------------------------------------------------------
# Fitted attributes
# --------------------------------------------------------------------------------------

def test_fitted_attributes(data):
    neural, continuous, _ = data
    model = CEBRA(**FAST, model_architecture="offset5-model").fit(neural, continuous)
    state = model.state_dict_
    assert {"model", "criterion", "optimizer", "loss", "log"} <= set(state)
    assert set(state["log"]) == {"pos", "neg", "total", "temperature"}
    for values in state["log"].values():
        assert len(values) == FAST["max_iterations"]
    torch.testing.assert_close(state["log"]["total"], state["loss"])
    torch.testing.assert_close(state["log"]["pos"] + state["log"]["neg"], state["loss"],
                               rtol=1e-5, atol=1e-5)
    assert torch.all(state["log"]["temperature"] == 1.0)
    assert model.n_features_in_ == 10
    assert model.num_sessions_ is None
    assert (model.offset_.left, model.offset_.right) == (2, 3)
    assert model.device_ == "cpu"
    assert isinstance(model.model_, torch.nn.Module)
    assert model.model_ is model.solver_.model
    assert next(model.model_.parameters()).device.type == "cpu"
    assert model.to("cpu") is model and model.device_ == "cpu"
    assert model.get_params()["device"] == "cpu"


def test_device_cuda_if_available_resolves(data):
    neural, _, _ = data
    model = CEBRA(**{**FAST, "device": "cuda_if_available"}).fit(neural)
    assert model.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert model.transform(neural).shape == (len(neural), 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_moves_between_devices(data):
    neural, _, _ = data
    model = CEBRA(**FAST).fit(neural)
    on_cpu = model.transform(neural)
    model.to("cuda")
    assert model.device_.startswith("cuda")
    assert next(model.model_.parameters()).is_cuda
    np.testing.assert_allclose(model.transform(neural), on_cpu, atol=1e-4)
    model.partial_fit(neural)
    model.to("cpu")
    assert next(model.model_.parameters()).device.type == "cpu"


# --------------------------------------------------------------------------------------
# Training options
# --------------------------------------------------------------------------------------

def test_verbose_shows_a_progress_bar(data, capsys):
    neural, _, _ = data
    CEBRA(**FAST).fit(neural)
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out == ""
    CEBRA(**{**FAST, "max_iterations": 6}, verbose=True).fit(neural)
    err = capsys.readouterr().err
    assert "6/6" in err and "loss=" in err and "temperature=" in err


def test_callback_is_called_every_callback_frequency_steps(data):
    neural, _, _ = data
    calls = []
    CEBRA(**{**FAST, "max_iterations": 10}).fit(
        neural, callback=lambda step, solver: calls.append((step, len(solver.history))),
        callback_frequency=3)
    assert [step for step, _ in calls] == [3, 6, 9]
    calls.clear()
    CEBRA(**FAST).fit(neural, callback=lambda *args: calls.append(args))  # no frequency
    assert calls == []
    model = CEBRA(**FAST).fit(neural)
    model.partial_fit(neural, callback=lambda step, _: calls.append(step), callback_frequency=2)
    assert calls == [2, 4]


def test_learnable_temperature_is_logged(data):
    neural, continuous, _ = data
    params = dict(FAST, max_iterations=20, learning_rate=0.05, temperature=1.0)
    model = CEBRA(**params, temperature_mode="auto", min_temperature=0.1).fit(neural, continuous)
    assert isinstance(model.solver_.criterion, criterions.LearnableCosineInfoNCE)
    temperature = model.state_dict_["log"]["temperature"].numpy()
    assert temperature.shape == (20,)
    assert np.ptp(temperature) > 1e-3  # it is learned
    assert (temperature >= 0.1 - 1e-6).all()
    assert abs(temperature[0] - 1.0) < 0.1
    constant = CEBRA(**params).fit(neural, continuous)
    np.testing.assert_array_equal(constant.state_dict_["log"]["temperature"].numpy(), 1.0)


def test_min_temperature_bounds_the_learned_temperature(data):
    neural, continuous, _ = data
    model = CEBRA(**{**FAST, "max_iterations": 30}, learning_rate=0.2, temperature=0.3,
                  temperature_mode="auto", min_temperature=0.25).fit(neural, continuous)
    assert (model.state_dict_["log"]["temperature"].numpy() >= 0.25 - 1e-6).all()


@pytest.mark.parametrize("mode", ["constant", "auto"])
def test_euclidean_distance(data, mode):
    neural, continuous, _ = data
    model = CEBRA(**FAST, distance="euclidean", temperature_mode=mode).fit(neural, continuous)
    expected = (criterions.FixedEuclideanInfoNCE if mode == "constant"
                else criterions.LearnableEuclideanInfoNCE)
    assert isinstance(model.solver_.criterion, expected)
    loss = model.state_dict_["loss"].numpy()
    assert np.isfinite(loss).all()
    cosine = CEBRA(**FAST, temperature_mode=mode).fit(neural, continuous)
    assert not np.allclose(loss, cosine.state_dict_["loss"].numpy())


def test_conditional_delta(data):
    neural, continuous, _ = data
    model = CEBRA(**FAST, conditional="delta", delta=0.1).fit(neural, continuous)
    assert _loader_for(model, neural, continuous).conditional == "delta_normal"
    assert np.isfinite(model.transform(neural)).all()
    other = CEBRA(**FAST, conditional="delta", delta=1.0).fit(neural, continuous)
    assert not np.array_equal(model.transform(neural), other.transform(neural))
    for bad in (None, 0, -1.0):
        with pytest.raises(ValueError, match="conditional='delta' needs delta > 0"):
            CEBRA(**FAST, conditional="delta", delta=bad).fit(neural, continuous)


@pytest.mark.parametrize("conditional", [None, "time_delta"])
def test_conditional_time_delta_is_the_default_for_continuous_labels(data, conditional):
    neural, continuous, _ = data
    model = CEBRA(**FAST, conditional=conditional).fit(neural, continuous)
    assert _loader_for(model, neural, continuous).conditional == "time_delta"
    np.testing.assert_array_equal(model.transform(neural),
                                  CEBRA(**FAST).fit(neural, continuous).transform(neural))


@pytest.mark.parametrize("label", ["continuous", "discrete"])
def test_conditional_time_with_labels_falls_back_to_time_contrastive(data, label):
    neural, continuous, discrete = data
    y = continuous if label == "continuous" else discrete
    model = CEBRA(**FAST, conditional="time").fit(neural, y)
    loader = _loader_for(model, neural, y)
    assert type(loader) is single_session.ContinuousDataLoader
    assert loader.conditional == "time"
    time_only = CEBRA(**FAST, conditional="time").fit(neural)
    np.testing.assert_array_equal(model.transform(neural), time_only.transform(neural))


def test_conditional_delta_without_labels_is_time_contrastive(data):
    neural, _, _ = data
    model = CEBRA(**FAST, conditional="delta", delta=0.1).fit(neural)
    assert _loader_for(model, neural).conditional == "time"


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_optimizer_and_optimizer_kwargs(data, optimizer):
    neural, _, _ = data
    model = CEBRA(**FAST, optimizer=optimizer, learning_rate=1e-3,
                  optimizer_kwargs={"weight_decay": 0.5}).fit(neural)
    group = model.solver_.optimizer.param_groups[0]
    assert type(model.solver_.optimizer).__name__.lower() == optimizer
    assert group["lr"] == 1e-3 and group["weight_decay"] == 0.5
    with pytest.raises((TypeError, ValueError)):
        CEBRA(**FAST, optimizer_kwargs=5).fit(neural)


def test_output_dimension_and_hidden_units(data):
    neural, _, _ = data
    model = CEBRA(**FAST, output_dimension=3, num_hidden_units=4).fit(neural)
    assert model.transform(neural).shape == (len(neural), 3)
    assert _first_conv(model.model_).out_channels == 4


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

_N = make_data(T=100, neurons=5)[0]


@pytest.mark.parametrize("X, y, error, match", [
    (_N[:, 0], (), ValueError, r"X must be 2-D \(time, neurons\), got shape \(100,\)"),
    (np.zeros((0, 5)), (), ValueError, r"X is empty: 0 sample\(s\)"),
    (np.zeros((100, 0)), (), ValueError, r"X is empty: 0 feature\(s\)"),
    (np.zeros((2, 3, 4, 5)), (), ValueError, "X must be 2-D"),  # 3-D: trials
    (np.where(_N > 0.9, np.nan, _N), (), ValueError, "X contains NaN or infinite values"),
    (np.where(_N > 0.9, np.inf, _N), (), ValueError, "X contains NaN or infinite values"),
    (np.array([["a", "b"]] * 100), (), TypeError, "X must be numeric"),
    (None, (), TypeError, "X is None"),
    (_N + 1j, (), ValueError, "X: Complex data not supported"),
    (_N, (np.full(100, np.nan),), ValueError, r"y\[0\] contains NaN or infinite values"),
    (_N, (np.where(np.arange(100) == 3, np.inf, 0.5),), ValueError,
     r"y\[0\] contains NaN or infinite values"),
    (_N, (np.linspace(0, 1, 99),), ValueError,
     r"y\[0\] has 99 samples but the neural data has 100"),
    (_N, (np.arange(100), np.arange(100) % 2), ValueError,
     "Got 2 discrete \\(integer\\) label arrays; at most one"),
    (_N, (np.zeros((100, 2), dtype=int),), ValueError,
     "discrete labels must be 1-D"),
    (_N, (np.zeros((100, 2, 2)),), ValueError, r"y\[0\] must be 1-D or 2-D"),
    (_N, (np.array(["left", "right"] * 50),), TypeError, r"y\[0\] must be numeric"),
    (_N, (np.linspace(0, 1, 100), np.arange(100) % 3 * 1.0), ValueError,
     (r"y\[1\] is a float array whose values are all whole numbers \(\[0.0, 1.0, 2.0\]\): "
      r"it looks like discrete categories stored as floats.*astype\(int\)")),
])
def test_bad_input_raises_a_clear_error(X, y, error, match):
    with pytest.raises(error, match=match):
        CEBRA(**FAST).fit(X, *y)


def test_float_labels_meant_as_categories_can_be_used_either_way():
    direction = (np.arange(100) % 3).astype(float)
    with pytest.raises(ValueError, match="whole numbers"):
        CEBRA(**FAST).fit(_N, direction)
    assert CEBRA(**FAST).fit(_N, direction.astype(int)).label_kind_ == "discrete"
    assert CEBRA(**FAST).fit(_N, direction.reshape(-1, 1)).label_kind_ == "continuous"
    # Many distinct whole numbers (e.g. positions in cm) are continuous.
    assert CEBRA(**FAST).fit(_N, np.arange(100.0)).label_kind_ == "continuous"


def test_sparse_input_is_refused():
    import scipy.sparse

    with pytest.raises(TypeError, match="sparse input is not supported"):
        CEBRA(**FAST).fit(scipy.sparse.csr_matrix(_N))


def test_object_arrays_of_numbers_are_accepted():
    model = CEBRA(**FAST).fit(_N.astype(object), (np.arange(100) % 2).astype(object))
    assert model.label_kind_ == "discrete"
    bad = _N.astype(object)
    bad[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="X must be numeric"):
        CEBRA(**FAST).fit(bad)


def test_wrong_neuron_count_at_transform():
    model = CEBRA(**FAST).fit(_N)
    with pytest.raises(ValueError, match="X has 3 features, but CEBRA is expecting 5 features "
                                         r"as input \(neurons; X has shape"):
        model.transform(_N[:, :3])
    with pytest.raises(ValueError, match="X must be 2-D.*Reshape your data"):
        model.transform(_N[0])
    with pytest.raises(ValueError, match="X contains NaN"):
        model.transform(np.full_like(_N, np.nan))


def test_unknown_model_architecture_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'ofset10-model'\. Did you mean one of "
                                         r"\['offset10-model'"):
        CEBRA(**FAST, model_architecture="ofset10-model").fit(_N)


def test_batch_size_larger_than_the_data_warns():
    with pytest.warns(UserWarning, match=r"batch_size=512 is larger than the data \(100 "
                                         r"samples\)"):
        model = CEBRA(**{**FAST, "batch_size": 512}).fit(_N)
    assert model.transform(_N).shape == (100, 8)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CEBRA(**{**FAST, "batch_size": 100}).fit(_N)
        CEBRA(**{**FAST, "batch_size": None}).fit(_N)


def test_batch_size_larger_than_a_session_warns():
    with pytest.warns(UserWarning, match=r"batch_size=64 is larger than the data \(40 samples"):
        CEBRA(**{**FAST, "batch_size": 64}, conditional="time").fit([_N, _N[:40, :3]])


@pytest.mark.parametrize("labels", [(), (np.linspace(0, 1, 100),),
                                    (np.linspace(0, 1, 100), np.arange(100) % 2)])
def test_time_offsets_beyond_the_recording(labels):
    with pytest.raises(ValueError, match="time_offsets=100 is beyond the recording: 100 "
                                         "samples"):
        CEBRA(**FAST, time_offsets=100).fit(_N, *labels)
    CEBRA(**FAST, time_offsets=99).fit(_N, *labels)  # one admissible pair is enough


def test_time_offsets_tuple_of_one_is_that_offset(tmp_path):
    """The reference takes time_offsets=(10,); several offsets are refused by both."""
    y = np.linspace(0, 1, 100)
    as_tuple = CEBRA(**{**FAST, "random_state": 3}, time_offsets=(7,)).fit(_N, y)
    as_int = CEBRA(**{**FAST, "random_state": 3}, time_offsets=7).fit(_N, y)
    np.testing.assert_array_equal(as_tuple.transform(_N), as_int.transform(_N))
    assert as_tuple.get_params()["time_offsets"] == (7,)  # stored as given (sklearn)
    as_tuple.save(tmp_path / "model.pt")
    np.testing.assert_array_equal(CEBRA.load(tmp_path / "model.pt").transform(_N),
                                  as_int.transform(_N))
    with pytest.raises(NotImplementedError, match=r"time_offsets=\(5, 10\): one time offset "
                                                  r"per model .* e.g. time_offsets=5") as err:
        CEBRA(**FAST, time_offsets=(5, 10)).fit(_N, y)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match=r"time_offsets must be a positive integer \(or a "
                                         r"tuple of one\), got \(0,\)"):
        CEBRA(**FAST, time_offsets=(0,)).fit(_N, y)


def test_time_offsets_beyond_a_session():
    with pytest.raises(ValueError, match="time_offsets=60 is beyond the recording"):
        CEBRA(**FAST, time_offsets=60, conditional="time").fit([_N, _N[:50]])


def test_recording_shorter_than_the_receptive_field():
    with pytest.raises(ValueError, match="fewer than the model's receptive field of 10"):
        CEBRA(**FAST, model_architecture="offset10-model").fit(_N[:5])


# -- public seams other modules use ---------------------------------------------------------
def test_receptive_field_and_device_without_fitting():
    assert CEBRA(model_architecture="offset10-model").receptive_field() == 10
    assert CEBRA(model_architecture="offset36-model").receptive_field() == 36
    assert CEBRA(device="cpu").resolved_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="Unknown device"):
        CEBRA(device="tpu").resolved_device()
    with pytest.raises(ValueError, match="Unknown model 'offset0-model'"):
        CEBRA(model_architecture="offset0-model").receptive_field()


def test_check_input_and_start_fit_are_what_fit_trains_on():
    """``check_input`` + ``start_fit`` + training that loader with ``dropout_seed`` is
    ``fit``: the seam fit_seeds uses gives the same model."""
    params = dict(FAST, model_architecture="offset10-model", random_state=3)
    fitted = CEBRA(**params).fit(_N)
    manual = CEBRA(**params)
    manual.validate_params()
    sessions, multi = manual.check_input(_N, ())
    assert not multi and sessions[0].neural.shape == _N.shape
    loader = manual.start_fit(sessions, multi)
    assert len(loader) == params["max_iterations"] and manual.dropout_seed() is not None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(manual.dropout_seed())
        manual.solver_.fit(loader)
    np.testing.assert_array_equal(manual.transform(_N), fitted.transform(_N))
    with pytest.raises(ValueError, match="features"):
        manual.check_compatible(*manual.check_input(_N[:, :3], ()))


@pytest.mark.parametrize("conditional", [None, "time_delta", "delta"])
def test_multi_session_without_labels_needs_conditional_time(sessions, conditional):
    (xa, _, _), (xb, _, _) = sessions
    with pytest.raises(RuntimeError, match="No labels given for multi-session training") as err:
        CEBRA(**FAST, conditional=conditional, delta=0.1).fit([xa, xb])
    assert isinstance(err.value, ValueError) and "conditional='time'" in str(err.value)
    with pytest.raises(ValueError, match="No labels given"):
        CEBRA(**FAST, conditional=conditional, delta=0.1).partial_fit([xa, xb])
    assert CEBRA(**FAST, conditional="time").fit([xa, xb]).label_kind_ == "time"


def test_state_dict_has_the_reference_keys(data):
    neural, _, _ = data
    state = CEBRA(**FAST).fit(neural).state_dict_
    assert {"model", "optimizer", "loss", "decode", "criterion", "version", "log"} <= set(state)
    assert state["version"] == cebra.__version__ and state["decode"] == []
