"""Reading cebra 0.6.1 model files without running pickled code, and writing them."""

from __future__ import annotations

import pickle
import re
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import cebra_pipe
from cebra_pipe.compat import (DisallowedGlobalError, is_cebra_file, read_cebra_file,
                               save_for_cebra)

FIXTURES = Path(__file__).parent / "fixtures"
CASES = ("sklearn_offset10_continuous", "torch_offset5_time", "sklearn_offset5_multisession",
         "sklearn_offset10_hybrid", "sklearn_offset20_discrete", "sklearn_offset15_continuous",
         "sklearn_offset36_more_dropout", "sklearn_offset10_mse_tanh")


def _embeddings(model, data) -> list[tuple[np.ndarray, np.ndarray]]:
    sessions = len([k for k in data.files if k.startswith("neural")])
    return [(model.transform(data[f"neural{i}"], session_id=i if sessions > 1 else None),
             data[f"embedding{i}"]) for i in range(sessions)]


def _globals(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("data.pkl")]
        return {str(arg) for op, arg, _ in pickletools.genops(archive.read(name))
                if op.name == "GLOBAL"}


@pytest.mark.parametrize("case", CASES)
def test_cebra_file_embeds_like_cebra(case):
    path = FIXTURES / f"{case}.pt"
    assert is_cebra_file(path)
    model = cebra_pipe.CEBRA.load(path)
    assert isinstance(model, cebra_pipe.CEBRA)
    for got, expected in _embeddings(model, np.load(FIXTURES / f"{case}.npz")):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_cebra_file_restores_arguments_and_fitted_state():
    single = cebra_pipe.CEBRA.load(FIXTURES / "sklearn_offset10_continuous.pt")
    assert (single.model_architecture, single.output_dimension, single.num_hidden_units,
            single.batch_size) == ("offset10-model", 3, 4, 32)
    assert single.n_features_in_ == 5 and single.num_sessions_ is None
    assert (single.offset_.left, single.offset_.right) == (5, 5)
    assert single.label_kind_ == "continuous" and single.label_dims_ == 2
    assert len(single.state_dict_["loss"]) == 20  # the reference's loss history

    multi = cebra_pipe.CEBRA.load(FIXTURES / "sklearn_offset5_multisession.pt")
    assert multi.num_sessions_ == 2 and multi.n_features_in_ == [5, 4]
    assert multi.temperature_mode == "auto"

    time_model = cebra_pipe.CEBRA.load(FIXTURES / "torch_offset5_time.pt")
    assert time_model.label_kind_ == "time" and time_model.model_architecture == "offset5-model"

    hybrid = cebra_pipe.CEBRA.load(FIXTURES / "sklearn_offset10_hybrid.pt")
    assert hybrid.hybrid and hybrid.label_kind_ == "continuous"
    discrete = cebra_pipe.CEBRA.load(FIXTURES / "sklearn_offset20_discrete.pt")
    assert discrete.label_kind_ == "discrete" and discrete.distance == "euclidean"


def test_loaded_cebra_model_keeps_training():
    model = cebra_pipe.CEBRA.load(FIXTURES / "sklearn_offset10_continuous.pt")
    data = np.load(FIXTURES / "sklearn_offset10_continuous.npz")
    before = model.transform(data["neural0"])
    model.max_iterations = 3
    labels = np.random.default_rng(0).normal(size=(len(data["neural0"]), 2)).astype("float32")
    model.partial_fit(data["neural0"], labels)
    assert len(model.state_dict_["loss"]) == 23
    assert not np.allclose(model.transform(data["neural0"]), before)


def _payload_file(tmp_path: Path, global_name: tuple[str, str], argument: str) -> Path:
    """A torch.save archive whose pickle calls ``module.name(argument)`` and then, like
    a real cebra file, names ``cebra.data.datatypes.Offset``."""

    class Payload:
        def __reduce__(self):
            module, name = global_name
            return getattr(__import__(module), name), (argument,)

    body = pickle.dumps({"args": {"model_architecture": "offset10-model"},
                         "state": {"hook": Payload()}, "state_dict": {}}, protocol=2)
    assert body.endswith(pickle.STOP)
    data = body[:-1] + pickle.GLOBAL + b"cebra.data.datatypes\nOffset\n" + pickle.POP \
        + pickle.STOP
    path = tmp_path / "evil.pt"
    torch.save({}, path)
    _rewrite_pickle(path, path, None, data)
    return path


@pytest.mark.parametrize("global_name,argument", [
    (("builtins", "exec"), "open({marker!r}, 'w').write('ran')"),
    (("os", "system"), "touch {marker}"),
])
def test_pickle_payload_in_cebra_file_is_refused_and_does_not_run(tmp_path, global_name,
                                                                  argument):
    marker = tmp_path / "marker"
    path = _payload_file(tmp_path, global_name, argument.format(marker=str(marker)))
    assert is_cebra_file(path)
    with pytest.raises(DisallowedGlobalError) as error:
        cebra_pipe.CEBRA.load(path)
    message = str(error.value)
    assert str(path) in message
    # Protocol 2 spells builtins "__builtin__"; os.system pickles as posix.system.
    assert re.search(rf"'(__builtin__|builtins|os|posix)\.{global_name[1]}'", message)
    assert not marker.exists()
    # The payload is live: the standard unpickler runs it (then fails to import cebra).
    with pytest.raises(ModuleNotFoundError):
        torch.load(path, weights_only=False)
    assert marker.exists()


