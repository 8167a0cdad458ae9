import numpy as np
import pandas as pd
import pytest

from cebra_pipe.recordings import AlignmentError
from cebra_pipe.recordings.build import build_session, dropped_summary


def test_epochs_spike_arrays_and_a_table_with_a_time_column(tmp_path, lab_nwb):
    """Spike times + unit ids in an npz, speed in a CSV with its own clock, epochs from
    the NWB file: bins outside the 'running' epoch [0.1, 0.5) are dropped."""
    spikes = tmp_path / "spikes.npz"
    np.savez(spikes, t=np.array([0.12, 0.31, 0.33, 0.45, 0.05]),
             unit=np.array([3, 3, 5, 5, 3]))
    speed = tmp_path / "speed.csv"
    pd.DataFrame({"t": np.linspace(0.0, 0.6, 7), "speed": np.arange(7.0)}).to_csv(
        speed, index=False)
    spec = {"time_base": {"bin_size": 0.1, "epochs": {"key": "intervals/running"}},
            "neural": {"key": "t", "unit_key": "unit"},
            "labels": {"speed": {"type": "continuous", "time": {"column": "t"},
                                 "columns": ["speed"]}}}
    session = build_session(spikes, speed, spec, trials_file=lab_nwb)
    np.testing.assert_allclose(session.time, [0.15, 0.25, 0.35, 0.45])
    np.testing.assert_array_equal(session.neural, [[1, 0], [0, 0], [1, 1], [0, 1]])
    np.testing.assert_allclose(session.labels["speed"][:, 0], [1.5, 2.5, 3.5, 4.5])
    assert session.dropped["epochs"] == {"outside_intervals": 1}
    assert "4 of 5 bins kept, 1 segment(s)" in dropped_summary(session)


def test_a_label_stream_without_a_clock_is_refused(tmp_path, lab_nwb):
    plain = tmp_path / "plain.npz"
    np.savez(plain, position=np.arange(10.0))
    spec = {"time_base": {"bin_size": 0.1}, "neural": {"key": "units"},
            "labels": {"position": {"type": "continuous", "key": "position"}}}
    with pytest.raises(AlignmentError, match=r"labels.position: file '.*plain.npz', key "
                                             r"'position' carries no clock"):
        build_session(lab_nwb, plain, spec)
    spec["labels"]["position"]["rate"] = 10.0
    assert build_session(lab_nwb, plain, spec).labels["position"].shape[1] == 1


def test_trials_selected_by_condition_and_an_interval_column_as_label(lab_nwb):
    spec = {"time_base": {"bin_size": 0.1},
            "neural": {"key": "units", "select": {"quality": ["good"]}},
            "labels": {"condition": {"type": "discrete", "key": "trials",
                                     "column": "condition"}},
            "trials": {"key": "trials", "where": {"condition": ["B"]}}}
    session = build_session(lab_nwb, lab_nwb, spec)  # text values become codes
    np.testing.assert_array_equal(session.labels["condition"], 0)
    assert session.categories == {"condition": ["B"]}
    all_trials = build_session(lab_nwb, lab_nwb, {**spec, "trials": None})
    np.testing.assert_array_equal(all_trials.labels["condition"],
                                  [0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    assert all_trials.categories == {"condition": ["A", "B"]}
    spec["labels"] = {"head": {"type": "continuous",
                               "key": "processing/behavior/Position/head"}}
    session = build_session(lab_nwb, lab_nwb, spec)
    np.testing.assert_array_equal(session.trial, [1, 1, 1, 1])
    np.testing.assert_allclose(session.time, [0.35, 0.45, 0.55, 0.65])
