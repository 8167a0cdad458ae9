"""Saving / loading :class:`cebra_pipe.CEBRA` (and refusing tampered files), and
resuming an interrupted fit from its checkpoints."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import sklearn
import torch

import cebra_pipe
from cebra_pipe import CEBRA

FAST = dict(max_iterations=5, batch_size=32, device="cpu", random_state=0)


def make_data(T: int = 200, neurons: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6 * np.pi, T)
    latent = np.stack([np.sin(t), np.cos(t)], axis=1)
    neural = np.tanh(2 * latent @ rng.normal(size=(2, neurons)))
    neural = (neural + 0.1 * rng.normal(size=neural.shape)).astype(np.float32)
    continuous = (latent + 0.05 * rng.normal(size=latent.shape)).astype(np.float32)
    discrete = (np.floor(t / np.pi) % 3).astype(np.int64)
    return neural, continuous, discrete


NEURAL, CONTINUOUS, DISCRETE = make_data()
SESSIONS = [make_data(150, 10, 1), make_data(120, 6, 2)]


def _assert_same_state(a: dict, b: dict) -> None:
    """Nested state dicts of tensors / numbers are equal."""
    assert type(a) is type(b) or isinstance(a, (int, float))
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key, value in a.items():
            _assert_same_state(value, b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a.cpu(), b.cpu())
    else:
        assert a == b


# --------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["time", "mixed", "hybrid", "auto-temperature", "offset10",
                                  "adapted"])
def test_round_trip_reproduces_transform_exactly(tmp_path, mode):
    params = dict(FAST, hybrid=mode == "hybrid",
                  temperature_mode="auto" if mode == "auto-temperature" else "constant",
                  model_architecture="offset10-model" if mode == "offset10" else "offset1-model")
    labels = {"time": (), "mixed": (CONTINUOUS, DISCRETE), "hybrid": (CONTINUOUS,),
              "auto-temperature": (CONTINUOUS,), "offset10": (DISCRETE,), "adapted": ()}[mode]
    model = CEBRA(**params).fit(NEURAL, *labels)
    X = NEURAL
    if mode == "adapted":
        X = SESSIONS[1][0]
        model.fit(X, adapt=True)
    path = tmp_path / "model.pt"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # atomic write, no leftovers

    loaded = CEBRA.load(path)
    assert type(loaded) is CEBRA
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.transform(X, batch_size=17),
                                  model.transform(X, batch_size=17))
    _assert_same_state(loaded.state_dict_, model.state_dict_)
    for attribute in ("n_features_in_", "num_sessions_", "label_kind_", "label_dims_",
                      "device_"):
        assert getattr(loaded, attribute) == getattr(model, attribute)
    assert (loaded.offset_.left, loaded.offset_.right) == (model.offset_.left,
                                                           model.offset_.right)
    assert type(loaded.solver_) is type(model.solver_)
    assert type(loaded.solver_.criterion) is type(model.solver_.criterion)


def test_round_trip_multi_session(tmp_path):
    (xa, ca, _), (xb, cb, _) = SESSIONS
    model = CEBRA(**FAST).fit([xa, xb], [ca, cb])
    model.save(tmp_path / "multi.pt")
    loaded = CEBRA.load(str(tmp_path / "multi.pt"))  # str paths too
    assert loaded.num_sessions_ == 2 and loaded.n_features_in_ == [10, 6]
    for session_id, x in enumerate([xa, xb]):
        np.testing.assert_array_equal(loaded.transform(x, session_id=session_id),
                                      model.transform(x, session_id=session_id))
    with pytest.raises(ValueError, match="No session_id provided"):
        loaded.transform(xa)


def test_round_trip_of_an_unfitted_model(tmp_path):
    model = CEBRA(max_iterations=7, output_dimension=3, optimizer_kwargs={"weight_decay": 0.1},
                  random_state=4)
    model.save(tmp_path / "unfitted.pt")
    loaded = CEBRA.load(tmp_path / "unfitted.pt")
    assert loaded.get_params()["max_iterations"] == 7
    assert loaded.get_params()["random_state"] == 4
    assert dict(loaded.optimizer_kwargs) == {"weight_decay": 0.1}
    assert not hasattr(loaded, "solver_")
    # Default parameters survive the round trip exactly (tuples stay tuples).
    CEBRA().save(tmp_path / "default.pt")
    assert CEBRA.load(tmp_path / "default.pt").get_params() == CEBRA().get_params()
    assert repr(CEBRA.load(tmp_path / "default.pt")) == "CEBRA()"
    # And training it works like training the original.
    fitted = loaded.set_params(device="cpu", batch_size=16).fit(NEURAL)
    np.testing.assert_array_equal(
        fitted.transform(NEURAL),
        CEBRA(**{**model.get_params(), "device": "cpu", "batch_size": 16}).fit(NEURAL)
        .transform(NEURAL))


def test_file_holds_parameters_state_history_and_versions(tmp_path):
    model = CEBRA(**FAST).fit(NEURAL, CONTINUOUS)
    model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)  # plain data only
    meta = json.loads(payload["meta"])
    assert meta["params"]["max_iterations"] == 5 and meta["params"]["random_state"] == 0
    assert meta["versions"]["cebra_pipe"] == cebra_pipe.__version__
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["versions"]["sklearn"] == sklearn.__version__
    assert "python" in meta["versions"]
    fitted = json.loads(payload["fitted"])
    assert fitted["n_features_in_"] == 10 and fitted["label_kind_"] == "continuous"
    state = payload["state"]
    assert len(state["loss"]) == 5
    assert set(state["log"]) == {"pos", "neg", "total", "temperature"}
    assert {"model", "criterion", "optimizer"} <= set(state)


def test_loaded_model_continues_training_like_the_original(tmp_path):
    model = CEBRA(**FAST).fit(NEURAL, CONTINUOUS)
    model.save(tmp_path / "model.pt")
    loaded = CEBRA.load(tmp_path / "model.pt")

    new_neural, new_continuous, _ = make_data(seed=9)
    model.partial_fit(new_neural, new_continuous)
    loaded.partial_fit(new_neural, new_continuous)
    np.testing.assert_array_equal(loaded.transform(new_neural), model.transform(new_neural))
    np.testing.assert_array_equal(loaded.state_dict_["loss"], model.state_dict_["loss"])
    assert len(loaded.state_dict_["loss"]) == 10
    # The optimizer state came along (Adam's step counter continues).
    assert loaded.state_dict_["optimizer"]["state"][0]["step"] == 10


def test_loaded_model_resumes_with_the_saved_optimizer_state(tmp_path):
    """The optimizer is built only when training starts, from the saved state."""
    model = CEBRA(**FAST).fit(NEURAL)
    model.save(tmp_path / "model.pt")
    loaded = CEBRA.load(tmp_path / "model.pt")
    loaded.transform(NEURAL)
    loaded.save(tmp_path / "resaved.pt")  # never trained: the loaded state, unchanged
    assert (tmp_path / "resaved.pt").read_bytes() == (tmp_path / "model.pt").read_bytes()

    model.partial_fit(NEURAL)
    loaded.partial_fit(NEURAL)
    _assert_same_state(loaded.state_dict_["optimizer"], model.state_dict_["optimizer"])
    assert loaded.state_dict_["optimizer"]["state"][0]["step"] == 2 * FAST["max_iterations"]
    # A fresh optimizer would differ: Adam's moments carried over from the first fit.
    fresh = CEBRA.load(tmp_path / "model.pt")
    fresh.solver_.optimizer = torch.optim.Adam(fresh.solver_.trained_parameters(),
                                               lr=fresh.learning_rate)
    fresh.partial_fit(NEURAL)
    assert not np.array_equal(fresh.transform(NEURAL), loaded.transform(NEURAL))


LOAD_AND_EMBED = """
import sys
import numpy as np
from cebra_pipe import CEBRA
model = CEBRA.load(sys.argv[1])
model.transform(np.zeros((50, 10), np.float32))
print("after transform", "torch._dynamo" in sys.modules)
model.partial_fit(np.zeros((50, 10), np.float32))
print("after partial_fit", "torch._dynamo" in sys.modules)
"""


def test_loading_to_embed_builds_no_optimizer(tmp_path):
    """Building a torch optimizer imports torch._dynamo (over a CPU-second per job):
    a model loaded only to embed must not."""
    import subprocess
    import sys

    CEBRA(**FAST).fit(NEURAL).save(tmp_path / "model.pt")
    result = subprocess.run([sys.executable, "-c", LOAD_AND_EMBED, str(tmp_path / "model.pt")],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.stdout.split("\n")[:2] == ["after transform False", "after partial_fit True"]


def test_optimizer_state_not_matching_the_model_is_refused_at_load(tmp_path):
    payload = _real_payload(tmp_path)
    optimizer = payload["state"]["optimizer"]
    group = {**optimizer["param_groups"][0], "params": optimizer["param_groups"][0]["params"][1:]}
    torch.save({**payload, "state": {**payload["state"],
                                     "optimizer": {**optimizer, "param_groups": [group]}}},
               tmp_path / "short.pt")
    with pytest.raises(ValueError, match="Refusing to load .*short.pt.*optimizer state covers "
                                         r"\d+ parameters"):
        CEBRA.load(tmp_path / "short.pt")


def test_loaded_model_can_be_adapted(tmp_path):
    model = CEBRA(**FAST, max_adapt_iterations=3).fit(NEURAL)
    model.save(tmp_path / "model.pt")
    loaded = CEBRA.load(tmp_path / "model.pt")
    new_neural = SESSIONS[1][0]
    loaded.fit(new_neural, adapt=True)
    model.fit(new_neural, adapt=True)
    np.testing.assert_array_equal(loaded.transform(new_neural), model.transform(new_neural))


def test_load_with_map_location(tmp_path):
    model = CEBRA(**FAST).fit(NEURAL)
    model.save(tmp_path / "model.pt")
    loaded = CEBRA.load(tmp_path / "model.pt", map_location="cpu")
    assert loaded.device == "cpu" and loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.transform(NEURAL), model.transform(NEURAL))


def test_saving_twice_overwrites(tmp_path):
    path = tmp_path / "model.pt"
    CEBRA(**FAST).fit(NEURAL).save(path)
    second = CEBRA(**{**FAST, "random_state": 1}).fit(NEURAL)
    second.save(path)
    np.testing.assert_array_equal(CEBRA.load(path).transform(NEURAL), second.transform(NEURAL))


# --------------------------------------------------------------------------------------
# Refusing files that are not plain model files
# --------------------------------------------------------------------------------------

class _Exploit:
    """Unpickling this object creates ``marker`` (stands for arbitrary code)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _real_payload(tmp_path) -> dict:
    CEBRA(**FAST).fit(NEURAL).save(tmp_path / "real.pt")
    return torch.load(tmp_path / "real.pt", weights_only=True)


