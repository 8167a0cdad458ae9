"""``python -m cebra_pipe ingest``: one sessions-sheet row -> one validated session file.

Two kinds of sessions:

- prepared arrays, already on one time base: the neural data come from a file (any
  format :func:`cebra_pipe.load_data` reads) or from a registered synthetic dataset
  (``synthetic:<name>?param=value``); the labels named in the config come from
  ``label_file`` (default: the neural file);
- recordings as labs store them (the config has a ``time_base`` section): spike times,
  traces, pose and trial tables on their own clocks are put on one time base by
  :func:`cebra_pipe.recordings.build.build_session`; bins a stream does not cover are
  dropped and counted per stream and reason in the log and the provenance.

Bad data stop here with a message naming the file, key and problem.

Labels follow the config's ``labels`` section, with the sheet row's ``label_keys`` and
``label_units`` overriding a label's key and unit for this session; continuous labels
with ``normalize: range|zscore`` are rescaled per session
(:mod:`cebra_pipe.pipeline.labels`).

Prepared arrays may be trial-structured, ``(trials, time, neurons)`` with labels
``(trials, time[, d])``: the trials are concatenated in order, each its own trial and
segment.

Output: an ``.npz`` with ``neural`` (time, neurons) float32, ``label_<name>`` per label
(continuous: (time, d) float32; discrete: (time,) int64), optional ``trial`` (time,)
int64, ``segment`` (time,) int64 (a new id wherever consecutive time steps must not be
joined: a trial change or dropped bins), ``time`` (time,) seconds for recordings, and
``meta`` (JSON: ``label_types`` carries each label's kind from the config,
``label_units`` the unit of the stored values, ``label_normalization`` the offset and
scale of normalised labels); plus a provenance JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, canonical_json, json_arg,
                                        run, save_npz, write_provenance)
from cebra_pipe.pipeline.config import NORMALIZE_UNITS, SYNTHETIC_PREFIX, parse_synthetic
from cebra_pipe.pipeline.labels import normalize, session_labels
from cebra_pipe.recordings.session import make_segments

STEP = "ingest"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", type=json_arg, required=True,
                        help="the sheet row as JSON: animal, session, neural_file, "
                             "[neural_key], [label_file], [label_keys], [label_units], "
                             "[group]")
    parser.add_argument("--labels", type=json_arg, required=True,
                        help="the config's labels section as JSON: name -> {type, key, "
                             "[unit], [normalize], [columns], [index]}")
    parser.add_argument("--trial-key", default="trial",
                        help="array holding the per-sample trial index, if present")
    parser.add_argument("--recording", type=json_arg, default=None,
                        help="the config's time_base, neural and trials sections as JSON "
                             "(recordings on their own clocks)")
    parser.add_argument("--config-sha256", default=None, help="hash of the workflow config")
    parser.add_argument("--out", required=True, help="session file to write (.npz)")
    parser.add_argument("--provenance", required=True, help="provenance JSON to write")
    return parser


# ---------------------------------------------------------------------------- sources

class _Source:
    """Reads named arrays from a data file or a synthetic recording."""

    def __init__(self, location: str, allow_pickle: bool = False):
        self.location = location
        self.allow_pickle = allow_pickle  # read pickle-based files (runs code from them)
        self.synthetic = location.startswith(SYNTHETIC_PREFIX)
        self._fields: dict[str, np.ndarray] | None = None

    def describe(self, key: str | None) -> str:
        where = (f"synthetic source '{self.location}'" if self.synthetic
                 else f"file '{self.location}'")
        return where if key is None else f"{where}, key '{key}'"

    def fields(self) -> dict[str, np.ndarray]:
        """Arrays of a synthetic recording: neural, continuous, discrete, latent and
        metadata arrays with one entry per time step."""
        if self._fields is None:
            from cebra_pipe import datasets

            name, params = parse_synthetic(self.location)
            if not datasets.is_registered(name):
                raise PipelineError(f"{self.describe(None)}: unknown dataset {name!r}; "
                                    f"registered: {sorted(datasets.get_options('*'))}.")
            try:
                recording = datasets.init(name, **params)
            except TypeError as err:
                raise PipelineError(f"{self.describe(None)}: bad parameters {params}: "
                                    f"{err}") from None
            if not isinstance(recording, datasets.Recording):
                raise PipelineError(f"{self.describe(None)}: dataset {name!r} returns "
                                    f"{type(recording).__name__}, not one session; use a "
                                    "single-session dataset per sheet row.")
            fields = {"neural": recording.neural}
            for attr in ("continuous", "discrete", "latent"):
                if getattr(recording, attr) is not None:
                    fields[attr] = getattr(recording, attr)
            for key, value in recording.metadata.items():
                array = np.asarray(value) if isinstance(value, (list, np.ndarray)) else None
                if (array is not None and array.dtype.kind in "biuf" and array.ndim >= 1
                        and len(array) == len(recording.neural)):
                    fields.setdefault(key, array)
            self._fields = fields
        return self._fields

    def read(self, key: str | None, columns: Sequence[str] | None = None,
             optional: bool = False) -> np.ndarray | None:
        """The array ``key`` (None: the only array); None if ``optional`` and missing."""
        if self.synthetic:
            fields = self.fields()
            if key is None:
                key = "neural"
            if key not in fields:
                if optional:
                    return None
                raise PipelineError(f"{self.describe(key)}: no such field; available: "
                                    f"{sorted(fields)}.")
            if columns:
                raise PipelineError(f"{self.describe(key)}: 'columns' applies to tables "
                                    "only; use 'index' to pick array columns.")
            return np.asarray(fields[key])
        from cebra_pipe.data.load import KeyRequiredError, MissingKeyError, load_data

        try:
            return load_data(self.location, key=key, columns=columns,
                             allow_pickle=self.allow_pickle)
        except (MissingKeyError, KeyRequiredError):
            if optional:
                return None
            raise
        except (ValueError, TypeError) as err:
            if self.location in str(err):
                raise
            # A reader error that does not say which file it was about.
            raise PipelineError(f"Cannot load {self.describe(key)}: it may be truncated or "
                                f"corrupt ({type(err).__name__}: {err}).") from err


def _select_index(array: np.ndarray, index: Any, where: str) -> np.ndarray:
    if index is None:
        return array
    if array.ndim != 2:
        raise PipelineError(f"{where}: 'index' picks columns of a 2-D array, but the data "
                            f"has shape {array.shape}.")
    indices = [index] if isinstance(index, int) else list(index)
    bad = [i for i in indices if i >= array.shape[1]]
    if bad:
        raise PipelineError(f"{where}: index {bad} out of range for {array.shape[1]} columns.")
    return array[:, indices[0]] if isinstance(index, int) else array[:, indices]


# ------------------------------------------------------------------------- validation

def flatten_trials(neural: np.ndarray, where: str
                   ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Trial-structured ``(trials, time, neurons)`` data as one ``(trials * time, neurons)``
    recording; 2-D data unchanged.

    Returns
    -------
    neural : (time, neurons)
    trial_shape : ``(trials, time per trial)``, or None for 2-D input
    """
    if neural.ndim != 3:
        return neural, None
    trials, steps, neurons = neural.shape
    if trials < 1 or steps < 2 or neurons < 1:
        raise PipelineError(f"{where}: trial-structured neural data (trials, time, neurons) "
                            f"has shape {neural.shape}; need at least 1 trial, 2 time steps "
                            "per trial and 1 neuron.")
    return neural.reshape(trials * steps, neurons), (trials, steps)