def test_truncated_cebra_file_is_refused_with_its_name(tmp_path):
    data = (FIXTURES / "sklearn_offset10_continuous.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        cebra_pipe.CEBRA.load(path)


def _rewrite_pickle(source: Path, target: Path, old: bytes | None, new: bytes) -> None:
    """Copy a torch.save archive, replacing ``old`` by bytes of equal length in its
    pickle (or the whole pickle by ``new`` when ``old`` is None)."""
    with zipfile.ZipFile(source) as src:
        items = [(item, src.read(item)) for item in src.infolist()]
    with zipfile.ZipFile(target, "w") as dst:
        for item, content in items:
            if item.filename.endswith("data.pkl"):
                if old is None:
                    content = new
                else:
                    assert len(old) == len(new) and old in content
                    content = content.replace(old, new)
            dst.writestr(item, content)


def test_cebra_file_of_a_different_layer_layout_is_refused(tmp_path):
    path = tmp_path / "relabelled.pt"
    _rewrite_pickle(FIXTURES / "sklearn_offset10_continuous.pt", path, b"offset10-model",
                    b"offset36-model")
    with pytest.raises(ValueError, match=r"relabelled.pt.*'offset36-model'.*layout"):
        cebra_pipe.CEBRA.load(path)


def _fit(architecture="offset10-model", sessions=1, **kwargs):
    rng = np.random.default_rng(3)
    neural = [rng.normal(size=(80, n)).astype("float32") for n in (6, 4)[:sessions]]
    labels = [rng.normal(size=(80, 1)).astype("float32") for _ in neural]
    model = cebra_pipe.CEBRA(model_architecture=architecture, max_iterations=5, batch_size=16,
                             output_dimension=3, num_hidden_units=8, device="cpu",
                             random_state=0, **kwargs)
    if sessions > 1:
        return model.fit(neural, labels), neural
    return model.fit(neural[0], labels[0]), neural


@pytest.mark.parametrize("sessions,hybrid", [(1, False), (2, False), (1, True)])
def test_export_for_cebra_reads_back_identically(tmp_path, sessions, hybrid):
    model, neural = _fit(sessions=sessions, temperature_mode="auto", hybrid=hybrid)
    path = tmp_path / "for_cebra.pt"
    save_for_cebra(model, path)
    assert is_cebra_file(path)
    # Only globals that cebra 0.6.1 opens with weights_only=True.
    assert _globals(path) <= {"cebra.data.datatypes Offset", "collections OrderedDict",
                              "numpy dtype", "torch FloatStorage",
                              "torch._utils _rebuild_tensor_v2"}
    loaded = cebra_pipe.CEBRA.load(path)
    assert loaded.num_sessions_ == model.num_sessions_
    for i, x in enumerate(neural):
        session = i if sessions > 1 else None
        np.testing.assert_array_equal(loaded.transform(x, session_id=session),
                                      model.transform(x, session_id=session))


def test_export_refuses_architectures_cebra_lays_out_differently(tmp_path):
    model, _ = _fit(architecture="offset1-model")
    with pytest.raises(ValueError, match="'offset1-model' cannot be exported"):
        save_for_cebra(model, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_export_needs_a_fitted_model(tmp_path):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        save_for_cebra(cebra_pipe.CEBRA(), tmp_path / "out.pt")


def test_cebra_pipe_files_and_other_files_are_not_cebra_files(tmp_path):
    model, _ = _fit()
    own = tmp_path / "own.pt"
    model.save(own)
    other = tmp_path / "plain.npy"
    np.save(other, np.zeros(3))
    assert not is_cebra_file(own)
    assert not is_cebra_file(other)
    assert not is_cebra_file(tmp_path / "missing.pt")


def test_read_cebra_file_gives_cebra_pipe_payload():
    payload = read_cebra_file(FIXTURES / "sklearn_offset10_continuous.pt", "fmt",
                              set(cebra_pipe.CEBRA().get_params()))
    assert set(payload) == {"meta", "fitted", "state"}
    assert isinstance(payload["state"]["model"]["net.0.weight"], torch.Tensor)


def test_numpy_values_in_a_cebra_file_are_read_not_refused(tmp_path):
    body = pickle.dumps({"args": {"model_architecture": "offset10-model"},
                         "state": {"array": np.arange(3.0), "scalar": np.float32(1)},
                         "state_dict": {}}, protocol=2)
    path = tmp_path / "numpy.pt"
    torch.save({}, path)
    _rewrite_pickle(path, path, None, body[:-1] + pickle.GLOBAL
                    + b"cebra.data.datatypes\nOffset\n" + pickle.POP + pickle.STOP)
    # Unpickling succeeds (numpy is allowed); the file then lacks cebra's arguments.
    with pytest.raises(ValueError, match="args has no 'num_hidden_units'") as error:
        cebra_pipe.CEBRA.load(path)
    assert not isinstance(error.value, DisallowedGlobalError)


def test_reference_save_and_load_arguments(tmp_path):
    model, neural = _fit()
    for backend in ("sklearn", "torch"):
        model.save(tmp_path / f"{backend}.pt", backend=backend)
        assert not is_cebra_file(tmp_path / f"{backend}.pt")  # cebra_pipe's own format
        for load_backend in ("auto", "sklearn", "torch"):
            loaded = cebra_pipe.CEBRA.load(tmp_path / f"{backend}.pt", load_backend,
                                           weights_only=None)
            np.testing.assert_array_equal(loaded.transform(neural[0]),
                                          model.transform(neural[0]))
    with pytest.raises(ValueError, match="backend must be 'sklearn' or 'torch', got 'jl'"):
        model.save(tmp_path / "x.pt", backend="jl")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(ValueError, match="weights_only=False .* not supported"):
        cebra_pipe.CEBRA.load(FIXTURES / "torch_offset5_time.pt", weights_only=False)
    with pytest.raises(ValueError, match="backend must be 'auto'"):
        cebra_pipe.CEBRA.load(tmp_path / "sklearn.pt", "pickle")
