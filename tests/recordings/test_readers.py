import numpy as np
import pandas as pd
import pytest

from cebra_pipe.recordings import (AlignmentError, Continuous, Intervals, LabelStream,
                                   SpikeTrains, TimeBase, align_session)
from cebra_pipe.recordings.readers import (read_deeplabcut, read_intervals_table, read_nwb,
                                           read_spike_arrays, read_table_stream)


def test_nwb_units_selected_by_quality_with_obs_intervals(lab_nwb):
    units = read_nwb(lab_nwb, "units", select={"quality": ["good"]})
    assert isinstance(units, SpikeTrains) and list(units.unit_ids) == [0, 2]
    counts, _ = units.on(TimeBase.regular(0.0, 0.99, 0.1))
    np.testing.assert_array_equal(counts[:, 0], [1, 2, 0, 0, 0, 0, 0, 0, 0, 1])
    everyone = read_nwb(lab_nwb, "units")
    _, reason = everyone.on(TimeBase.regular(0.0, 0.99, 0.1))
    assert list(reason).count("outside_observation") == 4  # unit 1 observed until 0.6 s
    with pytest.raises(AlignmentError, match="no unit left after selecting"):
        read_nwb(lab_nwb, "units", select={"quality": ["excellent"]})
    with pytest.raises(AlignmentError, match="no units column 'snr'"):
        read_nwb(lab_nwb, "units", select={"snr": [1]})


def test_nwb_spatial_series_in_one_position_container_and_other_modules(lab_nwb):
    head = read_nwb(lab_nwb, "processing/behavior/Position/head")
    body = read_nwb(lab_nwb, "processing/behavior/Position/body")
    speed = read_nwb(lab_nwb, "processing/other_module/BehavioralTimeSeries/speed")
    assert isinstance(head, Continuous) and head.values.shape == (21, 2)
    np.testing.assert_allclose(body.timestamps[:3], [0.0, 0.05, 0.1])
    np.testing.assert_allclose(speed.values[:, 0], 3.0)
    with pytest.raises(AlignmentError, match="is a group .*Position/body"):
        read_nwb(lab_nwb, "processing/behavior/Position")
    with pytest.raises(AlignmentError, match="no such NWB object. Did you mean"):
        read_nwb(lab_nwb, "processing/behavior/Position/haed")


def test_nwb_trials_and_named_intervals(lab_nwb):
    trials = read_nwb(lab_nwb, "trials")
    assert isinstance(trials, Intervals) and list(trials.columns["condition"]) == ["A", "B", "A"]
    assert list(trials.select({"condition": ["A"]}).ids) == [0, 2]
    epochs = read_nwb(lab_nwb, "epochs")
    assert list(epochs.select({"tags": ["box"]}).start) == [0.5]  # epochs by name (tag)
    running = read_nwb(lab_nwb, "intervals/running")
    np.testing.assert_allclose([running.start[0], running.stop[0]], [0.1, 0.5])


