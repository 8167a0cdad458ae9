"""A session from files and a declarative spec (the pipeline config's recording part).

The spec is a mapping with these parts (every field is documented, with its default,
in ``workflow/schemas/config.schema.yaml``)::

    time_base: {bin_size: 0.025}            # or {stream: neural | <label>}, + epochs
    neural: {key: units, select: {quality: [good]}, preprocess: [sqrt]}
    labels:
      position: {type: continuous, key: processing/behavior/Position/position}
      head: {type: continuous, key: ..., interpolation: circular, period: 360}
      direction: {type: discrete, key: trials, column: direction}
    trials: {key: trials, where: {condition: [A, B]}}

How a stream's clock is found: NWB objects carry theirs; DeepLabCut pose and arrays
without timestamps take ``rate`` (Hz) and ``starting_time`` (s); tables and arrays
with timestamps name them with ``time: {column: t}`` or ``time: {key: t}``; spike
times plus unit ids are ``key`` + ``unit_key``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cebra_pipe.recordings import preprocess, readers
from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.recordings.session import AlignedSession, LabelStream, align_session
from cebra_pipe.recordings.streams import Continuous, Intervals, SpikeTrains
from cebra_pipe.recordings.timebase import TimeBase

Stream = SpikeTrains | Continuous | Intervals


def read_stream(path: str | os.PathLike, spec: Mapping[str, Any], where: str,
                allow_pickle: bool = False) -> Stream:
    """The stream ``spec`` describes in the file ``path`` (see the module docstring).

    ``where`` names the config field for error messages (e.g. ``labels.position``);
    ``allow_pickle`` lets pickle-based files be read (see ``load_data``).
    """
    key = spec.get("key")
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    source = spec.get("source", "auto")
    if source == "deeplabcut":
        if not spec.get("rate"):
            raise AlignmentError(f"{where}: DeepLabCut pose needs the camera's frame 'rate' "
                                 "(Hz).")
        stream: Stream = readers.read_deeplabcut(
            path, key, spec.get("columns"), float(spec.get("likelihood_threshold", 0.6)),
            float(spec["rate"]), float(spec.get("starting_time", 0.0)), allow_pickle)
    elif source == "intervals" and suffix != "nwb":
        stream = readers.read_intervals_table(path, key, spec.get("start", "start_time"),
                                              spec.get("stop", "stop_time"), allow_pickle)
    elif suffix == "nwb":
        if not key:
            raise AlignmentError(f"{where}: NWB streams need a 'key' (an NWB path).")
        stream = readers.read_nwb(path, key, spec.get("select"))
    elif spec.get("unit_key"):
        stream = readers.read_spike_arrays(path, key, spec["unit_key"], allow_pickle)
    elif spec.get("time"):
        stream = readers.read_table_stream(path, key, spec["time"], spec.get("columns"),
                                           allow_pickle)
    elif spec.get("rate"):
        from cebra_pipe.data.load import load_data

        stream = Continuous.sampled(load_data(path, key=key, columns=spec.get("columns"),
                                              allow_pickle=allow_pickle),
                                    float(spec["rate"]), float(spec.get("starting_time", 0.0)),
                                    f"file '{path}'" + (f", key '{key}'" if key else ""))
    else:
        raise AlignmentError(f"{where}: file '{path}', key '{key}' carries no clock; give "
                             "its timestamps ('time: {column: ...}' or 'time: {key: ...}'), "
                             "its sampling 'rate' in Hz, or 'unit_key' for spike times.")
    index = spec.get("index")
    if index is not None and isinstance(stream, Continuous):
        columns = [index] if isinstance(index, int) else list(index)
        if max(columns) >= stream.values.shape[1]:
            raise AlignmentError(f"{where}: index {index} out of range for "
                                 f"{stream.values.shape[1]} columns ({stream.name}).")
        stream = Continuous(stream.timestamps, stream.values[:, columns], stream.name)
    return stream


def make_time_base(spec: Mapping[str, Any], neural: SpikeTrains | Continuous,
                   labels: Mapping[str, Stream], bin_size: float | None) -> TimeBase:
    """Bins of ``bin_size`` seconds over the neural recording, or one bin per sample of
    the stream named by ``spec["stream"]`` (``neural`` or a label)."""
    name = spec.get("stream")
    if name:
        stream = neural if name == "neural" else labels.get(name)
        if not isinstance(stream, Continuous):
            sampled = sorted(n for n, s in labels.items() if isinstance(s, Continuous))
            raise AlignmentError(f"time_base.stream: {name!r} is not a sampled stream "
                                 f"(choose 'neural' or one of the sampled labels {sampled}).")
        return TimeBase.from_samples(stream.timestamps, stream.name)
    if not bin_size:
        raise AlignmentError("time_base: give 'bin_size' (seconds) or 'stream'.")
    if isinstance(neural, SpikeTrains):
        t0, t1 = neural.extent()
    else:
        t0, t1 = float(neural.timestamps[0]), float(neural.timestamps[-1])
    return TimeBase.regular(t0, t1, bin_size, where=f"time_base.bin_size ({neural.name})")


def build_session(neural_file: str | os.PathLike, label_file: str | os.PathLike,
                  spec: Mapping[str, Any], trials_file: str | os.PathLike | None = None,
                  bin_size: float | None = None, allow_pickle: bool = False
                  ) -> AlignedSession:
    """Read every stream ``spec`` names and align them (see :func:`align_session`).

    Labels come from ``label_file``; trials and epochs from ``trials_file`` (default
    ``label_file``). ``bin_size`` overrides ``spec["time_base"]["bin_size"]``.
    ``allow_pickle`` lets pickle-based files be read (they can run code).
    """
    time_spec = dict(spec.get("time_base") or {})
    neural_spec = dict(spec.get("neural") or {})
    neural = read_stream(neural_file, neural_spec, "neural", allow_pickle)
    if isinstance(neural, Intervals):
        raise AlignmentError(f"neural: {neural.name} is an intervals table, not neural data.")
    raw: dict[str, Stream] = {name: read_stream(label_file, label, f"labels.{name}",
                                                allow_pickle)
                              for name, label in spec["labels"].items()}
    base = make_time_base(time_spec, neural, raw, bin_size or time_spec.get("bin_size"))
    intervals_file = trials_file or label_file
    trials = epochs = None
    if spec.get("trials"):
        trials = _read_intervals(intervals_file, spec["trials"], "trials", allow_pickle)
    if time_spec.get("epochs"):
        epochs = _read_intervals(intervals_file, time_spec["epochs"], "time_base.epochs",
                                 allow_pickle)
    labels = {name: _label_stream(raw[name], label, name)
              for name, label in spec["labels"].items()}
    return align_session(
        base, neural, labels, trials=trials, epochs=epochs,
        bin_size=bin_size or time_spec.get("bin_size"), neural_max_gap=neural_spec.get("max_gap"),
        neural_preprocess=preprocess.parse_steps(neural_spec.get("preprocess"),
                                                 "neural.preprocess"))


def _read_intervals(path: str | os.PathLike, spec: Mapping[str, Any], where: str,
                    allow_pickle: bool) -> Intervals:
    intervals = read_stream(path, {"source": "intervals", **spec}, where, allow_pickle)
    if not isinstance(intervals, Intervals):
        raise AlignmentError(f"{where}: {getattr(intervals, 'name', path)} is not an "
                             "intervals table (NWB TimeIntervals such as 'trials' or "
                             "'intervals/<name>', or a table with start/stop columns).")
    return intervals.select(spec["where"]) if spec.get("where") else intervals


def _label_stream(stream: Stream, spec: Mapping[str, Any], name: str) -> LabelStream:
    kind = spec.get("type", "continuous")
    if isinstance(stream, SpikeTrains):
        raise AlignmentError(f"labels.{name}: {stream.name} holds spike times, not a label.")
    if isinstance(stream, Intervals) and not spec.get("column"):
        raise AlignmentError(f"labels.{name}: {stream.name} is an intervals table; name the "
                             f"column that is the label ('column'; columns are "
                             f"{sorted(stream.columns)}).")
    default = "previous" if kind == "discrete" else "linear"
    steps = preprocess.parse_steps(spec.get("preprocess"), f"labels.{name}.preprocess")
    return LabelStream(stream, kind=kind, interpolation=spec.get("interpolation", default),
                       period=spec.get("period"), max_gap=spec.get("max_gap"),
                       column=spec.get("column"), preprocess=steps)


def dropped_summary(session: AlignedSession) -> str:
    """One line per stream: bins dropped and why, for the ingest log."""
    lines = [f"{len(session.time)} of {session.num_bins} bins kept, "
             f"{int(session.segment.max()) + 1 if len(session.segment) else 0} segment(s)"]
    for stream, reasons in session.dropped.items():
        text = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in
                         reasons.items()) or "none"
        lines.append(f"  {stream}: bins not covered: {text}")
    return "\n".join(lines)


__all__ = ["build_session", "read_stream", "make_time_base", "dropped_summary"]
