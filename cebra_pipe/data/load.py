"""``load_data``: one numeric array out of a data file, whatever its format.

The readers, one per format, live in :mod:`cebra_pipe.data._formats`; this module
checks the request, dispatches on the file suffix and turns library failures into
errors that name the file and key.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Hashable, Iterable
from pathlib import Path

import numpy as np

from cebra_pipe.data._formats import (
    READERS,
    CorruptFileError,
    EmptyFileError,
    KeyRequiredError,
    LoadError,
    MalformedTableError,
    MissingColumnError,
    MissingKeyError,
    NonNumericDataError,
    PickleRefusedError,
    Request,
    UnsupportedFormatError,
    as_numeric,
    read_errors,
)

__all__ = [
    "load_data",
    "load",
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "UnsupportedFormatError",
    "KeyRequiredError",
    "MissingKeyError",
    "MissingColumnError",
    "EmptyFileError",
    "CorruptFileError",
    "NonNumericDataError",
    "PickleRefusedError",
    "MalformedTableError",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(READERS)


def load_data(
    file: str | os.PathLike,
    key: str | None = None,
    columns: Iterable[Hashable] | None = None,
    *,
    bin_size: float | None = None,
    likelihood_threshold: float | None = None,
    allow_pickle: bool = False,
) -> np.ndarray:
    """Load one numeric array (data or labels of one session) from a file.

    The format is chosen by suffix:

    - ``.npy``; ``.npz`` (``key`` = array name);
    - ``.h5``/``.hdf5``/``.hdf``/``.hd5``/``.h``: plain datasets (``key`` = path such as
      ``"group/data"``), pandas objects written with ``DataFrame.to_hdf`` (``key`` =
      the pandas key, ``columns`` = columns to keep), and DeepLabCut output
      (``columns`` = bodypart names; returns x, y per bodypart, see below);
    - ``.pt``/``.pth``: a tensor or a (nested) dict of tensors (``key`` = name, nested
      names joined by '/'), read with ``torch.load(weights_only=True)``;
    - ``.csv`` (the first row is a header unless it is all numbers; separated by commas,
      semicolons, tabs or '|', detected; decimal commas in files not separated by
      commas; a ragged table is refused); ``.xls``/``.xlsx``/``.xlsm``
      (``key`` = sheet name; ``.xls`` needs ``xlrd``); ``.parquet`` (``columns``);
    - ``.jl``/``.joblib`` (joblib) and ``.pkl``/``.p`` (pickle), only with
      ``allow_pickle=True``: an array, a DataFrame, or a (nested) dict or list of them
      (``key`` = name, e.g. ``"session1/neural"``);
    - ``.mat``: MATLAB v4-v7.2 via scipy (``key`` = variable, struct fields joined by
      '/'), v7.3 (HDF5) via h5py, transposed back to the shape MATLAB shows;
    - ``.nwb`` (needs ``pynwb``): ``key="units"`` gives the units table's spike counts
      binned at ``bin_size`` seconds, shape (time, units), float32, bins aligned to
      multiples of ``bin_size`` from the first spike; any other key is a TimeSeries
      path such as ``"processing/behavior/position/x"``, ``"acquisition/lick"`` or just
      ``"lick"`` for acquisition data (behaviour, ROI traces), returned as stored.

    With no ``key``, a file holding exactly one array (or table) returns it; a file
    holding several raises :class:`KeyRequiredError` listing the keys.

    .. warning::
       Pickle-based formats (``.pkl``, ``.p``, ``.jl``, ``.joblib`` and pandas ``.h5``
       files holding Python objects) can execute code while loading. They are refused
       with :class:`PickleRefusedError` unless ``allow_pickle=True``; pass it only for
       files from sources you trust. Pandas ``.h5`` files of plain numbers, ``.npy``,
       ``.npz`` (object arrays refused), ``.pt`` (``weights_only``) and the other formats
       never unpickle.

    Parameters
    ----------
    file
        Path of the data file.
    key
        Which array, table, sheet or TimeSeries to read when the file holds several.
    columns
        Columns to keep from a table, in this order (bodyparts for DeepLabCut files).
    bin_size
        NWB ``key="units"`` only: bin width in seconds (default 0.025).
    likelihood_threshold
        DeepLabCut only: keypoints with a likelihood below it (default 0.6) are set to
        NaN and linearly interpolated in time.
    allow_pickle
        Read pickle-based data (see the warning above). Default False.

    Returns
    -------
    The selected numeric data, e.g. ``(time, features)``; dtypes are kept (integer
    labels stay integers).

    Raises
    ------
    FileNotFoundError
        No file at ``file``.
    IsADirectoryError, OSError (ELOOP)
        ``file`` is a folder, or a symbolic link that points (eventually) to itself.
    LoadError (a ValueError)
        Unsupported suffix, missing or ambiguous key, unknown column, ``columns`` on
        data that is not a table, an empty, truncated or corrupt file, or data that is
        not numeric; see the subclasses exported by this module.
    """
    path = Path(file)
    suffix = path.suffix.lower()
    where = f"file '{path}'" + ("" if key is None else f", key '{key}'")
    _check_path(path, where)
    if suffix not in READERS:
        raise UnsupportedFormatError(f"Cannot load {where}: unsupported suffix "
                                     f"'{path.suffix}'. Supported: {list(READERS)}.")
    if not isinstance(allow_pickle, bool):
        raise TypeError(f"Cannot load {where}: allow_pickle must be True or False, got "
                        f"{allow_pickle!r}.")
    if path.stat().st_size == 0:
        raise EmptyFileError(f"Cannot load {where}: the file is empty (0 bytes).")
    request = Request(path=path, key=None if key is None else str(key),
                      columns=_check_columns(columns, where),
                      bin_size=_check_bin_size(bin_size, suffix, where),
                      likelihood_threshold=_check_threshold(likelihood_threshold, suffix, where),
                      allow_pickle=allow_pickle)
    format_name, reader = READERS[suffix]
    try:
        data = reader(request)
    except LoadError:
        raise
    except read_errors() as err:
        raise CorruptFileError(f"Cannot load {where} as {format_name}; it may be "
                               f"truncated or corrupt ({type(err).__name__}: {err}).") from err
    return as_numeric(data, request)


#: The reference's name for :func:`load_data` (``cebra.data.load.load``).
load = load_data


def _check_path(path: Path, where: str) -> None:
    """Raise the error that says what is at ``path`` when it is not a readable file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"No such data file ({where})", str(path)) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"Cannot load {where}: it is a symbolic link that "
                          "points to itself (a symlink loop)", str(path)) from None
        raise OSError(err.errno, f"Cannot load {where}: {err.strerror}", str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"Cannot load {where}: it is a folder, not a "
                                "data file", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(f"Cannot load {where}: it is not a regular file.")


def _check_columns(columns: Iterable[Hashable] | None, where: str) -> tuple[Hashable, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, (str, bytes)):  # one column name, not its characters
        return (columns,)
    columns = tuple(columns)
    if not columns:
        raise LoadError(f"Cannot load {where}: columns= is empty; pass None to keep all.")
    return columns


def _check_bin_size(bin_size: float | None, suffix: str, where: str) -> float | None:
    if bin_size is None:
        return None
    if suffix != ".nwb":
        raise LoadError(f"Cannot load {where}: bin_size= only applies to NWB units tables.")
    if not (isinstance(bin_size, (int, float)) and math.isfinite(bin_size) and bin_size > 0):
        raise LoadError(f"Cannot load {where}: bin_size must be a positive number of "
                        f"seconds, got {bin_size!r}.")
    return float(bin_size)


def _check_threshold(threshold: float | None, suffix: str, where: str) -> float | None:
    if threshold is None:
        return None
    if suffix not in {".h5", ".hdf5", ".hdf", ".hd5", ".h"}:
        raise LoadError(f"Cannot load {where}: likelihood_threshold= only applies to "
                        "DeepLabCut .h5 output.")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        raise LoadError(f"Cannot load {where}: likelihood_threshold must lie in [0, 1], "
                        f"got {threshold!r}.")
    return float(threshold)
