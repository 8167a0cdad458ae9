"""Ingest of recordings on their own clocks (config ``time_base``), and the ready configs
config/nwb and config/dlc end to end."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from cebra_pipe.pipeline import ingest
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT
from pipeline_helpers import REAL, REPO, SHARED, results_dir, snakemake

LABELS = {"position": {"type": "continuous", "key": "processing/behavior/Position/head",
                       "index": 0, "max_gap": 0.2},
          "condition": {"type": "discrete", "key": "trials", "column": "code"}}


@pytest.fixture
def lab_nwb(tmp_path):
    pytest.importorskip("pynwb")
    from pynwb import NWBHDF5IO

    from tests.recordings.conftest import write_lab_nwb

    path = write_lab_nwb(tmp_path / "lab.nwb")
    # an integer trial column to use as a discrete label
    with NWBHDF5IO(str(path), "a") as io:
        nwb = io.read()
        nwb.trials.add_column("code", "condition as a number", data=[0, 1, 0])
        io.write(nwb)
    return path


def _run(tmp_path, row, recording, labels=LABELS):
    out, prov = tmp_path / "out" / "s.npz", tmp_path / "out" / "s.json"
    status = ingest.cli(["--row", json.dumps({"animal": "a", "session": "s", **row}),
                         "--labels", json.dumps(labels), "--recording", json.dumps(recording),
                         "--out", str(out), "--provenance", str(prov)])
    return status, out, prov


def test_recording_ingest_writes_segments_trials_and_dropped_counts(tmp_path, lab_nwb, capsys):
    recording = {"time_base": {"bin_size": 0.1},
                 "neural": {"key": "units", "select": {"quality": ["good"]},
                            "preprocess": ["sqrt"]},
                 "trials": {"key": "trials", "where": {"condition": ["A"]}}}
    status, out, prov = _run(tmp_path, {"neural_file": str(lab_nwb)}, recording)
    assert status == 0
    session = np.load(out)
    np.testing.assert_allclose(session["time"], [0.05, 0.15, 0.25, 0.75, 0.85, 0.95])
    np.testing.assert_array_equal(session["trial"], [0, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(session["segment"], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(session["label_condition"], 0)
    np.testing.assert_allclose(session["neural"][:, 0] ** 2, [1, 2, 0, 0, 0, 1])
    assert session["label_position"].shape == (6, 1)
    alignment = json.loads(prov.read_text())["alignment"]
    assert alignment["dropped"]["trials"] == {"outside_intervals": 5}
    assert alignment["dropped"]["position"] == {"after_last_sample": 1}
    assert alignment["preprocessing"]["neural"] == [["sqrt", {}]]
    log = capsys.readouterr().out
    assert "6 of 11 bins kept, 2 segment(s)" in log and "5 outside intervals" in log


def test_sheet_bin_size_overrides_the_config(tmp_path, lab_nwb):
    recording = {"time_base": {"bin_size": 0.1}, "neural": {"key": "units"}}
    labels = {"position": LABELS["position"]}
    status, out, _ = _run(tmp_path, {"neural_file": str(lab_nwb), "bin_size": "0.05"},
                          recording, labels)
    assert status == 0
    assert np.allclose(np.diff(np.load(out)["time"])[:3], 0.05)
    status, out, _ = _run(tmp_path / "bad", {"neural_file": str(lab_nwb), "bin_size": "-1"},
                          recording, labels)
    assert status == EXIT_BAD_INPUT and not out.exists()


def test_circular_label_and_unit_observation_drop(tmp_path, lab_nwb):
    """Unit 1 is observed until 0.6 s: later bins are dropped when it is kept."""
    recording = {"time_base": {"bin_size": 0.1}, "neural": {"key": "units"}}
    labels = {"angle": {"type": "continuous", "key": "processing/behavior/Position/head",
                        "index": 1, "interpolation": "circular", "period": 1.0}}
    status, out, prov = _run(tmp_path, {"neural_file": str(lab_nwb)}, recording, labels)
    assert status == 0
    session = np.load(out)
    assert len(session["time"]) == 6 and session["time"].max() < 0.6
    assert json.loads(prov.read_text())["alignment"]["dropped"]["neural"] == {
        "outside_observation": 5}
    angle = session["label_angle"][:, 0]  # 2 t (mod 1)
    np.testing.assert_allclose(angle, np.mod(2 * session["time"], 1.0), atol=1e-6)


def test_prepared_arrays_gain_segments_from_trials(tmp_path):
    data = tmp_path / "prepared.npz"
    rng = np.random.default_rng(0)
    np.savez(data, neural=rng.poisson(1.0, (60, 4)).astype(np.float32),
             position=np.linspace(0, 1, 60), trial=np.repeat([0, 1, 2], 20))
    out, prov = tmp_path / "s.npz", tmp_path / "s.json"
    status = ingest.cli(["--row", json.dumps({"animal": "a", "session": "s",
                                              "neural_file": str(data), "neural_key": "neural"}),
                         "--labels", json.dumps({"position": {"type": "continuous",
                                                              "key": "position"}}),
                         "--out", str(out), "--provenance", str(prov)])
    assert status == 0
    session = np.load(out)
    np.testing.assert_array_equal(session["segment"], np.repeat([0, 1, 2], 20))
    assert "time" not in session.files


def _ingest_prepared(tmp_path, labels, **arrays):
    data = tmp_path / "trials.npz"
    np.savez(data, **arrays)
    out, prov = tmp_path / "s.npz", tmp_path / "s.json"
    status = ingest.cli(["--row", json.dumps({"animal": "a", "session": "s",
                                              "neural_file": str(data), "neural_key": "neural"}),
                         "--labels", json.dumps(labels),
                         "--out", str(out), "--provenance", str(prov)])
    return status, out, prov


def test_trial_structured_arrays_become_trials_and_segments(tmp_path):
    rng = np.random.default_rng(0)
    neural = rng.poisson(1.0, (3, 20, 4)).astype(np.float32)  # (trials, time, neurons)
    position = rng.uniform(size=(3, 20, 2))
    side = np.repeat([[0], [1], [0]], 20, axis=1)  # (trials, time)
    status, out, _ = _ingest_prepared(
        tmp_path, {"position": {"type": "continuous", "key": "position"},
                   "side": {"type": "discrete", "key": "side"}},
        neural=neural, position=position, side=side)
    assert status == 0
    session = np.load(out)
    np.testing.assert_array_equal(session["neural"], neural.reshape(60, 4))
    np.testing.assert_allclose(session["label_position"], position.reshape(60, 2).astype("f4"))
    np.testing.assert_array_equal(session["label_side"], side.reshape(60))
    np.testing.assert_array_equal(session["trial"], np.repeat([0, 1, 2], 20))
    np.testing.assert_array_equal(session["segment"], np.repeat([0, 1, 2], 20))


@pytest.mark.parametrize("arrays, message", [
    ({"position": np.zeros((3, 19))}, r"\(trials, time\) = \(3, 20\).*got shape \(3, 19\)"),
    ({"position": np.zeros((3, 20)), "trial": np.zeros(60)}, "carry their own trials"),
])
def test_trial_structured_arrays_refuse_mismatched_labels(tmp_path, arrays, message, capsys):
    status, out, prov = _ingest_prepared(
        tmp_path, {"position": {"type": "continuous", "key": "position"}},
        neural=np.ones((3, 20, 4), np.float32), **arrays)
    assert status == EXIT_BAD_INPUT
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists() and not prov.exists()


# ------------------------------------------------------------------------ end to end

def _workdir(tmp_path, name):
    """A working directory holding config/<name> (and ../shared for the real data)."""
    workdir = tmp_path / "work"
    shutil.copytree(REPO / "config" / name, workdir / "config" / name)
    os.symlink(SHARED, tmp_path / "shared")
    return workdir


def _small(config_path, iterations=150):
    config = yaml.safe_load(config_path.read_text())
    config["models"] = {"behavior": {**config["models"]["behavior"],
                                     "max_iterations": iterations}}
    config_path.write_text(yaml.safe_dump(config))


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "rat_hippocampus_achilles").is_dir(),
                    reason="needs ../shared/data/real beside the repository")
def test_nwb_config_runs_from_the_nwb_file_to_the_reports(tmp_path):
    workdir = _workdir(tmp_path, "nwb")
    _small(workdir / "config" / "nwb" / "config.yaml")
    snakemake(workdir, "--cores", "2", "--configfile", "config/nwb/config.yaml", check=True)
    results = results_dir(workdir, "config/nwb/config.yaml")
    log = (results / "logs" / "ingest" / "achilles" / "s1.log").read_text()
    assert "10177 of 10178 bins kept, 42 segment(s)" in log
    assert "position: bins not covered: 1 after last sample" in log
    session = np.load(results / "sessions" / "achilles" / "s1.npz")
    assert session["neural"].shape == (10177, 120) and session["segment"].max() == 41
    decoding = pd.read_csv(results / "tables" / "decoding.tsv", sep="\t")
    error = decoding[(decoding["target"] == "position") & (decoding["model"] == "behavior")
                     & (decoding["metric"] == "median_abs_error")]
    real = error[error["control"] == "real"]["value"].mean()
    shuffled = error[error["control"] == "shuffled"]["value"].mean()
    print(f"median position error on the valid split: {real:.3f} m (shuffled {shuffled:.3f} m)")
    assert real < shuffled
    assert (results / "report" / "overview.html").is_file()


@pytest.mark.slow
def test_dlc_config_runs_from_the_pose_file_to_the_reports(tmp_path):
    workdir = _workdir(tmp_path, "dlc")
    _small(workdir / "config" / "dlc" / "config.yaml")
    snakemake(workdir, "--cores", "2", "--configfile", "config/dlc/config.yaml", check=True)
    results = results_dir(workdir, "config/dlc/config.yaml")
    provenance = json.loads((results / "sessions" / "mouse1" / "openfield.provenance.json")
                            .read_text())
    dropped = provenance["alignment"]["dropped"]["position"]
    assert dropped["before_first_sample"] == 30  # the camera starts 1.5 s late
    assert dropped["invalid_samples"] > 0  # occlusions under the likelihood threshold
    assert provenance["alignment"]["kept_bins"] == 3000 - sum(dropped.values())
    decoding = pd.read_csv(results / "tables" / "decoding.tsv", sep="\t")
    assert {"real", "shuffled"} <= set(decoding["control"])
    assert (results / "report" / "overview.html").is_file()


@pytest.mark.parametrize("change, message", [
    ({"time_base": {}}, "time_base': give bin_size"),
    ({"time_base": {"bin_size": 0.1, "stream": "neural"}}, "not both"),
    ({"time_base": {"stream": "speed"}}, "time_base.stream': unknown stream 'speed'"),
    ({"time_base": None}, "'neural' only applies to recordings"),
    ({"time_base": None, "neural": None}, "'trials' only applies to recordings"),
    ({"time_base": None, "neural": None, "trials": None},
     r"labels.position': \['max_gap'\] only apply to recordings"),
    ({"labels": {"angle": {"type": "continuous", "key": "a", "interpolation": "circular"}}},
     "labels.angle.period': circular interpolation needs the period"),
    ({"labels": {"pose": {"type": "continuous", "source": "deeplabcut"}}},
     "labels.pose.rate': DeepLabCut pose needs the camera's frame rate"),
])
def test_recording_config_cross_checks(change, message):
    from snakemake.utils import validate

    from cebra_pipe.pipeline import config as cp_config

    config = yaml.safe_load((REPO / "config" / "nwb" / "config.yaml").read_text())
    config.update(change)
    config = {k: v for k, v in config.items() if v is not None}
    config["label_sets"] = {"one": [next(iter(config["labels"]))]}
    config["models"]["behavior"]["label_sets"] = ["one"]
    config["consistency"]["align_label"] = next(iter(config["labels"]))
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    with pytest.raises(cp_config.ConfigError, match=message):
        cp_config.check_config(config)
    for shipped in ("nwb/config.yaml", "nwb/prepared.yaml", "dlc/config.yaml",
                    "config.yaml", "rats/config.yaml"):
        good = yaml.safe_load((REPO / "config" / shipped).read_text())
        validate(good, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
        cp_config.check_config(good)
