"""Tests for ``cebra_pipe.load_data``: the usage guide, every format, every bad input."""

from __future__ import annotations

import datetime
import pickle
from pathlib import Path
from typing import Any, Callable

import h5py
import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch

import cebra_pipe
from cebra_pipe.data.load import (
    SUPPORTED_SUFFIXES,
    CorruptFileError,
    EmptyFileError,
    KeyRequiredError,
    LoadError,
    MissingColumnError,
    MissingKeyError,
    NonNumericDataError,
    UnsupportedFormatError,
    load_data,
)

REAL_DATA = Path("/work/shared/data/real")


# ------------------------------------------------------------------ usage guide


def test_usage_guide_data_loading(tmp_path, monkeypatch):
    """The "Create a CEBRA workspace" and "Data loading" blocks of the guide, verbatim."""
    monkeypatch.chdir(tmp_path)

    # Create a .npz file
    import numpy as np

    X = np.random.normal(0,1,(100,3))
    X_new = np.random.normal(0,1,(100,4))
    np.savez("neural_data", neural = X, new_neural = X_new)

    # Create a .h5 file, containing a pd.DataFrame
    import pandas as pd

    X_continuous = np.random.normal(0,1,(100,3))
    X_discrete = np.random.randint(0,10,(100, ))
    df = pd.DataFrame(np.array(X_continuous), columns=["continuous1", "continuous2", "continuous3"])
    df["discrete"] = X_discrete
    df.to_hdf("auxiliary_behavior_data.h5", key="auxiliary_variables")

    import cebra_pipe as cebra

    # Load the .npz
    neural_data = cebra.load_data(file="neural_data.npz", key="neural")

    # ... and similarly load the .h5 file, providing the columns to keep
    continuous_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["continuous1", "continuous2", "continuous3"])
    discrete_label = cebra.load_data(file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["discrete"]).flatten()

    np.testing.assert_array_equal(neural_data, X)
    np.testing.assert_array_equal(continuous_label, X_continuous)
    np.testing.assert_array_equal(discrete_label, X_discrete)
    assert discrete_label.shape == (100,) and discrete_label.dtype.kind == "i"

    # Quick start, "2. Load example data"
    neural_data = cebra.load_data(file="neural_data.npz", key="neural")
    new_neural_data = cebra.load_data(file="neural_data.npz", key="new_neural")
    assert new_neural_data.shape == (100, 4)

    # Torch API example
    discrete_label = cebra.load_data(
        file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["discrete"],
    )
    discrete = torch.from_numpy(np.array(discrete_label[:, 0])).type(torch.LongTensor)
    np.testing.assert_array_equal(discrete.numpy(), X_discrete)


def test_load_data_is_exported_lazily():
    assert cebra_pipe.load_data is load_data


def test_docstring_warns_about_pickle():
    doc = load_data.__doc__
    assert "execute code" in doc and ".pkl" in doc and ".jl" in doc


# ------------------------------------------------------------------- round trip

