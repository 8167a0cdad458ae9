"""The time axis of a session: bins with a start, a stop and a centre in seconds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cebra_pipe.recordings.errors import AlignmentError


@dataclasses.dataclass(frozen=True)
class TimeBase:
    """Bins of one session on the recording's clock.

    Attributes
    ----------
    starts, stops : (time,) float64 seconds; bin ``i`` is ``[starts[i], stops[i])``.
    index : (time,) int64 position of each bin on the regular grid it was cut from;
        consecutive bins whose indices differ by more than one are not adjacent in
        time (a seam).
    times : (time,) where streams are sampled in each bin, seconds (default the
        midpoints; a base made from a stream's samples uses the samples' timestamps).
    """

    starts: np.ndarray
    stops: np.ndarray
    index: np.ndarray
    times: np.ndarray | None = None

    @property
    def centres(self) -> np.ndarray:
        """(time,) bin centres in seconds: where streams are sampled."""
        return 0.5 * (self.starts + self.stops) if self.times is None else self.times

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, keep: np.ndarray) -> "TimeBase":
        """The bins where the boolean mask ``keep`` (time,) is true."""
        return TimeBase(self.starts[keep], self.stops[keep], self.index[keep],
                        None if self.times is None else self.times[keep])

    @classmethod
    def regular(cls, t_start: float, t_stop: float, bin_size: float,
                where: str = "the recording") -> "TimeBase":
        """Bins of ``bin_size`` seconds aligned to multiples of ``bin_size``.

        The first bin holds ``t_start`` and the last holds ``t_stop`` (so a recording
        whose last event is at ``t_stop`` keeps it).
        """
        if not (math.isfinite(bin_size) and bin_size > 0):
            raise AlignmentError(f"{where}: bin_size must be a positive number of seconds, "
                                 f"got {bin_size!r}.")
        if not (math.isfinite(t_start) and math.isfinite(t_stop)) or t_stop < t_start:
            raise AlignmentError(f"{where}: cannot make bins from {t_start} s to {t_stop} s.")
        if bin_size > t_stop - t_start:
            raise AlignmentError(f"{where}: bin_size {bin_size} s is larger than the "
                                 f"recording ({t_stop - t_start:.6g} s, from {t_start:.6g} s "
                                 f"to {t_stop:.6g} s).")
        first = math.floor(t_start / bin_size + 1e-9)
        last = math.floor(t_stop / bin_size + 1e-9)
        index = np.arange(first, last + 1, dtype=np.int64)
        # Rounded so that edges are the decimal numbers users think of (3 * 0.1 is
        # 0.30000000000000004; a spike at 0.3 s belongs to the bin starting at 0.3 s).
        starts = np.round(index * bin_size, 12)
        return cls(starts, np.round(starts + bin_size, 12), index - first)

    @classmethod
    def from_samples(cls, timestamps: np.ndarray, where: str = "the stream") -> "TimeBase":
        """One bin per sample of a stream, centred on its timestamp.

        Bin edges lie halfway between samples (the first and last bins are as wide as
        their one neighbour gap), so counts and values line up with the samples.

        Parameters
        ----------
        timestamps : (time,) strictly increasing seconds.
        """
        t = np.asarray(timestamps, dtype=np.float64)
        if t.ndim != 1 or len(t) < 2:
            raise AlignmentError(f"{where}: a time base from samples needs at least 2 "
                                 f"timestamps, got shape {t.shape}.")
        check_increasing(t, where, strict=True)
        mid = 0.5 * (t[1:] + t[:-1])
        starts = np.concatenate([[t[0] - (mid[0] - t[0])], mid])
        stops = np.concatenate([mid, [t[-1] + (t[-1] - mid[-1])]])
        return cls(starts, stops, np.arange(len(t), dtype=np.int64), t)


def check_increasing(t: np.ndarray, where: str, strict: bool = False) -> None:
    """Raise AlignmentError naming ``where`` when timestamps go backwards (or repeat)."""
    if not np.isfinite(t).all():
        raise AlignmentError(f"{where}: timestamps hold {int((~np.isfinite(t)).sum())} "
                             "NaN/inf values.")
    step = np.diff(t)
    bad = np.flatnonzero(step <= 0 if strict else step < 0)
    if bad.size:
        i = int(bad[0])
        what = "go backwards" if step[i] < 0 else "repeat"
        raise AlignmentError(f"{where}: timestamps {what} at sample {i + 1} ({t[i]:.6g} s -> "
                             f"{t[i + 1]:.6g} s); {bad.size} such step(s).")