def flatten_trial_label(values: np.ndarray, trial_shape: tuple[int, int] | None,
                        where: str) -> np.ndarray:
    """Labels of trial-structured data, ``(trials, time[, d])`` -> ``(trials * time[, d])``."""
    if trial_shape is None:
        return values
    if values.shape[:2] != trial_shape:
        raise PipelineError(f"{where}: the neural data are trial-structured with "
                            f"(trials, time) = {trial_shape}, so labels must be (trials, time) "
                            f"or (trials, time, d); got shape {values.shape}.")
    return values.reshape(trial_shape[0] * trial_shape[1], *values.shape[2:])


def check_neural(neural: np.ndarray, where: str) -> np.ndarray:
    """``(time, neurons)`` finite float32, or a PipelineError naming ``where``."""
    if neural.dtype.kind not in "biuf":
        raise PipelineError(f"{where}: neural data must be numeric, got dtype {neural.dtype}.")
    if neural.ndim != 2:
        raise PipelineError(f"{where}: neural data must be 2-D (time, neurons) or 3-D "
                            f"(trials, time, neurons), got shape {neural.shape}.")
    if neural.shape[0] < 2 or neural.shape[1] < 1:
        raise PipelineError(f"{where}: neural data has shape {neural.shape}; need at least "
                            "2 time steps and 1 neuron.")
    if neural.dtype.kind == "f" and neural.dtype.itemsize > 4:
        huge = np.isfinite(neural) & (np.abs(neural) > float(np.finfo(np.float32).max))
        if huge.any():  # they would become inf as float32, reported below as "NaN/inf"
            t, n = np.argwhere(huge)[0]
            raise PipelineError(f"{where}: neural data has {int(huge.sum())} values beyond the "
                                f"float32 range (|x| > 3.4e38; first {neural[t, n]:.3g} at time "
                                f"{t}, neuron {n}); rescale the data.")
    neural = neural.astype(np.float32, copy=False)
    bad = ~np.isfinite(neural)
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise PipelineError(f"{where}: neural data has {int(bad.sum())} NaN/inf values "
                            f"(first at time {t}, neuron {n}).")
    if not np.any(neural):
        raise PipelineError(f"{where}: neural data is all zeros.")
    return neural


