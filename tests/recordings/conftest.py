"""Small NWB files written with pynwb, laid out the way labs publish them."""

from datetime import datetime, timezone

import numpy as np
import pytest


def write_lab_nwb(path, *, positions_backwards=False):
    """Units (quality column, obs_intervals), two processing modules, two SpatialSeries in
    one Position container, trials with a condition column, tagged epochs and a
    'running' intervals table. Spike, position and trial times are chosen so tests can
    count by hand."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, Position
    from pynwb.epoch import TimeIntervals

    nwb = NWBFile(session_description="test", identifier="lab-file",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit_column("quality", "sorter label")
    nwb.add_unit(spike_times=[0.05, 0.15, 0.16, 0.95], obs_intervals=[[0.0, 1.0]],
                 quality="good")
    nwb.add_unit(spike_times=[0.25, 0.55], obs_intervals=[[0.0, 0.6]], quality="mua")
    nwb.add_unit(spike_times=[0.35, 0.45, 0.85], obs_intervals=[[0.0, 1.0]], quality="good")
    behavior = nwb.create_processing_module("behavior", "tracking")
    position = Position(name="Position")
    stamps = np.arange(0.0, 1.01, 0.05)
    if positions_backwards:
        stamps[5], stamps[6] = stamps[6], stamps[5]
    position.create_spatial_series(name="head", data=np.stack([stamps, 2 * stamps], 1),
                                   reference_frame="arena corner", timestamps=stamps)
    position.create_spatial_series(name="body", data=stamps[:, None] * 0.5,
                                   reference_frame="arena corner", rate=20.0,
                                   starting_time=0.0)
    behavior.add(position)
    other = nwb.create_processing_module("other_module", "more signals")
    speed = BehavioralTimeSeries(name="BehavioralTimeSeries")
    speed.add_timeseries(TimeSeries(name="speed", data=np.full(11, 3.0), unit="m/s",
                                    timestamps=np.linspace(0.0, 1.0, 11)))
    other.add(speed)
    nwb.add_trial_column("condition", "task condition")
    for start, stop, condition in [(0.0, 0.3, "A"), (0.3, 0.7, "B"), (0.7, 1.0, "A")]:
        nwb.add_trial(start_time=start, stop_time=stop, condition=condition)
    nwb.add_epoch(start_time=0.0, stop_time=0.5, tags=["maze"])
    nwb.add_epoch(start_time=0.5, stop_time=1.0, tags=["sleep", "box"])
    running = TimeIntervals(name="running", description="running epochs")
    running.add_interval(0.1, 0.5)
    nwb.add_time_intervals(running)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture
def lab_nwb(tmp_path):
    pytest.importorskip("pynwb")
    return write_lab_nwb(tmp_path / "lab.nwb")
