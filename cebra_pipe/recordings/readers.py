"""Streams out of files: NWB objects by path, DeepLabCut pose, tables with a time column.

NWB keys are the paths :func:`nwb_paths` lists (the same ones ``load_data``'s wrong-key
error shows): ``units``, TimeSeries such as ``processing/behavior/Position/position``
or ``acquisition/lick``, and interval tables ``trials``, ``epochs`` or
``intervals/<name>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.recordings.streams import Continuous, Intervals, SpikeTrains

_INTERVAL_COLUMNS = {"start_time", "stop_time", "timeseries", "timeseries_index"}


def require(module: str, extra: str) -> Any:
    """Import ``module`` or raise an ImportError naming the pip extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"reading this file needs the optional package "
                                  f"'{err.name}': pip install \"cebra_pipe[{extra}]\".",
                                  name=err.name) from None


# ---------------------------------------------------------------------------- NWB

def nwb_paths(nwbfile: Any) -> dict[str, Any]:
    """Readable NWB objects by path: ``units``, every TimeSeries, every TimeIntervals
    table, and the groups holding them (processing modules, Position containers)."""
    pynwb = require("pynwb", "nwb")
    found: dict[str, Any] = {}
    if nwbfile.units is not None and len(nwbfile.units) > 0:
        found["units"] = nwbfile.units

    def add(path: str, obj: Any) -> None:
        found[path] = obj
        if not isinstance(obj, (pynwb.TimeSeries, pynwb.epoch.TimeIntervals)):
            for child in getattr(obj, "children", ()):
                add(f"{path}/{child.name}", child)

    for group in ("acquisition", "stimulus"):
        for name, obj in getattr(nwbfile, group).items():
            add(f"{group}/{name}", obj)
    for module_name, module in nwbfile.processing.items():
        found[f"processing/{module_name}"] = module
        for name, obj in module.data_interfaces.items():
            add(f"processing/{module_name}/{name}", obj)
    for name, table in (nwbfile.intervals or {}).items():
        path = name if name in ("trials", "epochs") else f"intervals/{name}"
        found[path] = table
        found.setdefault(f"intervals/{name}", table)
    return found


def read_nwb(path: str | os.PathLike, key: str,
             select: Mapping[str, Sequence] | None = None) -> SpikeTrains | Continuous | Intervals:
    """The NWB object at ``key`` as a stream.

    ``units`` -> SpikeTrains (``select``: keep units whose column values are among the
    given ones, e.g. ``{"quality": ["good"]}``); a TimeSeries -> Continuous (data
    times ``conversion`` plus ``offset``); a TimeIntervals table -> Intervals.
    """
    pynwb = require("pynwb", "nwb")
    where = f"file '{path}', key '{key}'"
    with pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        found = nwb_paths(io.read())
        if key not in found and f"acquisition/{key}" in found:
            key = f"acquisition/{key}"
        if key not in found:
            import difflib

            close = difflib.get_close_matches(key, list(found), n=3, cutoff=0.6)
            raise AlignmentError(f"{where}: no such NWB object."
                                 + (f" Did you mean {close}?" if close else "")
                                 + f" Available: {sorted(found)}.")
        obj = found[key]
        if key == "units":
            return _units(obj, where, select)
        if select:
            raise AlignmentError(f"{where}: 'select' only applies to the units table.")
        if isinstance(obj, pynwb.epoch.TimeIntervals):
            return _intervals(obj, where)
        if isinstance(obj, pynwb.TimeSeries):
            return _timeseries(obj, where)
        inside = sorted(p for p in found if p.startswith(key + "/"))
        raise AlignmentError(f"{where} is a group ({type(obj).__name__}), not a stream; "
                             f"choose one of {inside}.")


def _units(units: Any, where: str, select: Mapping[str, Sequence] | None) -> SpikeTrains:
    keep = np.arange(len(units))
    for column, allowed in (select or {}).items():
        if column not in units.colnames:
            raise AlignmentError(f"{where}: no units column {column!r} to select on; "
                                 f"columns are {list(units.colnames)}.")
        values = units[column][:]
        allowed = {v.decode() if isinstance(v, bytes) else v for v in allowed}
        mask = np.array([(v.decode() if isinstance(v, bytes) else v) in allowed
                         for v in values], dtype=bool)
        keep = keep[mask[keep]]
    if keep.size == 0:
        raise AlignmentError(f"{where}: no unit left after selecting {dict(select or {})} "
                             f"(the file has {len(units)} units).")
    ids = np.asarray(units.id[:])[keep]
    times = [np.asarray(units.get_unit_spike_times(int(i)), dtype=np.float64) for i in keep]
    obs = None
    if "obs_intervals" in units.colnames:
        obs = [np.asarray(units["obs_intervals"][int(i)], dtype=np.float64).reshape(-1, 2)
               for i in keep]
    return SpikeTrains(times, ids, obs, name=where)