def check_label(values: np.ndarray, kind: str, num_timesteps: int, where: str) -> np.ndarray:
    """Continuous -> (time, d) float32; discrete -> (time,) int64; else PipelineError."""
    if values.dtype.kind not in "biuf":
        raise PipelineError(f"{where}: labels must be numeric, got dtype {values.dtype}.")
    if len(values) != num_timesteps:
        raise PipelineError(f"{where}: has {len(values)} time steps but the neural data has "
                            f"{num_timesteps}.")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise PipelineError(f"{where}: has {int((~np.isfinite(values)).sum())} NaN/inf "
                            "values.")
    if kind == "continuous":
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise PipelineError(f"{where}: continuous labels must be (time,) or (time, d), "
                                f"got shape {values.shape}.")
        return values.astype(np.float32, copy=False)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise PipelineError(f"{where}: a discrete label must be 1-D (time,), got shape "
                            f"{values.shape}; split it into several labels.")
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)):
            raise PipelineError(f"{where}: discrete labels must be whole numbers; found "
                                "fractional values (declare the label as continuous?).")
    if values.min() < 0:
        raise PipelineError(f"{where}: discrete labels must be non-negative integers, found "
                            f"{values.min()}.")
    return values.astype(np.int64)


# ------------------------------------------------------------------------------ main

