"""Adding recordings to a trained model: ``CEBRA.fit(..., adapt=True)`` and
:mod:`cebra_pipe.sklearn.adapt`."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsRegressor

from cebra_pipe import CEBRA, models
from cebra_pipe.sklearn import adapt

FAST = dict(model_architecture="offset5-model", max_iterations=5, max_adapt_iterations=5,
            batch_size=32, output_dimension=3, time_offsets=2, device="cpu", random_state=0)


def animal(T: int, neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An animal running back and forth on a track: neural ``(T, neurons)`` tuned to
    the position, position ``(T, 1)`` in [0, 1] and the direction ``(T,)`` (0/1)."""
    rng = np.random.default_rng(seed)
    phase = np.cumsum(np.abs(rng.normal(0.02, 0.008, T)))
    position = np.abs(phase % 2 - 1)
    direction = (phase % 2 < 1).astype(np.int64)
    latent = np.stack([np.sin(np.pi * position), np.cos(np.pi * position)], 1)
    neural = np.tanh(latent @ rng.normal(size=(2, neurons)))
    neural += 0.3 * rng.normal(size=neural.shape)
    return neural.astype(np.float32), position[:, None].astype(np.float32), direction


COHORT = [animal(240, 12, 1), animal(200, 9, 2)]
NEW = animal(220, 7, 3)
OTHER = animal(180, 5, 4)


@pytest.fixture(scope="module")
def cohort() -> CEBRA:
    return CEBRA(**FAST).fit([c[0] for c in COHORT], [c[1] for c in COHORT])


def _grown(cohort: CEBRA, **params) -> CEBRA:
    model = copy.deepcopy(cohort).set_params(**params)
    return model.fit(NEW[0], NEW[1], adapt=True, session_id=2)


def test_adapt_adds_a_session_that_transforms(cohort):
    model = _grown(cohort)
    assert model.num_sessions_ == model.num_sessions == 3
    assert model.n_features_in_ == [12, 9, 7]
    embedding = model.transform(NEW[0], session_id=2)
    assert embedding.shape == (220, 3) and np.isfinite(embedding).all()
    assert len(model.adapt_history_) == FAST["max_adapt_iterations"]
    # The cohort's own sessions embed exactly as before.
    for k, (neural, _, _) in enumerate(COHORT):
        np.testing.assert_array_equal(model.transform(neural, session_id=k),
                                      cohort.transform(neural, session_id=k))


def test_only_the_new_input_layer_trains(cohort):
    zero = _grown(cohort, max_adapt_iterations=0)
    trained = _grown(cohort)
    template = cohort.model_[adapt.TEMPLATE_SESSION].state_dict()
    new_zero, new_trained = zero.model_[2].state_dict(), trained.model_[2].state_dict()
    changed = sorted(k for k in new_trained if not torch.equal(new_zero[k], new_trained[k]))
    assert changed == ["net.0.bias", "net.0.weight"], changed
    for key, value in new_trained.items():
        if not key.startswith("net.0."):  # every later layer: the template's, bit for bit
            assert torch.equal(value, template[key]), key
    assert new_trained["net.0.weight"].shape[1] == 7
    for k in range(2):  # the cohort encoders are untouched
        for key, value in cohort.model_[k].state_dict().items():
            assert torch.equal(value, trained.model_[k].state_dict()[key])
    criterion = cohort.solver_.criterion.state_dict()
    for key, value in trained.solver_.criterion.state_dict().items():
        assert torch.equal(value, criterion[key])


def test_adapt_is_reproducible(cohort):
    first, second = _grown(cohort), _grown(cohort)
    np.testing.assert_array_equal(first.transform(NEW[0], session_id=2),
                                  second.transform(NEW[0], session_id=2))
    assert first.adapt_history_ == second.adapt_history_
    other_seed = copy.deepcopy(cohort).set_params(random_state=1)
    other_seed.fit(NEW[0], NEW[1], adapt=True, session_id=2)
    assert not np.array_equal(other_seed.transform(NEW[0], session_id=2),
                              first.transform(NEW[0], session_id=2))


