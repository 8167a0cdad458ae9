"""The workflow entrypoints (``python -m cebra_pipe <step>``) on good and bad input.

Bad input must give one clear error line naming the file/field, a non-zero exit
status, and no output file (not even a temporary one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from cebra_pipe.pipeline import ingest, split, train
from cebra_pipe.pipeline.common import (EXIT_BAD_INPUT, EXIT_WRITE_ERROR, load_session,
                                        load_split)
from pipeline_helpers import REAL, cebra_pipe

LABELS = {"position": {"type": "continuous", "key": "continuous", "index": 0},
          "direction": {"type": "discrete", "key": "discrete"}}
ACHILLES = REAL / "rat_hippocampus_achilles" / "rat_hippocampus_achilles.npz"
SMALL_MODEL = {"model_architecture": "offset10-model", "conditional": "time_delta",
               "time_offsets": 5, "batch_size": 32, "max_iterations": 12,
               "output_dimension": 3, "learning_rate": 0.003, "checkpoint_every": 5}


def run_ingest(tmp_path: Path, row: dict, labels: dict = LABELS, capsys=None) -> int:
    out = tmp_path / "out" / "session.npz"
    prov = tmp_path / "out" / "session.provenance.json"
    return ingest.cli(["--row", json.dumps(row), "--labels", json.dumps(labels),
                       "--out", str(out), "--provenance", str(prov)])


def assert_no_outputs(folder: Path) -> None:
    """Nothing at all (no temporary files either) under ``folder``."""
    left = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert not left, f"outputs left behind: {left}"


def row(path, **extra) -> dict:
    return {"animal": "a1", "session": "s1", "neural_file": str(path), **extra}


@pytest.fixture()
def small_npz(tmp_path) -> Path:
    """A small valid session file (synthetic rat, 40 s) in CEBRA's npz layout."""
    from cebra_pipe import datasets

    rec = datasets.init("synthetic-linear-track", animal="rat2", seed=3, duration=40)
    path = tmp_path / "small.npz"
    np.savez(path, neural=rec.neural, continuous=rec.continuous, discrete=rec.discrete)
    return path


@pytest.fixture()
def ingested(tmp_path, small_npz) -> tuple[Path, Path]:
    """(session file, split file) made by the ingest and split steps."""
    session = tmp_path / "sessions" / "a1.npz"
    assert ingest.cli(["--row", json.dumps(row(small_npz, neural_key="neural")),
                       "--labels", json.dumps(LABELS), "--out", str(session),
                       "--provenance", str(session.with_suffix(".json"))]) == 0
    split_file = tmp_path / "splits" / "a1.npz"
    assert split.cli(["--session", str(session), "--min-samples", "50", "--out",
                      str(split_file), "--provenance", str(split_file.with_suffix(".json"))]) == 0
    return session, split_file


# ------------------------------------------------------------------------- ingest

def test_ingest_real_rat_with_trials(tmp_path):
    assert run_ingest(tmp_path, row(ACHILLES, neural_key="neural")) == 0
    session = load_session(tmp_path / "out" / "session.npz")
    assert session.neural.shape == (10178, 120) and session.neural.dtype == np.float32
    assert session.labels["position"].shape == (10178, 1)
    assert session.labels["direction"].dtype == np.int64
    assert session.trial is not None and len(np.unique(session.trial)) == 42
    prov = json.loads((tmp_path / "out" / "session.provenance.json").read_text())
    assert list(prov["inputs"].values())[0] == __import__("hashlib").sha256(
        ACHILLES.read_bytes()).hexdigest()
    assert prov["versions"]["numpy"] == np.__version__


def test_ingest_synthetic_source(tmp_path):
    source = "synthetic:synthetic-linear-track?animal=rat3&seed=2&duration=20"
    assert run_ingest(tmp_path, row(source)) == 0
    session = load_session(tmp_path / "out" / "session.npz")
    assert session.neural.shape == (800, 64)
    assert session.meta["label_types"] == {"position": "continuous", "direction": "discrete"}


def test_ingest_h5_table_labels(tmp_path, small_npz):
    import pandas as pd

    data = np.load(small_npz)
    labels_file = tmp_path / "behaviour.h5"
    pd.DataFrame({"x": data["continuous"][:, 0], "dir": data["discrete"]}).to_hdf(
        labels_file, key="behaviour")
    labels = {"position": {"type": "continuous", "key": "behaviour", "columns": ["x"]},
              "direction": {"type": "discrete", "key": "behaviour", "columns": ["dir"]}}
    assert run_ingest(tmp_path, row(small_npz, neural_key="neural",
                                    label_file=str(labels_file)), labels) == 0
    session = load_session(tmp_path / "out" / "session.npz")
    np.testing.assert_array_equal(session.labels["direction"], data["discrete"])


