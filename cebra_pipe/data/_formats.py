"""Per-format readers behind :func:`cebra_pipe.data.load.load_data`.

Each reader takes a :class:`Request` and returns the selected data (an array, a
tensor, a list of numbers or a table); :func:`as_numeric` then turns it into a
numeric numpy array. Heavy libraries (pandas, torch, h5py, pynwb, ...) are imported
inside the readers so that importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import io
import math
import numbers
import os
import pickle
import re
import sys
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

# ---------------------------------------------------------------------------- errors


class LoadError(ValueError):
    """A file could not be turned into a numeric array; the message names file and key."""


class UnsupportedFormatError(LoadError):
    """The file suffix is not one :func:`load_data` can read."""


class KeyRequiredError(LoadError):
    """The file holds several arrays and no ``key`` was given."""


class MissingKeyError(LoadError, KeyError):
    """The requested ``key`` is not in the file."""

    __str__ = BaseException.__str__  # KeyError would repr() the whole message


class MissingColumnError(LoadError, KeyError):
    """A requested column (or DeepLabCut bodypart) is not in the table."""

    __str__ = BaseException.__str__


class EmptyFileError(LoadError):
    """The file (or the selected sheet or array) holds no data."""


class CorruptFileError(LoadError):
    """The file is truncated, corrupt, or not in the format its suffix claims."""


class NonNumericDataError(LoadError, TypeError):
    """The selected data are strings, Python objects or another non-numeric type."""


class PickleRefusedError(LoadError):
    """Reading the file would unpickle data (run code from it) and ``allow_pickle`` is off."""


class MalformedTableError(LoadError):
    """A text table is ragged (rows with more or fewer fields than the header)."""


# ------------------------------------------------------------------ request, helpers


@dataclasses.dataclass(frozen=True)
class Request:
    """What :func:`load_data` was asked for, passed unchanged to a reader."""

    path: Path
    key: str | None = None
    columns: tuple[Hashable, ...] | None = None
    bin_size: float | None = None
    likelihood_threshold: float | None = None
    allow_pickle: bool = False

    @property
    def where(self) -> str:
        """``file '...'`` (plus the key) for error messages."""
        text = f"file '{self.path}'"
        return text if self.key is None else f"{text}, key '{self.key}'"


def _short_list(names: Sequence[Any], limit: int = 40) -> str:
    """``names`` as a list literal, cut after ``limit`` entries."""
    names = list(names)
    if len(names) <= limit:
        return repr(names)
    return repr(names[:limit])[:-1] + f", ... ({len(names) - limit} more)]"


def pick_key(req: Request, available: Sequence[str], what: str = "arrays") -> str:
    """The entry to read: ``req.key``, or the only entry when no key was given."""
    available = list(available)
    if req.key is None:
        if len(available) == 1:
            return available[0]
        if not available:
            raise EmptyFileError(f"{req.where} holds no {what}.")
        # The reference cebra silently takes the first entry; that file order is easy
        # to get wrong (labels read as neural data), so the choice is left to the user.
        raise KeyRequiredError(f"{req.where} holds {len(available)} {what}; pass key= one of "
                               f"{_short_list(available)} (cebra 0.6.1 took the first: "
                               f"key={available[0]!r}).")
    for candidate in (req.key, req.key.strip("/")):  # HDF5 paths may start with '/'
        if candidate in available:
            return candidate
    raise missing_key(req, available)


def missing_key(req: Request, available: Sequence[str]) -> MissingKeyError:
    """The error for a ``req.key`` not in ``available``, with close matches first."""
    import difflib

    close = difflib.get_close_matches(str(req.key), list(available), n=3, cutoff=0.6)
    hint = f" Did you mean {close}?" if close else ""
    return MissingKeyError(f"{req.where}: no such key.{hint} Available keys: "
                           f"{_short_list(available)}.")


def refuse_pickle(req: Request, what: str) -> None:
    """Raise :class:`PickleRefusedError` unless ``req.allow_pickle``.

    ``what`` says which part of the file would be unpickled.
    """
    if req.allow_pickle:
        return
    raise PickleRefusedError(
        f"Refusing to read {req.where}: {what}, and unpickling can run code stored in the "
        "file. If you trust where the file comes from, pass allow_pickle=True to load_data "
        "(pipeline: config field 'allow_pickle: true', or 'true' in the sessions sheet's "
        "allow_pickle column for this row); otherwise convert it to .npz, .parquet or an "
        "HDF5 file without Python objects.")


def reject_key(req: Request, what: str) -> None:
    """Formats holding a single array or table take no ``key``."""
    if req.key is not None:
        raise MissingKeyError(f"{req.where}: {what} holds a single array or table and has no "
                              "keys; call load_data without key=.")


def reject_columns(req: Request, what: str) -> None:
    """``columns`` only selects from tables."""
    if req.columns is not None:
        raise LoadError(f"{req.where}: columns={list(req.columns)} was given, but the data is "
                        f"{what}, not a table; columns= only applies to tables (DataFrames in "
                        "HDF5/pickle/joblib files, CSV, Excel, Parquet, DeepLabCut bodyparts).")


def _is_table(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, (pd.DataFrame, pd.Series))


def _is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def table_to_array(table: Any, req: Request) -> np.ndarray:
    """Select ``req.columns`` of a DataFrame (or Series) and return its values.

    Returns
    -------
    (rows, columns) array; numeric columns only.
    """
    import pandas as pd

    df = table.to_frame() if isinstance(table, pd.Series) else table
    if req.columns is not None:
        missing = [c for c in req.columns if c not in df.columns]
        if missing:
            raise MissingColumnError(f"{req.where}: unknown column(s) {missing}. Available "
                                     f"columns: {_short_list(list(df.columns))}.")
        df = df[list(req.columns)]
    if df.shape[0] == 0:
        raise EmptyFileError(f"{req.where}: the table has no rows.")
    bad = [f"{c!r} ({dtype})" for c, dtype in df.dtypes.items()
           if not pd.api.types.is_numeric_dtype(dtype)]
    if bad:
        raise NonNumericDataError(f"{req.where}: column(s) {', '.join(bad)} are not numeric; "
                                  "choose numeric columns with columns=[...].")
    # Nullable pandas dtypes (Int64, boolean) would give object arrays; NA becomes NaN.
    if any(isinstance(dtype, pd.api.extensions.ExtensionDtype) for dtype in df.dtypes):
        return df.to_numpy(dtype=np.float64, na_value=np.nan)
    return df.to_numpy()


_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "boolean", "decimal",
                     "complex"}


def as_numeric(value: Any, req: Request) -> np.ndarray:
    """Convert a reader's result to a numeric numpy array, or raise NonNumericDataError."""
    if _is_table(value):
        return table_to_array(value, req)
    if _is_tensor(value):
        value = value.detach().cpu()
        if value.dtype == sys.modules["torch"].bfloat16:  # numpy has no bfloat16
            value = value.float()
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise NonNumericDataError(f"{req.where}: the data is not a rectangular numeric array "
                                  f"({err}).") from err
    kind = arr.dtype.kind
    if kind in "biufc":
        return arr
    if kind == "O":
        import pandas as pd

        inferred = pd.api.types.infer_dtype(arr.ravel(), skipna=True)
        if inferred in _NUMERIC_INFERRED:
            target = {"integer": np.int64, "boolean": np.bool_,
                      "complex": np.complex128}.get(inferred, np.float64)
            try:
                return arr.astype(target)
            except (TypeError, ValueError):
                pass
        raise NonNumericDataError(f"{req.where}: the data holds Python objects ({inferred}), "
                                  "not numbers.")
    kinds = {"U": "strings", "S": "byte strings", "M": "datetimes", "m": "time deltas",
             "V": "structured records"}
    raise NonNumericDataError(f"{req.where}: the data holds {kinds.get(kind, 'non-numbers')} "
                              f"(dtype {arr.dtype}), not numbers.")