def test_several_new_sessions_and_readapting(cohort):
    model = copy.deepcopy(cohort)
    model.fit([NEW[0], OTHER[0]], [NEW[1], OTHER[1]], adapt=True, session_id=[2, 3])
    assert model.n_features_in_ == [12, 9, 7, 5]
    before = model.transform(OTHER[0], session_id=3)
    # Re-adapting session 2 with other data replaces that encoder only.
    model.fit(OTHER[0], OTHER[1], adapt=True, session_id=2)
    assert model.num_sessions_ == 4 and model.n_features_in_ == [12, 9, 5, 5]
    np.testing.assert_array_equal(model.transform(OTHER[0], session_id=3), before)
    # Re-adapting a cohort session renews its anchor (the embedding new sessions align to).
    model.fit(NEW[0], NEW[1], adapt=True, session_id=1)
    assert model.n_features_in_ == [12, 7, 5, 5]
    np.testing.assert_array_equal(model.cohort_anchors_.embeddings[1],
                                  model.transform(NEW[0], session_id=1))


def test_grown_model_saves_and_loads(cohort, tmp_path):
    model = _grown(cohort)
    model.save(tmp_path / "grown.pt")
    loaded = CEBRA.load(tmp_path / "grown.pt")
    assert loaded.num_sessions_ == 3 and loaded.n_features_in_ == [12, 9, 7]
    np.testing.assert_array_equal(loaded.transform(NEW[0], session_id=2),
                                  model.transform(NEW[0], session_id=2))
    for mine, theirs in zip(model.cohort_anchors_.embeddings,
                            loaded.cohort_anchors_.embeddings):
        np.testing.assert_array_equal(mine, theirs)
    # The loaded model adapts further, like the one in memory.
    loaded.fit(OTHER[0], OTHER[1], adapt=True, session_id=3)
    model.fit(OTHER[0], OTHER[1], adapt=True, session_id=3)
    np.testing.assert_array_equal(loaded.transform(OTHER[0], session_id=3),
                                  model.transform(OTHER[0], session_id=3))


@pytest.mark.parametrize("session_id, message", [
    (None, "multisession adapt\\) needs session_id"), (5, "neither an existing session"),
    ([2, 3], "1 recording"), (True, "integer session index")])
def test_bad_session_ids(cohort, session_id, message):
    with pytest.raises((ValueError, TypeError), match=message):
        copy.deepcopy(cohort).fit(NEW[0], NEW[1], adapt=True, session_id=session_id)


def test_missing_session_id_is_also_the_references_not_implemented(cohort):
    with pytest.raises(NotImplementedError, match="multisession"):
        copy.deepcopy(cohort).fit(NEW[0], NEW[1], adapt=True)


def test_bad_labels_are_refused(cohort):
    model = copy.deepcopy(cohort)
    with pytest.raises(ValueError, match="needs labels for recording 0"):
        model.fit(NEW[0], adapt=True, session_id=2)
    with pytest.raises(ValueError, match="discrete labels, but the cohort"):
        model.fit(NEW[0], NEW[2], adapt=True, session_id=2)
    with pytest.raises(ValueError, match="2 continuous label dimension"):
        model.fit(NEW[0], np.hstack([NEW[1], NEW[1]]), adapt=True, session_id=2)
    assert model.num_sessions_ == 2  # nothing changed


def test_discrete_cohort_checks_classes():
    model = CEBRA(**FAST).fit([c[0] for c in COHORT], [c[2] for c in COHORT])
    model.fit(NEW[0], NEW[2], adapt=True, session_id=2)
    assert model.num_sessions_ == 3
    with pytest.raises(ValueError, match="differ from the cohort's classes"):
        model.fit(NEW[0], NEW[2] + 5, adapt=True, session_id=3)


def test_unlabelled_cohort_and_missing_record_are_refused(cohort):
    unlabelled = CEBRA(**FAST, conditional="time").fit([c[0] for c in COHORT])
    with pytest.raises(ValueError, match="trained without any"):
        unlabelled.fit(NEW[0], NEW[1], adapt=True, session_id=2)
    forgetful = copy.deepcopy(cohort)
    forgetful.cohort_anchors_ = None
    with pytest.raises(ValueError, match="record_cohort"):
        forgetful.fit(NEW[0], NEW[1], adapt=True, session_id=2)
    forgetful.record_cohort([c[0] for c in COHORT], [c[1] for c in COHORT])
    np.testing.assert_array_equal(forgetful.cohort_anchors_.embeddings[0],
                                  cohort.cohort_anchors_.embeddings[0])


def test_single_session_adapt_keeps_working():
    neural, position, _ = COHORT[0]
    model = CEBRA(**FAST).fit(neural, position)
    model.fit(NEW[0], NEW[1], adapt=True)
    assert model.n_features_in_ == 7 and model.transform(NEW[0]).shape == (220, 3)
    with pytest.raises(ValueError, match="Invalid session_id"):
        model.fit(NEW[0], NEW[1], adapt=True, session_id=1)


