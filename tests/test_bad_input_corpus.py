"""The bad-input corpus (issue 8): one parametrized test over every public surface.

Each case feeds one kind of bad input to one surface -- ``load_data`` on every format,
``CEBRA.fit/transform/load``, the metrics, the workflow entrypoints
(``python -m cebra_pipe <step>``, in process through their ``cli`` and a few as real
subprocesses), and the config and sessions sheet through the same checks
``workflow/rules/common.smk`` runs -- and asserts

* the exception type (library calls) or the exit status (entrypoints: 2 for bad input,
  3 for a failed write, argparse's 2 for a malformed command line);
* that the message names the file, field or argument and the problem (a regex);
* that nothing was written: the case's output folder is empty, and no temporary file
  (``.<name>.<random><suffix>`` from :func:`cebra_pipe.io.atomic_write`) is left
  anywhere under the test's folder.

The second part covers full disks and unwritable results folders for the library's
``atomic_write`` users and a pipeline entrypoint (simulated ``ENOSPC``, a path below a
regular file, and, as root, a real 64 KiB tmpfs).

Other files test the happy paths and more variants; this file is the canonical list of
bad inputs and stays fast (no case trains for more than a few steps).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import h5py
import joblib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.exceptions import NotFittedError

from cebra_pipe import CEBRA
from cebra_pipe.data.load import (CorruptFileError, EmptyFileError, KeyRequiredError, LoadError,
                                  MalformedTableError, MissingColumnError, MissingKeyError,
                                  NonNumericDataError, PickleRefusedError, UnsupportedFormatError,
                                  load_data)
from cebra_pipe.pipeline import (aggregate, config as cp_config, consistency, controls, decode,
                                 figures, ingest, report, split, train)
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT, EXIT_WRITE_ERROR
from cebra_pipe.sklearn import metrics

REPO = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHEET_SCHEMA = REPO / "workflow" / "schemas" / "sessions.schema.yaml"
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
ARGPARSE_ERROR = 2  # argparse exits with 2 on a malformed command line

LABELS = {"position": {"type": "continuous", "key": "continuous", "index": 0},
          "direction": {"type": "discrete", "key": "discrete"}}
TINY = dict(model_architecture="offset1-model", batch_size=16, max_iterations=3,
            output_dimension=2, device="cpu", random_state=0)


# ------------------------------------------------------------------------- payloads

class _Exploit:
    """Unpickling this object creates ``marker`` (stands for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> SimpleNamespace:
    """Shared, read-only inputs: a small recording, its session and split files, a tiny
    fitted model with its embeddings, and one file of every format."""
    from cebra_pipe import datasets

    root = tmp_path_factory.mktemp("corpus")
    rec = datasets.init("synthetic-linear-track", animal="rat2", seed=3, duration=10)
    data = root / "small.npz"
    np.savez(data, neural=rec.neural, continuous=rec.continuous, discrete=rec.discrete)

    session, split_file = root / "sessions" / "a1.npz", root / "splits" / "a1.npz"
    ingest.main(["--row", json.dumps({"animal": "a1", "session": "s1",
                                      "neural_file": str(data), "neural_key": "neural"}),
                 "--labels", json.dumps(LABELS), "--out", str(session),
                 "--provenance", str(session.with_suffix(".json"))])
    # 10 s: the last 20% holds one running direction only, so hold out part of each.
    split.main(["--session", str(session), "--min-samples", "50", "--method", "stratified",
                "--out", str(split_file), "--provenance", str(split_file.with_suffix(".json"))])
    idx = np.load(split_file)
    X_train, X_valid = rec.neural[idx["train"]], rec.neural[idx["valid"]]
    y_train = rec.continuous[idx["train"], :1].astype(np.float32)

    model = CEBRA(**TINY).fit(X_train, y_train)
    models = root / "models"
    (models / "seed0").mkdir(parents=True)
    model.save(models / "seed0" / "model.pt")
    np.save(models / "seed0" / "embedding_train.npy", model.transform(X_train))
    np.save(models / "seed0" / "embedding_valid.npy", model.transform(X_valid))

    h5 = root / "full.h5"
    with h5py.File(h5, "w") as f:
        f["neural"] = rec.neural
    nwb = root / "full.nwb"
    _write_nwb(nwb)
    parquet = root / "full.parquet"
    pd.DataFrame({"x": rec.continuous[:, 0], "y": rec.continuous[:, 1]}).to_parquet(parquet)
    return SimpleNamespace(root=root, rec=rec, data=data, session=session, split=split_file,
                           models=models, model=model, X=X_train, y=y_train, X_valid=X_valid,
                           h5=h5, nwb=nwb, parquet=parquet)


def _write_nwb(path: Path) -> None:
    from datetime import datetime, timezone

    import pynwb

    nwbfile = pynwb.NWBFile(session_description="corpus", identifier="corpus",
                            session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for times in ([0.01, 0.02, 0.2], [0.05, 0.3]):
        nwbfile.add_unit(spike_times=times)
    nwbfile.add_acquisition(pynwb.TimeSeries(name="lick", data=np.arange(40.0), unit="V",
                                             rate=40.0))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


@dataclasses.dataclass
class Ctx:
    """What a case gets: the shared inputs, its own folder and its output folder."""

    ws: SimpleNamespace
    tmp: Path
    out: Path
    monkeypatch: pytest.MonkeyPatch

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def cut(self, source: Path, name: str, fraction: float = 0.5) -> Path:
        """A copy of ``source`` truncated to ``fraction`` of its bytes."""
        raw = source.read_bytes()
        return self.file(name, raw[: int(len(raw) * fraction)])

    def npz(self, name: str, **arrays: np.ndarray) -> Path:
        base = dict(np.load(self.ws.data))
        base.update(arrays)
        path = self.tmp / name
        np.savez(path, **base)
        return path

    @property
    def marker(self) -> Path:
        return self.tmp / "PAYLOAD_RAN"


# ---------------------------------------------------------------------------- cases

@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Ctx], Any]
    expect: type[BaseException] | int  # exception type, or an entrypoint's exit status
    match: str  # regex searched in the exception message or stderr


CASES: list[Case] = []


