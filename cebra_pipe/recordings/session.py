"""Every stream of a session on one time base: :func:`align_session`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.recordings import preprocess
from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.recordings.streams import Continuous, Discrete, Intervals, SpikeTrains
from cebra_pipe.recordings.timebase import TimeBase


@dataclasses.dataclass(frozen=True)
class LabelStream:
    """One label and how it is put on the time base.

    Attributes
    ----------
    stream : the samples (Continuous, Discrete) or an intervals table whose ``column``
        gives the value of every bin inside an interval.
    kind : ``"continuous"`` -> (time, d) float32, or ``"discrete"`` -> (time,) int64.
    interpolation : for Continuous streams: ``"linear"``, ``"circular"`` or ``"previous"``.
    period : circular labels: the period (e.g. 360 for degrees, 2*pi for radians).
    max_gap : longest gap between valid samples interpolated across, seconds.
    column : for Intervals: the column that is the label.
    preprocess : parsed steps, see :mod:`cebra_pipe.recordings.preprocess`.
    """

    stream: Continuous | Discrete | Intervals
    kind: str = "continuous"
    interpolation: str = "linear"
    period: float | None = None
    max_gap: float | None = None
    column: str | None = None
    preprocess: Sequence[tuple[str, Mapping[str, Any]]] = ()

    def on(self, base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.stream, Intervals):
            if self.column is None:
                raise AlignmentError(f"{self.stream.name}: an intervals table is a label "
                                     "through one of its columns; set 'column'.")
            return self.stream.column_on(self.column, base)
        if isinstance(self.stream, Discrete):
            return self.stream.on(base)
        return self.stream.on(base, self.interpolation, self.period, self.max_gap)


@dataclasses.dataclass(frozen=True)
class AlignedSession:
    """One session on one time base, only bins every stream covers.

    Attributes
    ----------
    neural : (time, neurons) float32
    labels : name -> (time, d) float32 (continuous) or (time,) int64 (discrete)
    time : (time,) bin centres, seconds on the recording's clock
    segment : (time,) int64, a new id wherever consecutive bins must not be joined (a
        dropped bin between them, or a trial change)
    trial : (time,) int64 trial id per bin, or None without trials
    dropped : stream -> reason -> number of bins that stream does not cover (a bin may
        be counted by several streams)
    num_bins : bins of the time base before dropping
    preprocessing : stream -> steps applied, for provenance
    categories : discrete label -> its text values in code order (label value ``k``
        means ``categories[name][k]``), for labels given as text (e.g. a condition)
    """

    neural: np.ndarray
    labels: dict[str, np.ndarray]
    time: np.ndarray
    segment: np.ndarray
    trial: np.ndarray | None
    dropped: dict[str, dict[str, int]]
    num_bins: int
    preprocessing: dict[str, list]
    categories: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def align_session(base: TimeBase, neural: SpikeTrains | Continuous,
                  labels: Mapping[str, LabelStream], *, trials: Intervals | None = None,
                  epochs: Intervals | None = None, bin_size: float | None = None,
                  neural_max_gap: float | None = None,
                  neural_preprocess: Sequence[tuple[str, Mapping[str, Any]]] = ()
                  ) -> AlignedSession:
    """Put the neural stream, every label and the trials on ``base``.

    Bins that some stream does not cover are dropped; bins outside ``trials`` (when
    given) or ``epochs`` are dropped too. ``bin_size`` (seconds) is the bin width that
    smoothing sigmas are converted with (default: the median bin width).

    Raises
    ------
    AlignmentError naming the stream when it covers no bin of the time base (it does
    not overlap the neural data), or when no bin is covered by every stream.
    """
    if len(base) == 0:
        raise AlignmentError("the time base has no bins.")
    streams: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if isinstance(neural, SpikeTrains):
        streams["neural"] = neural.on(base)
    else:
        streams["neural"] = neural.on(base, "linear", None, neural_max_gap)
    for name, label in labels.items():
        streams[name] = label.on(base)
    if trials is not None:
        streams["trials"] = trials.on(base)
    if epochs is not None:
        streams["epochs"] = epochs.on(base)
    names = {"neural": getattr(neural, "name", "neural")}
    names.update({n: getattr(l.stream, "name", n) for n, l in labels.items()})
    for key, (_, reason) in streams.items():
        if (reason != "").all():
            what = names.get(key, getattr(trials if key == "trials" else epochs, "name", key))
            raise AlignmentError(f"stream '{key}' ({what}) covers none of the {len(base)} bins "
                                 f"from {base.starts[0]:.6g} s to {base.stops[-1]:.6g} s: it "
                                 "does not overlap the neural data (or every sample is "
                                 "invalid).")
    keep = np.ones(len(base), dtype=bool)
    dropped: dict[str, dict[str, int]] = {}
    for key, (_, reason) in streams.items():
        keep &= reason == ""
        found, counts = np.unique(reason[reason != ""].astype(str), return_counts=True)
        dropped[key] = {str(r): int(c) for r, c in zip(found, counts)}
    if not keep.any():
        raise AlignmentError(f"no bin is covered by every stream (dropped per stream: "
                             f"{dropped}); check that the streams share a clock.")
    kept = base.take(keep)
    trial = streams["trials"][0][keep].astype(np.int64) if trials is not None else None
    segment = make_segments(kept.index, trial)
    width = float(np.median(kept.stops - kept.starts)) if bin_size is None else bin_size
    neural_values = preprocess.apply_steps(streams["neural"][0][keep], neural_preprocess,
                                           segment, width, "neural preprocessing")
    out_labels: dict[str, np.ndarray] = {}
    categories: dict[str, list[str]] = {}
    for name, label in labels.items():
        values = streams[name][0][keep]
        steps = [(s, {**p, "period": label.period}) if s == "smooth" and label.period
                 else (s, p) for s, p in label.preprocess]
        if label.kind == "discrete":
            if steps:  # e.g. a running direction derived from a continuous track
                values = preprocess.apply_steps(np.asarray(values, dtype=np.float64),
                                                steps, segment, width,
                                                f"label '{name}' preprocessing")
            out_labels[name], names = _as_discrete(values, name)
            if names is not None:
                categories[name] = names
        else:
            values = np.asarray(values, dtype=np.float64)
            values = values[:, None] if values.ndim == 1 else values
            values = preprocess.apply_steps(values, steps, segment, width,
                                            f"label '{name}' preprocessing")
            out_labels[name] = values.astype(np.float32)
    return AlignedSession(
        neural=neural_values.astype(np.float32), labels=out_labels,
        time=kept.centres, segment=segment, trial=trial, dropped=dropped,
        num_bins=len(base), categories=categories,
        preprocessing={"neural": [[s, dict(p)] for s, p in neural_preprocess],
                       **{n: [[s, dict(p)] for s, p in l.preprocess]
                          for n, l in labels.items()}})


def make_segments(index: np.ndarray, trial: np.ndarray | None = None) -> np.ndarray:
    """(time,) int64 segment ids: a new segment after every seam.

    index : (time,) grid position of each kept bin (a jump of more than one is a
    dropped stretch); trial : (time,) trial id per bin (a change starts a segment).
    """
    index = np.asarray(index)
    new = np.zeros(len(index), dtype=bool)
    new[1:] = np.diff(index) != 1
    if trial is not None:
        new[1:] |= np.diff(trial) != 0
    return np.cumsum(new).astype(np.int64)


def _as_discrete(values: np.ndarray, name: str) -> tuple[np.ndarray, list[str] | None]:
    """(time,) int64 codes, and the text values in code order when the label is text."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.dtype.kind in "OUS":
        text = np.array([v.decode() if isinstance(v, bytes) else v for v in values],
                        dtype=object)
        if all(isinstance(v, str) for v in text):
            names, codes = np.unique(text.astype(str), return_inverse=True)
            return codes.astype(np.int64), [str(n) for n in names]
        try:
            values = text.astype(np.float64)
        except (TypeError, ValueError):
            raise AlignmentError(f"label '{name}': discrete values must be integers or "
                                 f"text, got {sorted(set(map(str, text)))[:5]}.") from None
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise AlignmentError(f"label '{name}': discrete values must be whole numbers.")
    return values.astype(np.int64), None