@pytest.mark.parametrize("kind", ["npy", "npz", "h5", "nwb", "pt", "mat"])
@pytest.mark.parametrize("content", ["empty", "corrupt"])
def test_ingest_bad_files(tmp_path, capsys, kind, content):
    path = tmp_path / f"neural.{kind}"
    path.write_bytes(b"" if content == "empty" else b"this is not a data file\x00\x01" * 20)
    assert run_ingest(tmp_path, row(path, neural_key="neural")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("cebra_pipe ingest: error:") and str(path) in err
    assert ("empty" in err) if content == "empty" else ("corrupt" in err or "not" in err)
    assert_no_outputs(tmp_path / "out")


def test_ingest_truncated_npz_and_h5(tmp_path, capsys, small_npz):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(small_npz.read_bytes()[: small_npz.stat().st_size // 2])
    assert run_ingest(tmp_path, row(truncated, neural_key="neural")) == EXIT_BAD_INPUT
    assert "truncated.npz" in capsys.readouterr().err
    h5 = tmp_path / "full.h5"
    with h5py.File(h5, "w") as f:
        f["neural"] = np.ones((500, 4), np.float32)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(h5.read_bytes()[:1000])
    assert run_ingest(tmp_path, row(cut, neural_key="neural")) == EXIT_BAD_INPUT
    assert "cut.h5" in capsys.readouterr().err
    assert_no_outputs(tmp_path / "out")


@pytest.mark.parametrize("case, expected", [
    ("missing_key", "key 'nope'"),
    ("missing_file", "No such data file"),
    ("nan", "NaN/inf"),
    ("length", "time steps but the neural data has"),
    ("label_key", "label 'position'"),
    ("fractional_discrete", "whole numbers"),
    ("one_d_neural", "2-D (time, neurons)"),
])
def test_ingest_bad_content(tmp_path, capsys, small_npz, case, expected):
    data = dict(np.load(small_npz))
    labels = LABELS
    key = "neural"
    if case == "missing_key":
        key = "nope"
    elif case == "nan":
        data["neural"][5, 2] = np.nan
    elif case == "length":
        data["continuous"] = data["continuous"][:-3]
    elif case == "label_key":
        labels = {**LABELS, "position": {"type": "continuous", "key": "posxyz"}}
    elif case == "fractional_discrete":
        data["discrete"] = data["discrete"] + 0.5
    elif case == "one_d_neural":
        data["neural"] = data["neural"][:, 0]
    path = tmp_path / "data.npz"
    if case != "missing_file":
        np.savez(path, **data)
    assert run_ingest(tmp_path, row(path, neural_key=key), labels) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert expected in err, err
    assert_no_outputs(tmp_path / "out")


def test_ingest_exits_nonzero_from_command_line(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"garbage" * 10)
    out = tmp_path / "out" / "x.npz"
    result = cebra_pipe("ingest", "--row", json.dumps(row(bad)), "--labels",
                        json.dumps(LABELS), "--out", str(out), "--provenance",
                        str(tmp_path / "out" / "x.json"))
    assert result.returncode == EXIT_BAD_INPUT
    assert "bad.npy" in result.stderr and "Traceback" not in result.stderr
    assert_no_outputs(tmp_path / "out")


# -------------------------------------------------------------------------- split

def test_split_blocks_and_trials():
    train_idx, valid_idx, used = split.make_split(1000, None, "auto", 0.2, 1, 10)
    assert used == "blocks" and valid_idx.min() == 800 and len(train_idx) == 800
    trial = np.repeat(np.arange(10), 100)
    train_idx, valid_idx, used = split.make_split(1000, trial, "auto", 0.2, 1, 10)
    assert used == "trials"
    assert set(np.unique(trial[valid_idx])) == {4, 9}
    assert not set(train_idx) & set(valid_idx) and len(train_idx) + len(valid_idx) == 1000
    train_idx, valid_idx, _ = split.make_split(1000, None, "blocks", 0.1, 4, 10)
    assert len(valid_idx) == 100 and np.all(np.diff(valid_idx)[np.diff(valid_idx) > 1] > 1)


def test_split_too_small_and_missing_trials(tmp_path, capsys, ingested):
    session, _ = ingested
    out = tmp_path / "sp" / "x.npz"
    args = ["--session", str(session), "--out", str(out), "--provenance", str(out) + ".json"]
    assert split.cli(args + ["--min-samples", "100000"]) == EXIT_BAD_INPUT
    assert "split.min_samples=100000" in capsys.readouterr().err
    assert split.cli(args + ["--method", "trials"]) == EXIT_BAD_INPUT
    assert "needs a trial index" in capsys.readouterr().err
    assert_no_outputs(tmp_path / "sp")


def test_split_is_deterministic(tmp_path, ingested):
    session, split_file = ingested
    again = tmp_path / "again.npz"
    assert split.cli(["--session", str(session), "--min-samples", "50", "--out", str(again),
                      "--provenance", str(tmp_path / "again.json")]) == 0
    assert again.read_bytes() == split_file.read_bytes()


# -------------------------------------------------------------------------- train

def train_args(session, split_file, outdir, model=SMALL_MODEL, seeds="0", labels=None):
    labels = labels or {"names": ["position"], "shuffle": False}
    return ["--session", str(session), "--split", str(split_file), "--model",
            json.dumps(model), "--labels", json.dumps(labels), "--seeds", seeds, "--device",
            "cpu", "--outdir", str(outdir), "--checkpoints", str(outdir.parent / "ck")]


@pytest.mark.parametrize("change, expected", [
    ({"max_iterations": 0}, "'max_iterations' must be a positive integer"),
    ({"max_iterations": -5}, "'max_iterations' must be a positive integer"),
    ({"batch_size": 0}, "'batch_size' must be a positive integer"),
    ({"batch_size": -1}, "'batch_size' must be a positive integer"),
    ({"output_dimension": 0}, "'output_dimension' must be a positive integer"),
    ({"model_architecture": "offset10-modle"}, "unknown model 'offset10-modle'"),
    ({"learning_rate": 0}, "'learning_rate' must be a finite positive number"),
])
def test_train_rejects_bad_parameters(tmp_path, capsys, ingested, change, expected):
    session, split_file = ingested
    outdir = tmp_path / "train"
    assert train.cli(train_args(session, split_file, outdir, {**SMALL_MODEL, **change})) \
        == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err
    assert_no_outputs(outdir)


@pytest.mark.parametrize("seeds", ["", " , ", "-1", "0,0", "a"])
def test_train_rejects_bad_seeds(tmp_path, capsys, ingested, seeds):
    session, split_file = ingested
    outdir = tmp_path / "train"
    assert train.cli(train_args(session, split_file, outdir, seeds=seeds)) == EXIT_BAD_INPUT
    assert "--seeds" in capsys.readouterr().err
    assert_no_outputs(outdir)


def test_train_outputs_and_corrupt_model_in_decode(tmp_path, capsys, ingested):
    from cebra_pipe.pipeline import decode

    session, split_file = ingested
    outdir = tmp_path / "train"
    assert train.cli(train_args(session, split_file, outdir, seeds="0,1")) == 0
    for seed in (0, 1):
        folder = outdir / f"seed{seed}"
        assert {p.name for p in folder.iterdir()} == {
            "model.pt", "embedding_train.npy", "embedding_valid.npy", "loss.tsv",
            "provenance.json"}
        splits = load_split(split_file)
        assert np.load(folder / "embedding_valid.npy").shape == (len(splits["valid"]), 3)
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())
    # A corrupt model file and a model file carrying a pickled object are refused.
    decode_out = tmp_path / "decode" / "table.tsv"
    args = ["--sessions", str(session), "--splits", str(split_file), "--dir", str(outdir),
            "--seeds", "0", "--model-name", "m", "--labels-name", "position", "--labels",
            json.dumps({"names": ["position"]}), "--targets", '["position"]',
            "--gof-batches", "1", "--out", str(decode_out), "--provenance",
            str(decode_out) + ".json"]
    assert decode.cli(args) == 0
    decode_out.unlink()
    Path(str(decode_out) + ".json").unlink()
    (outdir / "seed0" / "model.pt").write_bytes(b"\x80\x04truncated")
    assert decode.cli(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "seed0/model.pt" in err
    import torch

    torch.save({"meta": json.dumps({}), "payload": subprocess.Popen}, outdir / "seed0" / "model.pt")
    assert decode.cli(args) == EXIT_BAD_INPUT
    assert "model.pt" in capsys.readouterr().err
    assert_no_outputs(tmp_path / "decode")


# -------------------------------------------------------------- disk full / read-only

needs_root_mount = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                                      reason="needs root to mount a small tmpfs")


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True).returncode == 0


@needs_root_mount
@pytest.mark.parametrize("options, why", [("size=64k", "the disk is full"),
                                          ("ro,size=1m", "not writable")])
def test_disk_full_or_read_only_results(tmp_path, options, why):
    results = tmp_path / "results"
    if not _mount(results, options):
        pytest.skip("cannot mount tmpfs here")
    try:
        out = results / "sessions" / "achilles.npz"
        result = cebra_pipe("ingest", "--row", json.dumps(row(ACHILLES, neural_key="neural")),
                            "--labels", json.dumps(LABELS), "--out", str(out),
                            "--provenance", str(results / "sessions" / "achilles.json"))
        assert result.returncode == EXIT_WRITE_ERROR, result.stderr
        assert why in result.stderr and "Traceback" not in result.stderr
        assert_no_outputs(results)
    finally:
        subprocess.run(["umount", str(results)], check=False)