def test_nwb_session_end_to_end_by_hand(lab_nwb):
    units = read_nwb(lab_nwb, "units", select={"quality": ["good"]})
    trials = read_nwb(lab_nwb, "trials").select({"condition": ["A"]})
    head = read_nwb(lab_nwb, "processing/behavior/Position/head")
    session = align_session(TimeBase.regular(*units.extent(), 0.1), units,
                            {"position": LabelStream(head)}, trials=trials)
    # bins [0, .3) (trial 0) and [.7, 1.0) (trial 2); the bin [1.0, 1.1) has no position.
    np.testing.assert_allclose(session.time, [0.05, 0.15, 0.25, 0.75, 0.85, 0.95])
    np.testing.assert_array_equal(session.trial, [0, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(session.segment, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(session.labels["position"][:, 1], 2 * session.time, rtol=1e-6)
    assert session.dropped["trials"] == {"outside_intervals": 5}


def test_nwb_timestamps_that_go_backwards_are_refused(tmp_path):
    pytest.importorskip("pynwb")
    from tests.recordings.conftest import write_lab_nwb

    path = write_lab_nwb(tmp_path / "bad.nwb", positions_backwards=True)
    with pytest.raises(AlignmentError, match="Position/head'.*timestamps go backwards"):
        read_nwb(path, "processing/behavior/Position/head")


def _dlc_table(frames=60):
    columns = pd.MultiIndex.from_product([["DLC_resnet50"], ["nose", "tail"],
                                          ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    data = np.zeros((frames, 6))
    data[:, 0] = np.arange(frames)
    data[:, 3] = 2 * np.arange(frames)
    data[:, [2, 5]] = 0.99
    data[10:14, 2] = 0.1  # nose lost for 4 frames
    return pd.DataFrame(data, columns=columns)


@pytest.mark.parametrize("suffix", ["csv", "h5"])
def test_deeplabcut_pose_at_the_camera_rate_drops_low_likelihood_frames(tmp_path, suffix):
    path = tmp_path / f"pose.{suffix}"
    table = _dlc_table()
    table.to_csv(path) if suffix == "csv" else table.to_hdf(path, key="df_with_missing")
    pose = read_deeplabcut(path, None, ["nose"], threshold=0.6, rate=60.0)
    assert pose.values.shape == (60, 2)
    values, reason = pose.on(TimeBase.regular(0.0, 0.99, 0.05))
    # frames 10-13 (0.167-0.217 s) are invalid: the bins centred at .175 and .225 go.
    assert list(np.flatnonzero(reason == "invalid_samples")) == [3, 4]
    np.testing.assert_allclose(values[0, 0], 0.025 * 60)
    with pytest.raises(AlignmentError, match="unknown bodypart"):
        read_deeplabcut(path, None, ["paw"], threshold=0.6, rate=60.0)


def test_table_with_a_time_column_and_spike_arrays(tmp_path):
    csv = tmp_path / "speed.csv"
    pd.DataFrame({"t": [0.0, 0.5, 1.0], "speed": [0.0, 1.0, 4.0]}).to_csv(csv, index=False)
    stream = read_table_stream(csv, None, {"column": "t"}, ["speed"])
    values, _ = stream.on(TimeBase.regular(0.0, 0.99, 0.5))
    np.testing.assert_allclose(values[:, 0], [0.5, 2.5])
    npz = tmp_path / "spikes.npz"
    np.savez(npz, t=np.array([0.3, 0.1, 0.2]), unit=np.array([1, 0, 1]))
    trains = read_spike_arrays(npz, "t", "unit")
    np.testing.assert_allclose(trains.times[1], [0.2, 0.3])


def test_intervals_table_needs_start_and_stop(tmp_path):
    good = tmp_path / "trials.csv"
    pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0],
                  "condition": ["a", "b"]}).to_csv(good, index=False)
    assert list(read_intervals_table(good, None).columns["condition"]) == ["a", "b"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"begin": [0.0], "end": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(AlignmentError, match="bad.csv.*no start/stop column"):
        read_intervals_table(bad, None)


def test_a_missing_optional_reader_names_the_extra(tmp_path, monkeypatch):
    from cebra_pipe.data.load import load_data
    from cebra_pipe.recordings.readers import require

    with pytest.raises(ModuleNotFoundError, match=r'pip install "cebra_pipe\[nwb\]"'):
        require("no_such_reader_module", "nwb")
    book = tmp_path / "labels.xlsx"
    book.write_bytes(b"PK\x03\x04 not really a workbook")
    monkeypatch.setitem(__import__("sys").modules, "openpyxl", None)  # not installed
    with pytest.raises(ModuleNotFoundError, match=r"'openpyxl'.*cebra_pipe\[excel\]"):
        load_data(book)


def test_imaging_traces_as_neural_data_at_the_imaging_rate(tmp_path):
    """dF/F in an NWB RoiResponseSeries (ophys module) is the time base; position at
    another rate is interpolated onto the imaging frames."""
    pytest.importorskip("pynwb")
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.behavior import Position
    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel

    from cebra_pipe.recordings.build import build_session

    nwb = NWBFile(session_description="imaging", identifier="ophys",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device(name="2p")
    plane = nwb.create_imaging_plane(
        name="plane", optical_channel=OpticalChannel(name="green", description="GCaMP",
                                       emission_lambda=510.0),
        imaging_rate=10.0, description="CA1", device=device, excitation_lambda=920.0,
        indicator="GCaMP6f", location="CA1")
    segmentation = ImageSegmentation()
    rois = segmentation.create_plane_segmentation("rois", plane, "PlaneSegmentation")
    for k in range(3):
        mask = np.zeros((4, 4))
        mask[k, k] = 1
        rois.add_roi(image_mask=mask)
    ophys = nwb.create_processing_module("ophys", "imaging")
    ophys.add(segmentation)
    region = rois.create_roi_table_region("all", region=[0, 1, 2])
    fluorescence = Fluorescence()
    dff = np.arange(60.0).reshape(20, 3)
    fluorescence.create_roi_response_series(name="RoiResponseSeries", data=dff, rois=region,
                                            unit="dF/F", rate=10.0, starting_time=0.2)
    ophys.add(fluorescence)
    position = Position(name="Position")
    position.create_spatial_series(name="xy", data=np.linspace(0, 3, 31)[:, None],
                                   reference_frame="start", rate=10.0, starting_time=0.0)
    nwb.create_processing_module("behavior", "tracking").add(position)
    path = tmp_path / "ophys.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    spec = {"time_base": {"stream": "neural"},
            "neural": {"key": "processing/ophys/Fluorescence/RoiResponseSeries",
                       "preprocess": ["zscore"]},
            "labels": {"position": {"type": "continuous",
                                    "key": "processing/behavior/Position/xy"}}}
    session = build_session(path, path, spec)
    np.testing.assert_allclose(session.time, 0.2 + np.arange(20) / 10.0)
    np.testing.assert_allclose(session.labels["position"][:, 0], session.time, atol=1e-6)
    np.testing.assert_allclose(session.neural.mean(axis=0), 0.0, atol=1e-6)
    assert session.dropped["neural"] == {} and session.segment.max() == 0


def test_pandas_hdf5_tables_that_would_unpickle_are_refused_unless_allowed(tmp_path):
    from cebra_pipe.data.load import PickleRefusedError

    path = tmp_path / "trials.h5"
    pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0],
                  "condition": ["a", "b"]}).to_hdf(path, key="trials")  # object column
    with pytest.raises(PickleRefusedError, match="trials.h5"):
        read_intervals_table(path, "trials")
    trials = read_intervals_table(path, "trials", allow_pickle=True)
    assert list(trials.columns["condition"]) == ["a", "b"]