@pytest.mark.parametrize("architecture", ["offset10-model", "resample-model",
                                          "offset1-model-mse-resnet-2layers",
                                          "offset4-model-2x-subsample"])
def test_input_layers_of_any_architecture_are_found(architecture):
    """Input channels that reach more than the first layer (MeanAndConv of the resampling
    models, skip connections) are all replaced, and only they train."""
    neural, position, _ = animal(300, 12, 5)
    model = CEBRA(**{**FAST, "model_architecture": architecture, "time_offsets": 1}).fit(
        neural, position)
    inputs = adapt.input_parameters(lambda n: models.init(architecture, num_neurons=n,
                                                          num_units=32, num_output=3))
    before = {k: v.clone() for k, v in model.model_.state_dict().items()}
    model.fit(NEW[0], NEW[1], adapt=True)
    after = model.model_.state_dict()
    assert model.transform(NEW[0]).shape == (220, 3)
    assert {k for k in after if after[k].shape != before[k].shape} <= inputs
    for key in after:  # the input layers are new, everything else is kept bit for bit
        same = after[key].shape == before[key].shape and torch.equal(after[key], before[key])
        assert same == (key not in inputs), key
    if architecture == "resample-model":  # the raw input also feeds the second layer
        assert inputs == {"net.0.layer.weight", "net.0.layer.bias", "net.1.weight",
                          "net.1.bias"}


def test_an_architecture_without_input_layer_is_refused():
    with pytest.raises(ValueError, match="no layer of this architecture depends"):
        adapt.adapted_encoder(torch.nn.Linear(2, 2), lambda n: torch.nn.Linear(2, 2), 3)


def test_cohort_anchor_records_are_checked(cohort):
    state = cohort.cohort_anchors_.state_dict()
    restored = adapt.CohortAnchors.from_state_dict(state, "model.pt")
    np.testing.assert_array_equal(restored.continuous[1], cohort.cohort_anchors_.continuous[1])
    bad = dict(state, **{"continuous.1": state["continuous.1"][:5]})
    with pytest.raises(ValueError, match=r"model.pt: field 'cohort.continuous.1' has 5 rows"):
        adapt.CohortAnchors.from_state_dict(bad, "model.pt")
    with pytest.raises(ValueError, match="unexpected entry 'spam.0'"):
        adapt.CohortAnchors.from_state_dict(dict(state, **{"spam.0": torch.zeros(1)}),
                                            "model.pt")


@pytest.mark.slow
def test_a_left_out_animal_joins_the_cohort():
    """Train on three animals, add a fourth by adapt: its embedding lands in the
    cohort's space (consistency) and a decoder trained on the cohort alone reads its
    position (cross-animal decoding), far better than with an unadapted input layer."""
    animals = [animal(1500, n, seed) for seed, n in enumerate([30, 40, 35, 25], 10)]
    params = dict(model_architecture="offset10-model", batch_size=256, max_iterations=300,
                  max_adapt_iterations=200, output_dimension=3, time_offsets=10,
                  device="cpu", random_state=0)
    model = CEBRA(**params).fit([a[0] for a in animals[:3]], [a[1] for a in animals[:3]])
    neural, position, _ = animals[3]
    unadapted = copy.deepcopy(model).set_params(max_adapt_iterations=0)
    unadapted.fit(neural, position, adapt=True, session_id=3)
    model.fit(neural, position, adapt=True, session_id=3)

    def quality(fitted: CEBRA) -> tuple[float, float]:
        embedding = fitted.transform(neural, session_id=3)
        consistency = np.mean(list(adapt.cohort_consistency(
            embedding, position, fitted.cohort_anchors_).values()))
        anchors = fitted.cohort_anchors_
        decoder = KNeighborsRegressor(n_neighbors=25).fit(
            np.concatenate(anchors.embeddings), np.concatenate(anchors.continuous)[:, 0])
        error = np.median(np.abs(decoder.predict(embedding) - position[:, 0]))
        return consistency, error

    consistency, error = quality(model)
    baseline_consistency, baseline_error = quality(unadapted)
    # Chance: predicting a random other time point's position.
    chance = np.median(np.abs(np.random.default_rng(0).permutation(position[:, 0])
                              - position[:, 0]))
    print(f"consistency R2 adapted {consistency:.3f} vs unadapted {baseline_consistency:.3f}; "
          f"median error adapted {error:.3f} vs unadapted {baseline_error:.3f}, "
          f"chance {chance:.3f} (track units)")
    assert consistency > 0.9 and consistency > baseline_consistency + 0.1
    assert error < 0.3 * chance and error < 0.5 * baseline_error