@pytest.mark.parametrize("how", ["torch-extra-key", "torch-replaced-state", "torch-whole",
                                 "plain-pickle"])
def test_tampered_file_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / "pwned"
    exploit = _Exploit(str(marker))
    payload = _real_payload(tmp_path)
    path = tmp_path / "tampered.pt"
    if how == "torch-extra-key":
        torch.save({**payload, "extra": exploit}, path)
    elif how == "torch-replaced-state":
        torch.save({**payload, "state": {**payload["state"], "optimizer": exploit}}, path)
    elif how == "torch-whole":
        torch.save(exploit, path)
    else:
        with open(path, "wb") as file:
            pickle.dump({**payload, "extra": exploit}, file)

    with pytest.raises(ValueError, match="Refusing to load .*tampered.pt.*pickled objects"):
        CEBRA.load(path)
    assert not marker.exists()

    # The file really was live: an unrestricted unpickler runs the payload.
    if how == "plain-pickle":
        with open(path, "rb") as file:
            pickle.load(file)
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


def test_corrupt_or_foreign_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="Refusing to load"):
        CEBRA.load(garbage)

    truncated = tmp_path / "truncated.pt"
    CEBRA(**FAST).fit(NEURAL).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="Refusing to load"):
        CEBRA.load(truncated)

    tensors = tmp_path / "tensors.pt"
    torch.save({"weight": torch.zeros(3)}, tensors)
    with pytest.raises(ValueError, match="not a cebra_pipe model file"):
        CEBRA.load(tensors)

    other_format = tmp_path / "other.pt"
    torch.save({"meta": json.dumps({"format": "something-else/9"})}, other_format)
    with pytest.raises(ValueError, match="has format 'something-else/9'"):
        CEBRA.load(other_format)

    with pytest.raises(FileNotFoundError, match="No model file at"):
        CEBRA.load(tmp_path / "missing.pt")


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------