def case(id: str, expect: type[BaseException] | int, match: str):
    def register(run: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        assert all(c.id != id for c in CASES), f"duplicate case id {id}"
        CASES.append(Case(id, run, expect, match))
        return run
    return register


# --- load_data: every format, truncated / corrupt / empty / wrong content ----------

@case("load-npy-truncated", CorruptFileError, r"file '.*cut\.npy'.*truncated or corrupt")
def _(c):
    path = c.tmp / "full.npy"
    np.save(path, c.ws.rec.neural)
    load_data(c.cut(path, "cut.npy"))


@case("load-npy-not-numpy", CorruptFileError, r"file '.*junk\.npy' is not a NumPy \.npy file")
def _(c):
    load_data(c.file("junk.npy", b"this is not a numpy file" * 10))


@case("load-npy-pickle-payload", NonNumericDataError,
      r"file '.*payload\.npy'.*Python objects.*not unpickled")
def _(c):
    np.save(c.tmp / "payload.npy", np.array([_Exploit(c.marker)], dtype=object),
            allow_pickle=True)
    load_data(c.tmp / "payload.npy")


@case("load-npy-strings", NonNumericDataError, r"file '.*names\.npy'.*strings.*not numbers")
def _(c):
    np.save(c.tmp / "names.npy", np.array(["left", "right"]))
    load_data(c.tmp / "names.npy")


@case("load-npz-truncated", CorruptFileError, r"file '.*cut\.npz'.*(truncated|corrupt)")
def _(c):
    load_data(c.cut(c.ws.data, "cut.npz"), key="neural")


@case("load-npz-not-zip", CorruptFileError, r"file '.*junk\.npz'.*not a NumPy \.npz archive")
def _(c):
    load_data(c.file("junk.npz", b"PK\x03\x04 cut short"), key="neural")


@case("load-npz-missing-key", MissingKeyError,
      r"file '.*small\.npz', key 'nerual'.*Did you mean \['neural'\]")
def _(c):
    load_data(c.ws.data, key="nerual")


@case("load-npz-several-arrays-no-key", KeyRequiredError,
      r"file '.*small\.npz' holds 3 arrays; pass key=")
def _(c):
    load_data(c.ws.data)


@case("load-h5-truncated", CorruptFileError, r"file '.*cut\.h5'.*as HDF5.*truncated or corrupt")
def _(c):
    load_data(c.cut(c.ws.h5, "cut.h5"), key="neural")


@case("load-h5-garbage", CorruptFileError, r"file '.*junk\.h5'.*as HDF5")
def _(c):
    load_data(c.file("junk.h5", b"\x89HDF\r\n\x1a\n" + b"\x00garbage" * 50), key="neural")


@case("load-h5-missing-key", MissingKeyError, r"file '.*full\.h5', key 'spikes': no such key")
def _(c):
    load_data(c.ws.h5, key="spikes")


@case("load-nwb-truncated", CorruptFileError, r"file '.*cut\.nwb'.*as NWB.*truncated or corrupt")
def _(c):
    load_data(c.cut(c.ws.nwb, "cut.nwb", 0.3), key="units")


@case("load-nwb-garbage", CorruptFileError, r"file '.*junk\.nwb'.*as NWB")
def _(c):
    load_data(c.file("junk.nwb", b"not an nwb file" * 40), key="units")


@case("load-nwb-missing-key", MissingKeyError, r"file '.*full\.nwb', key 'position'.*Available")
def _(c):
    load_data(c.ws.nwb, key="position")


@case("load-pt-corrupt", CorruptFileError, r"file '.*junk\.pt'.*as PyTorch")
def _(c):
    load_data(c.file("junk.pt", b"\x80\x04 truncated pickle"))


@case("load-pt-pickle-payload", LoadError,
      r"file '.*payload\.pt'.*Python objects other than tensors.*weights_only")
def _(c):
    torch.save({"neural": torch.zeros(3, 2), "extra": _Exploit(c.marker)}, c.tmp / "payload.pt")
    load_data(c.tmp / "payload.pt", key="neural")


@case("load-csv-empty", EmptyFileError, r"file '.*empty\.csv'.*empty \(0 bytes\)")
def _(c):
    load_data(c.file("empty.csv", b""))


@case("load-csv-header-only", EmptyFileError, r"file '.*header\.csv'.*no rows")
def _(c):
    load_data(c.file("header.csv", b"x,y\n"))


@case("load-csv-text-column", NonNumericDataError,
      r"file '.*text\.csv'.*column\(s\) 'side' \((object|str)\) are not numeric")
def _(c):
    load_data(c.file("text.csv", b"x,side\n1.0,left\n2.0,right\n"))


@case("load-parquet-truncated", CorruptFileError, r"file '.*cut\.parquet'.*as Parquet")
def _(c):
    load_data(c.cut(c.ws.parquet, "cut.parquet"))


@case("load-parquet-unknown-column", MissingColumnError,
      r"file '.*full\.parquet'.*unknown column\(s\) \['z'\].*Available columns: \['x', 'y'\]")
def _(c):
    load_data(c.ws.parquet, columns=["x", "z"])


@case("load-unsupported-suffix", UnsupportedFormatError,
      r"file '.*data\.txt'.*unsupported suffix '\.txt'")
def _(c):
    load_data(c.file("data.txt", b"1 2 3\n"))


@case("load-missing-file", FileNotFoundError, r"No such data file.*nowhere\.npz")
def _(c):
    load_data(c.tmp / "nowhere.npz")


@case("load-columns-on-array", LoadError, r"file '.*small\.npz', key 'neural'.*not a table")
def _(c):
    load_data(c.ws.data, key="neural", columns=["x"])


@case("load-nwb-zero-bin-size", LoadError, r"file '.*full\.nwb'.*bin_size must be a positive")
def _(c):
    load_data(c.ws.nwb, key="units", bin_size=0)


# --- issue 15: no code from data files (a payload per pickle route, refused by default) --

def _h5_object_column(path: Path, marker: Path) -> None:
    with warnings.catch_warnings():  # pandas warns that it pickles the object column
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        pd.DataFrame({"x": np.arange(3.0), "obj": [_Exploit(marker)] * 3}).to_hdf(
            path, key="df", format="fixed")


def _h5_pickled_attribute(path: Path, marker: Path) -> None:
    """A clean pandas table whose pickled ``info`` attribute is replaced by a payload
    (PyTables unpickles any string attribute ending in the pickle STOP opcode)."""
    pd.DataFrame({"x": np.arange(3.0)}).to_hdf(path, key="df", format="table")
    with h5py.File(path, "a") as h5:
        h5["df"].attrs["info"] = np.bytes_(pickle.dumps(_Exploit(marker), protocol=0))


PICKLE_PAYLOADS: dict[str, Callable[[Path, Path], None]] = {
    "payload.pkl": lambda p, m: p.write_bytes(pickle.dumps({"neural": _Exploit(m)})),
    "payload.p": lambda p, m: p.write_bytes(pickle.dumps(_Exploit(m))),
    "payload.jl": lambda p, m: joblib.dump({"neural": _Exploit(m)}, p),
    "payload.joblib": lambda p, m: joblib.dump([_Exploit(m)], p),
    "payload.h5": _h5_object_column,
    "attribute.h5": _h5_pickled_attribute,
}


for _name, _refusal in [("payload.pkl", "it is a pickle file"),
                        ("payload.p", "it is a pickle file"),
                        ("payload.jl", "joblib files are pickles"),
                        ("payload.joblib", "joblib files are pickles"),
                        ("payload.h5", r"stores Python objects as pickles \(object array"),
                        ("attribute.h5", r"stores Python objects as pickles \(attribute 'info'")]:
    @case(f"load-{_name.replace('.', '-')}-refused", PickleRefusedError,
          rf"Refusing to read file '.*{re.escape(_name)}'.*{_refusal}.*allow_pickle=True")
    def _(c, _name=_name):
        PICKLE_PAYLOADS[_name](c.tmp / _name, c.marker)
        load_data(c.tmp / _name)


@case("load-npz-object-payload", NonNumericDataError,
      r"file '.*payload\.npz', key 'neural'.*Python objects.*not unpickled")
def _(c):
    np.savez(c.tmp / "payload.npz", neural=np.array([_Exploit(c.marker)], dtype=object))
    load_data(c.tmp / "payload.npz", key="neural")


@case("load-pth-pickle-payload", LoadError,
      r"file '.*payload\.pth'.*Python objects other than tensors.*weights_only")
def _(c):
    torch.save([torch.zeros(2), _Exploit(c.marker)], c.tmp / "payload.pth")
    load_data(c.tmp / "payload.pth", key="0")


@case("ingest-pickle-refused", EXIT_BAD_INPUT,
      r"ingest: error: .*payload\.pkl.*allow_pickle")
def _(c):
    PICKLE_PAYLOADS["payload.pkl"](c.tmp / "payload.pkl", c.marker)
    return _ingest(c, {"neural_file": str(c.tmp / "payload.pkl"), "neural_key": "neural"})


@case("split-session-meta-not-json", EXIT_BAD_INPUT,
      r"split: error: session file '.*badmeta\.npz': field 'meta' is not the JSON object")
def _(c):
    np.savez(c.tmp / "badmeta.npz", neural=np.ones((60, 3), np.float32), meta=np.array("{oops"))
    return split.cli(["--session", str(c.tmp / "badmeta.npz"), "--out", str(c.out / "s.npz"),
                      "--provenance", str(c.out / "s.json")])


# Session files without label_types (older ingest) load; without the animal they do not.
@case("split-session-meta-without-animal", EXIT_BAD_INPUT,
      r"session file '.*oldmeta\.npz': field 'meta' lacks \['animal'\]")
def _(c):
    np.savez(c.tmp / "oldmeta.npz", neural=np.ones((60, 3), np.float32),
             meta=np.array(json.dumps({"session": "s", "label_types": {}})))
    return split.cli(["--session", str(c.tmp / "oldmeta.npz"), "--out", str(c.out / "s.npz"),
                      "--provenance", str(c.out / "s.json")])


# --- issue 15: sizes and misleading messages in load_data --------------------------

def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """An .npy header claiming ``shape``, without the data it promises."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return header.getvalue()


@case("load-npy-header-claims-72-tib", CorruptFileError,
      r"file '.*huge\.npy'.*header claims shape \(3000000, 3000000\).*holds only 0 bytes")
def _(c):
    load_data(c.file("huge.npy", _npy_header("<f8", (3_000_000, 3_000_000))))


@case("load-npz-member-claims-more-than-stored", CorruptFileError,
      r"file '.*huge\.npz', key 'neural'.*header claims shape \(100000, 100000\)")
def _(c):
    with zipfile.ZipFile(c.tmp / "huge.npz", "w") as archive:
        archive.writestr("neural.npy", _npy_header("<f4", (100_000, 100_000)) + b"\0" * 64)
    load_data(c.tmp / "huge.npz", key="neural")


@case("load-csv-more-fields-than-header", MalformedTableError,
      r"file '.*ragged\.csv', line 3: 4 fields, but the first row has 3")
def _(c):
    load_data(c.file("ragged.csv", b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n"))


@case("load-h5-key-is-a-group", MissingKeyError,
      r"file '.*groups\.h5', key 'session1' is a group, not a dataset.*'session1/neural'")
def _(c):
    with h5py.File(c.tmp / "groups.h5", "w") as h5:
        h5["session1/neural"] = np.zeros((4, 2))
    load_data(c.tmp / "groups.h5", key="session1")


@case("load-directory", IsADirectoryError, r"file '.*recording'.*is a folder, not a data file")
def _(c):
    (c.tmp / "recording").mkdir()
    load_data(c.tmp / "recording")


@case("load-symlink-loop", OSError, r"file '.*loop\.npy'.*symlink loop")
def _(c):
    (c.tmp / "loop.npy").symlink_to(c.tmp / "loop.npy")
    load_data(c.tmp / "loop.npy")


# --- CEBRA.fit / transform / load --------------------------------------------------

def _fit(c, X, *y, **params):
    CEBRA(**{**TINY, **params}).fit(X, *y)


@case("fit-1d-neural", ValueError, r"X must be 2-D \(time, neurons\), got shape \(400,\)")
def _(c):
    _fit(c, c.ws.rec.neural[:, 0])


@case("fit-4d-neural", ValueError,
      r"X must be 2-D \(time, neurons\), got shape \(2, 3, 4, 5\)")
def _(c):  # 3-D is trial-structured input (trials, time, neurons)
    _fit(c, np.zeros((2, 3, 4, 5), np.float32))


@case("fit-empty-neural", ValueError, r"X is empty: 0 sample\(s\)")
def _(c):
    _fit(c, np.zeros((0, 5), np.float32))


@case("fit-nan-neural", ValueError, r"X contains NaN or infinite values \(1 entries\)")
def _(c):
    X = c.ws.X.copy()
    X[3, 1] = np.nan
    _fit(c, X)


@case("fit-inf-label", ValueError, r"y\[0\] contains NaN or infinite values")
def _(c):
    y = c.ws.y.copy()
    y[7] = np.inf
    _fit(c, c.ws.X, y)


@case("fit-mismatched-lengths", ValueError,
      r"y\[0\] has \d+ samples but the neural data has \d+")
def _(c):
    _fit(c, c.ws.X, c.ws.y[:-5])


@case("fit-string-dtype", TypeError, r"X must be numeric")
def _(c):
    _fit(c, np.array([["a", "b"]] * 50))


@case("fit-zero-iterations", ValueError, r"max_iterations must be a positive integer")
def _(c):
    _fit(c, c.ws.X, max_iterations=0)


@case("fit-negative-iterations", ValueError, r"max_iterations must be a positive integer")
def _(c):
    _fit(c, c.ws.X, max_iterations=-3)


@case("fit-zero-batch-size", ValueError, r"batch_size must be a positive integer")
def _(c):
    _fit(c, c.ws.X, batch_size=0)


@case("fit-output-dimension-0", ValueError, r"output_dimension must be a positive integer")
def _(c):
    _fit(c, c.ws.X, output_dimension=0)


@case("fit-unknown-model", ValueError, r"offset1-modle")
def _(c):
    _fit(c, c.ws.X, model_architecture="offset1-modle")


@case("transform-wrong-neurons", ValueError, r"X has 5 features, but CEBRA is expecting 48")
def _(c):
    c.ws.model.transform(np.zeros((20, 5), np.float32))


@case("transform-nan", ValueError, r"X contains NaN or infinite values")
def _(c):
    X = c.ws.X_valid.copy()
    X[0, 0] = np.nan
    c.ws.model.transform(X)


@case("transform-unfitted", NotFittedError, r"This CEBRA instance is not fitted yet")
def _(c):
    CEBRA(**TINY).transform(c.ws.X)


@case("load-model-truncated", ValueError, r"Refusing to load .*cut\.pt.*corrupt, truncated")
def _(c):
    CEBRA.load(c.cut(c.ws.models / "seed0" / "model.pt", "cut.pt"))


@case("load-model-empty", ValueError, r"Refusing to load .*empty\.pt: the file is empty")
def _(c):
    CEBRA.load(c.file("empty.pt", b""))


@case("load-model-pickle-payload", ValueError, r"Refusing to load .*payload\.pt.*pickled objects")
def _(c):
    payload = torch.load(c.ws.models / "seed0" / "model.pt", weights_only=True)
    torch.save({**payload, "extra": _Exploit(c.marker)}, c.tmp / "payload.pt")
    CEBRA.load(c.tmp / "payload.pt")


@case("load-model-plain-pickle", ValueError, r"Refusing to load .*plain\.pt")
def _(c):
    with open(c.tmp / "plain.pt", "wb") as handle:
        pickle.dump(_Exploit(c.marker), handle)
    CEBRA.load(c.tmp / "plain.pt")


@case("load-model-foreign-tensors", ValueError, r"tensors\.pt is not a cebra_pipe model file")
def _(c):
    torch.save({"weight": torch.zeros(3)}, c.tmp / "tensors.pt")
    CEBRA.load(c.tmp / "tensors.pt")


@case("load-model-missing", FileNotFoundError, r"No model file at .*missing\.pt")
def _(c):
    CEBRA.load(c.tmp / "missing.pt")


# --- issue 15: non-finite settings, diverging training, misleading estimator messages --

for _param, _value in [("temperature", float("inf")), ("learning_rate", float("inf")),
                       ("learning_rate", float("nan")), ("delta", float("inf")),
                       ("min_temperature", float("nan"))]:
    @case(f"fit-{_param.replace('_', '-')}-{_value}", ValueError,
          rf"{_param} must be a finite number > 0.*got {_value}")
    def _(c, _param=_param, _value=_value):
        _fit(c, c.ws.X, c.ws.y, **{_param: _value})


@case("fit-diverging-loss", ValueError, r"training diverged: the loss is nan at step \d+")
def _(c):
    model = CEBRA(**{**TINY, "learning_rate": 1e30, "max_iterations": 60})
    try:
        model.fit(c.ws.X, c.ws.y)
    finally:
        assert not hasattr(model, "solver_") or len(model.solver_.history) < 60


@case("fit-optimizer-kwargs-not-pairs", TypeError,
      r"optimizer_kwargs must be a mapping or \(name, value\) pairs, got 0\.9")
def _(c):
    _fit(c, c.ws.X, optimizer_kwargs=0.9)


@case("fit-negative-random-state", ValueError,
      r"random_state must be None or an integer in \[0, 2\*\*32\), got -1")
def _(c):
    _fit(c, c.ws.X, random_state=-1)


@case("fit-ragged-X", ValueError, r"^X is ragged: its rows have different lengths")
def _(c):
    _fit(c, [[1.0, 2.0], [3.0]])


@case("fit-float32-overflow", ValueError,
      r"X has values up to 1e\+39, beyond the float32 range")
def _(c):
    _fit(c, np.full((64, 3), 1e39))


@case("transform-fractional-session-id", TypeError,
      r"session_id must be an integer session index, got 1\.7")
def _(c):
    X = c.ws.X[:120]
    model = CEBRA(**TINY, conditional="time").fit([X, X[:, :10]])
    model.transform(X[:, :10], session_id=1.7)


def _lying_model(c, name: str, change: Callable[[dict], None]) -> Path:
    """A copy of the corpus model whose stored JSON or tensors were edited by ``change``."""
    payload = torch.load(c.ws.models / "seed0" / "model.pt", weights_only=True)
    payload["meta"], payload["fitted"] = json.loads(payload["meta"]), json.loads(payload["fitted"])
    change(payload)
    for field in ("meta", "fitted"):
        if isinstance(payload[field], dict):
            payload[field] = json.dumps(payload[field])
    torch.save(payload, c.tmp / name)
    return c.tmp / name


@case("load-model-json-disagrees-with-shapes", ValueError,
      r"Refusing to load .*dims\.pt: field 'state' does not match.*size mismatch")
def _(c):
    CEBRA.load(_lying_model(c, "dims.pt", lambda p: p["meta"]["params"].update(
        output_dimension=5)))


@case("load-model-json-disagrees-with-architecture", ValueError,
      r"Refusing to load .*arch\.pt: field 'state' does not match.*(Missing|Unexpected) key")
def _(c):
    CEBRA.load(_lying_model(c, "arch.pt", lambda p: p["meta"]["params"].update(
        model_architecture="offset10-model")))


@case("load-model-invalid-params", ValueError,
      r"Refusing to load .*params\.pt: field 'meta\.params'.*temperature must be a finite")
def _(c):
    CEBRA.load(_lying_model(c, "params.pt", lambda p: p["meta"]["params"].update(
        temperature=-1.0)))


@case("load-model-unknown-param", ValueError,
      r"Refusing to load .*extra\.pt: field 'meta\.params' has unknown parameter\(s\) "
      r"\['steps'\]")
def _(c):
    CEBRA.load(_lying_model(c, "extra.pt", lambda p: p["meta"]["params"].update(steps=3)))


@case("load-model-bad-json", ValueError, r"Refusing to load .*json\.pt: field 'fitted' is not "
      r"valid JSON")
def _(c):
    CEBRA.load(_lying_model(c, "json.pt", lambda p: p.update(fitted='{"n_features_in_": ')))


@case("load-model-nan-weights", ValueError,
      r"Refusing to load .*nan\.pt: field 'state\.model\.[\w.]+' holds NaN")
def _(c):
    def poison(payload: dict) -> None:
        name = next(iter(payload["state"]["model"]))
        payload["state"]["model"][name] = torch.full_like(payload["state"]["model"][name],
                                                          float("nan"))
    CEBRA.load(_lying_model(c, "nan.pt", poison))


# --- metrics -------------------------------------------------------------------------

@case("gof-mismatched-lengths", ValueError, r"has \d+ samples but the neural data has \d+")
def _(c):
    metrics.goodness_of_fit_score(c.ws.model, c.ws.X, c.ws.y[:-1], num_batches=1)


@case("infonce-zero-batches", ValueError, r"num_batches must be an integer >= 1, got 0")
def _(c):
    metrics.infonce_loss(c.ws.model, c.ws.X, c.ws.y, num_batches=0)


@case("gof-nan-labels", ValueError, r"contains NaN or infinite values")
def _(c):
    y = c.ws.y.copy()
    y[1] = np.nan
    metrics.goodness_of_fit_score(c.ws.model, c.ws.X, y, num_batches=1)


@case("gof-wrong-neurons", ValueError, r"X has 3 neurons but the model expects 48")
def _(c):
    metrics.goodness_of_fit_score(c.ws.model, c.ws.X[:, :3], c.ws.y, num_batches=1)


@case("gof-unfitted-model", NotFittedError, r"This CEBRA instance is not fitted yet")
def _(c):
    metrics.goodness_of_fit_score(CEBRA(**TINY), c.ws.X, c.ws.y, num_batches=1)


@case("gof-from-infonce-zero-batch-size", ValueError,
      r"batch_size and num_sessions must be >= 1")
def _(c):
    metrics.infonce_to_goodness_of_fit(1.0, batch_size=0, num_sessions=1)


@case("consistency-one-embedding", ValueError, r"needs at least 2 embeddings .*got 1")
def _(c):
    metrics.consistency_score([c.ws.X[:, :3]], between="runs")


@case("consistency-nan-embedding", ValueError, r"embeddings\[1\] contains NaN")
def _(c):
    bad = c.ws.X[:, :3].copy()
    bad[2, 2] = np.nan
    metrics.consistency_score([c.ws.X[:, :3], bad], between="runs")


@case("consistency-unknown-between", ValueError, r'Invalid between: must be "runs" or "datasets"')
def _(c):
    metrics.consistency_score([c.ws.X[:, :3], c.ws.X[:, 3:6]], between="animals")


@case("consistency-mismatched-lengths", ValueError,
      r"needs embeddings of equal length .*got lengths \[\d+, \d+\]")
def _(c):
    metrics.consistency_score([c.ws.X[:, :3], c.ws.X[:-4, :3]], between="runs")


# --- entrypoints, in process (cli returns the exit status) --------------------------

def _ingest(c, row: dict, labels: dict = LABELS) -> int:
    return ingest.cli(["--row", json.dumps({"animal": "a1", "session": "s1", **row}),
                       "--labels", json.dumps(labels), "--out", str(c.out / "session.npz"),
                       "--provenance", str(c.out / "session.json")])


@case("ingest-corrupt-npz", EXIT_BAD_INPUT, r"ingest: error: .*junk\.npz.*(corrupt|not a)")
def _(c):
    return _ingest(c, {"neural_file": str(c.file("junk.npz", b"garbage" * 9)),
                       "neural_key": "neural"})


@case("ingest-truncated-h5", EXIT_BAD_INPUT, r"ingest: error: .*cut\.h5.*truncated or corrupt")
def _(c):
    return _ingest(c, {"neural_file": str(c.cut(c.ws.h5, "cut.h5")), "neural_key": "neural"})


@case("ingest-nan-neural", EXIT_BAD_INPUT, r"file '.*nan\.npz', key 'neural'.*1 NaN/inf")
def _(c):
    neural = c.ws.rec.neural.copy()
    neural[10, 4] = np.inf
    return _ingest(c, {"neural_file": str(c.npz("nan.npz", neural=neural)),
                       "neural_key": "neural"})


@case("ingest-label-length", EXIT_BAD_INPUT,
      r"label 'position' \(file '.*short\.npz', key 'continuous'\).*390 time steps.*400")
def _(c):
    short = c.npz("short.npz", continuous=c.ws.rec.continuous[:390])
    return _ingest(c, {"neural_file": str(short), "neural_key": "neural"})


@case("ingest-empty-neural", EXIT_BAD_INPUT, r"key 'neural'.*shape \(0, 48\)")
def _(c):
    empty = c.npz("empty.npz", neural=np.zeros((0, 48), np.float32))
    return _ingest(c, {"neural_file": str(empty), "neural_key": "neural"})


@case("ingest-string-dtype", EXIT_BAD_INPUT, r"file '.*text\.npz', key 'neural'.*strings")
def _(c):
    text = c.npz("text.npz", neural=np.array([["a", "b"]] * 400))
    return _ingest(c, {"neural_file": str(text), "neural_key": "neural"})


@case("ingest-unknown-label-key", EXIT_BAD_INPUT,
      r"label 'position'.*key 'posxyz'.*no such key")
def _(c):
    labels = {**LABELS, "position": {"type": "continuous", "key": "posxyz"}}
    return _ingest(c, {"neural_file": str(c.ws.data), "neural_key": "neural"}, labels)


@case("ingest-missing-data-file", EXIT_BAD_INPUT, r"No such data file.*gone\.npz")
def _(c):
    return _ingest(c, {"neural_file": str(c.tmp / "gone.npz"), "neural_key": "neural"})


@case("ingest-unknown-synthetic-dataset", EXIT_BAD_INPUT,
      r"synthetic source 'synthetic:no-such-set'.*unknown dataset 'no-such-set'")
def _(c):
    return _ingest(c, {"neural_file": "synthetic:no-such-set"})


@case("ingest-synthetic-absurd-duration", EXIT_BAD_INPUT,
      r"ingest: error: .*duration=1e\+12 .*exceeds the limit of 500,000,000 values")
def _(c):
    return _ingest(c, {"neural_file": "synthetic:synthetic-linear-track?duration=1e12"})


@case("ingest-float32-overflow", EXIT_BAD_INPUT,
      r"file '.*huge\.npz', key 'neural': neural data has 1 values beyond the float32 range")
def _(c):
    neural = c.ws.rec.neural.astype(np.float64)
    neural[3, 2] = 1e39
    return _ingest(c, {"neural_file": str(c.npz("huge.npz", neural=neural)),
                       "neural_key": "neural"})


@case("ingest-row-not-json", ARGPARSE_ERROR, r"--row.*not valid JSON")
def _(c):
    return ingest.cli(["--row", "{animal: a1", "--labels", json.dumps(LABELS),
                       "--out", str(c.out / "s.npz"), "--provenance", str(c.out / "s.json")])


# --- ingest of recordings on their own clocks (config time_base; issue 13) ----------

def _lab_nwb(c, name: str, *, position_start: float = 0.0, backwards: bool = False) -> Path:
    """Units with a quality column, a 30 Hz Position/position SpatialSeries, trials."""
    from datetime import datetime, timezone

    import pynwb
    from pynwb.behavior import Position

    nwbfile = pynwb.NWBFile(session_description="corpus", identifier=name,
                            session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwbfile.add_unit_column("quality", "sorter label")
    rng = np.random.default_rng(0)
    for quality in ("good", "mua"):
        nwbfile.add_unit(spike_times=np.sort(rng.uniform(0, 10, 80)), quality=quality)
    stamps = position_start + np.arange(300) / 30.0
    if backwards:
        stamps[100] = stamps[98]
    position = Position(name="Position")
    position.create_spatial_series(name="position", data=np.linspace(0, 1, 300)[:, None],
                                   reference_frame="track start", timestamps=stamps)
    nwbfile.create_processing_module("behavior", "tracking").add(position)
    for start in range(0, 10, 2):
        nwbfile.add_trial(start_time=float(start), stop_time=float(start + 2))
    path = c.tmp / name
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


RECORDING = {"time_base": {"bin_size": 0.05}, "neural": {"key": "units"},
             "trials": {"key": "trials"}}
RECORDING_LABELS = {"position": {"type": "continuous",
                                 "key": "processing/behavior/Position/position"}}


def _ingest_recording(c, row: dict, recording: dict = RECORDING,
                      labels: dict = RECORDING_LABELS) -> int:
    return ingest.cli(["--row", json.dumps({"animal": "a1", "session": "s1", **row}),
                       "--labels", json.dumps(labels), "--recording", json.dumps(recording),
                       "--out", str(c.out / "session.npz"),
                       "--provenance", str(c.out / "session.json")])


@case("ingest-recording-timestamps-backwards", EXIT_BAD_INPUT,
      r"back\.nwb', key 'processing/behavior/Position/position'.*timestamps go backwards")
def _(c):
    return _ingest_recording(c, {"neural_file": str(_lab_nwb(c, "back.nwb", backwards=True))})


@case("ingest-recording-no-overlap", EXIT_BAD_INPUT,
      r"stream 'position' \(file '.*late\.nwb'.*does not overlap the neural data")
def _(c):
    path = _lab_nwb(c, "late.nwb", position_start=500.0)
    return _ingest_recording(c, {"neural_file": str(path)})


@case("ingest-recording-bin-larger-than-recording", EXIT_BAD_INPUT,
      r"time_base\.bin_size.*lab\.nwb.*bin_size 60(\.0)? s is larger than the recording")
def _(c):
    return _ingest_recording(c, {"neural_file": str(_lab_nwb(c, "lab.nwb")), "bin_size": "60"})


@case("ingest-recording-trials-without-start-stop", EXIT_BAD_INPUT,
      r"trials\.csv.*no start/stop column\(s\) \['start_time', 'stop_time'\]")
def _(c):
    trials = c.file("trials.csv", b"begin,end\n0,2\n2,4\n")
    return _ingest_recording(c, {"neural_file": str(_lab_nwb(c, "lab.nwb")),
                                 "trials_file": str(trials)})


@case("ingest-recording-label-key-is-group", EXIT_BAD_INPUT,
      r"key 'processing/behavior/Position' is a group.*choose one of "
      r"\['processing/behavior/Position/position'\]")
def _(c):
    labels = {"position": {"type": "continuous", "key": "processing/behavior/Position"}}
    return _ingest_recording(c, {"neural_file": str(_lab_nwb(c, "lab.nwb"))}, labels=labels)


@case("ingest-recording-no-unit-left", EXIT_BAD_INPUT,
      r"lab\.nwb', key 'units'.*no unit left after selecting \{'quality': \['excellent'\]\}")
def _(c):
    recording = {**RECORDING, "neural": {"key": "units", "select": {"quality": ["excellent"]}}}
    return _ingest_recording(c, {"neural_file": str(_lab_nwb(c, "lab.nwb"))}, recording)


@case("split-corrupt-session", EXIT_BAD_INPUT, r"split: error: session file '.*junk\.npz'.*corrupt")
def _(c):
    return split.cli(["--session", str(c.file("junk.npz", b"PK\x03\x04 nope")),
                      "--out", str(c.out / "split.npz"), "--provenance", str(c.out / "s.json")])


@case("split-zero-valid-fraction", EXIT_BAD_INPUT, r"split\.valid_fraction must lie in \(0, 1\)")
def _(c):
    return split.cli(["--session", str(c.ws.session), "--valid-fraction", "0",
                      "--out", str(c.out / "split.npz"), "--provenance", str(c.out / "s.json")])


@case("split-session-not-from-ingest", EXIT_BAD_INPUT, r"session file '.*other\.npz' lacks")
def _(c):
    np.savez(c.tmp / "other.npz", data=np.zeros(3))
    return split.cli(["--session", str(c.tmp / "other.npz"),
                      "--out", str(c.out / "split.npz"), "--provenance", str(c.out / "s.json")])


def _sorted_session(c, types: dict[str, str]) -> Path:
    """A session whose label ``arm`` runs through 5 classes in order (sorted by class)."""
    meta = {"animal": "a", "session": "sorted", "label_types": types}
    np.savez(c.tmp / "sorted.npz", neural=np.ones((500, 3), np.float32),
             label_arm=np.repeat(np.arange(5), 100),
             meta=np.array(json.dumps(meta)))
    return c.tmp / "sorted.npz"


@case("split-misses-classes-of-a-discrete-label", EXIT_BAD_INPUT,
      r"discrete label 'arm': .*valid has no time step of class\(es\) \['0', '1', '2', '3'\].*"
      r"split\.method: stratified")
def _(c):
    return split.cli(["--session", str(_sorted_session(c, {"arm": "discrete"})),
                      "--min-samples", "10", "--out", str(c.out / "split.npz"),
                      "--provenance", str(c.out / "s.json")])


@case("split-stratified-without-discrete-label", EXIT_BAD_INPUT,
      r"split\.method 'stratified' needs a discrete label")
def _(c):
    return split.cli(["--session", str(_sorted_session(c, {"arm": "continuous"})),
                      "--method", "stratified", "--out", str(c.out / "split.npz"),
                      "--provenance", str(c.out / "s.json")])


def _train(c, model: dict | None = None, seeds: str = "0") -> int:
    model = {"model_architecture": "offset1-model", "batch_size": 16, "max_iterations": 2,
             "output_dimension": 2, **(model or {})}
    return train.cli(["--session", str(c.ws.session), "--split", str(c.ws.split),
                      "--model", json.dumps(model), "--labels", '{"names": ["position"]}',
                      "--seeds", seeds, "--device", "cpu", "--outdir", str(c.out / "train"),
                      "--checkpoints", str(c.out / "checkpoints")])


@case("train-zero-iterations", EXIT_BAD_INPUT, r"--model field 'max_iterations'")
def _(c):
    return _train(c, {"max_iterations": 0})


@case("train-negative-batch-size", EXIT_BAD_INPUT, r"--model field 'batch_size'")
def _(c):
    return _train(c, {"batch_size": -1})


@case("train-output-dimension-0", EXIT_BAD_INPUT, r"--model field 'output_dimension'")
def _(c):
    return _train(c, {"output_dimension": 0})


@case("train-unknown-model", EXIT_BAD_INPUT, r"unknown model 'offset1-modle'")
def _(c):
    return _train(c, {"model_architecture": "offset1-modle"})


@case("train-unknown-field", EXIT_BAD_INPUT, r"--model: unknown field\(s\) \['max_iteration'\]")
def _(c):
    return _train(c, {"max_iteration": 5})


@case("train-empty-seeds", EXIT_BAD_INPUT, r"--seeds is empty")
def _(c):
    return _train(c, seeds="")


@case("train-infinite-learning-rate", EXIT_BAD_INPUT,
      r"--model field 'learning_rate' must be a finite positive number, got inf")
def _(c):
    return _train(c, {"learning_rate": float("inf")})


@case("train-diverging-loss", EXIT_BAD_INPUT,
      r"train-single: error: training diverged: the loss is nan at step \d+; stopped")
def _(c):
    return _train(c, {"learning_rate": 1e30, "max_iterations": 60})


def _decode(c, folder: Path) -> int:
    return decode.cli(["--sessions", str(c.ws.session), "--splits", str(c.ws.split),
                       "--dir", str(folder), "--seeds", "0", "--model-name", "m",
                       "--labels-name", "position", "--labels", '{"names": ["position"]}',
                       "--targets", '["position"]', "--gof-batches", "1",
                       "--knn-neighbors", "3", "--out", str(c.out / "decoding.tsv"),
                       "--provenance", str(c.out / "decoding.json")])


def _model_copy(c, **replace: np.ndarray) -> Path:
    folder = c.tmp / "models"
    shutil.copytree(c.ws.models, folder)
    for name, array in replace.items():
        np.save(folder / "seed0" / f"{name}.npy", array)
    return folder


@case("decode-missing-model", EXIT_BAD_INPUT, r"model file '.*seed0/model\.pt' is missing")
def _(c):
    (c.tmp / "empty" / "seed0").mkdir(parents=True)
    return _decode(c, c.tmp / "empty")


@case("decode-pickle-payload-model", EXIT_BAD_INPUT,
      r"model file '.*seed0/model\.pt'.*Refusing to load.*pickled objects")
def _(c):
    folder = _model_copy(c)
    torch.save({"meta": "{}", "extra": _Exploit(c.marker)}, folder / "seed0" / "model.pt")
    return _decode(c, folder)


@case("decode-nan-embedding", EXIT_BAD_INPUT,
      r"embedding file '.*seed0/embedding_valid\.npy'.*NaN")
def _(c):
    valid = np.load(c.ws.models / "seed0" / "embedding_valid.npy")
    valid[3] = np.nan
    return _decode(c, _model_copy(c, embedding_valid=valid))


@case("decode-embedding-wrong-length", EXIT_BAD_INPUT,
      r"valid embedding of a1/s1 \(seed 0\) has 10 rows but the split has \d+")
def _(c):
    return _decode(c, _model_copy(c, embedding_valid=np.zeros((10, 2), np.float32)))


def _runs(c, *embeddings: Path, seeds: str = "0,1") -> int:
    return consistency.cli_for("consistency-runs", [
        "--embeddings", *map(str, embeddings), "--seeds", seeds,
        "--out", str(c.out / "runs.tsv"), "--figure", str(c.out / "runs.png"),
        "--provenance", str(c.out / "runs.json")])


@case("consistency-runs-one-seed", EXIT_BAD_INPUT, r"consistency between runs needs at least 2")
def _(c):
    return _runs(c, c.ws.models / "seed0" / "embedding_train.npy", seeds="0")


@case("consistency-runs-corrupt-embedding", EXIT_BAD_INPUT,
      r"embedding file '.*junk\.npy' is missing or corrupt")
def _(c):
    return _runs(c, c.ws.models / "seed0" / "embedding_train.npy",
                 c.file("junk.npy", b"\x93NUMPY garbage"))


@case("consistency-runs-nan-embedding", EXIT_BAD_INPUT, r"embedding file '.*nan\.npy'.*NaN")
def _(c):
    emb = np.load(c.ws.models / "seed0" / "embedding_train.npy")
    emb[0, 0] = np.nan
    np.save(c.tmp / "nan.npy", emb)
    return _runs(c, c.ws.models / "seed0" / "embedding_train.npy", c.tmp / "nan.npy")


@case("aggregate-missing-table", EXIT_BAD_INPUT, r"table '.*absent\.tsv' is missing or unreadable")
def _(c):
    return aggregate.cli(["--kind", "decoding", "--inputs", str(c.tmp / "absent.tsv"),
                          "--out", str(c.out / "t.tsv"), "--provenance", str(c.out / "t.json")])


@case("aggregate-unknown-kind", ARGPARSE_ERROR, r"--kind: invalid choice: 'animals'")
def _(c):
    return aggregate.cli(["--kind", "animals", "--out", str(c.out / "t.tsv"),
                          "--provenance", str(c.out / "t.json")])


@case("controls-table-without-columns", EXIT_BAD_INPUT,
      r"decoding table\(s\) '.*wrong\.tsv' lack\(s\) column\(s\) \[")
def _(c):
    (c.tmp / "wrong.tsv").write_text("a\tb\n1\t2\n")
    return controls.cli(["--decoding", str(c.tmp / "wrong.tsv"), "--out", str(c.out / "c.tsv"),
                         "--provenance", str(c.out / "c.json")])


@case("figures-empty-variants", EXIT_BAD_INPUT, r"--variants is empty")
def _(c):
    return figures.cli(["--dir", str(c.ws.models), "--variants", "[]", "--seeds", "0",
                        "--session", str(c.ws.session), "--split", str(c.ws.split),
                        "--loss-figure", str(c.out / "loss.png"),
                        "--embedding-figure", str(c.out / "emb.png")])


@case("report-missing-notebook", EXIT_BAD_INPUT, r"No such report notebook.*absent\.ipynb")
def _(c):
    return report.cli(["--notebook", str(c.tmp / "absent.ipynb"),
                       "--out-html", str(c.out / "r.html"), "--out-notebook",
                       str(c.out / "r.ipynb")])


@case("report-corrupt-notebook", EXIT_BAD_INPUT,
      r"report notebook '.*broken\.ipynb' is not a valid notebook")
def _(c):
    return report.cli(["--notebook", str(c.file("broken.ipynb", b'{"cells": [')),
                       "--out-html", str(c.out / "r.html"), "--out-notebook",
                       str(c.out / "r.ipynb")])


@case("main-unknown-step", ARGPARSE_ERROR, r"unknown step 'trian'")
def _(c):
    from cebra_pipe.__main__ import main

    return main(["trian"])


# --- entrypoints as real subprocesses (exit status seen by Snakemake) --------------

def _subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cebra_pipe", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


@case("cli-ingest-corrupt-pt", EXIT_BAD_INPUT, r"^cebra_pipe ingest: error: .*junk\.pt")
def _(c):
    row = {"animal": "a1", "session": "s1", "neural_file": str(c.file("junk.pt", b"x" * 50))}
    return _subprocess("ingest", "--row", json.dumps(row), "--labels", json.dumps(LABELS),
                       "--out", str(c.out / "s.npz"), "--provenance", str(c.out / "s.json"))


@case("cli-unknown-step", ARGPARSE_ERROR, r"unknown step 'ingset'")
def _(c):
    return _subprocess("ingset")


@case("cli-split-missing-argument", ARGPARSE_ERROR, r"required: --out")
def _(c):
    return _subprocess("split", "--session", str(c.ws.session), "--provenance",
                       str(c.out / "s.json"))


# --- config and sessions sheet (the checks of workflow/rules/common.smk) -----------

def validate_workflow(config: dict, sheet: Path) -> None:
    """What ``workflow/rules/common.smk`` runs at parse time, in the same order, raising
    :class:`ConfigError` with the message Snakemake would print."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    try:
        validate(config, str(CONFIG_SCHEMA))
    except WorkflowError as err:
        found = cp_config.find_schema_error(err)
        assert found is not None, err
        raise cp_config.ConfigError(cp_config.describe_schema_error(found, "Invalid config"))
    cp_config.check_config(config)
    cp_config.check_model_architectures(config)
    frame = cp_config.read_sheet(sheet)
    schema = yaml.safe_load(SHEET_SCHEMA.read_text())
    where = f"sessions sheet '{sheet.name}'"
    cp_config.check_columns(frame.columns, schema["properties"], schema["required"], where)
    try:
        validate(frame, str(SHEET_SCHEMA))
    except WorkflowError as err:
        message = cp_config.describe_sheet_error(err, f"Invalid sessions sheet '{sheet.name}'")
        assert message is not None, err
        raise cp_config.ConfigError(message)
    cp_config.check_sheet(frame.to_dict("records"), config, where)


SHEET_HEADER = "animal\tsession\tneural_file\tneural_key\tgroup"
GOOD_ROWS = [f"rat{i}\ts1\tsynthetic:synthetic-linear-track?animal=rat{i}&seed=1\t\tcohort"
             for i in (1, 2)]


def _workflow(c, change: Callable[[dict], None] | None = None,
              rows: list[str] | None = None, header: str = SHEET_HEADER) -> None:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["sessions"] = "sessions.tsv"
    if change is not None:
        change(config)
    (c.tmp / "sessions.tsv").write_text("\n".join([header, *(GOOD_ROWS if rows is None
                                                              else rows)]) + "\n")
    c.monkeypatch.chdir(c.tmp)
    validate_workflow(config, c.tmp / "sessions.tsv")


ConfigError = cp_config.ConfigError


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return change


@case("config-unknown-top-level-key", ConfigError,
      r"Invalid config: field '\(top level\)'.*'sedes' was unexpected")
def _(c):
    _workflow(c, _set("sedes", [0]))


@case("config-unknown-model-key", ConfigError,
      r"field 'models\.time'.*'max_iteration' was unexpected")
def _(c):
    _workflow(c, _set("models.time.max_iteration", 10))


@case("config-zero-iterations", ConfigError,
      r"field 'models\.time\.max_iterations': 0 is less than the minimum of 1")
def _(c):
    _workflow(c, _set("models.time.max_iterations", 0))


@case("config-negative-batch-size", ConfigError,
      r"field 'models\.behavior\.batch_size': -8 is less than the minimum of 1")
def _(c):
    _workflow(c, _set("models.behavior.batch_size", -8))


@case("config-output-dimension-0", ConfigError, r"field 'models\.time\.output_dimension': 0")
def _(c):
    _workflow(c, _set("models.time.output_dimension", 0))


@case("config-empty-seeds", ConfigError, r"field 'seeds': \[\] should be non-empty")
def _(c):
    _workflow(c, _set("seeds", []))


@case("config-wrong-type", ConfigError,
      r"field 'models\.time\.batch_size': '64' is not of type 'integer'")
def _(c):
    _workflow(c, _set("models.time.batch_size", "64"))


@case("config-unknown-model-architecture", ConfigError,
      r"field 'models\.time\.model_architecture': unknown model 'offset10-modle'")
def _(c):
    _workflow(c, _set("models.time.model_architecture", "offset10-modle"))


@case("config-unknown-label-set", ConfigError,
      r"field 'models\.behavior\.label_sets': unknown label set 'speed'")
def _(c):
    _workflow(c, _set("models.behavior.label_sets", ["speed"]))


@case("config-shell-in-device", ConfigError, r"field 'device': 'cpu; touch INJECTED'")
def _(c):
    _workflow(c, _set("device", "cpu; touch INJECTED"))


@case("sheet-duplicate-session", ConfigError,
      r"row 3 \(rat1/s1\): duplicate session id 'rat1/s1' \(also row 1\)")
def _(c):
    _workflow(c, rows=GOOD_ROWS + [GOOD_ROWS[0].replace("seed=1", "seed=2")])


@case("sheet-missing-file", ConfigError,
      r"row 3 \(rat3/s1\): field 'neural_file': file 'data/absent\.npz' does not exist")
def _(c):
    _workflow(c, rows=GOOD_ROWS + ["rat3\ts1\tdata/absent.npz\tneural\tcohort"])


@case("sheet-unknown-column", ConfigError,
      r"unknown column\(s\) 'nueral_key' \(did you mean 'neural_key'\?\)")
def _(c):
    _workflow(c, header=SHEET_HEADER.replace("neural_key", "nueral_key"))


@case("sheet-missing-column", ConfigError, r"missing required column\(s\) \['session'\]")
def _(c):
    _workflow(c, header="animal\tneural_file", rows=["rat1\tsynthetic:synthetic-linear-track"])


LABEL_HEADER = SHEET_HEADER + "\tlabel_keys\tlabel_units"


@case("sheet-label-keys-unknown-label", ConfigError,
      r"row 2 \(rat2/s1\): column 'label_keys': unknown label 'postion'; the config's labels "
      r"are \['direction', 'position'\]")
def _(c):
    _workflow(c, header=LABEL_HEADER, rows=[GOOD_ROWS[0] + "\t\t",
                                            GOOD_ROWS[1] + "\tpostion=continuous\t"])


@case("sheet-label-keys-malformed", ConfigError,
      r"row 1 \(rat1/s1\): column 'label_keys': entry 'continuous' is not 'label=value'")
def _(c):
    _workflow(c, header=LABEL_HEADER, rows=[GOOD_ROWS[0] + "\tcontinuous\t",
                                            GOOD_ROWS[1] + "\t\t"])


@case("sheet-label-units-mismatch", ConfigError,
      r"column 'label_units': label 'position' is compared between sessions .*unit differs "
      r"\(m: rat1/s1; cm: rat2/s1\)\. Set labels\.position\.normalize: range")
def _(c):
    _workflow(c, header=LABEL_HEADER, rows=[GOOD_ROWS[0] + "\t\tposition=m",
                                            GOOD_ROWS[1] + "\t\tposition=cm"])


@case("config-normalize-discrete-label", ConfigError,
      r"field 'labels\.direction\.normalize': a discrete label's classes are not rescaled")
def _(c):
    _workflow(c, _set("labels.direction.normalize", "range"))


@case("config-normalize-unknown-method", ConfigError,
      r"field 'labels\.position\.normalize': 'minmax' is not one of")
def _(c):
    _workflow(c, _set("labels.position.normalize", "minmax"))


@case("consistency-label-units-differ", EXIT_BAD_INPUT,
      r"label 'position' has different ranges in the sessions combined for between-session "
      r"consistency.*a/cm 0 to 160 \(cm\).*labels\.position\.normalize: range")
def _(c):
    files = []
    for name, scale, unit in (("m", 1.0, "m"), ("cm", 100.0, "cm")):
        meta = {"animal": "a", "session": name, "label_types": {"position": "continuous"},
                "label_units": {"position": unit}}
        session = c.tmp / f"{name}.npz"
        np.savez(session, neural=np.ones((200, 3), np.float32), meta=np.array(json.dumps(meta)),
                 label_position=(np.abs(np.sin(np.linspace(0, 20, 200))) * 1.6 * scale
                                 ).astype(np.float32)[:, None])
        out = c.tmp / f"{name}.split.npz"
        assert split.cli(["--session", str(session), "--min-samples", "10", "--out", str(out),
                          "--provenance", str(c.tmp / f"{name}.split.json")]) == 0
        embedding = c.tmp / f"{name}.emb.npy"
        np.save(embedding, np.random.default_rng(0).normal(size=(160, 3)).astype(np.float32))
        files.append((session, out, embedding))
    return consistency.cli_for("consistency-datasets", [
        "--sessions", *(str(f[0]) for f in files), "--splits", *(str(f[1]) for f in files),
        "--embeddings", *(str(f[2]) for f in files), "--seeds", "0", "--align-label",
        "position", "--out", str(c.out / "d.tsv"), "--figure", str(c.out / "d.png"),
        "--provenance", str(c.out / "d.json")])


@case("sheet-semicolon-in-id", ConfigError,
      r"row 1: field 'animal': 'rat1;touch INJECTED' does not match")
def _(c):
    _workflow(c, rows=[GOOD_ROWS[0].replace("rat1\t", "rat1;touch INJECTED\t", 1),
                       GOOD_ROWS[1]])


@case("sheet-space-in-id", ConfigError, r"row 2: field 'session': 's 1' does not match")
def _(c):
    _workflow(c, rows=[GOOD_ROWS[0], GOOD_ROWS[1].replace("\ts1\t", "\ts 1\t")])


@case("sheet-quote-in-id", ConfigError, r"row 1: field 'animal': \"rat'1\" does not match")
def _(c):
    _workflow(c, rows=[GOOD_ROWS[0].replace("rat1\t", "rat'1\t", 1), GOOD_ROWS[1]])


@case("sheet-no-rows", ConfigError, r"sessions sheet '.*sessions\.tsv' has no rows")
def _(c):
    _workflow(c, rows=[])


@case("sheet-bad-synthetic-parameter", ConfigError,
      r"row 1 \(rat1/s1\): field 'neural_file': .*bad parameter name '1x'")
def _(c):
    _workflow(c, rows=[GOOD_ROWS[0].replace("seed=1", "1x=2"), GOOD_ROWS[1]])


@case("sheet-single-session-group-with-multi", ConfigError,
      r"field 'group': multi_session models need at least 2 sessions")
def _(c):
    _workflow(c, rows=[GOOD_ROWS[0], GOOD_ROWS[1].replace("cohort", "other")])


@case("config-infinite-temperature", ConfigError,
      r"config: field 'models\.time\.temperature': inf is not a finite number")
def _(c):
    _workflow(c, _set("models.time.temperature", float("inf")))


@case("config-nan-learning-rate", ConfigError,
      r"config: field 'models\.behavior\.learning_rate': nan is not a finite number")
def _(c):
    _workflow(c, _set("models.behavior.learning_rate", float("nan")))


@case("config-absurd-max-iterations", ConfigError,
      r"field 'models\.time\.max_iterations': 1000000000000 is greater than the maximum of "
      r"10000000")
def _(c):
    _workflow(c, _set("models.time.max_iterations", 10**12))


@case("config-allow-pickle-not-boolean", ConfigError,
      r"field 'allow_pickle': 'yes' is not of type 'boolean'")
def _(c):
    _workflow(c, _set("allow_pickle", "yes"))


@case("sheet-comma-separated", ConfigError,
      r"sessions sheet '.*sessions\.tsv': the sheet must be tab-separated")
def _(c):
    _workflow(c, header=SHEET_HEADER.replace("\t", ","),
              rows=[r.replace("\t", ",") for r in GOOD_ROWS])


@case("sheet-allow-pickle-not-true-or-false", ConfigError,
      r"row 1: field 'allow_pickle': 'yes' is not one of \['true', 'false'\]")
def _(c):
    _workflow(c, header=SHEET_HEADER + "\tallow_pickle",
              rows=[GOOD_ROWS[0] + "\tyes", GOOD_ROWS[1] + "\tfalse"])


# --- hypothesis tests: time quantities of the nulls ----------------------------------

@case("hypotheses-min-shift-seconds-without-time-base", ValueError,
      r"min_shift='2 s' is a duration but the session has no time base.*hypotheses\.bin_size")
def _(c):
    from cebra_pipe.hypothesis import to_samples

    to_samples("2 s", None, "min_shift")


@case("hypotheses-min-shift-unknown-unit", ValueError,
      r"hypotheses\.min_shift must be a number of samples .* got '2 hours'")
def _(c):
    from cebra_pipe.hypothesis import to_samples

    to_samples("2 hours", 0.025, "hypotheses.min_shift")


# --- adding sessions to a trained cohort (fit(adapt=True), join-cohort, sheet `joins`) --

def _tiny_cohort(c) -> CEBRA:
    X, y = c.ws.X, c.ws.y
    return CEBRA(**TINY).fit([X, X[:, :20]], [y, y])


@case("adapt-session-id-with-a-gap", ValueError,
      r"session_id=5 is neither an existing session \(0\.\.1\) nor the next free index \(2\)")
def _(c):
    _tiny_cohort(c).fit(c.ws.X, c.ws.y, adapt=True, session_id=5)


@case("adapt-multi-session-without-labels", ValueError,
      r"needs labels for recording 0 \(the cohort's continuous labels\)")
def _(c):
    _tiny_cohort(c).fit(c.ws.X, adapt=True, session_id=2)


@case("join-cohort-single-session-model", EXIT_BAD_INPUT,
      r"join-cohort: error: cohort model '.*seed0/model\.pt' is a single-session model")
def _(c):
    from cebra_pipe.pipeline import cohort

    return cohort.cli(["--cohort-model", str(c.ws.models / "seed0" / "model.pt"),
                       "--cohort-name", "first", "--session", str(c.ws.session),
                       "--split", str(c.ws.split), "--labels", '{"names": ["position"]}',
                       "--max-adapt-iterations", "2", "--outdir", str(c.out)])


@case("sheet-joins-unknown-cohort-model", ConfigError,
      r"row a1/s1: column 'joins' is 'later', not a model of config field cohort_models")
def _(c):
    from cebra_pipe.pipeline import cohort

    cohort.check_joins([{"animal": "a1", "session": "s1", "joins": "later"}],
                       {"label_sets": {}, "cohort_models": {}}, "sessions sheet 's.tsv'")


# --- the whole corpus ----------------------------------------------------------------

def _params() -> list:
    return [pytest.param(c, id=c.id) for c in CASES]


def _stray_files(root: Path) -> list[Path]:
    """Temporary files of atomic_write (``.<name>.<random><suffix>``) under ``root``."""
    return [p for p in root.rglob(".*") if p.is_file()]


@pytest.mark.parametrize("bad", _params())
def test_bad_input(bad: Case, ws, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    ctx = Ctx(ws=ws, tmp=tmp_path, out=out, monkeypatch=monkeypatch)
    if isinstance(bad.expect, int):  # an entrypoint: exit status and one line on stderr
        try:
            result = bad.run(ctx)
        except SystemExit as exit_:  # argparse
            result = exit_.code
        if isinstance(result, subprocess.CompletedProcess):
            status, stderr = result.returncode, result.stderr
            assert "Traceback" not in stderr, stderr
        else:
            status, stderr = result, capsys.readouterr().err
        assert status == bad.expect, f"exit status {status}, stderr:\n{stderr}"
        assert re.search(bad.match, stderr, re.MULTILINE), stderr
    else:
        with pytest.raises(bad.expect) as info:
            bad.run(ctx)
        message = str(info.value)
        if isinstance(info.value, OSError) and info.value.filename:
            message += f" {info.value.filename}"
        assert re.search(bad.match, message), message
    left = [p for p in out.rglob("*") if p.is_file()]
    assert not left, f"outputs left behind: {left}"
    assert not _stray_files(tmp_path), f"temporary files left: {_stray_files(tmp_path)}"
    assert not ctx.marker.exists(), "a pickle payload ran"
    assert not list(tmp_path.rglob("INJECTED*"))


def test_pickle_payloads_of_the_corpus_are_live(tmp_path):
    """The payloads refused above really run code when unpickled without restriction."""
    marker = tmp_path / "PAYLOAD_RAN"
    np.save(tmp_path / "p.npy", np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "p.npy", allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    torch.save({"extra": _Exploit(marker)}, tmp_path / "p.pt")
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert marker.exists()



def test_ingest_reads_a_trusted_pickle_when_the_row_allows_it(ws, tmp_path, capsys):
    """The sheet's allow_pickle cell (the rule fills in the config field) opts in."""
    data = dict(np.load(ws.data))
    (tmp_path / "trusted.pkl").write_bytes(pickle.dumps(data))

    def run(allow: str) -> int:
        row = {"animal": "a1", "session": "s1", "neural_file": str(tmp_path / "trusted.pkl"),
               "neural_key": "neural", "allow_pickle": allow}
        return ingest.cli(["--row", json.dumps(row), "--labels", json.dumps(LABELS),
                           "--out", str(tmp_path / allow / "s.npz"),
                           "--provenance", str(tmp_path / allow / "s.json")])

    assert run("false") == EXIT_BAD_INPUT and "allow_pickle" in capsys.readouterr().err
    assert run("true") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "true" / "s.npz")["neural"],
                                  data["neural"])


@pytest.mark.parametrize("name", sorted(PICKLE_PAYLOADS))
def test_pickle_route_payloads_are_live_and_run_only_when_allowed(tmp_path, name):
    """Each refused payload above runs when the user opts in with allow_pickle=True."""
    marker = tmp_path / "PAYLOAD_RAN"
    PICKLE_PAYLOADS[name](tmp_path / name, marker)
    with pytest.raises(PickleRefusedError):
        load_data(tmp_path / name)
    assert not marker.exists()
    with contextlib.suppress(Exception):  # the payload's result is no array; it ran
        load_data(tmp_path / name, allow_pickle=True)
    assert marker.exists()


def test_corpus_is_large_and_covers_every_surface():
    assert len(CASES) >= 40
    prefixes = {c.id.split("-")[0] for c in CASES}
    assert {"load", "fit", "transform", "gof", "infonce", "consistency", "ingest", "split",
            "train", "decode", "aggregate", "controls", "figures", "report", "cli", "config",
            "sheet"} <= prefixes


# ------------------------------------------------------- the real Snakefile parse

def _snakemake_workdir(tmp: Path, change=None, rows=None) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["sessions"] = "config/sessions.tsv"
    if change:
        change(config)
    (tmp / "config").mkdir()
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp / "config" / "sessions.tsv").write_text("\n".join([SHEET_HEADER, *(rows or GOOD_ROWS)])
                                                 + "\n")
    return tmp


