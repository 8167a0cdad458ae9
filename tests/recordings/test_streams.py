import numpy as np
import pytest

from cebra_pipe.recordings import AlignmentError, Continuous, Discrete, Intervals, SpikeTrains
from cebra_pipe.recordings.streams import fill_gaps
from cebra_pipe.recordings.timebase import TimeBase


def _bins(centres, width=0.1):
    centres = np.asarray(centres, dtype=float)
    return TimeBase(centres - width / 2, centres + width / 2, np.arange(len(centres)))


# --------------------------------------------------------------------------- spikes

def test_counts_of_known_spike_trains():
    trains = SpikeTrains([np.array([0.01, 0.02, 0.15, 0.35]), np.array([0.2, 0.2999, 0.3])],
                         np.array([7, 9]))
    base = TimeBase.regular(0.0, 0.39, 0.1)
    counts, reason = trains.on(base)
    # bins [0, .1) [.1, .2) [.2, .3) [.3, .4): left edge in, right edge out
    np.testing.assert_array_equal(counts, [[2, 0], [1, 0], [0, 2], [1, 1]])
    assert (reason == "").all()


def test_obs_intervals_mark_unobserved_bins():
    trains = SpikeTrains([np.array([0.05, 0.35]), np.array([0.15])], np.array([0, 1]),
                         obs_intervals=[np.array([[0.0, 0.4]]), np.array([[0.1, 0.3]])])
    counts, reason = trains.on(TimeBase.regular(0.0, 0.39, 0.1))
    np.testing.assert_array_equal(counts[:, 1], [0, 1, 0, 0])
    assert list(reason) == ["outside_observation", "", "", "outside_observation"]
    assert trains.extent() == (0.0, 0.4)


def test_spike_times_that_go_backwards_are_refused():
    with pytest.raises(AlignmentError, match="units.npz, unit 3: timestamps go backwards"):
        SpikeTrains([np.array([0.1, 0.05])], np.array([3]), name="units.npz")


def test_spike_arrays_with_unit_ids_are_split_per_unit():
    trains = SpikeTrains.from_arrays(np.array([0.1, 0.2, 0.3]), np.array([2, 1, 2]))
    np.testing.assert_array_equal(trains.unit_ids, [1, 2])
    np.testing.assert_allclose(trains.times[1], [0.1, 0.3])


# ----------------------------------------------------------------------- continuous

def test_linear_interpolation_at_bin_centres():
    stream = Continuous(np.array([0.0, 1.0, 2.0]), np.array([[0.0, 10.0], [1.0, 20.0],
                                                             [3.0, 0.0]]))
    values, reason = stream.on(_bins([0.25, 1.5]))
    np.testing.assert_allclose(values, [[0.25, 12.5], [2.0, 10.0]])
    assert (reason == "").all()


def test_circular_interpolation_takes_the_short_way_across_the_wrap():
    stream = Continuous(np.array([0.0, 1.0]), np.array([350.0, 10.0]))
    values, _ = stream.on(_bins([0.25, 0.5, 0.75]), kind="circular", period=360.0)
    np.testing.assert_allclose(values[:, 0], [355.0, 0.0, 5.0], atol=1e-9)
    radians = Continuous(np.array([0.0, 1.0]), np.array([3.0, -3.0]))
    values, _ = radians.on(_bins([0.5]), kind="circular", period=2 * np.pi)
    assert abs(abs(values[0, 0]) - np.pi) < 1e-9  # through +-pi, not through 0


def test_circular_interpolation_needs_a_period():
    stream = Continuous(np.array([0.0, 1.0]), np.array([1.0, 2.0]), name="head")
    with pytest.raises(AlignmentError, match="head: circular interpolation needs a positive"):
        stream.on(_bins([0.5]), kind="circular")


def test_bins_outside_the_stream_and_in_gaps_are_not_covered():
    t = np.array([1.0, 1.1, 1.2, 2.0, 2.1])
    stream = Continuous(t, np.arange(5.0))
    centres = [0.5, 1.05, 1.5, 2.05, 2.5]
    _, reason = stream.on(_bins(centres))  # default max_gap: 1.5 sample intervals
    assert list(reason) == ["before_first_sample", "", "gap", "", "after_last_sample"]
    values, reason = stream.on(_bins(centres), max_gap=1.0)  # the 0.8 s gap is bridged
    assert reason[2] == ""
    np.testing.assert_allclose(values[2, 0], 2.0 + (1.5 - 1.2) / 0.8)


def test_invalid_samples_are_reported_as_such():
    t = np.arange(6) / 10.0
    values = np.array([0.0, 1.0, np.nan, np.nan, 4.0, 5.0])
    _, reason = Continuous(t, values).on(_bins([0.05, 0.25, 0.45]))
    assert list(reason) == ["", "invalid_samples", ""]


def test_previous_gives_the_value_in_force():
    stream = Continuous(np.array([0.0, 1.0, 2.0]), np.array([5.0, 6.0, 7.0]))
    values, reason = stream.on(_bins([0.99, 1.0, 1.7]), kind="previous", max_gap=1.0)
    np.testing.assert_allclose(values[:, 0], [5.0, 6.0, 6.0])
    assert (reason == "").all()


def test_fill_gaps_interpolates_over_the_index():
    np.testing.assert_allclose(fill_gaps(np.array([np.nan, 1.0, np.nan, 3.0, np.nan])),
                               [1.0, 1.0, 2.0, 3.0, 3.0])


# ------------------------------------------------------------------- discrete, intervals

def test_discrete_value_in_force_at_the_centre():
    events = Discrete(np.array([1.0, 2.0, 4.0]), np.array([3, 1, 2]), stop=5.0)
    values, reason = events.on(_bins([0.5, 1.0, 1.99, 3.0, 4.5, 5.5]))
    np.testing.assert_array_equal(values[1:5], [3, 3, 1, 2])
    assert list(reason) == ["before_first_sample", "", "", "", "", "after_last_sample"]


def test_intervals_give_ids_and_column_values():
    trials = Intervals(np.array([2.0, 0.0]), np.array([3.0, 1.0]), np.array([11, 10]),
                       {"condition": np.array(["b", "a"])})
    base = _bins([0.5, 1.5, 2.5])
    ids, reason = trials.on(base)
    assert list(ids) == [10, -1, 11] and list(reason) == ["", "outside_intervals", ""]
    values, _ = trials.column_on("condition", base)
    assert values[0] == "a" and values[2] == "b"
    kept = trials.select({"condition": ["b"]})
    assert list(kept.ids) == [11]


def test_intervals_selection_matches_list_cells_and_reports_empty_results():
    epochs = Intervals(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0, 1]),
                       {"tags": np.array([["run"], ["sleep", "rest"]], dtype=object)},
                       name="epochs")
    assert list(epochs.select({"tags": ["rest"]}).ids) == [1]
    with pytest.raises(AlignmentError, match="epochs: no interval left"):
        epochs.select({"tags": ["swim"]})
    with pytest.raises(AlignmentError, match="no column 'speed'"):
        epochs.select({"speed": [1]})


def test_overlapping_or_reversed_intervals_are_refused():
    with pytest.raises(AlignmentError, match="overlap"):
        Intervals(np.array([0.0, 0.5]), np.array([1.0, 2.0]), np.array([0, 1]))
    with pytest.raises(AlignmentError, match="stops .* before it starts"):
        Intervals(np.array([1.0]), np.array([0.0]), np.array([0]))