class _Interrupt(Exception):
    pass


def _interrupt_at(step_to_fail: int):
    def callback(step, solver):
        if step == step_to_fail:
            raise _Interrupt(f"stopped at step {step}")
    return callback


def _run_interrupted_then_resume(tmp_path, params: dict, args: tuple, transform_kwargs: dict):
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(_Interrupt):
        CEBRA(**params).fit(*args, callback=_interrupt_at(7), callback_frequency=1,
                            checkpoint_dir=checkpoints, checkpoint_frequency=5)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint_00000005.pt"]

    steps: list[int] = []
    resumed = CEBRA(**params).fit(*args, callback=lambda step, _: steps.append(step),
                                  callback_frequency=1, checkpoint_dir=checkpoints,
                                  checkpoint_frequency=5)
    assert steps == [6, 7, 8, 9, 10]  # continued from the checkpoint, not from scratch
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint_00000010.pt"]

    uninterrupted = CEBRA(**params).fit(*args)
    X = args[0][0] if isinstance(args[0], list) else args[0]
    np.testing.assert_array_equal(resumed.transform(X, **transform_kwargs),
                                  uninterrupted.transform(X, **transform_kwargs))
    np.testing.assert_array_equal(resumed.state_dict_["loss"], uninterrupted.state_dict_["loss"])
    for key in ("pos", "neg", "temperature"):
        np.testing.assert_array_equal(resumed.state_dict_["log"][key],
                                      uninterrupted.state_dict_["log"][key])
    return resumed