@pytest.mark.slow
@pytest.mark.parametrize("change, rows, message", [
    (_set("models.time.batch_size", 0),
     None, "field 'models.time.batch_size': 0 is less than the minimum of 1"),
    (None, [GOOD_ROWS[0].replace("rat1\t", "rat1;touch INJECTED\t", 1), GOOD_ROWS[1]],
     "field 'animal': 'rat1;touch INJECTED' does not match"),
], ids=["config", "sheet"])
def test_snakemake_stops_before_any_job(tmp_path, change, rows, message):
    """Two corpus cases through the real Snakefile: non-zero exit, message, no results."""
    workdir = _snakemake_workdir(tmp_path, change, rows)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "-d", str(workdir), "--cores", "1"], capture_output=True,
                            text=True, timeout=300, cwd=workdir)
    text = result.stdout + result.stderr
    assert result.returncode != 0 and message in text, text[-3000:]
    assert not (workdir / "results").exists() and not list(tmp_path.rglob("INJECTED*"))


@pytest.mark.slow
def test_snakemake_takes_braces_and_markup_in_free_text(tmp_path):
    """A report title, label unit and trial key with '{x}' and HTML: the workflow parses
    (Snakemake formats string params; these travel as functions) and the jobs get the
    text unchanged."""
    def change(config: dict) -> None:
        config.setdefault("report", {})["title"] = "Lab {x} <script>alert(1)</script>"
        config["split"]["trial_key"] = "trial{x}"
        next(iter(config["labels"].values()))["unit"] = "cm {x}"

    workdir = _snakemake_workdir(tmp_path, change)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "-d", str(workdir), "-n", "-p"], capture_output=True, text=True,
                            timeout=300, cwd=workdir)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    for value in ('"title":"Lab {x} <script>alert(1)</script>"', "--trial-key 'trial{x}'",
                  '"unit":"cm {x}"'):
        assert value in text, value


