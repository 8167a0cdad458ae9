import numpy as np
import pytest

from cebra_pipe.recordings import AlignmentError, TimeBase


def test_regular_bins_are_aligned_to_multiples_of_the_bin_size():
    base = TimeBase.regular(0.12, 0.49, 0.1)
    np.testing.assert_allclose(base.starts, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(base.centres, [0.15, 0.25, 0.35, 0.45])
    np.testing.assert_array_equal(base.index, [0, 1, 2, 3])


def test_bin_size_larger_than_the_recording_is_refused():
    with pytest.raises(AlignmentError, match="larger than the recording"):
        TimeBase.regular(0.0, 1.0, 2.0, where="file 'x.nwb', key 'units'")


def test_from_samples_centres_bins_on_the_timestamps():
    base = TimeBase.from_samples(np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(base.centres, [0.0, 1.0, 3.0])
    np.testing.assert_allclose(base.starts, [-0.5, 0.5, 2.0])
    np.testing.assert_allclose(base.stops, [0.5, 2.0, 4.0])


def test_from_samples_refuses_timestamps_that_go_backwards():
    with pytest.raises(AlignmentError, match=r"camera: timestamps go backwards at sample 2"):
        TimeBase.from_samples(np.array([0.0, 1.0, 0.5]), where="camera")
