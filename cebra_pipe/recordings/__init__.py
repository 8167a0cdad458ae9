"""Recordings as labs store them -> one session on one time base.

What belongs here: everything that turns streams recorded on their own clocks (spike
times of sorted units, behaviour or imaging traces at their own rate or timestamps,
DeepLabCut pose, discrete event streams, trial and epoch tables) into arrays that
share one time axis, plus the bookkeeping of which bins each stream covers and why
the others were dropped. It is plain numpy/scipy: no torch, no estimator, no
workflow code.

- :mod:`.timebase` -- :class:`TimeBase`: the bins of a session (fixed-width bins over
  the recording or over chosen intervals, or the sampling of one stream);
- :mod:`.streams` -- the stream types (:class:`SpikeTrains`, :class:`Continuous`,
  :class:`Discrete`, :class:`Intervals`) and how each is put on a time base;
- :mod:`.preprocess` -- per-stream preprocessing steps (registry ``@register``);
- :mod:`.readers` -- streams out of files (NWB objects by path, DeepLabCut tables,
  tables with a time column, spike-time arrays);
- :mod:`.session` -- :func:`align_session`: every stream on one time base, dropped
  bins accounted per stream and reason, trial and segment ids per bin.
"""

from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.recordings.session import AlignedSession, LabelStream, align_session
from cebra_pipe.recordings.streams import Continuous, Discrete, Intervals, SpikeTrains
from cebra_pipe.recordings.timebase import TimeBase

__all__ = ["AlignmentError", "AlignedSession", "LabelStream", "align_session", "Continuous",
           "Discrete", "Intervals", "SpikeTrains", "TimeBase"]