def ingest(row: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]],
           trial_key: str | None = "trial", recording: Mapping[str, Any] | None = None
           ) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    """Load and check one session.

    ``recording`` holds the config's ``time_base``, ``neural`` and ``trials`` sections;
    with a ``time_base`` the session is aligned from streams on their own clocks.

    Returns
    -------
    arrays : what the session file holds (neural, label_<name>, [trial], segment, meta)
    meta : the metadata stored in ``arrays["meta"]``
    inputs : the data files read (for provenance)
    """
    if recording and recording.get("time_base"):
        return ingest_recording(row, labels, recording)
    for field in ("animal", "session", "neural_file"):
        if not row.get(field):
            raise PipelineError(f"sheet row {dict(row)}: field '{field}' is missing.")
    if not labels:
        raise PipelineError("config field 'labels' is empty: declare at least one label.")
    labels = session_labels(labels, row)
    # Sheet column allow_pickle ("true"/"false"); the rule fills in the config field.
    allow_pickle = str(row.get("allow_pickle") or "false").lower() == "true"
    neural_source = _Source(str(row["neural_file"]), allow_pickle)
    label_source = (_Source(str(row["label_file"]), allow_pickle) if row.get("label_file")
                    else neural_source)
    inputs = sorted({s.location for s in (neural_source, label_source) if not s.synthetic})
    for path in inputs:
        if not Path(path).is_file():
            raise FileNotFoundError(2, "No such data file (sheet row "
                                       f"{row['animal']}/{row['session']})", path)
    neural_key = row.get("neural_key") or None
    neural_where = neural_source.describe(neural_key)
    neural, trial_shape = flatten_trials(np.asarray(neural_source.read(neural_key)),
                                         neural_where)
    neural = check_neural(neural, neural_where)
    arrays: dict[str, np.ndarray] = {"neural": neural}
    label_types: dict[str, str] = {}
    label_shapes: dict[str, list[int]] = {}
    for name, spec in labels.items():
        kind = spec.get("type")
        if kind not in ("continuous", "discrete"):
            raise PipelineError(f"config field 'labels.{name}.type': must be 'continuous' or "
                                f"'discrete', got {kind!r}.")
        where = f"label '{name}' ({label_source.describe(spec.get('key'))})"
        try:
            values = np.asarray(label_source.read(spec.get("key"), spec.get("columns")))
        except (ValueError, TypeError) as err:
            raise PipelineError(f"label '{name}' (config field 'labels.{name}'): {err}") from err
        values = _select_index(flatten_trial_label(values, trial_shape, where),
                               spec.get("index"), where)
        values = check_label(values, kind, len(neural), where)
        arrays[f"label_{name}"] = values
        label_types[name] = kind
        label_shapes[name] = list(values.shape[1:])
    has_trial = trial_shape is not None
    if has_trial:
        arrays["trial"] = np.repeat(np.arange(trial_shape[0], dtype=np.int64), trial_shape[1])
    if trial_key:
        trial = label_source.read(trial_key, optional=True)
        if trial is not None and has_trial:
            raise PipelineError(f"{label_source.describe(trial_key)}: the neural data are "
                                "trial-structured (trials, time, neurons) and so carry their "
                                "own trials; remove this trial array or give (time, neurons) "
                                "data with a per-sample trial index.")
        if trial is not None:
            where = f"trial index ({label_source.describe(trial_key)})"
            arrays["trial"] = check_label(np.asarray(trial), "discrete", len(neural), where)
            has_trial = True
    arrays["segment"] = make_segments(np.arange(len(neural)), arrays.get("trial"))
    meta = {
        "animal": row["animal"], "session": row["session"], "group": row.get("group", "cohort"),
        "neural_source": row["neural_file"], "neural_key": neural_key,
        "label_source": row.get("label_file") or row["neural_file"],
        "num_timesteps": int(neural.shape[0]), "num_neurons": int(neural.shape[1]),
        "label_types": label_types, "label_shapes": label_shapes, "has_trial": has_trial,
        **normalize_labels(arrays, labels, f"session {row['animal']}/{row['session']}"),
    }
    arrays["meta"] = np.array(canonical_json(meta))
    return arrays, meta, inputs


def ingest_recording(row: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]],
                     recording: Mapping[str, Any]) -> tuple[dict[str, np.ndarray],
                                                            dict[str, Any], list[str]]:
    """One session from streams on their own clocks (see :func:`ingest`).

    The sheet row may override ``time_base.bin_size`` with a ``bin_size`` cell and give
    the trials/epochs table in ``trials_file`` (default the label file).
    """
    from cebra_pipe.recordings import AlignmentError
    from cebra_pipe.recordings.build import build_session, dropped_summary

    for field in ("animal", "session", "neural_file"):
        if not row.get(field):
            raise PipelineError(f"sheet row {dict(row)}: field '{field}' is missing.")
    if str(row["neural_file"]).startswith(SYNTHETIC_PREFIX):
        raise PipelineError(f"sheet row {row['animal']}/{row['session']}: a synthetic source "
                            "is already on one time base; remove the config's time_base "
                            "section to use it.")
    neural_file = str(row["neural_file"])
    label_file = str(row.get("label_file") or neural_file)
    trials_file = str(row.get("trials_file") or label_file)
    inputs = sorted({neural_file, label_file, trials_file})
    for path in inputs:
        if not Path(path).is_file():
            raise FileNotFoundError(2, "No such data file (sheet row "
                                       f"{row['animal']}/{row['session']})", path)
    bin_size = _sheet_bin_size(row)
    labels = session_labels(labels, row)
    neural_spec = dict(recording.get("neural") or {})
    if row.get("neural_key"):
        neural_spec["key"] = row["neural_key"]
    spec = {"time_base": recording["time_base"], "neural": neural_spec, "labels": labels,
            "trials": recording.get("trials")}
    where = f"session {row['animal']}/{row['session']}"
    # Sheet column allow_pickle ("true"/"false"), as for prepared arrays.
    allow_pickle = str(row.get("allow_pickle") or "false").lower() == "true"
    try:
        session = build_session(neural_file, label_file, spec, trials_file, bin_size,
                                allow_pickle)
    except AlignmentError as err:
        raise PipelineError(f"{where}: {err}") from None
    except (ValueError, TypeError) as err:  # load_data errors name the file and key
        raise PipelineError(f"{where}: {err}") from err
    neural = check_neural(session.neural, f"{where}, neural data ({neural_file})")
    arrays: dict[str, np.ndarray] = {"neural": neural}
    label_types = {name: spec_["type"] for name, spec_ in labels.items()}
    for name, values in session.labels.items():
        arrays[f"label_{name}"] = check_label(values, label_types[name], len(neural),
                                              f"{where}, label '{name}'")
    if session.trial is not None:
        arrays["trial"] = session.trial
    arrays["segment"] = session.segment
    arrays["time"] = session.time
    alignment = {"num_bins": session.num_bins, "kept_bins": int(len(neural)),
                 "dropped": session.dropped, "num_segments": int(session.segment.max()) + 1,
                 "bin_size": bin_size or recording["time_base"].get("bin_size"),
                 "time_base": dict(recording["time_base"]),
                 "preprocessing": session.preprocessing, "categories": session.categories,
                 "summary": dropped_summary(session)}
    meta = {
        "animal": row["animal"], "session": row["session"], "group": row.get("group", "cohort"),
        "neural_source": neural_file, "neural_key": neural_spec.get("key"),
        "label_source": label_file, "num_timesteps": int(neural.shape[0]),
        "num_neurons": int(neural.shape[1]), "label_types": label_types,
        "label_shapes": {n: list(arrays[f"label_{n}"].shape[1:]) for n in labels},
        "has_trial": session.trial is not None, "alignment": alignment,
        **normalize_labels(arrays, labels, where),
    }
    arrays["meta"] = np.array(canonical_json(meta))
    return arrays, meta, inputs


