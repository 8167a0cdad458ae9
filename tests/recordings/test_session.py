import numpy as np
import pytest

from cebra_pipe.recordings import (AlignmentError, Continuous, Intervals, LabelStream,
                                   SpikeTrains, TimeBase, align_session)
from cebra_pipe.recordings.preprocess import apply_steps, parse_steps
from cebra_pipe.recordings.session import make_segments


def _spikes(t_stop=1.0):
    return SpikeTrains([np.array([0.05, 0.45, 0.95]), np.array([0.15, 0.55])],
                       np.array([0, 1]), name="units")


def test_dropped_bins_are_counted_per_stream_and_reason_and_make_seams():
    base = TimeBase.regular(0.0, 0.99, 0.1)  # 10 bins, centres .05 ... .95
    t = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])  # starts late, ends early, gap .3-.6
    position = Continuous(t, t * 10, name="tracker")
    session = align_session(base, _spikes(), {"position": LabelStream(position)})
    np.testing.assert_allclose(session.time, [0.15, 0.25, 0.65, 0.75])
    np.testing.assert_allclose(session.labels["position"][:, 0], [1.5, 2.5, 6.5, 7.5],
                               rtol=1e-6)
    assert session.dropped["position"] == {"before_first_sample": 1, "gap": 3,
                                           "after_last_sample": 2}
    assert session.dropped["neural"] == {}
    np.testing.assert_array_equal(session.segment, [0, 0, 1, 1])
    assert session.num_bins == 10
    assert session.neural.dtype == np.float32 and session.neural.shape == (4, 2)


def test_trials_give_trial_ids_segments_and_interval_labels():
    base = TimeBase.regular(0.0, 0.99, 0.1)
    trials = Intervals(np.array([0.0, 0.3, 0.7]), np.array([0.3, 0.6, 1.0]),
                       np.array([1, 2, 3]), {"direction": np.array([0, 1, 0])}, name="trials")
    position = Continuous(np.linspace(0, 1, 11), np.linspace(0, 1, 11))
    session = align_session(base, _spikes(), {
        "position": LabelStream(position),
        "direction": LabelStream(trials, kind="discrete", column="direction")},
        trials=trials)
    np.testing.assert_array_equal(session.trial, [1, 1, 1, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(session.labels["direction"], [0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(session.segment, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert session.dropped["trials"] == {"outside_intervals": 1}


def test_a_stream_that_does_not_overlap_the_neural_data_is_named():
    late = Continuous(np.array([10.0, 11.0]), np.array([1.0, 2.0]), name="file 'b.csv'")
    with pytest.raises(AlignmentError, match=r"stream 'speed' \(file 'b.csv'\) covers none"):
        align_session(TimeBase.regular(0.0, 0.99, 0.1), _spikes(),
                      {"speed": LabelStream(late)})


def test_segments_start_at_index_jumps_and_trial_changes():
    np.testing.assert_array_equal(make_segments(np.array([0, 1, 2, 5, 6, 7]),
                                                np.array([0, 0, 1, 1, 1, 2])),
                                  [0, 0, 1, 2, 2, 3])


def test_preprocessing_zscore_sqrt_and_smoothing_within_segments():
    values = np.array([[0.0], [4.0], [16.0], [0.0], [0.0], [9.0]])
    segment = np.array([0, 0, 0, 1, 1, 1])
    out = apply_steps(values, parse_steps(["sqrt", "zscore"], "x"), segment, 0.1, "x")
    root = np.sqrt(values)
    np.testing.assert_allclose(out, (root - root.mean()) / root.std())
    step = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]])
    smoothed = apply_steps(step, parse_steps([{"smooth": {"sigma_s": 0.1}}], "x"), segment,
                           0.1, "x")
    np.testing.assert_allclose(smoothed, step)  # constant within each segment: unchanged
    with pytest.raises(AlignmentError, match="unknown preprocessing step 'log'"):
        parse_steps(["log"], "labels.position.preprocess")


def test_preprocessing_is_applied_to_the_aligned_session():
    base = TimeBase.regular(0.0, 0.99, 0.1)
    position = Continuous(np.linspace(0, 1, 11), np.linspace(0, 1, 11) ** 2)
    session = align_session(base, _spikes(), {"position": LabelStream(
        position, preprocess=parse_steps([{"smooth": {"sigma_s": 0.2}}], "p"))},
        neural_preprocess=parse_steps(["sqrt"], "n"))
    assert session.neural.max() == 1.0
    raw = np.interp(session.time, np.linspace(0, 1, 11), np.linspace(0, 1, 11) ** 2)
    assert not np.allclose(session.labels["position"][:, 0], raw)
    assert session.preprocessing["position"] == [["smooth", {"sigma_s": 0.2}]]
    assert session.preprocessing["neural"] == [["sqrt", {}]]
