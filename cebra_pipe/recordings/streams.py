"""Streams on their own clocks, and how each is put on a :class:`TimeBase`.

Every ``*.on(base)`` method returns the values per bin and a ``reason`` array: an
empty string for bins the stream covers, else why it does not (one of
:data:`REASONS`). The session drops every bin that some stream does not cover.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.recordings.timebase import TimeBase, check_increasing

#: Why a bin is not covered by a stream.
REASONS = ("before_first_sample", "after_last_sample", "gap", "invalid_samples",
           "outside_observation", "outside_intervals")


def _reasons(num: int) -> np.ndarray:
    return np.full(num, "", dtype=object)


# --------------------------------------------------------------------------- spikes

@dataclasses.dataclass(frozen=True)
class SpikeTrains:
    """Spike times of sorted units.

    Attributes
    ----------
    times : one (spikes,) float64 array of seconds per unit, non-decreasing.
    unit_ids : (units,) ids of the units (kept for provenance).
    obs_intervals : per unit a (k, 2) array of [start, stop) seconds when the unit was
        observed, or None when all units were observed all the time.
    name : the stream's name for error messages (file and key).
    """

    times: Sequence[np.ndarray]
    unit_ids: np.ndarray
    obs_intervals: Sequence[np.ndarray] | None = None
    name: str = "spike times"

    def __post_init__(self) -> None:
        if len(self.times) == 0:
            raise AlignmentError(f"{self.name}: no units.")
        for unit, t in zip(self.unit_ids, self.times):
            check_increasing(np.asarray(t, dtype=np.float64), f"{self.name}, unit {unit}")

    @classmethod
    def from_arrays(cls, spike_times: np.ndarray, unit_of_spike: np.ndarray,
                    name: str = "spike times") -> "SpikeTrains":
        """From one array of spike times and one of unit ids, both (spikes,)."""
        spike_times = np.asarray(spike_times, dtype=np.float64).ravel()
        unit_of_spike = np.asarray(unit_of_spike).ravel()
        if spike_times.shape != unit_of_spike.shape:
            raise AlignmentError(f"{name}: {spike_times.size} spike times but "
                                 f"{unit_of_spike.size} unit ids.")
        ids = np.unique(unit_of_spike)
        return cls([spike_times[unit_of_spike == u] for u in ids], ids, None, name)

    def extent(self) -> tuple[float, float]:
        """First and last time the recording covers (observation intervals, or spikes)."""
        if self.obs_intervals is not None:
            edges = np.concatenate([np.asarray(i, dtype=np.float64).reshape(-1, 2)
                                    for i in self.obs_intervals])
            if edges.size:
                return float(edges.min()), float(edges.max())
        nonempty = [np.asarray(t) for t in self.times if len(t)]
        if not nonempty:
            raise AlignmentError(f"{self.name}: the units hold no spikes.")
        return min(float(t[0]) for t in nonempty), max(float(t[-1]) for t in nonempty)

    def on(self, base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts per bin.

        Returns
        -------
        counts : (time, units) float32
        reason : (time,) ``"outside_observation"`` where the bin centre lies outside
            some unit's observation intervals (its count there would be a false zero).
        """
        counts = np.zeros((len(base), len(self.times)), dtype=np.float32)
        for unit, t in enumerate(self.times):
            t = np.asarray(t, dtype=np.float64)
            counts[:, unit] = (np.searchsorted(t, base.stops, side="left")
                               - np.searchsorted(t, base.starts, side="left"))
        reason = _reasons(len(base))
        if self.obs_intervals is not None:
            observed = np.ones(len(base), dtype=bool)
            for intervals in self.obs_intervals:
                intervals = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
                observed &= _inside_any(base.centres, intervals[:, 0], intervals[:, 1])
            reason[~observed] = "outside_observation"
        return counts, reason