def normalize_labels(arrays: dict[str, np.ndarray], labels: Mapping[str, Mapping[str, Any]],
                     where: str) -> dict[str, Any]:
    """Rescale the continuous ``label_<name>`` arrays whose spec asks for it (in place).

    Returns
    -------
    The meta entries ``label_units`` (unit of the stored values) and
    ``label_normalization`` (name -> method, offset, scale and original unit).
    """
    units, done = {}, {}
    for name, spec in labels.items():
        method = spec.get("normalize", "none")
        unit = spec.get("unit", "label units")
        if method == "none" or spec["type"] != "continuous":
            units[name] = unit
            continue
        key = f"label_{name}"
        arrays[key], info = normalize(arrays[key], method, f"{where}, label '{name}'")
        done[name] = {**info, "unit": unit}
        units[name] = NORMALIZE_UNITS[method]
    return {"label_units": units, "label_normalization": done}


def _sheet_bin_size(row: Mapping[str, Any]) -> float | None:
    """The sheet's per-session ``bin_size`` (seconds), or None for the config's."""
    text = row.get("bin_size")
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise PipelineError(f"sheet row {row['animal']}/{row['session']}: field 'bin_size' "
                            f"must be a positive number of seconds, got {text!r}.")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not isinstance(args.row, dict) or not isinstance(args.labels, dict):
        raise PipelineError("--row and --labels must be JSON objects.")
    arrays, meta, inputs = ingest(args.row, args.labels, args.trial_key, args.recording)
    if "alignment" in meta:
        print(meta["alignment"]["summary"])
    with all_or_nothing([args.out, args.provenance]):
        save_npz(args.out, arrays)
        write_provenance(args.provenance, STEP,
                         params={"row": args.row, "labels": args.labels,
                                 "trial_key": args.trial_key, "recording": args.recording},
                         inputs=inputs, config_sha256=args.config_sha256,
                         extra={"output": {"num_timesteps": meta["num_timesteps"],
                                           "num_neurons": meta["num_neurons"],
                                           "label_types": meta["label_types"],
                                           "label_units": meta["label_units"],
                                           "label_normalization":
                                               meta["label_normalization"]},
                                **({"alignment": meta["alignment"]} if "alignment" in meta
                                   else {})})
    print(f"ingested {meta['animal']}/{meta['session']}: {meta['num_timesteps']} time steps x "
          f"{meta['num_neurons']} neurons, labels {sorted(meta['label_types'])}"
          f"{', with trials' if meta['has_trial'] else ''} -> {args.out}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