@pytest.mark.parametrize("mode", ["time", "continuous", "discrete", "full-batch", "hybrid",
                                  "auto-temperature", "multi-session"])
def test_checkpoint_resume_matches_an_uninterrupted_fit(tmp_path, mode):
    params = dict(FAST, max_iterations=10, hybrid=mode == "hybrid",
                  temperature_mode="auto" if mode == "auto-temperature" else "constant")
    if mode == "full-batch":
        params["batch_size"] = None
    args = {"time": (NEURAL,), "continuous": (NEURAL, CONTINUOUS),
            "discrete": (NEURAL, DISCRETE), "full-batch": (NEURAL, CONTINUOUS),
            "hybrid": (NEURAL, CONTINUOUS), "auto-temperature": (NEURAL, CONTINUOUS),
            "multi-session": ([SESSIONS[0][0], SESSIONS[1][0]],
                              [SESSIONS[0][1], SESSIONS[1][1]])}[mode]
    kwargs = {"session_id": 0} if mode == "multi-session" else {}
    _run_interrupted_then_resume(tmp_path, params, args, kwargs)


def test_checkpoint_resume_with_dropout(tmp_path):
    params = dict(FAST, max_iterations=10, model_architecture="offset36-model-dropout")
    _run_interrupted_then_resume(tmp_path, params, (np.tile(NEURAL, (2, 1)),), {})


def test_resume_from_a_completed_run_trains_no_more(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    params = dict(FAST, max_iterations=10)
    first = CEBRA(**params).fit(NEURAL, checkpoint_dir=checkpoints, checkpoint_frequency=5)
    steps: list[int] = []
    again = CEBRA(**params).fit(NEURAL, callback=lambda s, _: steps.append(s),
                                callback_frequency=1, checkpoint_dir=checkpoints,
                                checkpoint_frequency=5)
    assert steps == []
    np.testing.assert_array_equal(again.transform(NEURAL), first.transform(NEURAL))


def test_checkpoint_dir_without_checkpoints_trains_from_scratch(tmp_path):
    params = dict(FAST, max_iterations=6)
    model = CEBRA(**params).fit(NEURAL, checkpoint_dir=tmp_path / "empty",
                                checkpoint_frequency=4)
    np.testing.assert_array_equal(model.transform(NEURAL),
                                  CEBRA(**params).fit(NEURAL).transform(NEURAL))
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["checkpoint_00000004.pt"]