def _inside_any(t: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """(time,) whether each ``t`` lies in some ``[start, stop)``."""
    inside = np.zeros(len(t), dtype=bool)
    for a, b in zip(starts, stops):
        inside |= (t >= a) & (t < b)
    return inside


# ----------------------------------------------------------------------- continuous

@dataclasses.dataclass(frozen=True)
class Continuous:
    """Samples of a continuous signal at their own timestamps.

    Attributes
    ----------
    timestamps : (samples,) float64 seconds, increasing.
    values : (samples, d) float64; NaN marks an invalid sample (e.g. a DeepLabCut
        point under the likelihood threshold).
    name : the stream's name for error messages (file and key).
    """

    timestamps: np.ndarray
    values: np.ndarray
    name: str = "stream"

    def __post_init__(self) -> None:
        t = np.asarray(self.timestamps, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if t.ndim != 1 or values.ndim != 2 or len(t) != len(values):
            raise AlignmentError(f"{self.name}: {t.shape} timestamps for values of shape "
                                 f"{values.shape}; need one timestamp per sample.")
        if len(t) < 2:
            raise AlignmentError(f"{self.name}: needs at least 2 samples, got {len(t)}.")
        check_increasing(t, self.name, strict=True)
        object.__setattr__(self, "timestamps", t)
        object.__setattr__(self, "values", values)

    @classmethod
    def sampled(cls, values: np.ndarray, rate: float, starting_time: float = 0.0,
                name: str = "stream") -> "Continuous":
        """Samples at a fixed ``rate`` (Hz) from ``starting_time`` seconds."""
        if not rate > 0:
            raise AlignmentError(f"{name}: sampling rate must be positive, got {rate!r}.")
        return cls(starting_time + np.arange(len(values)) / rate, values, name)

    def sample_interval(self) -> float:
        """The median time between samples, seconds."""
        return float(np.median(np.diff(self.timestamps)))

    def on(self, base: TimeBase, kind: str = "linear", period: float | None = None,
           max_gap: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values at the bin centres.

        Parameters
        ----------
        kind
            ``"linear"``, ``"circular"`` (angles: interpolated along the shorter arc,
            needs ``period``), or ``"previous"`` (the value in force: last sample at or
            before the centre).
        max_gap
            Longest time between two valid samples that is interpolated across, seconds
            (default 1.5 sample intervals: never across a missing sample).

        Returns
        -------
        values : (time, d) float64
        reason : (time,) why a bin is not covered: before the first / after the last
            valid sample, inside a gap longer than ``max_gap``, or next to invalid samples.
        """
        if kind not in ("linear", "circular", "previous"):
            raise AlignmentError(f"{self.name}: unknown interpolation {kind!r}; use "
                                 "'linear', 'circular' or 'previous'.")
        if kind == "circular" and not (period and period > 0):
            raise AlignmentError(f"{self.name}: circular interpolation needs a positive "
                                 f"period, got {period!r}.")
        max_gap = 1.5 * self.sample_interval() if max_gap is None else float(max_gap)
        valid = np.isfinite(self.values).all(axis=1)
        t, values = self.timestamps[valid], self.values[valid]
        centres = base.centres
        reason = _reasons(len(base))
        if len(t) == 0:
            reason[:] = "invalid_samples"
            return np.full((len(base), self.values.shape[1]), np.nan), reason
        right = np.searchsorted(t, centres, side="right")  # first sample after the centre
        left = right - 1
        reason[centres < t[0]] = "before_first_sample"
        if kind == "previous":
            reason[centres > t[-1] + max_gap] = "after_last_sample"
            inner = (left >= 0) & (right < len(t))
            gap = np.zeros(len(base), dtype=bool)
            gap[inner] = centres[inner] - t[left[inner]] > max_gap
        else:
            reason[centres > t[-1]] = "after_last_sample"
            inner = (left >= 0) & (right < len(t))
            gap = np.zeros(len(base), dtype=bool)
            gap[inner] = t[right[inner]] - t[left[inner]] > max_gap
        # A long gap made by invalid samples is reported as such, not as a plain gap.
        invalid_t = self.timestamps[~valid]
        if invalid_t.size:
            n_invalid = np.zeros(len(base), dtype=np.int64)
            lo = np.where(inner, t[np.clip(left, 0, len(t) - 1)], 0.0)
            hi = np.where(inner, t[np.clip(right, 0, len(t) - 1)], 0.0)
            n_invalid[inner] = (np.searchsorted(invalid_t, hi[inner])
                                - np.searchsorted(invalid_t, lo[inner], side="right"))
            reason[gap & (n_invalid > 0)] = "invalid_samples"
            gap &= n_invalid == 0
        reason[gap] = "gap"
        out = _interpolate(t, values, centres, kind, period, left)
        out[reason != ""] = np.nan
        return out, reason


def _interpolate(t: np.ndarray, values: np.ndarray, centres: np.ndarray, kind: str,
                 period: float | None, left: np.ndarray) -> np.ndarray:
    """(time, d) values of the samples ``(t, values)`` at ``centres``."""
    if kind == "previous":
        return values[np.clip(left, 0, len(t) - 1)].astype(np.float64)
    if kind == "circular":
        unwrapped = np.unwrap(values, period=period, axis=0)
        out = np.stack([np.interp(centres, t, unwrapped[:, j])
                        for j in range(values.shape[1])], axis=1)
        # Back into the range the data used: [0, period) or [-period/2, period/2).
        low = np.where(values.min(axis=0) < 0, -period / 2, 0.0)
        return np.mod(out - low, period) + low
    return np.stack([np.interp(centres, t, values[:, j]) for j in range(values.shape[1])],
                    axis=1)


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Fill NaN entries of each column by linear interpolation over the sample index.

    Values are held constant before the first and after the last finite sample. Used
    where no clock is known (``load_data`` on DeepLabCut output).

    Parameters
    ----------
    values : (samples,) or (samples, d); every column needs a finite entry.
    """
    values = np.array(values, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    index = np.arange(len(values))
    for j in range(flat.shape[1]):
        good = np.isfinite(flat[:, j])
        if not good.any():
            raise AlignmentError(f"column {j} has no finite value to fill gaps from.")
        flat[~good, j] = np.interp(index[~good], index[good], flat[good, j])
    return flat.reshape(values.shape)


# ------------------------------------------------------------------------- discrete

@dataclasses.dataclass(frozen=True)
class Discrete:
    """Events that set a value until the next one (e.g. a task state, a stimulus id).

    Attributes
    ----------
    timestamps : (events,) increasing seconds; values : (events,) int.
    stop : time the last value stops being in force (default: the last event plus the
        median interval between events).
    """

    timestamps: np.ndarray
    values: np.ndarray
    stop: float | None = None
    name: str = "events"

    def on(self, base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
        """(time,) value in force at each bin centre, and (time,) reasons."""
        t = np.asarray(self.timestamps, dtype=np.float64)
        check_increasing(t, self.name)
        if len(t) == 0:
            raise AlignmentError(f"{self.name}: no events.")
        stop = self.stop
        if stop is None:
            stop = t[-1] + (float(np.median(np.diff(t))) if len(t) > 1 else 0.0)
        centres = base.centres
        left = np.searchsorted(t, centres, side="right") - 1
        reason = _reasons(len(base))
        reason[left < 0] = "before_first_sample"
        reason[centres >= stop] = "after_last_sample"
        return np.asarray(self.values)[np.clip(left, 0, len(t) - 1)], reason


# ------------------------------------------------------------------------ intervals

@dataclasses.dataclass(frozen=True)
class Intervals:
    """Trials or epochs: ``[start, stop)`` seconds plus per-interval columns.

    Attributes
    ----------
    start, stop : (intervals,) float64 seconds.
    ids : (intervals,) int64 ids (the table's ids, e.g. trial numbers).
    columns : column name -> (intervals,) values (condition, direction, tags, ...).
    """

    start: np.ndarray
    stop: np.ndarray
    ids: np.ndarray
    columns: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    name: str = "intervals"

    def __post_init__(self) -> None:
        start = np.asarray(self.start, dtype=np.float64)
        stop = np.asarray(self.stop, dtype=np.float64)
        if start.shape != stop.shape or start.ndim != 1:
            raise AlignmentError(f"{self.name}: start and stop times must be two (intervals,) "
                                 f"arrays, got shapes {start.shape} and {stop.shape}.")
        if not (np.isfinite(start).all() and np.isfinite(stop).all()):
            raise AlignmentError(f"{self.name}: start/stop times hold NaN or inf.")
        bad = np.flatnonzero(stop < start)
        if bad.size:
            raise AlignmentError(f"{self.name}: interval {int(self.ids[bad[0]])} stops "
                                 f"({stop[bad[0]]:.6g} s) before it starts "
                                 f"({start[bad[0]]:.6g} s).")
        order = np.argsort(start, kind="stable")
        object.__setattr__(self, "start", start[order])
        object.__setattr__(self, "stop", stop[order])
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64)[order])
        object.__setattr__(self, "columns",
                           {k: np.asarray(v)[order] for k, v in self.columns.items()})
        overlap = np.flatnonzero(self.start[1:] < self.stop[:-1] - 1e-9)
        if overlap.size:
            i = int(overlap[0])
            raise AlignmentError(f"{self.name}: intervals {int(self.ids[i])} and "
                                 f"{int(self.ids[i + 1])} overlap; a bin must belong to at "
                                 "most one interval.")

    def __len__(self) -> int:
        return len(self.start)

    def select(self, where: Mapping[str, Sequence]) -> "Intervals":
        """Keep intervals whose column values are among the given ones (all columns
        must match; list-valued cells such as NWB ``tags`` match if any entry does)."""
        keep = np.ones(len(self), dtype=bool)
        for column, allowed in where.items():
            if column not in self.columns:
                raise AlignmentError(f"{self.name}: no column {column!r} to select on; "
                                     f"columns are {sorted(self.columns)}.")
            allowed = {_plain(v) for v in allowed}
            keep &= np.array([_matches(cell, allowed) for cell in self.columns[column]],
                             dtype=bool)
        if not keep.any():
            raise AlignmentError(f"{self.name}: no interval left after selecting {dict(where)}.")
        return Intervals(self.start[keep], self.stop[keep], self.ids[keep],
                         {k: v[keep] for k, v in self.columns.items()}, self.name)

    def locate(self, times: np.ndarray) -> np.ndarray:
        """(time,) position of the interval holding each time, -1 where none does."""
        pos = np.searchsorted(self.start, times, side="right") - 1
        inside = (pos >= 0) & (times < self.stop[np.clip(pos, 0, None)])
        return np.where(inside, pos, -1)

    def on(self, base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
        """(time,) interval id per bin (-1 outside), and (time,) reasons."""
        pos = self.locate(base.centres)
        reason = _reasons(len(base))
        reason[pos < 0] = "outside_intervals"
        return np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1), reason

    def column_on(self, column: str, base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
        """(time,) value of ``column`` of the interval holding each bin centre."""
        if column not in self.columns:
            raise AlignmentError(f"{self.name}: no column {column!r}; columns are "
                                 f"{sorted(self.columns)}.")
        pos = self.locate(base.centres)
        reason = _reasons(len(base))
        reason[pos < 0] = "outside_intervals"
        values = self.columns[column]
        return values[np.clip(pos, 0, None)], reason


def _plain(value: object) -> object:
    """Numpy scalars and bytes as plain Python values, for matching config values."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def _matches(cell: object, allowed: set) -> bool:
    if isinstance(cell, (list, tuple, np.ndarray)):
        return any(_plain(v) in allowed for v in cell)
    return _plain(cell) in allowed