# ------------------------------------------------------- dict-like containers (pickle)


def _is_array_like(value: Any) -> bool:
    return (isinstance(value, (np.ndarray, numbers.Number, list, tuple)) or _is_table(value)
            or _is_tensor(value))


def _children(value: Any) -> Iterable[tuple[Any, Any]] | None:
    """Named members of a container, or None for a leaf (one array, table or scalar).

    Containers are mappings, scipy MATLAB structs left inside cell arrays, and lists,
    tuples or object arrays (MATLAB cells) that hold arrays rather than being one.
    """
    if isinstance(value, Mapping):
        return value.items()
    if hasattr(value, "_fieldnames"):  # scipy.io.matlab.mat_struct
        return ((name, getattr(value, name)) for name in value._fieldnames)
    sequence = isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray)
                                                    and value.dtype == object and value.ndim)
    if sequence and not _is_rectangular(value) and any(
            isinstance(v, (Mapping, list, tuple, np.ndarray)) or hasattr(v, "_fieldnames")
            or _is_tensor(v) or _is_table(v) for v in value):
        return enumerate(value)
    return None


def _is_rectangular(values: Any) -> bool:
    """True for nested lists that form one numeric array, e.g. ``[[1, 2], [3, 4]]``."""
    try:
        return np.asarray(values).dtype.kind in "biufc"
    except ValueError:
        return False


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested containers by '/'-joined path, e.g. ``{"a/b": array}``."""
    leaves: dict[str, Any] = {}
    for name, value in _children(obj) or ():
        path = f"{prefix}/{name}" if prefix else str(name)
        if _children(value) is not None:
            leaves.update(_flatten(value, path))
        else:
            leaves[path] = value
    return leaves


def leaf_to_array(value: Any, req: Request) -> Any:
    """One selected object: tables get column selection, anything else no columns."""
    if _is_table(value):
        return table_to_array(value, req)
    reject_columns(req, f"a {type(value).__name__}")
    return value


def select_from_container(obj: Any, req: Request) -> Any:
    """Pick ``req.key`` from a (nested) dict or list of arrays, or return a lone array."""
    if _children(obj) is None:
        reject_key(req, f"the file (a single {type(obj).__name__})")
        return leaf_to_array(obj, req)
    leaves = _flatten(obj)
    if req.key is not None and req.key.strip("/") not in leaves:
        group = req.key.strip("/") + "/"
        inside = [k for k in leaves if k.startswith(group)]
        if inside:
            raise MissingKeyError(f"{req.where} is a group, not an array; choose one of "
                                  f"{_short_list(inside)}.")
        raise missing_key(req, list(leaves))
    arrays = [k for k, v in leaves.items() if _is_array_like(v)]
    name = pick_key(req, arrays if req.key is None else list(leaves))
    return leaf_to_array(leaves[name], req)


# -------------------------------------------------------------------------- readers


def read_npy(req: Request) -> np.ndarray:
    reject_key(req, "a .npy file")
    reject_columns(req, "a .npy array")
    with open(req.path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":  # else np.load would try to unpickle it
            raise CorruptFileError(f"{req.where} is not a NumPy .npy file (no NumPy header).")
        fh.seek(0)
        check_npy_size(fh, req.path.stat().st_size, req)
    return _numpy_load(lambda: np.load(req.path, allow_pickle=False), req)


def check_npy_size(fh: Any, stored: int, req: Request) -> None:
    """Refuse an ``.npy`` stream whose header claims more bytes than it holds.

    numpy allocates the whole array before reading (for streams inside ``.npz``), so a
    100-byte file claiming terabytes would end in a MemoryError; this reads only the
    header. ``stored`` is the stream's size in bytes; ``fh`` is left after the header.
    """
    try:
        version = np.lib.format.read_magic(fh)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(fh))
    except ValueError as err:
        raise CorruptFileError(f"Cannot load {req.where}: the NumPy header is corrupt "
                               f"({err}).") from err
    if dtype.hasobject:
        return  # object arrays are refused when loading, without unpickling
    claimed = math.prod(shape) * dtype.itemsize
    held = stored - fh.tell()
    if claimed > held:
        raise CorruptFileError(f"Cannot load {req.where}: its header claims shape {shape} of "
                               f"{dtype} ({claimed:,} bytes) but the file holds only {held:,} "
                               "bytes of data; it is truncated or corrupt.")
    free = _available_memory()
    if free is not None and claimed > free:
        raise LoadError(f"Cannot load {req.where}: the array of shape {shape} ({dtype}) needs "
                        f"{claimed:,} bytes of memory but only {free:,} are available.")


def _available_memory() -> int | None:
    """Bytes of physical memory available now, or None where the OS does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def read_npz(req: Request) -> np.ndarray:
    import zipfile

    if not zipfile.is_zipfile(req.path):
        raise CorruptFileError(f"{req.where} is not a NumPy .npz archive (not a zip file); it "
                               "may be truncated or corrupt.")
    with np.load(req.path, allow_pickle=False) as archive:
        name = pick_key(req, list(archive.files))
        reject_columns(req, "a numpy array")
        member = archive.zip.getinfo(name if name in archive.zip.namelist() else f"{name}.npy")
        with archive.zip.open(member) as fh:
            check_npy_size(fh, member.file_size, req)
        return _numpy_load(lambda: archive[name], req)