def _timeseries(series: Any, where: str) -> Continuous:
    data = np.asarray(series.data[:], dtype=np.float64)
    if data.ndim > 2:
        data = data.reshape(len(data), -1)
    data = data * float(series.conversion) + float(getattr(series, "offset", 0.0) or 0.0)
    if series.timestamps is not None:
        return Continuous(np.asarray(series.timestamps[:], dtype=np.float64), data, where)
    return Continuous.sampled(data, float(series.rate), float(series.starting_time or 0.0),
                              where)


def _intervals(table: Any, where: str) -> Intervals:
    columns = set(table.colnames)
    if not {"start_time", "stop_time"} <= columns:
        raise AlignmentError(f"{where}: an intervals table needs start_time and stop_time "
                             f"columns; it has {sorted(columns)}.")
    extra = {}
    for name in table.colnames:
        if name in _INTERVAL_COLUMNS:
            continue
        values = table[name][:]
        extra[name] = np.array(list(values) if not isinstance(values, np.ndarray) else values,
                               dtype=object if isinstance(values, list) else None)
    return Intervals(np.asarray(table["start_time"][:]), np.asarray(table["stop_time"][:]),
                     np.asarray(table.id[:]), extra, where)


# ----------------------------------------------------------------------- DeepLabCut

def deeplabcut_keypoints(table: Any, bodyparts: Sequence[str] | None, threshold: float,
                         where: str) -> tuple[np.ndarray, list[str]]:
    """x, y (and z) of the chosen bodyparts; points under ``threshold`` become NaN.

    Parameters
    ----------
    table : a DeepLabCut DataFrame (columns scorer/[individuals]/bodyparts/coords).

    Returns
    -------
    values : (frames, coords * keypoints) ordered ``[bp1_x, bp1_y, bp2_x, ...]`` (each
        bodypart repeated per individual in multi-animal files); names : column names.
    """
    names = list(table.columns.names)
    coord_level = names.index("coords")
    available = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    selected = available if bodyparts is None else list(bodyparts)
    missing = [bp for bp in selected if bp not in available]
    if missing:
        raise AlignmentError(f"{where}: unknown bodypart(s) {missing}. Available "
                             f"bodyparts: {available}.")
    coords = [c for c in ("x", "y", "z") if c in set(table.columns.get_level_values("coords"))]
    # A keypoint is a column tuple without its coords entry (scorer, [individual], bodypart).
    keypoints = list(dict.fromkeys(col[:coord_level] + col[coord_level + 1:]
                                   for col in table.columns))
    bp_level = names.index("bodyparts") - (names.index("bodyparts") > coord_level)
    out, labels = [], []
    for bodypart in selected:
        for kp in (k for k in keypoints if k[bp_level] == bodypart):
            column = {c: kp[:coord_level] + (c,) + kp[coord_level:]
                      for c in (*coords, "likelihood")}
            unreliable = np.zeros(len(table), dtype=bool)
            if column["likelihood"] in table.columns:
                likelihood = table[column["likelihood"]].to_numpy(np.float64)
                unreliable = ~(likelihood >= threshold)  # NaN likelihood is unreliable too
            for c in coords:
                values = table[column[c]].to_numpy(np.float64).copy()
                values[unreliable] = np.nan
                if not np.isfinite(values).any():
                    raise AlignmentError(f"{where}: keypoint {kp} {c} has no point with "
                                         f"likelihood >= {threshold}; lower "
                                         "likelihood_threshold or drop this bodypart.")
                out.append(values)
                labels.append("_".join(map(str, kp[1:])) + f"_{c}")
    return np.stack(out, axis=1), labels


def read_deeplabcut(path: str | os.PathLike, key: str | None, bodyparts: Sequence[str] | None,
                    threshold: float, rate: float, starting_time: float = 0.0,
                    allow_pickle: bool = False) -> Continuous:
    """DeepLabCut output (.h5 or the multi-row-header .csv) as a stream at the camera's
    frame ``rate`` (Hz); frames under the likelihood ``threshold`` are invalid samples.

    ``allow_pickle``: as for ``load_data``, pandas HDF5 files that would unpickle
    Python objects are refused unless it is set.
    """
    import pandas as pd

    where = f"file '{path}'" + (f", key '{key}'" if key else "")
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "csv":
        head = pd.read_csv(path, header=None, nrows=4, usecols=[0], dtype=str)[0].tolist()
        levels = [i for i, v in enumerate(head) if v in ("scorer", "individuals",
                                                         "bodyparts", "coords")]
        if "bodyparts" not in head or "coords" not in head:
            raise AlignmentError(f"{where}: not a DeepLabCut CSV (no 'bodyparts' and "
                                 "'coords' header rows).")
        table = pd.read_csv(path, header=levels, index_col=0)
        table.columns = table.columns.set_names([head[i] for i in levels])
    else:
        _check_hdf_pickle(path, key, allow_pickle, bodyparts)
        table = pd.read_hdf(path, key=key)
    if not ({"bodyparts", "coords"} <= set(table.columns.names or ())):
        raise AlignmentError(f"{where}: not DeepLabCut output (columns need 'bodyparts' and "
                             "'coords' levels).")
    values, _ = deeplabcut_keypoints(table, bodyparts, threshold, where)
    return Continuous.sampled(values, rate, starting_time, where)