@pytest.mark.slow
def test_snakemake_names_the_bad_sheet_row(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace("\ts1\t", "\ts 1\t")]
    workdir = _snakemake_workdir(tmp_path, None, rows)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "-d", str(workdir), "--cores", "1"], capture_output=True,
                            text=True, timeout=300, cwd=workdir)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "row 2: field 'session': 's 1' does not match" in text, text[-3000:]


# ===================================================================================
# Disk full and unwritable results folders
# ===================================================================================

def _fail_after_partial_write(monkeypatch, module: Any, name: str) -> None:
    """Make ``module.name(obj, target, ...)`` write half a file, then fail with ENOSPC."""
    def writer(obj, target, *args, **kwargs):
        if hasattr(target, "write"):  # an open file (cebra_pipe.io.save_torch)
            target.write(b"half a file")
        else:
            Path(target).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(module, name, writer)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_estimator_save_on_a_full_disk_keeps_the_old_file(ws, tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    shutil.copy(ws.models / "seed0" / "model.pt", target)
    before = target.read_bytes()
    _fail_after_partial_write(monkeypatch, torch, "save")
    with pytest.raises(OSError) as info:
        ws.model.save(target)
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before and _only(tmp_path) == ["model.pt"]


def test_checkpoint_on_a_full_disk_leaves_no_partial_checkpoint(ws, tmp_path, monkeypatch):
    _fail_after_partial_write(monkeypatch, torch, "save")
    with pytest.raises(OSError) as info:
        CEBRA(**TINY).fit(ws.X, checkpoint_dir=tmp_path / "ck", checkpoint_frequency=1)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").iterdir())


def test_grid_search_results_on_a_full_disk_keep_the_old_results(tmp_path, monkeypatch):
    from cebra_pipe import grid_search

    grid_search._write_rows(tmp_path, [{"name": "old"}], {})
    (before,) = _only(tmp_path)
    old = (tmp_path / before).read_text()

    def write_text(self, *args, **kwargs):
        Path.write_bytes(self, b'{"format": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(OSError) as info:
        grid_search._write_rows(tmp_path, [{"name": "new"}], {})
    assert info.value.errno == errno.ENOSPC and before in info.value.filename
    assert _only(tmp_path) == [before] and (tmp_path / before).read_text() == old


def test_opaque_writer_error_on_a_full_disk_becomes_enospc(ws, tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError ("unexpected pos ..."): when the
    file system has no free blocks, atomic_write re-raises it as ENOSPC naming the file."""
    from cebra_pipe import io as cp_io

    def save(obj, target, *args, **kwargs):
        if hasattr(target, "write"):  # an open file (cebra_pipe.io.save_torch)
            target.write(b"PK")
        else:
            Path(target).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576")
    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(cp_io, "_disk_full", lambda folder: True)
    with pytest.raises(OSError) as info:
        ws.model.save(tmp_path / "model.pt")
    assert info.value.errno == errno.ENOSPC and info.value.filename.endswith("model.pt")
    assert "unexpected pos" in str(info.value) and _only(tmp_path) == []
    monkeypatch.setattr(cp_io, "_disk_full", lambda folder: False)  # disk not full:
    with pytest.raises(RuntimeError, match="unexpected pos"):  # the error is left alone
        ws.model.save(tmp_path / "model.pt")
    assert _only(tmp_path) == []


@pytest.mark.parametrize("fail_on", ["npz", "provenance"])
def test_entrypoint_on_a_full_disk_exits_3_and_keeps_nothing(ws, tmp_path, monkeypatch,
                                                             capsys, fail_on):
    """ENOSPC on the first output, or on the second after the first was written."""
    from cebra_pipe.pipeline import common

    out = tmp_path / "splits"
    if fail_on == "npz":
        real = common.zipfile.ZipFile.writestr

        def writestr(self, *args, **kwargs):
            real(self, *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(common.zipfile.ZipFile, "writestr", writestr)
    else:
        def write_text(self, *args, **kwargs):
            Path.write_bytes(self, b"{")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(Path, "write_text", write_text)
    status = split.cli(["--session", str(ws.session), "--min-samples", "50", "--method",
                        "stratified", "--out", str(out / "a1.npz"), "--provenance",
                        str(out / "a1.json")])
    err = capsys.readouterr().err
    assert status == EXIT_WRITE_ERROR, err
    assert "split: error: the disk is full" in err and "No partial output" in err
    assert _only(out) == []


def test_results_folder_below_a_file(ws, tmp_path, capsys):
    """An unwritable results path (a regular file where a folder should be): works even
    as root, where permissions do not stop writes."""
    (tmp_path / "results").write_text("not a folder")
    out = tmp_path / "results" / "splits"
    status = split.cli(["--session", str(ws.session), "--min-samples", "50", "--method",
                        "stratified", "--out", str(out / "a1.npz"), "--provenance",
                        str(out / "a1.json")])
    err = capsys.readouterr().err
    assert status == EXIT_WRITE_ERROR, err
    assert "not writable" in err and str(tmp_path / "results") in err, err
    with pytest.raises(OSError) as info:
        ws.model.save(tmp_path / "results" / "model.pt")
    assert info.value.errno == errno.ENOTDIR and "results" in str(info.value)
    assert _only(tmp_path) == ["results"] and (tmp_path / "results").read_text() == "not a folder"


_IN_CI = bool(os.environ.get("CI"))
_ROOT = os.name == "posix" and os.geteuid() == 0


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root; never skipped in CI)."""
    if not _ROOT and not _IN_CI:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if _IN_CI:
            pytest.fail(f"cannot mount a tmpfs in CI: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)  # lazy: a failed
        # writer may still hold its (deleted) file open


def test_real_full_disk_estimator_save(ws, tiny_disk):
    """torch.save fails on a full disk with an opaque RuntimeError; atomic_write turns it
    into ENOSPC naming the file, and keeps nothing."""
    big = CEBRA(**{**TINY, "model_architecture": "offset10-model", "max_iterations": 1,
                   "num_hidden_units": 64}).fit(ws.X)
    with pytest.raises(OSError) as info:
        big.save(tiny_disk / "model.pt")
    assert info.value.errno == errno.ENOSPC and "model.pt" in str(info.value)
    assert _only(tiny_disk) == []


def _writers():
    from cebra_pipe.pipeline import common

    big = np.random.default_rng(0).normal(size=(40_000,))
    return {
        "save_npz": lambda path: common.save_npz(path, {"a": big}),
        "save_npy": lambda path: common.save_npy(path, big),
        "write_json": lambda path: common.write_json(path, {"a": big.tolist()}),
        "write_tsv": lambda path: common.write_tsv(path, pd.DataFrame({"a": big})),
    }


@pytest.mark.parametrize("writer", ["save_npz", "save_npy", "write_json", "write_tsv"])
def test_real_full_disk_pipeline_writers(tiny_disk, writer):
    """Every pipeline writer on a real full disk: ENOSPC naming the file, the previous
    version of the file intact, no temporary file."""
    suffix = {"save_npz": ".npz", "save_npy": ".npy", "write_json": ".json",
              "write_tsv": ".tsv"}[writer]
    target = tiny_disk / f"out{suffix}"
    target.write_text("old")
    with pytest.raises(OSError) as info:
        _writers()[writer](target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert _only(tiny_disk) == [target.name] and target.read_text() == "old"


def test_real_full_disk_entrypoint(ws, tiny_disk, capsys):
    out = tiny_disk / "sessions"
    status = ingest.cli(["--row", json.dumps({"animal": "a1", "session": "s1",
                                              "neural_file": str(ws.data),
                                              "neural_key": "neural"}),
                         "--labels", json.dumps(LABELS), "--out", str(out / "a1.npz"),
                         "--provenance", str(out / "a1.json")])
    err = capsys.readouterr().err
    assert status == EXIT_WRITE_ERROR and "the disk is full" in err and "a1.npz" in err, err
    assert [p for p in tiny_disk.rglob("*") if p.is_file()] == []


# ------------------------------------- issue 15: unreadable checkpoints never block a rerun

_DAMAGE = {"empty": lambda raw: b"", "truncated": lambda raw: raw[: len(raw) // 2],
           "garbage": lambda raw: b"not a checkpoint" * 40}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
@pytest.mark.parametrize("older", [False, True], ids=["only", "with-older"])
def test_unreadable_checkpoint_is_set_aside_and_training_resumes(ws, tmp_path, caplog, damage,
                                                                 older):
    """The newest checkpoint is damaged: it is renamed ``.corrupt`` and named in a warning,
    training resumes from the older one (or from the start) and ends as an uninterrupted
    fit does."""
    params = {**TINY, "max_iterations": 4}
    uninterrupted = CEBRA(**params).fit(ws.X, ws.y)
    folder = tmp_path / "ck"
    if older:
        CEBRA(**{**params, "max_iterations": 2}).fit(ws.X, ws.y, checkpoint_dir=folder,
                                                       checkpoint_frequency=2)
    scratch = tmp_path / "scratch"
    CEBRA(**{**params, "max_iterations": 3}).fit(ws.X, ws.y, checkpoint_dir=scratch,
                                                   checkpoint_frequency=3)
    newest = folder / "checkpoint_00000003.pt"
    newest.parent.mkdir(exist_ok=True)
    newest.write_bytes(_DAMAGE[damage]((scratch / newest.name).read_bytes()))
    with caplog.at_level("WARNING", logger="cebra_pipe"):
        resumed = CEBRA(**params).fit(ws.X, ws.y, checkpoint_dir=folder, checkpoint_frequency=2)
    assert re.search(rf"checkpoint '.*{newest.name}' cannot be read.*set aside as "
                     rf"'.*{newest.name}\.corrupt'", caplog.text), caplog.text
    assert not newest.exists() and newest.with_name(newest.name + ".corrupt").exists()
    np.testing.assert_array_equal(resumed.transform(ws.X), uninterrupted.transform(ws.X))


def test_train_step_sets_damaged_checkpoints_aside_and_names_them(ws, tmp_path, monkeypatch,
                                                                  capsys, caplog):
    """A job that died after training left its kept state and checkpoint behind, both
    damaged since: the rerun names them in its log, trains again and succeeds."""
    def args(out: Path) -> list[str]:
        model = {"model_architecture": "offset1-model", "batch_size": 16, "max_iterations": 4,
                 "output_dimension": 2, "checkpoint_every": 2}
        return ["--session", str(ws.session), "--split", str(ws.split), "--model",
                json.dumps(model), "--labels", '{"names": ["position"]}', "--seeds", "0",
                "--device", "cpu", "--outdir", str(out), "--checkpoints",
                str(tmp_path / "checkpoints")]

    def crash(*_, **__):
        raise OSError(errno.EIO, "simulated crash after training")

    with monkeypatch.context() as patch:
        patch.setattr(train, "write_provenance", crash)
        assert train.cli(args(tmp_path / "first")) == EXIT_WRITE_ERROR
    kept = sorted((tmp_path / "checkpoints").rglob("*.pt"))
    assert [p.name for p in kept] == ["checkpoint_00000004.pt", "final.pt"]
    for path in kept:
        path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    with caplog.at_level("WARNING", logger="cebra_pipe"):  # stderr when run as a job
        assert train.cli(args(tmp_path / "second")) == 0
    log = "".join(capsys.readouterr()) + caplog.text
    for path in kept:
        assert re.search(rf"'{re.escape(str(path))}' cannot be read.*set aside as "
                         rf"'{re.escape(str(path))}\.corrupt'", log), log
    assert "Traceback" not in log
    assert (tmp_path / "second" / "seed0" / "model.pt").is_file()


# ------------------------------------------------ issue 15: byte-identical model files

def test_model_files_are_byte_identical_between_identical_runs(ws, tmp_path):
    """torch names the zip's inner folder after the file written: saving through a
    randomly named temporary file used to make every model.pt (and its hash) unique."""
    from cebra_pipe.pipeline.common import sha256_file

    first, second = tmp_path / "a" / "model.pt", tmp_path / "b" / "other-name.pt"
    CEBRA(**TINY).fit(ws.X, ws.y).save(first)
    CEBRA(**TINY).fit(ws.X, ws.y).save(second)
    assert first.read_bytes() == second.read_bytes()
    assert sha256_file(first) == sha256_file(second)


def test_train_step_writes_identical_model_files(ws, tmp_path):
    model = {"model_architecture": "offset1-model", "batch_size": 16, "max_iterations": 3,
             "output_dimension": 2}
    for run in ("a", "b"):
        assert train.cli(["--session", str(ws.session), "--split", str(ws.split), "--model",
                          json.dumps(model), "--labels", '{"names": ["position"]}', "--seeds",
                          "0", "--device", "cpu", "--outdir", str(tmp_path / run),
                          "--checkpoints", str(tmp_path / f"ck-{run}")]) == 0
    first, second = (tmp_path / run / "seed0" / "model.pt" for run in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()


# --------------------------------------------- issue 15: user text in reports is inert

class _Tags(HTMLParser):
    """Start tags of an HTML document: ``(tag, attributes)``."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


HOSTILE = ("Lab {x} <script>alert('title')</script> [x](javascript:alert(2)) "
           "<img src=x onerror=alert(3)> & co")


def test_report_with_a_hostile_title_has_no_live_markup_from_it(tmp_path):
    """A report title, ids and table cells with HTML, handlers, javascript: links and
    braces: rendered as text; the only scripts are nbconvert's own."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                     "display_name": "Python 3"}}, cells=[
        new_code_cell('title = "x"\nanimal = "rat1"', metadata={"tags": ["parameters"]}),
        new_code_cell("import pandas as pd\nfrom IPython.display import display\n"
                      "from cebra_pipe.pipeline import reportlib as rl\n"
                      "rl.md(f'# {title}: animal `{animal}`\\n\\n[{animal}]({animal}.html)')\n"
                      "display(pd.DataFrame({'notes': [title]}, index=[title]))"),
    ])
    nbformat.write(notebook, tmp_path / "hostile.ipynb")
    plain = tmp_path / "plain.html"
    assert report.cli(["--notebook", str(tmp_path / "hostile.ipynb"), "--parameters",
                       json.dumps({"title": "Lab"}), "--out-html", str(plain),
                       "--out-notebook", str(tmp_path / "plain.ipynb")]) == 0
    out = tmp_path / "hostile.html"
    assert report.cli(["--notebook", str(tmp_path / "hostile.ipynb"), "--parameters",
                       json.dumps({"title": HOSTILE}), "--out-html", str(out),
                       "--out-notebook", str(tmp_path / "hostile.out.ipynb")]) == 0
    text = out.read_text()
    tags = _Tags(text).tags
    scripts = [a for t, a in tags if t == "script"]
    assert len(scripts) == len([a for t, a in _Tags(plain.read_text()).tags if t == "script"])
    assert "alert('title')" not in "".join(
        m.group(1) for m in re.finditer(r"<script[^>]*>(.*?)</script>", text, re.S))
    assert not [(t, a) for t, a in tags if any(k.lower().startswith("on") for k in a)]
    assert not [(t, a) for t, a in tags for k in ("href", "src")
                if str(a.get(k, "")).strip().lower().startswith("javascript:")]
    assert text.count("&lt;script&gt;alert('title')&lt;/script&gt;") >= 3  # heading, table
    assert '<a href="rat1.html">rat1</a>' in text  # markdown of the notebook still works