def _numpy_load(load: Callable[[], np.ndarray], req: Request) -> np.ndarray:
    try:
        return load()
    except ValueError as err:
        if "Object arrays cannot be loaded" in str(err):  # they would need unpickling
            raise NonNumericDataError(f"{req.where}: the array holds Python objects, not "
                                      "numbers (object arrays are not unpickled).") from err
        raise


def read_hdf(req: Request) -> Any:
    """Plain HDF5 datasets (by path), pandas objects (``to_hdf``) and DeepLabCut output."""
    import h5py
    import pandas as pd

    with h5py.File(req.path, "r") as h5:
        entries = _hdf_entries(h5)
        if req.key is not None and req.key.strip("/") not in entries \
                and isinstance(h5.get(req.key.strip("/") or "/"), h5py.Group):
            inside = [k for k in entries if k.startswith(req.key.strip("/") + "/")]
            raise MissingKeyError(f"{req.where} is a group, not a dataset or DataFrame; choose "
                                  f"one of {_short_list(inside or list(entries))}.")
        name = pick_key(req, list(entries), what="datasets or DataFrames")
        if entries[name] == "dataset":
            reject_columns(req, "a plain HDF5 dataset")
            _reject_threshold(req)
            return h5[name][()]
        pickled = _hdf_pickled_parts(h5)
    if pickled:
        refuse_pickle(req, "this pandas HDF5 file stores Python objects as pickles ("
                           + ", ".join(pickled[:5]) + (", ..." if len(pickled) > 5 else "") + ")")
    table = pd.read_hdf(req.path, key=name)
    if _is_deeplabcut(table):
        return deeplabcut_keypoints(table, req)
    _reject_threshold(req)
    return table_to_array(table, req)