def _check_hdf_pickle(path: str | os.PathLike, key: str | None, allow_pickle: bool,
                      columns: Sequence[str] | None = None) -> None:
    """Refuse a pandas HDF5 file that would unpickle Python objects (unless allowed).

    ``load_data`` holds that check; it runs before any table is parsed, so reading
    through it (and discarding the result) keeps one implementation of the rule.
    """
    from cebra_pipe.data.load import PickleRefusedError, load_data

    try:
        load_data(path, key=key, columns=columns, allow_pickle=allow_pickle)
    except PickleRefusedError:
        raise
    except ValueError:
        pass  # other problems are reported with the stream's own context below


# ----------------------------------------------------------------- tables and arrays

def read_table_stream(path: str | os.PathLike, key: str | None, time: Mapping[str, str],
                      columns: Sequence[str] | None = None, allow_pickle: bool = False
                      ) -> Continuous:
    """A stream from any file ``load_data`` reads, with its own timestamps.

    ``time`` says where the timestamps are: ``{"column": name}`` (a column of the same
    table) or ``{"key": name}`` (another array of the file), in seconds.
    """
    from cebra_pipe.data.load import load_data

    where = f"file '{path}'" + (f", key '{key}'" if key else "")
    if "column" in time:
        stamps = load_data(path, key=key, columns=[time["column"]], allow_pickle=allow_pickle)
    elif "key" in time:
        stamps = load_data(path, key=time["key"], allow_pickle=allow_pickle)
    else:
        raise AlignmentError(f"{where}: 'time' needs 'column' or 'key', got {dict(time)}.")
    values = load_data(path, key=key, columns=columns, allow_pickle=allow_pickle)
    if "column" in time and columns is None:
        raise AlignmentError(f"{where}: name the value columns with 'columns' (the table "
                             f"also holds the time column {time['column']!r}).")
    return Continuous(np.asarray(stamps, dtype=np.float64).ravel(), values, where)


def read_spike_arrays(path: str | os.PathLike, times_key: str, units_key: str,
                      allow_pickle: bool = False) -> SpikeTrains:
    """Spike times (seconds) and the unit id of each spike from two arrays of a file."""
    from cebra_pipe.data.load import load_data

    where = f"file '{path}', keys '{times_key}'/'{units_key}'"
    times = np.asarray(load_data(path, key=times_key, allow_pickle=allow_pickle),
                       dtype=np.float64).ravel()
    units = np.asarray(load_data(path, key=units_key, allow_pickle=allow_pickle)).ravel()
    order = np.argsort(times, kind="stable")  # sorters write spikes grouped by unit
    return SpikeTrains.from_arrays(times[order], units[order], where)


def read_intervals_table(path: str | os.PathLike, key: str | None, start: str = "start_time",
                         stop: str = "stop_time", allow_pickle: bool = False) -> Intervals:
    """Intervals from a table with start/stop columns (csv, parquet, Excel, h5 DataFrame)."""
    import pandas as pd

    where = f"file '{path}'" + (f", key '{key}'" if key else "")
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "csv":
        table = pd.read_csv(path)
    elif suffix == "parquet":
        table = pd.read_parquet(path)
    elif suffix in ("xls", "xlsx"):
        table = pd.read_excel(path, sheet_name=key or 0)
    else:
        _check_hdf_pickle(path, key, allow_pickle)
        table = pd.read_hdf(path, key=key)
    missing = [c for c in (start, stop) if c not in table.columns]
    if missing:
        raise AlignmentError(f"{where}: the intervals table has no start/stop column(s) "
                             f"{missing}; columns are {list(table.columns)}.")
    ids = table["id"].to_numpy() if "id" in table.columns else np.arange(len(table))
    extra = {str(c): table[c].to_numpy() for c in table.columns
             if c not in (start, stop, "id")}
    return Intervals(table[start].to_numpy(np.float64), table[stop].to_numpy(np.float64),
                     ids, extra, where)
