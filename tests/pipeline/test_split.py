"""The split represents the data: every discrete class in train and valid, label ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cebra_pipe.pipeline import split
from cebra_pipe.pipeline.common import PipelineError, save_npz


def _session_file(tmp_path: Path, labels: dict[str, np.ndarray], types: dict[str, str]
                  ) -> Path:
    rng = np.random.default_rng(0)
    n = len(next(iter(labels.values())))
    meta = {"animal": "rat9", "session": "day2", "label_types": types}
    arrays = {"neural": rng.normal(size=(n, 5)).astype(np.float32),
              "meta": np.array(json.dumps(meta))}
    arrays.update({f"label_{k}": v for k, v in labels.items()})
    path = tmp_path / "session.npz"
    save_npz(path, arrays)
    return path


def _run(tmp_path: Path, session: Path, method: str = "blocks"):
    out, prov = tmp_path / "out" / "split.npz", tmp_path / "out" / "split.provenance.json"
    rc = split.cli(["--session", str(session), "--method", method, "--valid-fraction", "0.2",
                    "--min-samples", "10", "--out", str(out), "--provenance", str(prov)])
    return rc, out, prov


def test_class_sorted_file_fails_naming_label_and_missing_classes(tmp_path, capsys):
    # 8 classes of 100 steps in a row: the last 20% holds classes 6 and 7 only.
    session = _session_file(tmp_path, {"arm": np.repeat(np.arange(8), 100)},
                            {"arm": "discrete"})
    rc, out, prov = _run(tmp_path, session)
    err = capsys.readouterr().err
    assert rc == 2
    assert "'arm'" in err and "valid has no time step of class(es) ['0', '1', '2', '3', '4', " \
                             "'5']" in err and "train has no time step of class(es) ['7']" in err
    assert "split.method: stratified" in err and "rat9/day2" in err
    assert not out.exists() and not prov.exists()


def test_stratified_split_holds_out_part_of_every_class(tmp_path):
    arm = np.repeat(np.arange(8), 100)
    session = _session_file(tmp_path, {"arm": arm}, {"arm": "discrete"})
    rc, out, _ = _run(tmp_path, session, "stratified")
    assert rc == 0
    data = np.load(out)
    train, valid = data["train"], data["valid"]
    assert len(valid) == 160 and not set(train) & set(valid)
    for c in range(8):  # the last 20 steps of each class, one contiguous stretch
        np.testing.assert_array_equal(valid[arm[valid] == c],
                                      np.arange(100 * c + 80, 100 * c + 100))
    meta = json.loads(str(data["meta"]))
    assert meta["method"] == "stratified"
    assert meta["labels"]["arm"]["classes"]["3"] == [80, 20]


def test_stratified_combines_discrete_labels_and_needs_one():
    a = np.repeat([0, 1], 50)
    b = np.tile(np.repeat([0, 1], 25), 2)
    strata = split.class_ids([a, b])
    assert len(np.unique(strata)) == 4
    train, valid = split.stratified_split(strata, 0.2)
    assert all(np.any(strata[valid] == s) and np.any(strata[train] == s) for s in range(4))
    with pytest.raises(PipelineError, match="needs a discrete label"):
        split.make_split(100, None, "stratified", 0.2, 1, 10, "s")
    with pytest.raises(PipelineError, match="class 1 has 1 time step"):
        split.stratified_split(np.array([0, 0, 0, 1]), 0.5, "s")


def test_continuous_range_share_is_recorded_and_warned(tmp_path, capsys):
    # position rises over the session: the last 20% lies wholly above the train range
    ramp = np.linspace(0, 1, 500)[:, None].astype(np.float32)
    wave = np.sin(np.linspace(0, 40 * np.pi, 500))[:, None].astype(np.float32)
    session = _session_file(tmp_path, {"ramp": ramp, "wave": wave},
                            {"ramp": "continuous", "wave": "continuous"})
    rc, out, prov = _run(tmp_path, session)
    assert rc == 0
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["labels"]["ramp"]["range"] == [{"covered": 0.0, "outside": 1.0}]
    wave_range = meta["labels"]["wave"]["range"][0]
    assert wave_range["covered"] > 0.99 and wave_range["outside"] == 0.0
    assert len(meta["warnings"]) == 1 and "'ramp'" in meta["warnings"][0]
    assert "100% of valid lies outside" in meta["warnings"][0]
    assert "warning" in capsys.readouterr().err
    assert json.loads(prov.read_text())["params"]["warnings"] == meta["warnings"]


def test_range_coverage_partial():
    label = np.concatenate([np.linspace(0, 10, 80), np.linspace(5, 12, 20)])
    (dim,) = split.range_coverage(label, np.arange(80), np.arange(80, 100))
    assert dim["covered"] == pytest.approx(0.5)
    assert dim["outside"] == pytest.approx(np.mean(label[80:] > 10), abs=1e-4)