def _hdf_entries(h5: Any) -> dict[str, str]:
    """Readable objects by path: ``"pandas"`` groups (written by ``to_hdf``) or datasets."""
    import h5py

    entries: dict[str, str] = {}
    pandas_groups: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if any(name.startswith(group + "/") for group in pandas_groups):
            return  # internal arrays of a pandas object
        if isinstance(obj, h5py.Group) and "pandas_type" in obj.attrs:
            entries[name] = "pandas"
            pandas_groups.append(name)
        elif isinstance(obj, h5py.Dataset):
            entries[name] = "dataset"

    h5.visititems(visit)  # pre-order: a pandas group is seen before its members
    return entries


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain containers, strings and numbers only; any class or function fails.

    Without ``find_class`` a pickle can build nothing but builtin values, so running this
    on a byte string cannot execute code (``persistent_load`` is also refused).
    """

    def find_class(self, module: str, name: str) -> Any:
        raise ValueError(f"refers to {module}.{name}")


def _is_plain_pickle(raw: bytes) -> bool:
    try:
        _NoGlobals(io.BytesIO(raw)).load()
        return True
    except (ValueError, pickle.UnpicklingError, EOFError, TypeError, IndexError, KeyError,
            AttributeError, MemoryError, RecursionError):
        return False


def _hdf_pickled_parts(h5: Any) -> list[str]:
    """Parts of a (PyTables/pandas) HDF5 file that reading it with pandas would unpickle
    and that hold more than plain values: object arrays (``PSEUDOATOM='object'``, from
    object columns) and pickled attributes referring to classes or functions.

    PyTables unpickles any string attribute that ends in ``.`` (the pickle STOP opcode);
    pandas' own attributes are pickled lists, dicts and strings, which are safe.
    Found by reading the HDF5 structure with h5py, never by unpickling them for real.
    """
    import h5py

    found: list[str] = []

    def check(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.attrs.get("PSEUDOATOM") == b"object":
            found.append(f"object array '{name}'")
        for attr, value in obj.attrs.items():
            if isinstance(value, bytes) and value.endswith(b".") and value not in (b"0", b"0.") \
                    and not _is_plain_pickle(value):
                found.append(f"attribute '{attr}' of '{name}'")

    check("/", h5)
    h5.visititems(check)
    return found


def _reject_threshold(req: Request) -> None:
    if req.likelihood_threshold is not None:
        raise LoadError(f"{req.where}: likelihood_threshold= only applies to DeepLabCut "
                        "output (a DataFrame with bodyparts/coords columns).")


def _is_deeplabcut(table: Any) -> bool:
    import pandas as pd

    return (isinstance(table, pd.DataFrame) and isinstance(table.columns, pd.MultiIndex)
            and {"bodyparts", "coords"} <= set(table.columns.names))


def deeplabcut_keypoints(table: Any, req: Request) -> np.ndarray:
    """x, y (and z) of the bodyparts in ``req.columns``, unreliable points interpolated.

    Points whose likelihood is below ``req.likelihood_threshold`` (default 0.6) are set to
    NaN and filled by linear interpolation over the frame index (held constant before
    the first and after the last reliable point). The pipeline's ingest instead drops
    such frames on the session's clock (:mod:`cebra_pipe.recordings`).

    Returns
    -------
    (time, 2 * keypoints) array ordered ``[bp1_x, bp1_y, bp2_x, ...]``; in multi-animal
    files each bodypart is repeated per individual.
    """
    from cebra_pipe.recordings import AlignmentError
    from cebra_pipe.recordings.readers import deeplabcut_keypoints as keypoints
    from cebra_pipe.recordings.streams import fill_gaps

    threshold = 0.6 if req.likelihood_threshold is None else req.likelihood_threshold
    bodyparts = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    missing = [bp for bp in (req.columns or ()) if bp not in bodyparts]
    if missing:
        raise MissingColumnError(f"{req.where}: unknown bodypart(s) {missing}. Available "
                                 f"bodyparts: {_short_list(bodyparts)}.")
    try:
        values, _ = keypoints(table, req.columns, threshold, req.where)
    except AlignmentError as err:
        raise LoadError(str(err)) from None
    return fill_gaps(values)


def read_torch(req: Request) -> Any:
    import torch

    try:
        obj = torch.load(req.path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "weights only" not in text.lower():
            raise
        if "GLOBAL" in text or "Unsupported global" in text or "Unsupported class" in text:
            raise LoadError(f"{req.where}: the file holds Python objects other than tensors; "
                            "load_data only reads tensors (weights_only=True), since unpickling "
                            "arbitrary objects can execute code.") from err
        # Any other refusal of the restricted unpickler ("Unsupported operand 32") means
        # bytes that are not a pickle stream at all: a truncated or foreign file.
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n|$)", text)
        raise CorruptFileError(f"Cannot load {req.where} as PyTorch; it may be truncated or "
                               "corrupt, or not a PyTorch file"
                               + (f" ({detail.group(1)})." if detail else ".")) from err
    return select_from_container(obj, req)


def read_csv(req: Request) -> np.ndarray:
    """Comma-, semicolon-, tab- or '|'-separated text; decimal commas with ';' or tabs.

    Every row must have as many fields as the first one: pandas would otherwise read
    the extra leading fields of longer rows as an index and drop them silently.
    """
    import pandas as pd

    reject_key(req, "a CSV file")
    sep, decimal, first = _csv_layout(req)
    header, index_col = _header_layout([cell.replace(decimal, ".") for cell in first])
    table = pd.read_csv(req.path, sep=sep, decimal=decimal, header=0 if header else None,
                        index_col=index_col)
    return table_to_array(table, req)


_CSV_SEPARATORS = ("\t", ";", ",", "|")  # ';' and tabs first: ',' may be a decimal mark
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")


def _csv_layout(req: Request, sample_lines: int = 200) -> tuple[str, str, list[str]]:
    """The separator, the decimal mark and the first row's cells of a CSV file.

    The separator is the first of tab, ';', ',', '|' that splits the first
    ``sample_lines`` lines into the same number (> 1) of fields; one that occurs in the
    first line otherwise (then the ragged check below names the bad line). Cells like
    ``1,5`` in a file not separated by commas mean decimal commas.

    Raises
    ------
    MalformedTableError
        A row has a different number of fields than the first row (names the line).
    """
    import csv
    import itertools

    with open(req.path, newline="", encoding="utf-8", errors="replace") as fh:
        sample = [line for line in itertools.islice(fh, sample_lines) if line.strip()]
    if not sample:
        raise EmptyFileError(f"{req.where}: the file holds only blank lines.")
    sep = next((d for d in _CSV_SEPARATORS
                if len({len(row) for row in csv.reader(sample, delimiter=d)}) == 1
                and len(next(csv.reader(sample[:1], delimiter=d))) > 1), None)
    if sep is None:
        sep = next((d for d in _CSV_SEPARATORS if d in sample[0]), ",")
    cells = [cell for row in csv.reader(sample[1:], delimiter=sep) for cell in row]
    decimal = "," if sep != "," and any(_DECIMAL_COMMA.match(c) for c in cells) else "."
    with open(req.path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep)
        first: list[str] | None = None
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue  # pandas skips blank lines too
            if first is None:
                first = row
            elif len(row) != len(first):
                name = {"\t": "tab", ";": "';'", ",": "','", "|": "'|'"}[sep]
                raise MalformedTableError(
                    f"{req.where}, line {reader.line_num}: {len(row)} fields, but the first "
                    f"row has {len(first)} ({name}-separated); the table is ragged (a stray "
                    "separator, or a different separator or decimal mark on some lines?). "
                    "Fix the file; no columns are dropped silently.")
    return sep, decimal, first or []


def read_excel(req: Request) -> np.ndarray:
    import pandas as pd

    from cebra_pipe.recordings.readers import require

    # pandas would only say "Missing optional dependency"; name the extra instead.
    require("xlrd" if req.path.suffix.lower() == ".xls" else "openpyxl", "excel")
    with pd.ExcelFile(req.path) as book:
        sheets = {str(s): s for s in book.sheet_names}
        sheet = sheets[pick_key(req, list(sheets), what="sheets")]
        first = pd.read_excel(book, sheet_name=sheet, header=None, nrows=1, dtype=object)
        if first.shape[0] == 0:
            raise EmptyFileError(f"{req.where}: sheet '{sheet}' is empty.")
        cells = ["" if isinstance(v, float) and math.isnan(v) else str(v)
                 for v in first.iloc[0].tolist()]
        header, index_col = _header_layout(cells)
        table = pd.read_excel(book, sheet_name=sheet, header=0 if header else None,
                              index_col=index_col)
    return table_to_array(table, req)


def _header_layout(first_row: list[str]) -> tuple[bool, int | None]:
    """Whether the first row is a header, and whether column 0 is a pandas index.

    A first row of numbers is data (files written by ``np.savetxt``); a header whose
    first cell is empty marks an index column (files written by ``DataFrame.to_csv``).
    """
    def is_number(text: str) -> bool:
        try:
            float(text)
            return True
        except ValueError:
            return False

    header = not all(is_number(cell) for cell in first_row)
    index_col = 0 if header and len(first_row) > 1 and first_row[0].strip() == "" else None
    return header, index_col


def read_joblib(req: Request) -> Any:
    import joblib

    refuse_pickle(req, "joblib files are pickles")
    return select_from_container(joblib.load(req.path), req)


def read_pickle(req: Request) -> Any:
    import pandas as pd

    refuse_pickle(req, "it is a pickle file")
    # pandas' reader also handles pickles of DataFrames from older pandas versions.
    return select_from_container(pd.read_pickle(req.path), req)


def read_mat(req: Request) -> Any:
    """MATLAB v4-v7.2 files via scipy; v7.3 files (HDF5) via h5py."""
    import h5py

    if h5py.is_hdf5(req.path):
        return _read_mat73(req)
    import scipy.io

    data = scipy.io.loadmat(req.path, simplify_cells=True)
    data = {k: v for k, v in data.items() if not k.startswith("__")}  # header, version
    return select_from_container(data, req)


def _read_mat73(req: Request) -> np.ndarray:
    import h5py

    with h5py.File(req.path, "r") as h5:
        names: list[str] = []
        h5.visititems(lambda name, obj: names.append(name)
                      if isinstance(obj, h5py.Dataset) and not name.startswith("#") else None)
        name = pick_key(req, names, what="MATLAB variables")
        reject_columns(req, "a MATLAB array")
        dataset = h5[name]
        matlab_class = dataset.attrs.get("MATLAB_class", b"")
        matlab_class = (matlab_class.decode() if isinstance(matlab_class, bytes)
                        else str(matlab_class))
        if matlab_class in {"char", "cell", "struct", "function_handle", "string"}:
            raise NonNumericDataError(f"{req.where}: MATLAB {matlab_class} variables are not "
                                      "numeric arrays.")
        if dataset.attrs.get("MATLAB_empty", 0):
            raise EmptyFileError(f"{req.where}: the MATLAB variable is empty.")
        arr = dataset[()]
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        arr = arr["real"] + 1j * arr["imag"]
    if matlab_class == "logical":
        arr = arr.astype(bool)
    # MATLAB is column-major: HDF5 holds the transpose of what MATLAB shows.
    return arr.T


def read_parquet(req: Request) -> np.ndarray:
    import pyarrow.parquet as pq

    reject_key(req, "a Parquet file")
    names = [n for n in pq.read_schema(req.path).names if not n.startswith("__index_level_")]
    if req.columns is not None:
        missing = [c for c in req.columns if c not in names]
        if missing:
            raise MissingColumnError(f"{req.where}: unknown column(s) {missing}. Available "
                                     f"columns: {_short_list(names)}.")
    table = pq.read_table(req.path, columns=list(req.columns or names))
    return table_to_array(table.to_pandas(), req)


def read_nwb(req: Request) -> np.ndarray:
    """Binned ``units`` spike counts, or any TimeSeries by path (behaviour, ROI traces)."""
    from cebra_pipe.recordings.readers import require

    pynwb = require("pynwb", "nwb")
    with pynwb.NWBHDF5IO(str(req.path), "r", load_namespaces=True) as io:
        nwbfile = io.read()
        entries = _nwb_entries(nwbfile)
        if req.key is not None and req.key not in entries \
                and f"acquisition/{req.key}" in entries:  # bare acquisition names
            req = dataclasses.replace(req, key=f"acquisition/{req.key}")
        name = pick_key(req, list(entries), what="units tables or TimeSeries")
        reject_columns(req, "an NWB " + ("units table" if name == "units" else "TimeSeries"))
        if name == "units":
            return bin_units(req, 0.025 if req.bin_size is None else req.bin_size)
        if req.bin_size is not None:
            raise LoadError(f"{req.where}: bin_size= only applies to key='units'; TimeSeries "
                            "are returned at their own sampling.")
        return np.asarray(entries[name].data[:])


def _nwb_entries(nwbfile: Any) -> dict[str, Any]:
    """``"units"`` and every TimeSeries, by path like ``processing/behavior/position/x``."""
    from pynwb import TimeSeries

    from cebra_pipe.recordings.readers import nwb_paths

    return {path: obj for path, obj in nwb_paths(nwbfile).items()
            if path == "units" or isinstance(obj, TimeSeries)}


def bin_units(req: Request, bin_size: float) -> np.ndarray:
    """Spike counts of every unit in bins of ``bin_size`` seconds.

    Bins are aligned to multiples of ``bin_size`` on the file's clock: the first starts
    at ``floor(t0 / bin_size) * bin_size`` where ``t0`` is the first spike (or the start
    of the units' ``obs_intervals``), the last holds the last spike (or interval end).
    Every bin is returned, observed or not; the pipeline's ingest drops unobserved ones.

    Returns
    -------
    (time, units) float32 spike counts.
    """
    from cebra_pipe.recordings import AlignmentError, TimeBase
    from cebra_pipe.recordings.readers import read_nwb as read_stream

    try:
        units = read_stream(req.path, "units")
        return units.on(TimeBase.regular(*units.extent(), bin_size, where=req.where))[0]
    except AlignmentError as err:
        if "no spikes" in str(err):
            raise EmptyFileError(f"{req.where}: the NWB units table holds no spikes.") from None
        raise LoadError(str(err)) from None


# ------------------------------------------------------------------------- dispatch

READERS: dict[str, tuple[str, Callable[[Request], Any]]] = {
    ".npy": ("NumPy", read_npy),
    ".npz": ("NumPy archive", read_npz),
    ".h5": ("HDF5", read_hdf),
    ".hdf5": ("HDF5", read_hdf),
    ".hdf": ("HDF5", read_hdf),
    ".hd5": ("HDF5", read_hdf),
    ".h": ("HDF5", read_hdf),
    ".pt": ("PyTorch", read_torch),
    ".pth": ("PyTorch", read_torch),
    ".csv": ("CSV", read_csv),
    ".xls": ("Excel", read_excel),
    ".xlsx": ("Excel", read_excel),
    ".xlsm": ("Excel", read_excel),
    ".jl": ("joblib", read_joblib),
    ".joblib": ("joblib", read_joblib),
    ".pkl": ("pickle", read_pickle),
    ".p": ("pickle", read_pickle),
    ".mat": ("MATLAB", read_mat),
    ".parquet": ("Parquet", read_parquet),
    ".nwb": ("NWB", read_nwb),
}


def read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that libraries raise on truncated, corrupt or mislabelled files."""
    import struct
    import zipfile

    errors: list[type[BaseException]] = [OSError, EOFError, ValueError, RuntimeError,
                                         KeyError, IndexError, struct.error,
                                         pickle.UnpicklingError, zipfile.BadZipFile]
    scipy_io = sys.modules.get("scipy.io.matlab")
    if scipy_io is not None:
        errors.append(scipy_io.MatReadError)
    openpyxl_errors = sys.modules.get("openpyxl.utils.exceptions")
    if openpyxl_errors is not None:
        errors.append(openpyxl_errors.InvalidFileException)
    return tuple(errors)