DATA = np.arange(60, dtype=np.float64).reshape(20, 3) / 7.0
OTHER = np.arange(10, dtype=np.int64)
COLUMNS = ["a", "b", "c"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(DATA, columns=COLUMNS)


def write_mat73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: HDF5 with a 512-byte MATLAB header, arrays transposed."""
    with h5py.File(path, "w", userblock_size=512) as h5:
        for name, value in variables.items():
            dataset = h5.create_dataset(name, data=np.asarray(value).T)
            dataset.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02" + b"IM")


# Each writer stores DATA (and sometimes more) and returns the load_data kwargs.
WRITERS: dict[str, Callable[[Path], tuple[str, dict[str, Any]]]] = {
    "npy": lambda d: (np.save(d / "x.npy", DATA), ("x.npy", {}))[1],
    "npz-single": lambda d: (np.savez(d / "x.npz", neural=DATA), ("x.npz", {}))[1],
    "npz-key": lambda d: (np.savez(d / "x.npz", neural=DATA, other=OTHER),
                          ("x.npz", {"key": "neural"}))[1],
    "h5-dataset": lambda d: (_write_h5(d / "x.h5"), ("x.h5", {"key": "group/neural"}))[1],
    "hdf5-leading-slash": lambda d: (_write_h5(d / "x.hdf5"),
                                     ("x.hdf5", {"key": "/group/neural"}))[1],
    "h-dataset": lambda d: (_write_h5(d / "x.h"), ("x.h", {"key": "group/neural"}))[1],
    "hdf-pandas-fixed": lambda d: (_frame().to_hdf(d / "x.hdf", key="df"), ("x.hdf", {}))[1],
    "h5-pandas-table": lambda d: (_frame().to_hdf(d / "x.h5", key="df", format="table"),
                                  ("x.h5", {"key": "df", "columns": COLUMNS}))[1],
    "pt-tensor": lambda d: (torch.save(torch.from_numpy(DATA), d / "x.pt"), ("x.pt", {}))[1],
    "pth-dict": lambda d: (torch.save({"neural": torch.from_numpy(DATA),
                                       "labels": {"pos": torch.zeros(20)}}, d / "x.pth"),
                           ("x.pth", {"key": "neural"}))[1],
    "csv-header": lambda d: (_frame().to_csv(d / "x.csv", index=False), ("x.csv", {}))[1],
    "csv-index": lambda d: (_frame().to_csv(d / "x.csv"), ("x.csv", {"columns": COLUMNS}))[1],
    "csv-numbers": lambda d: (np.savetxt(d / "x.csv", DATA, delimiter=","), ("x.csv", {}))[1],
    "xlsx": lambda d: (_write_excel(d / "x.xlsx"), ("x.xlsx", {"key": "neural"}))[1],
    "xlsm": lambda d: (_write_excel(d / "x.xlsm"), ("x.xlsm", {"key": "neural"}))[1],
    "jl": lambda d: (joblib.dump({"neural": DATA, "other": OTHER}, d / "x.jl"),
                     ("x.jl", {"key": "neural", "allow_pickle": True}))[1],
    "pkl-nested": lambda d: (_pickle({"s1": {"neural": DATA}, "s2": {"neural": OTHER}},
                                     d / "x.pkl"), ("x.pkl", {"key": "s1/neural", "allow_pickle": True}))[1],
    "p-dataframe": lambda d: (_frame().to_pickle(d / "x.p"), ("x.p", {"columns": COLUMNS,
                                                                   "allow_pickle": True}))[1],
    "mat-v5": lambda d: (scipy.io.savemat(d / "x.mat", {"neural": DATA, "other": OTHER}),
                         ("x.mat", {"key": "neural"}))[1],
    "mat-v5-struct": lambda d: (scipy.io.savemat(d / "x.mat", {"s": {"neural": DATA}}),
                                ("x.mat", {"key": "s/neural"}))[1],
    "mat-v73": lambda d: (write_mat73(d / "x.mat", {"neural": DATA, "other": OTHER}),
                          ("x.mat", {"key": "neural"}))[1],
    "parquet": lambda d: (_frame().to_parquet(d / "x.parquet"),
                          ("x.parquet", {"columns": COLUMNS}))[1],
}


def _write_h5(path: Path) -> None:
    with h5py.File(path, "w") as h5:
        h5.create_dataset("group/neural", data=DATA)
        h5.create_dataset("other", data=OTHER)


def _write_excel(path: Path) -> None:
    with pd.ExcelWriter(path) as writer:
        _frame().to_excel(writer, sheet_name="neural", index=False)
        pd.DataFrame({"x": OTHER}).to_excel(writer, sheet_name="other", index=False)


def _pickle(obj: Any, path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_round_trip(tmp_path, fmt):
    name, kwargs = WRITERS[fmt](tmp_path)
    loaded = load_data(tmp_path / name, **kwargs)
    assert isinstance(loaded, np.ndarray)
    np.testing.assert_allclose(loaded, DATA, rtol=1e-12)


def test_round_trip_keeps_integer_labels(tmp_path):
    np.savez(tmp_path / "labels.npz", discrete=OTHER)
    labels = load_data(tmp_path / "labels.npz")
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, OTHER)


def test_columns_select_and_reorder(tmp_path):
    _frame().to_hdf(tmp_path / "x.h5", key="df")
    np.testing.assert_array_equal(load_data(tmp_path / "x.h5", columns=["c", "a"]),
                                  DATA[:, [2, 0]])
    # one name is one column, not a list of characters
    np.testing.assert_array_equal(load_data(tmp_path / "x.h5", columns="b"), DATA[:, [1]])


def test_suffix_is_case_insensitive(tmp_path):
    np.save(tmp_path / "x.npy", DATA)
    (tmp_path / "x.npy").rename(tmp_path / "X.NPY")
    np.testing.assert_array_equal(load_data(tmp_path / "X.NPY"), DATA)


def test_pytorch_bfloat16_becomes_float32(tmp_path):
    torch.save(torch.ones(4, 2, dtype=torch.bfloat16), tmp_path / "x.pt")
    loaded = load_data(tmp_path / "x.pt")
    assert loaded.dtype == np.float32 and loaded.shape == (4, 2)


def test_mat_v73_is_transposed_back(tmp_path):
    write_mat73(tmp_path / "x.mat", {"neural": DATA})
    with h5py.File(tmp_path / "x.mat", "r") as h5:
        assert h5["neural"].shape == (3, 20)  # column-major on disk
    assert load_data(tmp_path / "x.mat").shape == (20, 3)


def test_every_suffix_has_a_round_trip():
    tested = {".npy", ".npz", ".h5", ".hdf5", ".hdf", ".h", ".pt", ".pth", ".csv", ".xlsx",
              ".xlsm", ".jl",
              ".pkl", ".p", ".mat", ".parquet", ".nwb"}
    # .hd5 shares the HDF5 reader, .joblib the joblib one; .xls needs xlrd (tested by
    # dispatch below)
    assert set(SUPPORTED_SUFFIXES) - tested == {".hd5", ".joblib", ".xls"}


def test_xls_suffix_is_dispatched_to_excel(tmp_path):
    # pandas picks the Excel engine from the content, so xlsx bytes under .xls load.
    _write_excel(tmp_path / "x.xls")
    np.testing.assert_allclose(load_data(tmp_path / "x.xls", key="neural"), DATA)


# --------------------------------------------------------------------------- NWB


def _write_nwb(path: Path) -> dict[str, Any]:
    pynwb = pytest.importorskip("pynwb")
    from pynwb.behavior import Position

    nwbfile = pynwb.NWBFile(session_description="linear track", identifier="test-session",
                            session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    spikes = [np.array([0.01, 0.02, 0.03, 0.26]), np.array([0.11, 0.12]),
              np.array([0.049, 0.051, 0.2])]
    for times in spikes:
        nwbfile.add_unit(spike_times=times)
    x = np.linspace(0, 1.6, 40)
    module = nwbfile.create_processing_module(name="behavior", description="tracking")
    position = Position(name="position")
    position.create_spatial_series(name="x", data=x, timestamps=np.arange(40) * 0.025,
                                   reference_frame="track start")
    module.add(position)
    lick = np.sin(np.arange(40.0))
    nwbfile.add_acquisition(pynwb.TimeSeries(name="lick", data=lick, unit="V", rate=40.0))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return {"spikes": spikes, "x": x, "lick": lick}


def test_nwb_units_binned(tmp_path):
    truth = _write_nwb(tmp_path / "s.nwb")
    counts = load_data(tmp_path / "s.nwb", key="units")
    # bins of 25 ms from 0.0 (first spike 0.01) through 0.26 -> 11 bins
    assert counts.shape == (11, 3) and counts.dtype == np.float32
    expected = np.stack([np.histogram(s, bins=np.arange(12) * 0.025)[0]
                         for s in truth["spikes"]], axis=1)
    np.testing.assert_array_equal(counts, expected)
    coarse = load_data(tmp_path / "s.nwb", key="units", bin_size=0.1)
    assert coarse.shape == (3, 3)
    np.testing.assert_array_equal(coarse.sum(0), [4, 2, 3])


def test_nwb_timeseries_by_path(tmp_path):
    truth = _write_nwb(tmp_path / "s.nwb")
    x = load_data(tmp_path / "s.nwb", key="processing/behavior/position/x")
    np.testing.assert_allclose(x, truth["x"])
    np.testing.assert_allclose(load_data(tmp_path / "s.nwb", key="lick"), truth["lick"])
    np.testing.assert_allclose(load_data(tmp_path / "s.nwb", key="acquisition/lick"),
                               truth["lick"])


def test_nwb_errors(tmp_path):
    _write_nwb(tmp_path / "s.nwb")
    with pytest.raises(KeyRequiredError, match="units.*processing/behavior/position/x"):
        load_data(tmp_path / "s.nwb")
    with pytest.raises(MissingKeyError, match="Available keys"):
        load_data(tmp_path / "s.nwb", key="processing/behavior/speed")
    with pytest.raises(LoadError, match="bin_size= only applies to key='units'"):
        load_data(tmp_path / "s.nwb", key="lick", bin_size=0.1)
    with pytest.raises(LoadError, match="not a table"):
        load_data(tmp_path / "s.nwb", key="units", columns=["spike_times"])
    with pytest.raises(LoadError, match="positive number"):
        load_data(tmp_path / "s.nwb", key="units", bin_size=0)


# -------------------------------------------------------------------- DeepLabCut


def _dlc_frame(individuals: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """DeepLabCut-style output; 'nose' x/y are linear ramps, with unreliable frames."""
    t = np.arange(12, dtype=np.float64)
    levels = [["DLC_resnet50_trackJan1shuffle1_1000"]]
    names = ["scorer"]
    if individuals:
        levels.append(individuals)
        names.append("individuals")
    levels += [["nose", "tail"], ["x", "y", "likelihood"]]
    names += ["bodyparts", "coords"]
    columns = pd.MultiIndex.from_product(levels, names=names)
    values = np.empty((len(t), len(columns)))
    for i, col in enumerate(columns):
        coord, offset = col[-1], (10.0 if col[-2] == "tail" else 0.0)
        values[:, i] = {"x": 2 * t + offset, "y": 100 - t + offset, "likelihood": 0.99}[coord]
    df = pd.DataFrame(values, columns=columns)
    truth = df.copy()
    for col in columns:  # frames 3-5 of the nose are glitches with low likelihood
        if col[-2] == "nose":
            df.loc[3:5, col] = 0.2 if col[-1] == "likelihood" else 999.0
    return df, truth.to_numpy()


def test_deeplabcut_keypoints_interpolated(tmp_path):
    df, _ = _dlc_frame()
    df.to_hdf(tmp_path / "videoDLC.h5", key="df_with_missing", format="table")
    nose = load_data(tmp_path / "videoDLC.h5", columns=["nose"])
    t = np.arange(12)
    np.testing.assert_allclose(nose, np.stack([2 * t, 100 - t], axis=1))
    both = load_data(tmp_path / "videoDLC.h5")
    assert both.shape == (12, 4)
    np.testing.assert_allclose(both[:, 2:], np.stack([2 * t + 10, 110 - t], axis=1))
    # with a threshold below the glitch likelihood the glitches are kept
    raw = load_data(tmp_path / "videoDLC.h5", columns=["nose"], likelihood_threshold=0.1)
    assert raw[4, 0] == 999.0


def test_deeplabcut_edges_are_held(tmp_path):
    df, _ = _dlc_frame()
    df.loc[0:1, ("DLC_resnet50_trackJan1shuffle1_1000", "tail", "likelihood")] = 0.0
    df.to_hdf(tmp_path / "videoDLC.h5", key="df_with_missing")
    tail = load_data(tmp_path / "videoDLC.h5", columns=["tail"])
    np.testing.assert_allclose(tail[:3, 0], [14.0, 14.0, 14.0])


def test_deeplabcut_multi_animal(tmp_path):
    df, _ = _dlc_frame(individuals=["mouse1", "mouse2"])
    df.to_hdf(tmp_path / "maDLC.h5", key="df_with_missing")
    tail = load_data(tmp_path / "maDLC.h5", columns=["tail"])
    assert tail.shape == (12, 4)  # x, y per individual


def test_deeplabcut_errors(tmp_path):
    df, _ = _dlc_frame()
    df.to_hdf(tmp_path / "videoDLC.h5", key="df_with_missing")
    with pytest.raises(MissingColumnError, match=r"\['paw'\].*'nose', 'tail'"):
        load_data(tmp_path / "videoDLC.h5", columns=["paw"])
    df.loc[:, ("DLC_resnet50_trackJan1shuffle1_1000", "tail", "likelihood")] = 0.1
    df.to_hdf(tmp_path / "lost.h5", key="df_with_missing")
    with pytest.raises(LoadError, match="no point with likelihood"):
        load_data(tmp_path / "lost.h5", columns=["tail"])
    with pytest.raises(LoadError, match=r"likelihood_threshold must lie in \[0, 1\]"):
        load_data(tmp_path / "videoDLC.h5", likelihood_threshold=60)
    _frame().to_hdf(tmp_path / "plain.h5", key="df")
    with pytest.raises(LoadError, match="only applies to DeepLabCut"):
        load_data(tmp_path / "plain.h5", likelihood_threshold=0.5)


# ------------------------------------------------------------------- bad input


def test_unknown_suffix_lists_supported(tmp_path):
    (tmp_path / "x.txt").write_text("1 2 3\n")
    with pytest.raises(UnsupportedFormatError, match=r"x\.txt.*'\.txt'.*\.npy.*\.nwb"):
        load_data(tmp_path / "x.txt")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_data(tmp_path / "missing.npz", key="neural")


@pytest.mark.parametrize("fmt", ["npz-key", "h5-dataset", "jl", "pkl-nested", "mat-v5",
                                 "mat-v73", "xlsx", "pth-dict"])
def test_missing_key_lists_available(tmp_path, fmt):
    name, _ = WRITERS[fmt](tmp_path)
    with pytest.raises(MissingKeyError, match=rf"{name}.*'nope'.*Available keys") as info:
        load_data(tmp_path / name, key="nope", allow_pickle=True)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)


def test_missing_key_suggests_close_match(tmp_path):
    WRITERS["npz-key"](tmp_path)
    with pytest.raises(MissingKeyError, match=r"Did you mean \['neural'\]"):
        load_data(tmp_path / "x.npz", key="nueral")


def test_key_on_single_array_format(tmp_path):
    WRITERS["npy"](tmp_path)
    with pytest.raises(MissingKeyError, match="has no keys"):
        load_data(tmp_path / "x.npy", key="neural")


def test_group_key_lists_members(tmp_path):
    WRITERS["pkl-nested"](tmp_path)
    with pytest.raises(MissingKeyError, match=r"is a group.*'s1/neural'"):
        load_data(tmp_path / "x.pkl", key="s1", allow_pickle=True)


@pytest.mark.parametrize("fmt", ["npz-key", "h5-dataset", "jl", "mat-v5", "xlsx"])
def test_several_arrays_need_a_key(tmp_path, fmt):
    name, _ = WRITERS[fmt](tmp_path)
    with pytest.raises(KeyRequiredError, match=rf"{name}.*holds 2 .*pass key="):
        load_data(tmp_path / name, allow_pickle=True)


@pytest.mark.parametrize("fmt", ["npz-key", "h5-dataset", "pth-dict", "mat-v73", "npy"])
def test_columns_on_a_non_table(tmp_path, fmt):
    name, kwargs = WRITERS[fmt](tmp_path)
    with pytest.raises(LoadError, match=r"columns=\['a'\].*not a table"):
        load_data(tmp_path / name, columns=["a"], **kwargs)


@pytest.mark.parametrize("fmt", ["h5-pandas-table", "csv-header", "xlsx", "p-dataframe",
                                 "parquet"])
def test_unknown_column_lists_columns(tmp_path, fmt):
    name, kwargs = WRITERS[fmt](tmp_path)
    kwargs = {**kwargs, "columns": ["a", "speed"]}
    with pytest.raises(MissingColumnError, match=r"\['speed'\].*Available columns.*'a', 'b', 'c'"):
        load_data(tmp_path / name, **kwargs)


def test_empty_columns_list(tmp_path):
    WRITERS["csv-header"](tmp_path)
    with pytest.raises(LoadError, match="columns= is empty"):
        load_data(tmp_path / "x.csv", columns=[])


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_empty_file(tmp_path, suffix):
    (tmp_path / f"x{suffix}").touch()
    with pytest.raises(EmptyFileError, match=rf"x\{suffix}.*empty"):
        load_data(tmp_path / f"x{suffix}")


def test_empty_table(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(EmptyFileError, match="no rows"):
        load_data(tmp_path / "x.csv")


@pytest.mark.parametrize("fmt", ["npy", "npz-key", "h5-dataset", "hdf-pandas-fixed",
                                 "pt-tensor", "jl", "pkl-nested", "mat-v5", "mat-v73",
                                 "parquet", "xlsx"])
def test_truncated_file(tmp_path, fmt):
    name, kwargs = WRITERS[fmt](tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=rf"{name}.*(truncated or corrupt|no NumPy header)"):
        load_data(path, **kwargs)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5", ".pt", ".pkl", ".mat", ".parquet",
                                    ".xlsx", ".nwb"])
def test_garbage_file(tmp_path, suffix):
    (tmp_path / f"x{suffix}").write_bytes(b"this is not a data file\x00\x01\x02" * 8)
    with pytest.raises(CorruptFileError, match=rf"x\{suffix}"):
        load_data(tmp_path / f"x{suffix}", allow_pickle=True)


@pytest.mark.parametrize("name", ["x.npy", "folder"])
def test_directory_is_not_a_file(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not a data file"):
        load_data(tmp_path / name)


def test_non_numeric_arrays(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(NonNumericDataError, match=r"s\.npy.*strings") as info:
        load_data(tmp_path / "s.npy")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)

    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(NonNumericDataError, match="Python objects"):
        load_data(tmp_path / "o.npy")

    np.savez(tmp_path / "o.npz", labels=np.array([1, "x"], dtype=object))
    with pytest.raises(NonNumericDataError, match="key 'labels'"):
        load_data(tmp_path / "o.npz", key="labels")

    with h5py.File(tmp_path / "s.h5", "w") as h5:
        h5.create_dataset("names", data=np.array([b"cell1", b"cell2"]))
    with pytest.raises(NonNumericDataError, match="byte strings"):
        load_data(tmp_path / "s.h5")

    joblib.dump(["up", "down"], tmp_path / "s.jl")
    with pytest.raises(NonNumericDataError, match="strings"):
        load_data(tmp_path / "s.jl", allow_pickle=True)



def test_ragged_lists_are_containers(tmp_path):
    # e.g. one array per session, of different lengths
    joblib.dump([[1.0, 2.0], [3.0]], tmp_path / "ragged.jl")
    with pytest.raises(KeyRequiredError, match=r"\['0', '1'\]"):
        load_data(tmp_path / "ragged.jl", allow_pickle=True)
    np.testing.assert_array_equal(load_data(tmp_path / "ragged.jl", key="1", allow_pickle=True),
                                  [3.0])


def test_non_numeric_columns(tmp_path):
    df = _frame()
    df["condition"] = ["left", "right"] * 10
    df.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(NonNumericDataError, match=r"'condition' \((object|str)"):
        load_data(tmp_path / "x.csv")
    np.testing.assert_allclose(load_data(tmp_path / "x.csv", columns=COLUMNS), DATA)


def test_numeric_object_arrays_are_converted(tmp_path):
    joblib.dump(np.array([1.5, 2, 3], dtype=object), tmp_path / "x.jl")
    loaded = load_data(tmp_path / "x.jl", allow_pickle=True)
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded, [1.5, 2.0, 3.0])


def test_mat73_char_is_non_numeric(tmp_path):
    with h5py.File(tmp_path / "x.mat", "w", userblock_size=512) as h5:
        h5.create_dataset("name", data=np.frombuffer(b"abc", np.uint8).astype(np.uint16))
        h5["name"].attrs["MATLAB_class"] = np.bytes_("char")
    with pytest.raises(NonNumericDataError, match="MATLAB char"):
        load_data(tmp_path / "x.mat")


def test_pytorch_objects_are_refused(tmp_path):
    torch.save({"neural": torch.zeros(2), "config": datetime.date(2024, 1, 1)}, tmp_path / "x.pt")
    with pytest.raises(LoadError, match="other than tensors"):
        load_data(tmp_path / "x.pt")


def test_options_for_other_formats_are_rejected(tmp_path):
    WRITERS["npz-key"](tmp_path)
    with pytest.raises(LoadError, match="bin_size= only applies to NWB"):
        load_data(tmp_path / "x.npz", key="neural", bin_size=0.05)
    with pytest.raises(LoadError, match="likelihood_threshold= only applies to DeepLabCut"):
        load_data(tmp_path / "x.npz", key="neural", likelihood_threshold=0.5)


# -------------------------------------------------------------------- real data


@pytest.mark.skipif(not (REAL_DATA / "nelpy_linear_track").exists(), reason="no real data")
def test_real_nelpy_linear_track():
    path = REAL_DATA / "nelpy_linear_track" / "nelpy_linear_track.npz"
    neural = load_data(path, key="neural")
    continuous = load_data(path, key="continuous")
    assert neural.shape == (38374, 24) and neural.dtype == np.float32
    assert continuous.shape == (38374, 3)
    with pytest.raises(KeyRequiredError, match="'neural', 'position'"):
        load_data(path)


@pytest.mark.skipif(not (REAL_DATA / "rat_hippocampus_achilles").exists(), reason="no real data")
def test_real_achilles_original_hdf5():
    original = REAL_DATA / "rat_hippocampus_achilles" / "original"
    neural = load_data(original / "neural.hd5")
    behavior = load_data(original / "behavior.hdf5")
    assert neural.shape == (10178, 120) and behavior.shape == (10178, 3)


@pytest.mark.skipif(not (REAL_DATA / "golub2018_bci_m1").exists(), reason="no real data")
def test_real_golub_mat_struct():
    path = REAL_DATA / "golub2018_bci_m1" / "original" / "exampleData.mat"
    with pytest.raises(MissingKeyError, match="is a group.*expParams/"):
        load_data(path, key="expParams")
    with pytest.raises(NonNumericDataError, match="expParams/monkName"):
        load_data(path, key="expParams/monkName")


# ------------------------------------------------- issue 15: separators, pickles, sizes

@pytest.mark.parametrize("text", [
    "a;b\n1,5;2\n-3,25;4e-1\n",          # semicolons with decimal commas (European Excel)
    "a\tb\n1,5\t2\n-3,25\t0,4\n",        # tabs with decimal commas
    "a\tb\n1.5\t2\n-3.25\t0.4\n",        # tabs
    "a|b\n1.5|2\n-3.25|0.4\n",           # pipes
    "1,5;2\n-3,25;0,4\n",                # no header
])
def test_csv_separator_and_decimal_mark_are_detected(tmp_path, text):
    (tmp_path / "x.csv").write_text(text)
    np.testing.assert_allclose(load_data(tmp_path / "x.csv"), [[1.5, 2.0], [-3.25, 0.4]])


def test_csv_rows_with_fewer_fields_are_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(LoadError, match=r"x\.csv', line 3: 2 fields, but the first row has 3"):
        load_data(tmp_path / "x.csv")


def test_pandas_hdf5_without_objects_reads_without_allow_pickle(tmp_path):
    frame = _frame()
    frame.index = [f"t{i}" for i in range(len(frame))]  # a string index is no pickle
    frame.to_hdf(tmp_path / "fixed.h5", key="df", format="fixed")
    frame.to_hdf(tmp_path / "table.h5", key="df", format="table")
    for name in ("fixed.h5", "table.h5"):
        np.testing.assert_allclose(load_data(tmp_path / name), DATA)


def test_allow_pickle_must_be_a_bool(tmp_path):
    WRITERS["npy"](tmp_path)
    with pytest.raises(TypeError, match=r"x\.npy.*allow_pickle must be True or False, got 'yes'"):
        load_data(tmp_path / "x.npy", allow_pickle="yes")


def test_npy_header_is_checked_against_the_file_size(tmp_path):
    np.save(tmp_path / "x.npy", DATA)
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-8])  # one float short
    with pytest.raises(CorruptFileError, match=r"x\.npy.*claims shape \(20, 3\).*480 bytes"):
        load_data(tmp_path / "x.npy")


def test_several_arrays_error_tells_a_cebra_user_which_key_the_reference_took(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, neural=np.zeros((3, 2)), position=np.zeros(3))
    with pytest.raises(KeyRequiredError, match=r"cebra 0\.6\.1 took the first: key='neural'"):
        load_data(path)


def test_npz_member_larger_than_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    from cebra_pipe.data import _formats

    np.savez_compressed(tmp_path / "x.npz", neural=np.zeros((1000, 100)))  # 800 kB, compresses
    monkeypatch.setattr(_formats, "_available_memory", lambda: 100_000)
    with pytest.raises(LoadError, match=r"x\.npz', key 'neural'.*needs 800,000 bytes of memory "
                                        r"but only 100,000 are available"):
        load_data(tmp_path / "x.npz", key="neural")
